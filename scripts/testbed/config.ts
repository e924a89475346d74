// Where the local meta-cluster keeps its state, which ports and ranges it uses, and where the
// binaries built by scripts/build-binaries.sh live. Every value can be overridden by environment.
import { execFileSync } from 'node:child_process';
import { join, resolve } from 'node:path';

export const repoRoot = resolve(import.meta.dirname, '../..');

export interface NodeConfig {
  name: string;
  /** The node's address: the gateway of its pod bridge, where the apiserver is reached from pods. */
  ip: string;
  bridge: string;
  podSubnet: string;
}

export interface TestbedConfig {
  stateDir: string;
  /** Sockets and runtime state of the node (tier 2), short paths under /run. */
  runDir: string;
  /** Address etcd, controller-manager and scheduler listen on. */
  bindAddress: string;
  /** Address of the apiserver: loopback for tier 1, the node's address for tier 2 so pods reach it. */
  apiserverAddress: string;
  /** Tier 2: a real node (containerd, kubelet, kube-proxy, CoreDNS, PV provisioner). */
  withNode: boolean;
  node: NodeConfig;
  dnsServiceIP: string;
  ports: { etcdClient: number; etcdPeer: number; apiserver: number; controllerManager: number; scheduler: number };
  serviceCIDR: string;
  /** First address of serviceCIDR: the `kubernetes` Service's ClusterIP, a SAN of the apiserver. */
  kubernetesServiceIP: string;
  podCIDR: string;
  dnsDomain: string;
  binDirs: { kubernetes: string; etcd: string };
}

function port(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > 65535) throw new Error(`${name}=${raw} is not a port number`);
  return value;
}

/** Where scripts/build-binaries.sh puts the binaries of `group`. */
export function binDir(group: string): string {
  const script = join(repoRoot, 'scripts/build-binaries.sh');
  return execFileSync(script, ['--print-dir', group], { encoding: 'utf8' }).trim();
}

export function loadConfig(options: { withNode?: boolean } = {}): TestbedConfig {
  const withNode = options.withNode ?? false;
  const node = { name: 'meta-node', ip: '10.113.0.1', bridge: 'kok0', podSubnet: '10.113.0.0/24' };
  return {
    stateDir: resolve(process.env.KUBEONKUBE_STATE ?? join(repoRoot, '.meta-cluster')),
    runDir: '/run/kubeonkube',
    bindAddress: '127.0.0.1',
    apiserverAddress: withNode ? node.ip : '127.0.0.1',
    withNode,
    node,
    dnsServiceIP: '10.112.0.10',
    ports: {
      etcdClient: port('KUBEONKUBE_ETCD_PORT', 2379),
      etcdPeer: port('KUBEONKUBE_ETCD_PEER_PORT', 2380),
      apiserver: port('KUBEONKUBE_APISERVER_PORT', 6443),
      controllerManager: port('KUBEONKUBE_CONTROLLER_MANAGER_PORT', 10257),
      scheduler: port('KUBEONKUBE_SCHEDULER_PORT', 10259),
    },
    // distinct from a business cluster's defaults (10.96.0.0/12, 10.244.0.0/16) so addresses in
    // logs say at a glance which plane they belong to
    serviceCIDR: '10.112.0.0/16',
    kubernetesServiceIP: '10.112.0.1',
    podCIDR: '10.113.0.0/16',
    dnsDomain: 'cluster.local',
    binDirs: { kubernetes: binDir('kubernetes'), etcd: binDir('etcd') },
  };
}

export function statePaths(stateDir: string) {
  return {
    pki: join(stateDir, 'pki'),
    logs: join(stateDir, 'logs'),
    etcdData: join(stateDir, 'etcd'),
    processes: join(stateDir, 'processes.json'),
    /** What `up` was asked for (tier), so a later `up` knows what is running. */
    manifest: join(stateDir, 'meta-cluster.json'),
    adminKubeconfig: join(stateDir, 'admin.kubeconfig'),
    kubeconfig: (component: string) => join(stateDir, `${component}.kubeconfig`),
  };
}
