// A business cluster's worker on this machine, joined the way a remote machine behind NAT joins:
// a network namespace whose only way out is the host (masqueraded), with its own containerd and
// kubelet, bootstrapped from the meta-cluster Secret `<cluster>-join`. Nothing on the host or in
// the meta-cluster can open a connection to it. `stopWorker` removes every trace of it: processes,
// mounts, network namespaces, the veth pair, iptables rules, cgroups and files.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  rmSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildImages, importImages } from '../images/build.ts';
import { busyboxImage, pauseImage, projectImageName } from '../images/catalog.ts';
import { suiteEtcdImage } from '../images/conformance-catalog.ts';
import { hostsTestbed, readRecord, recordedNames, writeRecord } from './host-records.ts';
import { type TestbedConfig } from './config.ts';
import { checkMetaNode, metaKubectl } from './meta-access.ts';
import { cgroupPids, createCgroups, removeCgroups } from './host-cgroups.ts';
import {
  createLinkedNetns,
  insertRules,
  netnsPath,
  removeLinkedNetns,
  removeTaggedRules,
  run,
  succeeds,
} from './host-network.ts';
import { checkNodePrerequisites, containerdTasks, mountsUnder } from './node.ts';
import { canLowerOomScore } from './node-config.ts';
import { waitFor } from './probes.ts';
import { isRunning, startProcess, stopProcess, type ProcessRecord } from './processes.ts';
import {
  checkWorkerName,
  ownsComment,
  peersFirewall,
  podMasquerade,
  maxWorkers,
  parseJoinData,
  workerCgroup,
  workerCniConfig,
  unreachableRegistries,
  unreachableRegistryHosts,
  workerContainerdConfig,
  workerFirewall,
  workerKubeletArgs,
  workerKubeletConfig,
  workerNetwork,
  workerPaths,
  WorkerSetupError,
  type JoinData,
  type WorkerNetwork,
  type WorkerPaths,
} from './worker-config.ts';
import { secrets } from '../../operator/names/cluster-names.ts';

export { WorkerSetupError };

type Log = (line: string) => void;

export const defaultWorkerName = 'worker-0';

/** What `stopWorker` needs after a crash: written before anything is created. */
interface WorkerState {
  name: string;
  index: number;
  namespace: string;
  cluster: string;
  network: WorkerNetwork;
  processes: ProcessRecord[];
}

export interface WorkerInfo {
  name: string;
  namespace: string;
  cluster: string;
  /** Its network namespace, under /run/netns. */
  netns: string;
  /** Its address, the Node's InternalIP. */
  nodeIP: string;
  podSubnet: string;
  /** The kubelet's kubeconfig once bootstrapped: a Node's credentials in the business cluster. */
  kubeletKubeconfig: string;
  logDir: string;
}

export interface StartWorkerOptions {
  /** The meta-cluster's state folder; default the one scripts/meta-cluster uses. */
  stateDir?: string;
  namespace: string;
  cluster: string;
  name?: string;
  log?: Log;
  /** How long to wait for the join Secret to appear (default 60 s). */
  secretTimeoutMs?: number;
  /** How long to wait for the Node to be Ready (default 180 s); 0: return once the kubelet runs. */
  readyTimeoutMs?: number;
  /** Also the upstream conformance suite's images (scripts/images/conformance-catalog.ts). */
  conformanceImages?: boolean;
}

export interface StopWorkerOptions {
  stateDir?: string;
  name?: string;
  log?: Log;
}

const testbed = hostsTestbed;

const readState = (p: WorkerPaths) => readRecord<WorkerState>(p.stateFile);
const writeState = (p: WorkerPaths, state: WorkerState) => writeRecord(p.stateFile, state);

/** The workers this meta-cluster has a record of, by name. */
export const listWorkers = (stateDir: string): string[] => recordedNames(join(stateDir, 'workers'));

function info(config: TestbedConfig, state: WorkerState): WorkerInfo {
  const p = workerPaths(config.stateDir, config.runDir, state.name);
  return {
    name: state.name,
    namespace: state.namespace,
    cluster: state.cluster,
    netns: state.network.netns,
    nodeIP: state.network.workerIP,
    podSubnet: state.network.podSubnet,
    kubeletKubeconfig: p.kubeconfig,
    logDir: p.logs,
  };
}

/** The lowest worker number no other worker of this meta-cluster holds. */
function freeIndex(config: TestbedConfig): number {
  const taken = new Set(
    listWorkers(config.stateDir).map((n) => readState(workerPaths(config.stateDir, config.runDir, n))?.index),
  );
  for (let i = 0; i < maxWorkers; i++) if (!taken.has(i)) return i;
  throw new WorkerSetupError(
    `all ${maxWorkers} worker numbers are taken; remove one with scripts/meta-cluster worker leave --name <worker>`,
  );
}

