// A bare host on this machine, for the Node-Operator to turn into a node: its own network (reached
// from the meta-cluster on port 22 only), mount, UTS and PID namespaces, runit's supervisor as PID
// 1, sshd, and nothing of Kubernetes. Its root file system is the host's read through an overlay:
// what it writes lands on its own disk, never on the host. `removeMachine` leaves no trace;
// `powerOffMachine` is pulling the plug, `powerOnMachine` boots it again from its disk.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { hostsTestbed, readRecord, recordedNames, writeRecord } from './host-records.ts';
import { repoRoot, type TestbedConfig } from './config.ts';
import { cgroupPids, createCgroups, removeCgroups } from './host-cgroups.ts';
import {
  createLinkedNetns,
  insertRules,
  netnsPath,
  removeLinkedNetns,
  removeTaggedRules,
  run,
} from './host-network.ts';
import {
  bootScript,
  checkIdc,
  checkMachineName,
  defaultIdc,
  firstBootScript,
  idcPeersFirewall,
  machineCgroup,
  machineFirewall,
  machineKeySecretName,
  machineNetwork,
  machinePaths,
  MachineSetupError,
  maxMachines,
  ownsMachineComment,
  type MachineNetwork,
  type MachinePaths,
} from './machine-config.ts';
import { checkMetaNode, metaKubectl } from './meta-access.ts';
import { ensurePackageRepository, repositoryURL } from './package-repository.ts';
import { missingTool } from './node.ts';
import { isRunning, startProcess, type ProcessRecord } from './processes.ts';

export { MachineSetupError };

type Log = (line: string) => void;

/** What `removeMachine` needs after a crash: written before anything is created. */
interface MachineState {
  name: string;
  index: number;
  /** The meta-cluster namespace of its key's Secret (where its Machine goes). */
  namespace: string;
  network: MachineNetwork;
  /** `unshare`, whose child is the machine's PID 1; absent while powered off. */
  boot?: ProcessRecord;
}

export interface MachineInfo {
  name: string;
  address: string;
  idc: string;
  /** Its SSH host key as a known_hosts line would carry it: `ssh-ed25519 AAAA...`. */
  hostKey: string;
  /** The Secret (in `namespace`) with the private key that may log in as root. */
  keySecret: { namespace: string; name: string };
  poweredOn: boolean;
  console: string;
  /** Where the machine fetches its node software. */
  packageRepository: string;
}

export interface AddMachineOptions {
  stateDir?: string;
  name: string;
  idc?: string;
  /** Where the key's Secret goes: the namespace of the Cluster the machine will join. */
  namespace?: string;
  log?: Log;
}

const testbed = hostsTestbed;

const readState = (p: MachinePaths) => readRecord<MachineState>(p.stateFile);
const writeState = (p: MachinePaths, state: MachineState) => writeRecord(p.stateFile, state);

/** The machines this meta-cluster has a record of, by name. */
export const listMachines = (stateDir: string): string[] => recordedNames(join(stateDir, 'machines'));

function states(config: TestbedConfig): MachineState[] {
  return listMachines(config.stateDir)
    .map((n) => readState(machinePaths(config.stateDir, n)))
    .filter((s): s is MachineState => s !== undefined);
}

function freeIndex(config: TestbedConfig): number {
  const taken = new Set(states(config).map((s) => s.index));
  for (let i = 0; i < maxMachines; i++) if (!taken.has(i)) return i;
  throw new MachineSetupError(`all ${maxMachines} machine numbers are taken; remove one with machine remove`);
}

/** PID 1 of the machine: the child of the `unshare` recorded at boot (nsenter's pid: it execs unshare). */
function initPid(state: MachineState): number | undefined {
  if (!state.boot || !isRunning(state.boot)) return undefined;
  try {
    const children = readFileSync(`/proc/${state.boot.pid}/task/${state.boot.pid}/children`, 'utf8').trim();
    return children ? Number(children.split(' ')[0]) : undefined;
  } catch {
    return undefined;
  }
}

