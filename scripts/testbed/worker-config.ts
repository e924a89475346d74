// Configuration of a business cluster's worker on this machine: its network (a network namespace
// behind the host, like a machine behind NAT), its paths, containerd, CNI and kubelet. Pure
// functions of the worker's name and index and of the join Secret, testable without starting anything.
import { join } from 'node:path';
import { containerdToml, kubeletBase } from './node-config.ts';

export class WorkerSetupError extends Error {}

/** What the meta-cluster Secret `<cluster>-join` tells a worker (see operator/model/join.ts). */
export interface JoinData {
  /** A bootstrap kubeconfig: the Cluster's endpoint, CA bundle and bootstrap token. */
  kubeconfig: string;
  /** The business cluster's CA bundle: who may call the kubelet's API. */
  caBundle: string;
  clusterDNS: string;
  clusterDomain: string;
  /** The cluster's whole pod range; each worker takes a /24 of it. */
  podCIDR: string;
}

/** The join Secret's data (base64, as the API returns it) → JoinData; a missing key is a one-line error. */
export function parseJoinData(data: Record<string, string> | undefined, where: string): JoinData {
  const keys = {
    kubeconfig: 'kubeconfig',
    caBundle: 'ca.crt',
    clusterDNS: 'cluster-dns',
    clusterDomain: 'cluster-domain',
    podCIDR: 'pod-cidr',
  } as const;
  const out: Partial<JoinData> = {};
  for (const [field, key] of Object.entries(keys) as [keyof JoinData, string][]) {
    const raw = data?.[key];
    if (!raw)
      throw new WorkerSetupError(
        `Secret ${where} has no key ${key}; the operator writes it once the Cluster is Ready (or write it by hand)`,
      );
    out[field] = Buffer.from(raw, 'base64').toString('utf8').trim();
  }
  return out as JoinData;
}

/** Worker names become a network namespace, a cgroup, a Node name and a folder under /run/kubeonkube. */
export function checkWorkerName(name: string): void {
  if (!/^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$/.test(name)) {
    throw new WorkerSetupError(
      `worker name ${JSON.stringify(name)} is not a DNS label of at most 40 characters; choose another with --name`,
    );
  }
  // the meta node's own entries under /run/kubeonkube
  if (name === 'containerd')
    throw new WorkerSetupError('worker name "containerd" is taken by the meta node; choose another with --name');
}

function ipv4ToInt(ip: string): number {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255))
    throw new WorkerSetupError(`${ip} is not an IPv4 address`);
  return parts.reduce((n, p) => n * 256 + p, 0);
}

function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

/** The `index`-th /24 of `cidr` (IPv4, prefix at most 24). */
export function nthSubnet24(cidr: string, index: number): string {
  const [ip = '', prefixText = ''] = cidr.split('/');
  const prefix = Number(prefixText);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > 24)
    throw new WorkerSetupError(`pod CIDR ${cidr} must be an IPv4 range of /24 or larger`);
  const size = 2 ** (32 - prefix);
  const base = ipv4ToInt(ip) - (ipv4ToInt(ip) % size);
  if (index >= size / 256)
    throw new WorkerSetupError(`pod CIDR ${cidr} has no /24 for worker number ${index}; remove a worker first`);
  return `${intToIpv4(base + index * 256)}/24`;
}

/**
 * 10.250.<index>.0/30 links each worker to the host. Clear of the meta-cluster's ranges (Services
 * 10.112/16, pods 10.113/16, see config.ts) and of a business cluster's defaults (10.96/12, 10.244/16).
 */
export const workerLinkRange = '10.250.0.0/16';
export const maxWorkers = 256;

export interface WorkerNetwork {
  netns: string;
  /** The host's end of the veth pair (at most 15 characters: an interface name). */
  hostVeth: string;
  /** The worker's end, inside its namespace. */
  workerVeth: string;
  hostIP: string;
  /** The worker's address: its node IP, and the source of everything it sends out (masqueraded). */
  workerIP: string;
  prefix: number;
  /** The pods' bridge inside the worker's namespace. */
  bridge: string;
  podSubnet: string;
  podGateway: string;
  /** The business cluster's whole pod range: pods keep their addresses towards it (the other workers' pods). */
  clusterPodCIDR: string;
  /** The business cluster's Service range: no network routes it (only kube-proxy's rules on a node answer it). */
  clusterServiceCIDR: string;
}

export function workerNetwork(name: string, index: number, podCIDR: string, serviceCIDR: string): WorkerNetwork {
  if (!Number.isInteger(index) || index < 0 || index >= maxWorkers)
    throw new WorkerSetupError(`worker number ${index} is out of range (0-${maxWorkers - 1})`);
  const podSubnet = nthSubnet24(podCIDR, index);
  return {
    netns: `kok-${name}`,
    hostVeth: `kok-w${index}`,
    workerVeth: 'eth0',
    hostIP: `10.250.${index}.1`,
    workerIP: `10.250.${index}.2`,
    prefix: 30,
    bridge: 'kok-pods',
    podSubnet,
    podGateway: intToIpv4(ipv4ToInt(podSubnet.split('/')[0]!) + 1),
    clusterPodCIDR: podCIDR,
    clusterServiceCIDR: serviceCIDR,
  };
}