/** The Cluster's Service range, as the API defaulted it (a worker never needs it; the test bed's network does). */
function clusterServiceCIDR(config: TestbedConfig, namespace: string, cluster: string): string {
  const out = metaKubectl(config)([
    '-n',
    namespace,
    'get',
    'clusters.kubeonkube.io',
    cluster,
    '-o',
    'jsonpath={.spec.network.serviceCIDR}',
  ]);
  const cidr = out.stdout.trim();
  if (out.status !== 0 || !/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(cidr))
    throw new WorkerSetupError(
      `could not read the Service range of Cluster ${namespace}/${cluster}: ${out.stderr.trim() || cidr}`,
    );
  return cidr;
}

async function readJoinSecret(
  config: TestbedConfig,
  namespace: string,
  cluster: string,
  timeoutMs: number,
): Promise<JoinData> {
  const name = secrets.join(cluster);
  const kubectl = metaKubectl(config);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = kubectl(['-n', namespace, 'get', 'secret', name, '-o', 'json', '--ignore-not-found']);
    if (out.status !== 0)
      throw new WorkerSetupError(`could not read Secret ${namespace}/${name}: ${out.stderr.trim()}`);
    if (out.stdout.trim() !== '')
      return parseJoinData((JSON.parse(out.stdout) as { data?: Record<string, string> }).data, `${namespace}/${name}`);
    if (Date.now() > deadline) {
      throw new WorkerSetupError(
        `Secret ${namespace}/${name} not found after ${timeoutMs / 1000} s; is Cluster ${namespace}/${cluster} Ready, with an operator running?`,
      );
    }
    await sleep(1000);
  }
}

function writeWorkerFiles(name: string, p: WorkerPaths, net: WorkerNetwork, data: JoinData): void {
  for (const dir of [
    p.root,
    p.run,
    p.logs,
    p.containerdRoot,
    p.containerdState,
    p.containerdOpt,
    p.cniConfDir,
    p.cniDataDir,
    p.kubeletRoot,
    p.certDir,
    p.podLogs,
  ]) {
    mkdirSync(dir, { recursive: true });
  }
  writeFileSync(p.containerdConfig, workerContainerdConfig(p, canLowerOomScore()));
  for (const registry of unreachableRegistries) {
    mkdirSync(join(p.registryHosts, registry), { recursive: true });
    writeFileSync(join(p.registryHosts, registry, 'hosts.toml'), unreachableRegistryHosts);
  }
  writeFileSync(join(p.cniConfDir, '10-kubeonkube-worker.conflist'), JSON.stringify(workerCniConfig(p, net), null, 2));
  writeFileSync(p.kubeletConfig, JSON.stringify(workerKubeletConfig(name, p, net, data), null, 2));
  writeFileSync(p.bootstrapKubeconfig, data.kubeconfig + '\n', { mode: 0o600 });
  writeFileSync(p.caFile, data.caBundle + '\n');
  writeFileSync(p.resolvConf, '');
}

function setupWorkerNetwork(name: string, net: WorkerNetwork, peers: { name: string; net: WorkerNetwork }[]): void {
  createLinkedNetns({
    netns: net.netns,
    hostVeth: net.hostVeth,
    innerVeth: net.workerVeth,
    hostIP: net.hostIP,
    innerIP: net.workerIP,
    prefix: net.prefix,
  });
  // the worker routes its pods' traffic; a new namespace starts with forwarding off
  run('nsenter', [`--net=${netnsPath(net.netns)}`, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
  // the pods' traffic: their own addresses within the cluster's pod range, the worker's beyond it
  const mask = podMasquerade(net);
  run('nsenter', [`--net=${netnsPath(net.netns)}`, 'iptables', '-t', mask.table, '-A', mask.chain, ...mask.spec]);
  // the other workers reach this one's pods through the host, as through a data centre's router
  run('ip', ['route', 'replace', net.podSubnet, 'via', net.workerIP, 'dev', net.hostVeth]);
  // first in its chain: kube-proxy's and the kubelet's jumps accept some traffic before the policy;
  // the peers' acceptance after (so before) the refusals
  insertRules([...workerFirewall(name, net), ...peers.flatMap((peer) => peersFirewall({ name, net }, peer))]);
}

/** The other workers joined to the same business cluster: they and this one form one network. */
function peersOf(config: TestbedConfig, self: WorkerState): { name: string; net: WorkerNetwork }[] {
  return listWorkers(config.stateDir)
    .filter((n) => n !== self.name)
    .map((n) => readState(workerPaths(config.stateDir, config.runDir, n)))
    .filter((s): s is WorkerState => s?.namespace === self.namespace && s.cluster === self.cluster)
    .map((s) => ({ name: s.name, net: s.network }));
}

/** Every process of the worker: in its network namespace (kubelet, containerd, shims, host-network pods) or its cgroups (pods). */
function workerPids(name: string, netns: string): number[] {
  const pids = new Set<number>(cgroupPids(workerCgroup(name)));
  let inode: number | undefined;
  try {
    inode = statSync(netnsPath(netns)).ino;
  } catch {
    /* no namespace */
  }
  if (inode !== undefined) {
    for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
      try {
        if (readlinkSync(`/proc/${pid}/ns/net`) === `net:[${inode}]`) pids.add(Number(pid));
      } catch {
        /* exited meanwhile */
      }
    }
  }
  pids.delete(process.pid);
  return [...pids];
}

async function killWorkerProcesses(name: string, netns: string, log: Log): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (let pids = workerPids(name, netns); pids.length > 0; pids = workerPids(name, netns)) {
    if (Date.now() > deadline)
      throw new WorkerSetupError(
        `processes ${pids.join(' ')} of worker ${name} survived SIGKILL; see ps -o pid,stat,cmd -p ${pids.join(',')}`,
      );
    log(`killing leftover processes of ${name}: ${pids.join(' ')}`);
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await sleep(300);
  }
}