function machineInfo(config: TestbedConfig, state: MachineState): MachineInfo {
  const p = machinePaths(config.stateDir, state.name);
  const [type = '', key = ''] = readFileSync(`${p.hostKey}.pub`, 'utf8').trim().split(' ');
  return {
    name: state.name,
    address: state.network.address,
    idc: state.network.idc,
    hostKey: `${type} ${key}`,
    keySecret: { namespace: state.namespace, name: machineKeySecretName(state.name) },
    poweredOn: initPid(state) !== undefined,
    console: p.console,
    packageRepository: repositoryURL,
  };
}

export function describeMachine(stateDir: string | undefined, name: string): MachineInfo | undefined {
  const config = testbed(stateDir);
  const state = readState(machinePaths(config.stateDir, name));
  return state && machineInfo(config, state);
}

/** Folders of this host a machine must not see: the test bed's, the project's, the binary cache. */
function hiddenFolders(config: TestbedConfig): string[] {
  const cache = process.env.KUBEONKUBE_CACHE ?? join(homedir(), '.cache/kubeonkube');
  return [...new Set([config.stateDir, repoRoot, cache, config.runDir])];
}

/** Resolves once something answers an SSH banner at `address`:22, or throws after `timeoutMs`. */
async function waitForSsh(address: string, timeoutMs: number, console: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const banner = await new Promise<string>((done) => {
      const socket = connect({ host: address, port: 22, timeout: 2000 });
      socket.once('data', (d) => {
        done(d.toString('latin1'));
        socket.destroy();
      });
      socket.once('error', () => done(''));
      socket.once('timeout', () => {
        done('');
        socket.destroy();
      });
    });
    if (banner.startsWith('SSH-2.0-')) return;
    if (Date.now() > deadline)
      throw new MachineSetupError(`sshd on ${address} did not answer within ${timeoutMs / 1000} s; see ${console}`);
    await sleep(200);
  }
}

function boot(config: TestbedConfig, state: MachineState): ProcessRecord {
  const p = machinePaths(config.stateDir, state.name);
  mkdirSync(join(p.console, '..'), { recursive: true });
  writeFileSync(p.bootScript, bootScript(state.name, p, hiddenFolders(config)), { mode: 0o755 });
  // its processes below a cgroup of its own, as a worker's pods are, so none outlives removal
  createCgroups(machineCgroup(state.name));
  return startProcess(
    `machine ${state.name}`,
    'nsenter',
    [
      // into its network namespace (unshare's --net=FILE would make a new one over the file)
      `--net=${netnsPath(state.network.netns)}`,
      '--',
      'unshare',
      '--mount',
      '--uts',
      '--pid',
      '--fork',
      '--propagation',
      'private',
      'sh',
      '-c',
      // PID 1 joins the machine's cgroup (0: the writer itself) before anything of the machine starts
      `for h in $(awk '$3 == "cgroup" || $3 == "cgroup2" { print $2 }' /proc/self/mounts); do ` +
        `echo 0 > "$h/$1/cgroup.procs"; done; exec sh "$0"`,
      p.bootScript,
      machineCgroup(state.name),
    ],
    p.console,
  );
}

/** A machine is the host's root with runit as PID 1 supervising Debian's sshd: both must be there. */
function checkMachinePrerequisites(): void {
  const missing = missingTool([
    ['/usr/bin/runsvdir', 'runit'],
    ['/usr/bin/sv', 'runit'],
    ['/usr/sbin/sshd', 'openssh-server'],
    ['/etc/sv/ssh/run', 'openssh-server'],
    ['/usr/bin/ssh-keygen', 'openssh-client'],
  ]);
  if (missing) throw new MachineSetupError(missing);
}

/**
 * Makes a machine and boots it, then writes the Secret with the key that may log in. Idempotent:
 * a machine that exists is left as it is (and powered on if it was off).
 */
