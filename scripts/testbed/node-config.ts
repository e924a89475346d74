// Configuration files of the tier-2 node: containerd, CNI, kubelet and kube-proxy. Pure functions
// of the test bed's configuration, so each can be read and tested without starting anything.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pauseImage } from '../images/catalog.ts';
import type { TestbedConfig } from './config.ts';
import { statePaths } from './config.ts';

export interface NodePaths {
  containerdRoot: string;
  containerdState: string;
  containerdSocket: string;
  containerdConfig: string;
  cniConfDir: string;
  cniDataDir: string;
  kubeletRoot: string;
  kubeletConfig: string;
  podLogs: string;
  kubeProxyConfig: string;
  resolvConf: string;
  storage: string;
}

export function nodePaths(config: TestbedConfig): NodePaths {
  const root = config.stateDir;
  return {
    containerdRoot: join(root, 'containerd/root'),
    containerdState: join(config.runDir, 'containerd'),
    // sockets live under /run: a unix socket path must stay under 108 bytes, whatever the clone's path
    containerdSocket: join(config.runDir, 'containerd.sock'),
    containerdConfig: join(root, 'containerd/config.toml'),
    cniConfDir: join(root, 'cni/net.d'),
    cniDataDir: join(root, 'cni/ipam'),
    kubeletRoot: join(root, 'kubelet'),
    kubeletConfig: join(root, 'kubelet/config.yaml'),
    podLogs: join(root, 'pod-logs'),
    kubeProxyConfig: join(root, 'kube-proxy.yaml'),
    resolvConf: join(root, 'resolv.conf'),
    storage: join(root, 'storage'),
  };
}

/** CAP_SYS_RESOURCE (bit 24) in this process's effective set: needed to lower oom_score_adj. */
export function canLowerOomScore(): boolean {
  const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? '0';
  return (BigInt(`0x${capEff}`) & (1n << 24n)) !== 0n;
}

export const runcWrapper = join(import.meta.dirname, 'runc-keep-oom-score.sh');

export function containerdConfig(config: TestbedConfig, lowerOomScore = canLowerOomScore()): string {
  const p = nodePaths(config);
  return containerdToml(
    {
      root: p.containerdRoot,
      state: p.containerdState,
      socket: p.containerdSocket,
      opt: join(config.stateDir, 'containerd/opt'),
      cniConfDir: p.cniConfDir,
    },
    lowerOomScore,
  );
}

export interface ContainerdPaths {
  root: string;
  state: string;
  socket: string;
  opt: string;
  cniConfDir: string;
}

/** A containerd of its own (root, state, sockets, CNI configuration) with the CRI plugin and runc. */
export function containerdToml(p: ContainerdPaths, lowerOomScore: boolean, extraCri: string[] = []): string {
  // see runc-keep-oom-score.sh
  const binaryName = lowerOomScore ? '' : `\n        BinaryName = ${JSON.stringify(runcWrapper)}`;
  const q = JSON.stringify; // TOML basic strings accept JSON string syntax
  return `version = 2
root = ${q(p.root)}
state = ${q(p.state)}
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = ${q(p.socket)}

[ttrpc]
  address = ${q(p.socket + '.ttrpc')}

[plugins."io.containerd.internal.v1.opt"]
  path = ${q(p.opt)}

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = ${q(pauseImage)}${extraCri.map((line) => `\n  ${line}`).join('')}
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false${binaryName}
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = ${q(p.cniConfDir)}
`;
}

export function cniConfig(config: TestbedConfig): object {
  return {
    cniVersion: '0.4.0',
    name: 'kubeonkube',
    plugins: [
      {
        type: 'bridge',
        bridge: config.node.bridge,
        isGateway: true,
        isDefaultGateway: true,
        // pods talk to each other and to the node only; nothing is masqueraded out of the machine
        ipMasq: false,
        hairpinMode: true,
        ipam: {
          type: 'host-local',
          ranges: [[{ subnet: config.node.podSubnet, gateway: config.node.ip }]],
          dataDir: nodePaths(config).cniDataDir,
        },
      },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
}

/**
 * What every kubelet of the test bed is told, the meta node's and the workers': where it listens,
 * webhook authentication and authorization with x509 clients of `clientCAFile`, cgroup v1, and
 * pre-loaded images that are never collected.
 */
export function kubeletBase(o: {
  address: string;
  clientCAFile: string;
  containerdSocket: string;
  clusterDNS: string;
  clusterDomain: string;
  resolvConf: string;
  podLogs: string;
}) {
  return {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    address: o.address,
    port: 10250,
    readOnlyPort: 0,
    // the loopback of the kubelet's own network namespace
    healthzBindAddress: '127.0.0.1',
    healthzPort: 10248,
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: o.clientCAFile },
    },
    authorization: { mode: 'Webhook' },
    // this host is cgroup v1, which Kubernetes 1.34 still runs on when told so
    cgroupDriver: 'cgroupfs',
    failCgroupV1: false,
    failSwapOn: false,
    containerRuntimeEndpoint: `unix://${o.containerdSocket}`,
    clusterDNS: [o.clusterDNS],
    clusterDomain: o.clusterDomain,
    // pods resolve only through the cluster DNS
    resolvConf: o.resolvConf,
    podLogsDir: o.podLogs,
    // images are pre-loaded and cannot be pulled again: never collect them, never evict for disk
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    evictionHard: {
      'memory.available': '100Mi',
      'nodefs.available': '1%',
      'imagefs.available': '1%',
      'nodefs.inodesFree': '1%',
    },
    serializeImagePulls: false,
    registerNode: true,
    maxPods: 110,
  };
}

export function kubeletConfig(config: TestbedConfig): object {
  const p = nodePaths(config);
  const pki = statePaths(config.stateDir).pki;
  return {
    ...kubeletBase({
      address: config.node.ip,
      clientCAFile: join(pki, 'ca.crt'),
      containerdSocket: p.containerdSocket,
      clusterDNS: config.dnsServiceIP,
      clusterDomain: config.dnsDomain,
      resolvConf: p.resolvConf,
      podLogs: p.podLogs,
    }),
    tlsCertFile: join(pki, 'kubelet.crt'),
    tlsPrivateKeyFile: join(pki, 'kubelet.key'),
    rotateCertificates: false,
  };
}

export function kubeProxyConfig(config: TestbedConfig): object {
  return {
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    clientConnection: { kubeconfig: statePaths(config.stateDir).kubeconfig('kube-proxy') },
    mode: 'iptables',
    clusterCIDR: config.podCIDR,
    hostnameOverride: config.node.name,
    healthzBindAddress: '127.0.0.1:10256',
    metricsBindAddress: '127.0.0.1:10249',
    // leave the host's conntrack table size alone
    conntrack: { maxPerCore: 0, min: 0 },
  };
}