/** The kubelet links each container's log into /var/log/containers; the worker's go with it. */
function removeContainerLogLinks(p: WorkerPaths): void {
  const dir = '/var/log/containers';
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir)) {
    const link = join(dir, entry);
    try {
      if (lstatSync(link).isSymbolicLink() && readlinkSync(link).startsWith(p.podLogs + '/')) unlinkSync(link);
    } catch {
      /* removed meanwhile */
    }
  }
}

/** The conformance suite's images (only imported when asked for). */
export const isConformanceImage = (ref: string) =>
  ref.startsWith('registry.k8s.io/e2e-test-images/') || ref === suiteEtcdImage;

/** The images a worker runs: the pause sandbox, the add-ons (CoreDNS, kube-proxy), the project's own and busybox for tests. */
export function isWorkerImage(ref: string): boolean {
  return (
    ref === pauseImage ||
    ref === busyboxImage ||
    ref.startsWith(`${projectImageName}:`) ||
    ref.startsWith('registry.k8s.io/coredns/coredns:') ||
    ref.startsWith('registry.k8s.io/kube-proxy:')
  );
}

/**
 * Joins a worker to Cluster `namespace/cluster` and waits for its Node to be Ready. Idempotent: a
 * worker already joined to that Cluster is left as it is; what a crashed one left is removed first.
 */