export async function addMachine(options: AddMachineOptions): Promise<MachineInfo> {
  const config = testbed(options.stateDir);
  const log = options.log ?? (() => {});
  const { name } = options;
  const idc = options.idc ?? defaultIdc;
  const namespace = options.namespace ?? 'default';
  checkMachineName(name);
  checkIdc(idc);
  checkMetaNode(config, (reason) => new MachineSetupError(reason));
  checkMachinePrerequisites();
  const p = machinePaths(config.stateDir, name);
  const existing = readState(p);
  if (existing) {
    if (existing.network.idc !== idc || existing.namespace !== namespace)
      throw new MachineSetupError(
        `machine ${name} exists in data centre ${existing.network.idc} with its key in namespace ${existing.namespace}; remove it first`,
      );
    if (initPid(existing) === undefined) await powerOnMachine({ stateDir: config.stateDir, name, log });
    return machineInfo(config, readState(p)!);
  }

  await ensurePackageRepository(config, log);
  const index = freeIndex(config);
  const net = machineNetwork(name, index, idc);
  mkdirSync(join(config.stateDir, 'machines'), { recursive: true });
  const state: MachineState = { name, index, namespace, network: net };
  writeState(p, state);
  log(`making machine ${name}: address ${net.address}, data centre ${idc}`);
  for (const dir of [p.upper, p.work, p.rootfs, p.operatorStateDir, p.kubeletDir]) mkdirSync(dir, { recursive: true });
  for (const key of [p.hostKey, p.clientKey])
    run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `kubeonkube machine ${name}`, '-f', key]);
  // its identity, on its disk: prepared through the overlay in a mount namespace of its own
  run('unshare', [
    '--mount',
    '--propagation',
    'private',
    'sh',
    '-c',
    `mount -t overlay overlay -o lowerdir=/,upperdir="$1",workdir="$2" "$3" && sh -c "$4" sh "$3"`,
    'sh',
    p.upper,
    p.work,
    p.rootfs,
    firstBootScript(name, p.hostKey, readFileSync(`${p.clientKey}.pub`, 'utf8').trim()),
  ]);

  createLinkedNetns({
    netns: net.netns,
    hostVeth: net.hostVeth,
    innerVeth: 'eth0',
    hostIP: net.hostIP,
    innerIP: net.address,
    prefix: net.prefix,
  });
  const peers = states(config).filter((s) => s.name !== name && s.network.idc === idc);
  insertRules([
    ...machineFirewall(name, net, config.node.bridge),
    ...peers.flatMap((peer) => idcPeersFirewall({ name, net }, { name: peer.name, net: peer.network })),
  ]);

  log(`booting ${name}`);
  state.boot = boot(config, state);
  writeState(p, state);
  await waitForSsh(net.address, 30_000, p.console);

  writeKeySecret(config, name, namespace, p);
  log(`machine ${name} is up at ${net.address}; its key is Secret ${namespace}/${machineKeySecretName(name)}`);
  return machineInfo(config, state);
}

function writeKeySecret(config: TestbedConfig, name: string, namespace: string, p: MachinePaths): void {
  const secret = {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/ssh-auth',
    metadata: { name: machineKeySecretName(name), namespace, labels: { 'kubeonkube.io/test-bed-machine': name } },
    data: { 'ssh-privatekey': readFileSync(p.clientKey).toString('base64') },
  };
  const out = metaKubectl(config)(['apply', '-f', '-'], JSON.stringify(secret));
  if (out.status !== 0)
    throw new MachineSetupError(
      `could not write Secret ${namespace}/${machineKeySecretName(name)}: ${out.stderr.trim()}`,
    );
}

/** Pulls the plug: PID 1 and with it every process of the machine ends, its link goes down. */
export async function powerOffMachine(options: { stateDir?: string; name: string; log?: Log }): Promise<void> {
  const config = testbed(options.stateDir);
  const p = machinePaths(config.stateDir, options.name);
  const state = readState(p);
  if (!state) throw new MachineSetupError(`there is no machine ${options.name}`);
  // its end of the link down first: nothing answers for its address any more (a dial fails after
  // the neighbour lookup times out, as towards a host that lost power). Not the host's end: with
  // its route gone, a dial would leave by the default route, and this machine's network answers
  // every TCP dial
  spawnSync('ip', ['-n', state.network.netns, 'link', 'set', 'eth0', 'down'], { stdio: 'ignore' });
  const pid = initPid(state);
  if (pid !== undefined) {
    options.log?.(`powering ${options.name} off`);
    process.kill(pid, 'SIGKILL');
  }
  await waitGone(state.name);
  delete state.boot;
  writeState(p, state);
}