/** Tags the host's iptables rules of a worker, so they are found (and removed) by name alone. */
export const firewallComment = (name: string) => `kubeonkube worker ${name}`;
/** Tags the rules that join two workers of one business cluster: removed when either leaves. */
export const peersComment = (a: string, b: string) => `kubeonkube workers ${[a, b].sort().join(' ')}`;

/** Whether a rule's comment (as `iptables -S` prints it, unquoted) is one of the worker's. */
export function ownsComment(comment: string, name: string): boolean {
  if (comment === firewallComment(name)) return true;
  const [tag, kind, ...names] = comment.split(' ');
  return tag === 'kubeonkube' && kind === 'workers' && names.includes(name);
}

export interface FirewallRule {
  table: 'nat' | 'filter';
  chain: string;
  spec: string[];
}

/**
 * The host's rules for a worker: what it sends out is masqueraded (a machine behind NAT), except
 * towards the other workers (peersFirewall decides which may reach it), and no connection may be
 * opened towards it, neither by forwarded traffic (the meta-cluster's pods) nor by the host's own
 * processes; replies to the worker's connections pass (conntrack state). REJECT rather than
 * DROP: a forbidden dial fails at once instead of hanging until a timeout. What a worker sends to
 * its cluster's Service range without a rule of kube-proxy's (a port the Service no longer has)
 * is unreachable, as on a data centre's network, where nothing routes that range: it must not
 * reach whatever lies beyond the test bed (this machine's own network answers every TCP dial).
 */
export function workerFirewall(name: string, net: WorkerNetwork): FirewallRule[] {
  const comment = ['-m', 'comment', '--comment', firewallComment(name)];
  const refuseNew = ['-o', net.hostVeth, '-m', 'conntrack', '--ctstate', 'NEW', ...comment, '-j', 'REJECT'];
  return [
    {
      table: 'nat',
      chain: 'POSTROUTING',
      spec: ['-s', `${net.workerIP}/32`, '!', '-o', 'kok-w+', ...comment, '-j', 'MASQUERADE'],
    },
    { table: 'filter', chain: 'FORWARD', spec: refuseNew },
    { table: 'filter', chain: 'OUTPUT', spec: refuseNew },
    {
      table: 'filter',
      chain: 'FORWARD',
      spec: [
        '-i',
        net.hostVeth,
        '-d',
        net.clusterServiceCIDR,
        ...comment,
        '-j',
        'REJECT',
        '--reject-with',
        'icmp-net-unreachable',
      ],
    },
  ];
}

/**
 * Two workers of one business cluster reach each other as machines of one data-centre network
 * do: nodes and pods both ways, with their own addresses (the host routes each worker's pod /24
 * to it). Inserted before each worker's refusal of new connections; workers of other clusters
 * and the meta-cluster are still refused.
 */
export function peersFirewall(a: { name: string; net: WorkerNetwork }, b: { name: string; net: WorkerNetwork }) {
  const comment = ['-m', 'comment', '--comment', peersComment(a.name, b.name)];
  const accept = (from: WorkerNetwork, to: WorkerNetwork): FirewallRule => ({
    table: 'filter',
    chain: 'FORWARD',
    spec: ['-i', from.hostVeth, '-o', to.hostVeth, ...comment, '-j', 'ACCEPT'],
  });
  return [accept(a.net, b.net), accept(b.net, a.net)];
}

/**
 * The rule inside the worker's namespace: its pods leave with the worker's address, as behind a
 * real machine, except towards the cluster's other pods, which see their own addresses (what a
 * pod network gives). Replaces the CNI bridge's own masquerade, which spares only the worker's /24.
 */
export function podMasquerade(net: WorkerNetwork): FirewallRule {
  return {
    table: 'nat',
    chain: 'POSTROUTING',
    spec: [
      '-s',
      net.podSubnet,
      '!',
      '-d',
      net.clusterPodCIDR,
      '-m',
      'comment',
      '--comment',
      'kubeonkube: pods leave as the node',
      '-j',
      'MASQUERADE',
    ],
  };
}

/** The worker's cgroup, below the root of each hierarchy: its kubelet's cgroupRoot. */
export const workerCgroup = (name: string) => `kok-${name}`;