export async function startWorker(options: StartWorkerOptions): Promise<WorkerInfo> {
  const config = testbed(options.stateDir);
  const name = options.name ?? defaultWorkerName;
  const log = options.log ?? (() => {});
  checkWorkerName(name);
  checkNodePrerequisites();
  checkMetaNode(config, (reason) => new WorkerSetupError(reason));
  const p = workerPaths(config.stateDir, config.runDir, name);
  const existing = readState(p);
  if (existing) {
    if (existing.processes.length === 2 && existing.processes.every(isRunning)) {
      if (existing.namespace === options.namespace && existing.cluster === options.cluster) {
        log(`worker ${name} is already joined to ${existing.namespace}/${existing.cluster}`);
        return info(config, existing);
      }
      throw new WorkerSetupError(
        `worker ${name} is joined to ${existing.namespace}/${existing.cluster}; run scripts/meta-cluster worker leave --name ${name} first, or choose another --name`,
      );
    }
    log(`removing what is left of worker ${name}`);
    await stopWorker({ stateDir: config.stateDir, name, log });
  }

  const data = await readJoinSecret(config, options.namespace, options.cluster, options.secretTimeoutMs ?? 60_000);
  const index = freeIndex(config);
  const net = workerNetwork(name, index, data.podCIDR, clusterServiceCIDR(config, options.namespace, options.cluster));
  mkdirSync(join(config.stateDir, 'workers'), { recursive: true });
  const state: WorkerState = {
    name,
    index,
    namespace: options.namespace,
    cluster: options.cluster,
    network: net,
    processes: [],
  };
  writeState(p, state);
  const record = (r: ProcessRecord) => {
    state.processes.push(r);
    writeState(p, state);
  };

  log(`setting up ${name}: namespace ${net.netns}, address ${net.workerIP}, pods ${net.podSubnet}`);
  writeWorkerFiles(name, p, net, data);
  setupWorkerNetwork(name, net, peersOf(config, state));
  createCgroups(workerCgroup(name));
  // inside the worker's network namespace, and only that one: `ip netns exec` would also remount
  // /sys, hiding the host's cgroup hierarchies from the kubelet
  const enter = [`--net=${netnsPath(net.netns)}`, '--'];

  log(`starting ${name}'s containerd`);
  const containerd = startProcess(
    `${name} containerd`,
    'nsenter',
    [...enter, '/usr/bin/containerd', '--config', p.containerdConfig, '--log-level', 'warn'],
    join(p.logs, 'containerd.log'),
  );
  record(containerd);
  await waitFor(
    containerd,
    'serving',
    () => Promise.resolve(succeeds('ctr', ['--address', p.containerdSocket, 'version'])),
    30_000,
  );

  log(`importing images into ${name}`);
  importImages(
    p.containerdSocket,
    (await buildImages(log, { conformance: options.conformanceImages === true })).filter(
      (i) => isWorkerImage(i.ref) || (options.conformanceImages === true && isConformanceImage(i.ref)),
    ),
  );

  log(`starting ${name}'s kubelet`);
  const kubelet = startProcess(
    `${name} kubelet`,
    'nsenter',
    [...enter, join(config.binDirs.kubernetes, 'kubelet'), ...workerKubeletArgs(name, p, net)],
    join(p.logs, 'kubelet.log'),
  );
  record(kubelet);
  const readyTimeoutMs = options.readyTimeoutMs ?? 180_000;
  if (readyTimeoutMs > 0) {
    await waitFor(
      kubelet,
      'bootstrapped (a client certificate for its bootstrap token)',
      () => Promise.resolve(existsSync(p.kubeconfig)),
      readyTimeoutMs,
    );
    const kubectl = join(config.binDirs.kubernetes, 'kubectl');
    await waitFor(
      kubelet,
      'Ready as a node',
      () => {
        const ready = execFileSync(
          kubectl,
          [
            '--kubeconfig',
            p.kubeconfig,
            '--request-timeout=5s',
            'get',
            'node',
            name,
            '-o',
            'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
          ],
          { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
        );
        return Promise.resolve(ready === 'True');
      },
      readyTimeoutMs,
    );
  }
  log(`worker ${name} joined ${options.namespace}/${options.cluster}`);
  return info(config, state);
}

/**
 * Removes a worker and every trace of it; a no-op for one that does not exist. Works from its
 * state file, or by name alone when a crash lost it. The Node object stays in the business
 * cluster (NotReady), as when a machine is switched off.
 */
export async function stopWorker(options: StopWorkerOptions = {}): Promise<void> {
  const config = testbed(options.stateDir);
  const name = options.name ?? defaultWorkerName;
  const log = options.log ?? (() => {});
  checkWorkerName(name);
  const p = workerPaths(config.stateDir, config.runDir, name);
  const state = readState(p);
  const netns = state?.network.netns ?? `kok-${name}`;
  const byName = (component: string) => state?.processes.find((r) => r.name === `${name} ${component}`);

  const kubelet = byName('kubelet');
  if (kubelet && isRunning(kubelet)) {
    log(`stopping ${name}'s kubelet (pid ${kubelet.pid})`);
    await stopProcess(kubelet);
  }
  const containerd = byName('containerd');
  if (containerd && isRunning(containerd)) {
    for (const task of containerdTasks(p.containerdSocket)) {
      spawnSync('ctr', ['--address', p.containerdSocket, '-n', 'k8s.io', 'tasks', 'kill', '-s', 'SIGKILL', task], {
        stdio: 'ignore',
      });
    }
    await sleep(500);
    for (const task of containerdTasks(p.containerdSocket))
      spawnSync('ctr', ['--address', p.containerdSocket, '-n', 'k8s.io', 'tasks', 'delete', '-f', task], {
        stdio: 'ignore',
      });
    log(`stopping ${name}'s containerd (pid ${containerd.pid})`);
    await stopProcess(containerd);
  }
  // shims, and whatever a crash left running
  await killWorkerProcesses(name, netns, log);
  // container root file systems, pods' volumes and network namespaces
  for (const dir of [p.root, p.run]) {
    for (const mount of mountsUnder(dir)) {
      if (!succeeds('umount', [mount])) succeeds('umount', ['-l', mount]);
    }
  }
  if (existsSync(netnsPath(netns))) log(`removing network namespace ${netns}`);
  removeLinkedNetns(netns, state?.network.hostVeth);
  removeTaggedRules((comment) => ownsComment(comment, name));
  await removeCgroups(
    workerCgroup(name),
    (left) => new WorkerSetupError(`cgroups of worker ${name} could not be removed: ${left.join(' ')}`),
  );
  removeContainerLogLinks(p);
  rmSync(p.run, { recursive: true, force: true });
  rmSync(p.root, { recursive: true, force: true });
  rmSync(p.stateFile, { force: true });
  if (state) log(`worker ${name} removed`);
}

/** Removes every worker of the meta-cluster at `config.stateDir` (scripts/meta-cluster down). */
export async function stopAllWorkers(config: TestbedConfig, log: Log = () => {}): Promise<void> {
  for (const name of listWorkers(config.stateDir)) await stopWorker({ stateDir: config.stateDir, name, log });
}
