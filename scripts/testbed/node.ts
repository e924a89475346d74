// The tier-2 node: a pod bridge, containerd with runc, the pre-built images, kubelet, kube-proxy,
// and the add-ons (CoreDNS, PV provisioner). `stopNode` undoes all of it: pods, shims, mounts,
// network namespaces, iptables rules and the bridge.
import { execFileSync, spawnSync } from 'node:child_process';
import {
  accessSync,
  constants,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildImages, importImages } from '../images/build.ts';
import { addonObjects } from './addons.ts';
import type { TestbedConfig } from './config.ts';
import { statePaths } from './config.ts';
import { cniConfig, containerdConfig, kubeletConfig, kubeProxyConfig, nodePaths } from './node-config.ts';
import { writeNodePki } from './pki.ts';
import { get, waitFor } from './probes.ts';
import { startProcess, stopProcess, type ProcessRecord } from './processes.ts';

export class NodeSetupError extends Error {}

type Log = (line: string) => void;

const netnsDir = '/run/netns';

function run(command: string, args: string[], input?: string): string {
  return execFileSync(command, args, { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

function tryRun(command: string, args: string[]): void {
  spawnSync(command, args, { stdio: 'ignore' });
}

/** What the node needs from the machine; each miss is a one-line error naming the fix. */
/** What the first of `tools` ([program, the Debian package that has it]) not there is missing, in a sentence. */
export function missingTool(tools: readonly (readonly [path: string, pkg: string])[]): string | undefined {
  for (const [path, pkg] of tools) {
    try {
      accessSync(path, constants.X_OK);
    } catch {
      return `${path} is missing: install the Debian package ${pkg} (scripts/install-prerequisites.sh does)`;
    }
  }
  return undefined;
}

export function checkNodePrerequisites(): void {
  if (process.getuid?.() !== 0)
    throw new NodeSetupError('the node needs root (containerd, kubelet and network namespaces)');
  const tools: [string, string][] = [
    ['/usr/bin/containerd', 'containerd'],
    ['/usr/sbin/runc', 'runc'],
    ['/usr/bin/ctr', 'containerd'],
    ['/usr/lib/cni/bridge', 'containernetworking-plugins'],
    ['/usr/sbin/iptables', 'iptables'],
    ['/bin/busybox', 'busybox-static'],
    ['/usr/sbin/conntrack', 'conntrack'],
  ];
  const missing = missingTool(tools);
  if (missing) throw new NodeSetupError(missing);
  if (!existsSync('/sys/fs/cgroup/cpu') && !existsSync('/sys/fs/cgroup/cgroup.controllers')) {
    throw new NodeSetupError('no cgroup hierarchy is mounted at /sys/fs/cgroup');
  }
}

interface NodeState {
  /** ip_forward before `up`, restored by `down`. */
  ipForward: string;
  /** Network namespaces that existed before the node, never touched by `down`. */
  netnsBefore: string[];
  /** KUBE-* iptables chains that existed before the node ("iptables:table:chain"), kept by `down`. */
  chainsBefore: string[];
}

const iptablesTables = ['filter', 'nat', 'mangle'];

/** The kubelet's and kube-proxy's chains, as "command:table:chain". */
function kubeChains(): string[] {
  const chains: string[] = [];
  for (const command of ['iptables', 'ip6tables']) {
    for (const table of iptablesTables) {
      const out = spawnSync(command, ['-t', table, '-S'], { encoding: 'utf8' });
      for (const m of (out.stdout ?? '').matchAll(/^-N (KUBE-\S+)$/gm)) chains.push(`${command}:${table}:${m[1]}`);
    }
  }
  return chains;
}

/** Removes the KUBE-* chains made since `before` (kube-proxy --cleanup leaves the kubelet's). */
function removeKubeChains(before: string[]): void {
  const made = kubeChains().filter((c) => !before.includes(c));
  for (const entry of made) {
    const [command, table, chain] = entry.split(':') as [string, string, string];
    // drop the jumps into the chain from the built-in chains first, then flush and delete it
    const rules = spawnSync(command, ['-t', table, '-S'], { encoding: 'utf8' }).stdout ?? '';
    for (const rule of rules.split('\n').filter((r) => r.startsWith('-A ') && r.endsWith(`-j ${chain}`))) {
      tryRun(command, ['-t', table, '-D', ...rule.slice(3).split(' ')]);
    }
    tryRun(command, ['-t', table, '-F', chain]);
  }
  for (const entry of made) {
    const [command, table, chain] = entry.split(':') as [string, string, string];
    tryRun(command, ['-t', table, '-X', chain]);
  }
}

function nodeStateFile(config: TestbedConfig): string {
  return join(config.stateDir, 'node.json');
}

function listNetns(): string[] {
  return existsSync(netnsDir) ? readdirSync(netnsDir) : [];
}

export function setupNodeNetwork(config: TestbedConfig): void {
  const state: NodeState = {
    ipForward: readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(),
    netnsBefore: listNetns(),
    chainsBefore: kubeChains(),
  };
  writeFileSync(nodeStateFile(config), JSON.stringify(state));
  const { bridge, ip, podSubnet } = config.node;
  const prefix = podSubnet.split('/')[1];
  // the bridge exists before any pod, so the apiserver can listen on the node address at once
  if (spawnSync('ip', ['link', 'show', bridge], { stdio: 'ignore' }).status !== 0)
    run('ip', ['link', 'add', bridge, 'type', 'bridge']);
  tryRun('ip', ['addr', 'add', `${ip}/${prefix}`, 'dev', bridge]);
  run('ip', ['link', 'set', bridge, 'up']);
  // Service traffic is DNATed on the node and routed back onto the bridge
  writeFileSync('/proc/sys/net/ipv4/ip_forward', '1');
}

function teardownNetwork(config: TestbedConfig): void {
  const file = nodeStateFile(config);
  const state = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as NodeState) : undefined;
  // network namespaces the pods' sandboxes left behind (normally none: the kubelet removes them)
  for (const ns of listNetns()) {
    if (state && !state.netnsBefore.includes(ns) && ns.startsWith('cni-')) {
      tryRun('umount', [join(netnsDir, ns)]);
      rmSync(join(netnsDir, ns), { force: true });
    }
  }
  tryRun('ip', ['link', 'delete', config.node.bridge]);
  if (state) {
    removeKubeChains(state.chainsBefore);
    writeFileSync('/proc/sys/net/ipv4/ip_forward', state.ipForward);
  }
}

function writeNodeFiles(config: TestbedConfig): void {
  const p = nodePaths(config);
  for (const dir of [
    p.containerdRoot,
    p.containerdState,
    p.cniConfDir,
    p.cniDataDir,
    p.kubeletRoot,
    p.podLogs,
    p.storage,
  ]) {
    mkdirSync(dir, { recursive: true });
  }
  writeFileSync(p.containerdConfig, containerdConfig(config));
  writeFileSync(join(p.cniConfDir, '10-kubeonkube.conflist'), JSON.stringify(cniConfig(config), null, 2));
  writeFileSync(p.kubeletConfig, JSON.stringify(kubeletConfig(config), null, 2));
  writeFileSync(p.kubeProxyConfig, JSON.stringify(kubeProxyConfig(config), null, 2));
  // pods resolve only through the cluster DNS; the host's resolvers are not reachable from them
  writeFileSync(p.resolvConf, '');
}

function kubectl(config: TestbedConfig, args: string[], input?: string): string {
  return run(
    join(config.binDirs.kubernetes, 'kubectl'),
    ['--kubeconfig', statePaths(config.stateDir).adminKubeconfig, ...args],
    input,
  );
}

async function waitForRollout(
  config: TestbedConfig,
  namespace: string,
  deployment: string,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = kubectl(config, [
      '-n',
      namespace,
      'get',
      'deployment',
      deployment,
      '-o',
      'jsonpath={.status.readyReplicas}',
    ]);
    if (Number(out) >= 1) return;
    if (Date.now() > deadline) {
      const pods = kubectl(config, ['-n', namespace, 'get', 'pods', '-o', 'wide']);
      throw new NodeSetupError(`deployment ${namespace}/${deployment} not ready after ${timeoutMs / 1000} s:\n${pods}`);
    }
    await sleep(500);
  }
}

/** Starts the node; each started process is passed to `record` at once, so `down` can stop it. */
export async function startNode(
  config: TestbedConfig,
  log: Log,
  record: (r: ProcessRecord) => void,
  versions: { coredns: string; localPathProvisioner: string },
): Promise<void> {
  const p = nodePaths(config);
  const logs = statePaths(config.stateDir).logs;
  await writeNodePki(config);
  writeNodeFiles(config);

  log('starting containerd');
  const containerd = startProcess(
    'containerd',
    '/usr/bin/containerd',
    ['--config', p.containerdConfig, '--log-level', 'warn'],
    join(logs, 'containerd.log'),
  );
  record(containerd);
  await waitFor(
    containerd,
    'serving',
    () =>
      Promise.resolve(spawnSync('ctr', ['--address', p.containerdSocket, 'version'], { stdio: 'ignore' }).status === 0),
    30_000,
  );

  log('importing images');
  importImages(p.containerdSocket, await buildImages(log));

  log('starting kubelet');
  const kubelet = startProcess(
    'kubelet',
    join(config.binDirs.kubernetes, 'kubelet'),
    [
      `--config=${p.kubeletConfig}`,
      `--kubeconfig=${statePaths(config.stateDir).kubeconfig('kubelet')}`,
      `--root-dir=${p.kubeletRoot}`,
      `--node-ip=${config.node.ip}`,
      `--hostname-override=${config.node.name}`,
    ],
    join(logs, 'kubelet.log'),
  );
  record(kubelet);
  await waitFor(kubelet, 'healthy', async () => (await get('http://127.0.0.1:10248/healthz')).body === 'ok', 60_000);

  log('starting kube-proxy');
  const proxy = startProcess(
    'kube-proxy',
    join(config.binDirs.kubernetes, 'kube-proxy'),
    [`--config=${p.kubeProxyConfig}`],
    join(logs, 'kube-proxy.log'),
  );
  record(proxy);
  await waitFor(proxy, 'healthy', async () => (await get('http://127.0.0.1:10256/healthz')).status === 200, 60_000);

  await waitFor(
    kubelet,
    'Ready as a node',
    () => {
      const ready = kubectl(config, [
        'get',
        'node',
        config.node.name,
        '-o',
        'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
      ]);
      return Promise.resolve(ready === 'True');
    },
    90_000,
  );

  log('installing CoreDNS and the local-path provisioner');
  kubectl(
    config,
    ['apply', '--server-side', '--field-manager=kubeonkube-testbed', '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: addonObjects(config, versions) }),
  );
  await waitForRollout(config, 'kube-system', 'coredns', 120_000);
  await waitForRollout(config, 'local-path-storage', 'local-path-provisioner', 120_000);
}

/** On a running node: rebuilds the images whose inputs changed and imports just those. */
export async function refreshNodeImages(config: TestbedConfig, log: Log): Promise<void> {
  const changed = (await buildImages(log)).filter((i) => i.rebuilt);
  if (changed.length > 0) importImages(nodePaths(config).containerdSocket, changed);
}

/** Mount points at or below `dir`, deepest first. */
export function mountsUnder(dir: string): string[] {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((m): m is string => m !== undefined && (m === dir || m.startsWith(dir + '/')))
    .map((m) => m.replace(/\\040/g, ' '));
  return [...new Set(mounts)].sort((a, b) => b.length - a.length);
}

export function containerdTasks(socket: string): string[] {
  const out = spawnSync('ctr', ['--address', socket, '-n', 'k8s.io', 'tasks', 'ls', '-q'], { encoding: 'utf8' });
  return out.status === 0 ? out.stdout.split('\n').filter(Boolean) : [];
}

/**
 * Stops the node and removes every trace of it. Pods are deleted through the API first, so the
 * kubelet tears them down the normal way (CNI, volumes); what is left is then removed by force.
 */
export async function stopNode(config: TestbedConfig, records: ProcessRecord[], log: Log): Promise<void> {
  const p = nodePaths(config);
  const byName = (name: string) => records.find((r) => r.name === name);
  const kubelet = byName('kubelet');
  const apiUp = records.some((r) => r.name === 'kube-apiserver');
  if (kubelet && apiUp) {
    log('deleting pods');
    // the controllers would recreate them: stop those first
    for (const name of ['kube-controller-manager', 'kube-scheduler']) {
      const r = byName(name);
      if (r) await stopProcess(r);
    }
    spawnSync(
      join(config.binDirs.kubernetes, 'kubectl'),
      [
        '--kubeconfig',
        statePaths(config.stateDir).adminKubeconfig,
        'delete',
        'pods',
        '--all',
        '--all-namespaces',
        '--grace-period=0',
        '--force',
        '--wait=false',
        '--request-timeout=10s',
      ],
      { stdio: 'ignore' },
    );
    const deadline = Date.now() + 30_000;
    while (containerdTasks(p.containerdSocket).length > 0 && Date.now() < deadline) await sleep(500);
  }
  for (const name of ['kube-proxy', 'kubelet']) {
    const r = byName(name);
    if (r) {
      log(`stopping ${name} (pid ${r.pid})`);
      await stopProcess(r);
    }
  }
  // kube-proxy's own clean-up removes the iptables chains it made
  if (byName('kube-proxy'))
    tryRun(join(config.binDirs.kubernetes, 'kube-proxy'), ['--cleanup', `--config=${p.kubeProxyConfig}`]);
  const containerd = byName('containerd');
  if (containerd) {
    for (const task of containerdTasks(p.containerdSocket)) {
      tryRun('ctr', ['--address', p.containerdSocket, '-n', 'k8s.io', 'tasks', 'kill', '-s', 'SIGKILL', task]);
    }
    await sleep(500);
    for (const task of containerdTasks(p.containerdSocket))
      tryRun('ctr', ['--address', p.containerdSocket, '-n', 'k8s.io', 'tasks', 'delete', '-f', task]);
    log(`stopping containerd (pid ${containerd.pid})`);
    await stopProcess(containerd);
  }
  for (const dir of [config.stateDir, config.runDir]) {
    for (const mount of mountsUnder(dir)) {
      if (spawnSync('umount', [mount], { stdio: 'ignore' }).status !== 0) tryRun('umount', ['-l', mount]);
    }
  }
  teardownNetwork(config);
  rmSync(config.runDir, { recursive: true, force: true });
}