/** Boots a powered-off machine from its disk; its services start as at every boot. */
export async function powerOnMachine(options: { stateDir?: string; name: string; log?: Log }): Promise<void> {
  const config = testbed(options.stateDir);
  const p = machinePaths(config.stateDir, options.name);
  const state = readState(p);
  if (!state) throw new MachineSetupError(`there is no machine ${options.name}`);
  if (initPid(state) !== undefined) return;
  await waitGone(state.name);
  options.log?.(`powering ${options.name} on`);
  run('ip', ['-n', state.network.netns, 'link', 'set', 'eth0', 'up']);
  run('ip', ['-n', state.network.netns, 'route', 'replace', 'default', 'via', state.network.hostIP]);
  state.boot = boot(config, state);
  writeState(p, state);
  await waitForSsh(state.network.address, 30_000, p.console);
}

/** Waits until no process of the machine is left (the kernel ends them once PID 1 is gone). */
async function waitGone(name: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (let pids = cgroupPids(machineCgroup(name)); pids.length > 0; pids = cgroupPids(machineCgroup(name))) {
    if (Date.now() > deadline)
      throw new MachineSetupError(`processes ${pids.join(' ')} of machine ${name} outlived its PID 1`);
    await sleep(100);
  }
}

/** Removes a machine and every trace of it (its Secret too); a no-op for one that does not exist. */
export async function removeMachine(options: { stateDir?: string; name: string; log?: Log }): Promise<void> {
  const config = testbed(options.stateDir);
  const { name } = options;
  checkMachineName(name);
  const p = machinePaths(config.stateDir, name);
  const state = readState(p);
  if (state) await powerOffMachine({ stateDir: config.stateDir, name, log: options.log });
  removeLinkedNetns(state?.network.netns ?? `kok-m-${name}`, state?.network.hostVeth);
  removeTaggedRules((comment) => ownsMachineComment(comment, name));
  await removeCgroups(
    machineCgroup(name),
    (left) => new MachineSetupError(`cgroups of machine ${name} could not be removed: ${left.join(' ')}`),
  );
  if (state && existsSync(join(config.stateDir, 'admin.kubeconfig')))
    metaKubectl(config)([
      '-n',
      state.namespace,
      'delete',
      'secret',
      machineKeySecretName(name),
      '--ignore-not-found',
      '--wait=false',
    ]);
  rmSync(p.root, { recursive: true, force: true });
  rmSync(p.stateFile, { force: true });
  if (state) options.log?.(`machine ${name} removed`);
}

/** Removes every machine of the meta-cluster at `config.stateDir` (scripts/meta-cluster down). */
export async function removeAllMachines(config: TestbedConfig, log: Log = () => {}): Promise<void> {
  for (const name of listMachines(config.stateDir)) await removeMachine({ stateDir: config.stateDir, name, log });
}

/** Runs `command` on the machine as root over SSH with its own key and pinned host key (tests, debugging). */
export function sshToMachine(stateDir: string | undefined, name: string, command: string): string {
  const config = testbed(stateDir);
  const p = machinePaths(config.stateDir, name);
  const state = readState(p);
  if (!state) throw new MachineSetupError(`there is no machine ${name}`);
  const knownHosts = join(p.root, 'known_hosts');
  writeFileSync(knownHosts, `${state.network.address} ${machineInfo(config, state).hostKey}\n`);
  return execFileSync(
    'ssh',
    [
      '-i',
      p.clientKey,
      '-o',
      `UserKnownHostsFile=${knownHosts}`,
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'BatchMode=yes',
      '-o',
      'ConnectTimeout=5',
      `root@${state.network.address}`,
      command,
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
}