export interface WorkerPaths {
  /** The worker's record (index, processes), beside its folder: `leave` finds it after a crash. */
  stateFile: string;
  root: string;
  /** Sockets and containerd's state, short paths under /run. */
  run: string;
  logs: string;
  containerdRoot: string;
  containerdState: string;
  containerdSocket: string;
  containerdConfig: string;
  containerdOpt: string;
  /** containerd's registry hosts (hosts.toml per registry): every one points nowhere. */
  registryHosts: string;
  cniConfDir: string;
  cniDataDir: string;
  kubeletRoot: string;
  kubeletConfig: string;
  certDir: string;
  bootstrapKubeconfig: string;
  kubeconfig: string;
  caFile: string;
  podLogs: string;
  resolvConf: string;
}

export function workerPaths(stateDir: string, runDir: string, name: string): WorkerPaths {
  const root = join(stateDir, 'workers', name);
  const run = join(runDir, name);
  return {
    stateFile: join(stateDir, 'workers', `${name}.json`),
    root,
    run,
    logs: join(stateDir, 'logs', 'workers', name),
    containerdRoot: join(root, 'containerd/root'),
    containerdState: join(run, 'containerd'),
    containerdSocket: join(run, 'containerd.sock'),
    containerdConfig: join(root, 'containerd/config.toml'),
    containerdOpt: join(root, 'containerd/opt'),
    registryHosts: join(root, 'containerd/certs.d'),
    cniConfDir: join(root, 'cni/net.d'),
    cniDataDir: join(root, 'cni/ipam'),
    kubeletRoot: join(root, 'kubelet'),
    kubeletConfig: join(root, 'kubelet-config.json'),
    certDir: join(root, 'kubelet/pki'),
    bootstrapKubeconfig: join(root, 'bootstrap.kubeconfig'),
    kubeconfig: join(root, 'kubelet.kubeconfig'),
    caFile: join(root, 'ca.crt'),
    podLogs: join(root, 'pod-logs'),
    resolvConf: join(root, 'resolv.conf'),
  };
}

export function workerContainerdConfig(p: WorkerPaths, lowerOomScore: boolean): string {
  return containerdToml(
    {
      root: p.containerdRoot,
      state: p.containerdState,
      socket: p.containerdSocket,
      opt: p.containerdOpt,
      cniConfDir: p.cniConfDir,
    },
    lowerOomScore,
    // pods' network namespaces under the worker's run folder rather than /run/netns, beside the
    // meta node's: removing the worker unmounts them with everything else of it
    [
      'netns_mounts_under_state_dir = true',
      `[plugins."io.containerd.grpc.v1.cri".registry]`,
      `  config_path = ${JSON.stringify(p.registryHosts)}`,
    ],
  );
}

/**
 * Where a worker's containerd may pull from: nowhere. Every image a worker runs is imported; a pull
 * of anything else (the conformance suite asks for images that do not exist, on purpose) fails at
 * once on a closed local port instead of asking the world. `_default` covers every registry on
 * containerd releases that read it; the suite's registries are named for those that do not.
 */
export const unreachableRegistries = ['_default', 'docker.io', 'gcr.io', 'registry.k8s.io', 'quay.io', 'ghcr.io'];
export const unreachableRegistryHosts =
  '# no registry is asked: every image a worker runs is imported\nserver = "https://127.0.0.1:1"\n';

export function workerCniConfig(p: WorkerPaths, net: WorkerNetwork): object {
  return {
    cniVersion: '0.4.0',
    name: 'kubeonkube-worker',
    plugins: [
      {
        type: 'bridge',
        bridge: net.bridge,
        isGateway: true,
        isDefaultGateway: true,
        // pods leave with the worker's address except towards other pods (podMasquerade)
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: net.podSubnet, gateway: net.podGateway }]],
          dataDir: p.cniDataDir,
        },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
}

export function workerKubeletConfig(name: string, p: WorkerPaths, net: WorkerNetwork, data: JoinData): object {
  return {
    ...kubeletBase({
      address: net.workerIP,
      clientCAFile: p.caFile,
      containerdSocket: p.containerdSocket,
      clusterDNS: data.clusterDNS,
      clusterDomain: data.clusterDomain,
      resolvConf: p.resolvConf,
      podLogs: p.podLogs,
    }),
    // a client certificate from the bootstrap token, a serving certificate from a CSR: nothing is
    // issued on this side, as on a real machine
    rotateCertificates: true,
    serverTLSBootstrap: true,
    // the meta node's kubelet owns /kubepods of this cgroup v1 host: this one lives below its own root
    cgroupRoot: `/${workerCgroup(name)}`,
    cgroupsPerQOS: true,
  };
}

/** The kubelet's flags; the bootstrap kubeconfig is the join Secret's, as is. */
export function workerKubeletArgs(name: string, p: WorkerPaths, net: WorkerNetwork): string[] {
  return [
    `--config=${p.kubeletConfig}`,
    `--bootstrap-kubeconfig=${p.bootstrapKubeconfig}`,
    `--kubeconfig=${p.kubeconfig}`,
    `--cert-dir=${p.certDir}`,
    `--root-dir=${p.kubeletRoot}`,
    `--hostname-override=${name}`,
    `--node-ip=${net.workerIP}`,
  ];
}
