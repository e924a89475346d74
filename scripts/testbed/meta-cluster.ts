// The tier-1 local meta-cluster: up, down and status, used by scripts/meta-cluster and by the
// integration tests' globalSetup.
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { componentCommands, type ComponentCommand } from './components.ts';
import { loadConfig, repoRoot, statePaths, type TestbedConfig } from './config.ts';
import { checkNodePrerequisites, refreshNodeImages, setupNodeNetwork, startNode, stopNode } from './node.ts';
import { writeTestbedPki } from './pki.ts';
import { get, waitFor } from './probes.ts';
import { isRunning, readRecords, startProcess, stopProcess, writeRecords, type ProcessRecord } from './processes.ts';
import { removeAllMachines } from './machine.ts';
import { stopAllWorkers } from './worker.ts';

/** A failure the user can act on; the CLI prints its message as one line. */
export class TestbedError extends Error {}

export interface UpResult {
  kubeconfig: string;
  /** False when a running meta-cluster was found and reused. */
  started: boolean;
  logDir: string;
}

type Log = (line: string) => void;

/** False only when something listens there; an address not yet configured counts as free. */
function portFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code !== 'EADDRINUSE'));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

async function checkPrerequisites(config: TestbedConfig, commands: ComponentCommand[]): Promise<void> {
  for (const c of commands) {
    try {
      accessSync(c.binary, constants.X_OK);
    } catch {
      throw new TestbedError(`${c.name} binary not found at ${c.binary}; build it with scripts/build-binaries.sh`);
    }
  }
  for (const c of commands) {
    for (const port of c.ports) {
      const address = c.name === 'kube-apiserver' ? config.apiserverAddress : config.bindAddress;
      if (!(await portFree(port, address))) {
        throw new TestbedError(
          `port ${port} on ${address}, needed by ${c.name}, is already in use; free it or choose another port (see scripts/testbed/config.ts)`,
        );
      }
    }
  }
}

async function apiserverReady(config: TestbedConfig): Promise<boolean> {
  const pki = statePaths(config.stateDir).pki;
  // the admin's key lives only in its kubeconfig; probing with the apiserver-kubelet-client
  // certificate (group system:masters) needs no copy of it
  const tls = {
    ca: join(pki, 'ca.crt'),
    cert: join(pki, 'apiserver-kubelet-client.crt'),
    key: join(pki, 'apiserver-kubelet-client.key'),
  };
  const res = await get(`https://${config.apiserverAddress}:${config.ports.apiserver}/readyz`, tls);
  return res.status === 200 && res.body.trim() === 'ok';
}

/** Readiness check of each component, in the terms of its own health endpoint. */
function readinessProbe(config: TestbedConfig, name: ComponentCommand['name']): () => Promise<boolean> {
  const host = config.bindAddress;
  switch (name) {
    case 'etcd':
      return async () =>
        (await get(`http://${host}:${config.ports.etcdClient}/health`)).body.includes('"health":"true"');
    case 'kube-apiserver':
      return () => apiserverReady(config);
    case 'kube-controller-manager':
      return async () => (await get(`https://${host}:${config.ports.controllerManager}/healthz`)).status === 200;
    case 'kube-scheduler':
      return async () => (await get(`https://${host}:${config.ports.scheduler}/healthz`)).status === 200;
  }
}

export function currentRecords(config: TestbedConfig): ProcessRecord[] {
  return readRecords(statePaths(config.stateDir).processes);
}

interface Manifest {
  withNode: boolean;
  components: string[];
}

function readManifest(config: TestbedConfig): Manifest | undefined {
  const file = statePaths(config.stateDir).manifest;
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as Manifest) : undefined;
}

const nodeComponents = ['containerd', 'kubelet', 'kube-proxy'];

/** `config` adjusted to the tier that is actually running, as its manifest records it. */
export function runningConfig(config: TestbedConfig): TestbedConfig {
  const withNode = readManifest(config)?.withNode ?? config.withNode;
  return { ...config, withNode, apiserverAddress: withNode ? config.node.ip : config.bindAddress };
}

/** Versions of the add-on images, as the build pins them. */
function addonVersions(): { coredns: string; localPathProvisioner: string } {
  const v = (group: string) =>
    execFileSync(join(repoRoot, 'scripts/build-binaries.sh'), ['--print-version', group], { encoding: 'utf8' }).trim();
  return { coredns: v('coredns'), localPathProvisioner: v('local-path-provisioner') };
}

export async function up(log: Log = () => {}, config: TestbedConfig = loadConfig()): Promise<UpResult> {
  const paths = statePaths(config.stateDir);
  const commands = componentCommands(config);
  const existing = currentRecords(config);
  const manifest = readManifest(config);
  const result = { kubeconfig: paths.adminKubeconfig, logDir: paths.logs };
  if (
    manifest &&
    existing.length === manifest.components.length &&
    existing.every(isRunning) &&
    (await apiserverReady(runningConfig(config)).catch(() => false))
  ) {
    if (config.withNode && !manifest.withNode) {
      throw new TestbedError(
        'the meta-cluster is up without a node; run scripts/meta-cluster down, then up --with-node',
      );
    }
    // a meta-cluster with a node serves everything one without a node does
    log(`meta-cluster is already up${manifest.withNode ? ' with a node' : ''} (state in ${config.stateDir})`);
    // the project's own image follows the sources
    if (manifest.withNode) await refreshNodeImages(runningConfig(config), log);
    return { ...result, started: false };
  }
  if (existsSync(config.stateDir)) {
    log('cleaning up a meta-cluster that is only partly running');
    await down(() => {}, config);
  }
  if (config.withNode) checkNodePrerequisites();
  await checkPrerequisites(config, commands);

  const started = Date.now();
  mkdirSync(paths.logs, { recursive: true });
  const components = [...commands.map((c) => c.name), ...(config.withNode ? nodeComponents : [])];
  writeFileSync(paths.manifest, JSON.stringify({ withNode: config.withNode, components } satisfies Manifest));
  log('issuing certificates');
  await writeTestbedPki(config);
  const records: ProcessRecord[] = [];
  // recorded before anything waits on it, so `down` can stop it even if waiting fails
  const record = (r: ProcessRecord) => {
    records.push(r);
    writeRecords(paths.processes, records);
  };
  if (config.withNode) setupNodeNetwork(config);
  for (const c of commands) {
    log(`starting ${c.name}`);
    const r = startProcess(c.name, c.binary, c.args, join(paths.logs, `${c.name}.log`));
    record(r);
    await waitFor(r, 'ready', readinessProbe(config, c.name), 90_000);
  }
  if (config.withNode) await startNode(config, log, record, addonVersions());
  log(`meta-cluster is up${config.withNode ? ' with a node' : ''} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { ...result, started: true };
}

export async function down(log: Log = () => {}, config: TestbedConfig = loadConfig()): Promise<void> {
  const records = currentRecords(config);
  const running = runningConfig(config);
  // workers first: they live below the node's run folder and reach the apiservers through its kube-proxy
  await stopAllWorkers(running, log);
  await removeAllMachines(running, log);
  if (running.withNode) await stopNode(running, records, log);
  // reverse start order: clients before the apiserver, the apiserver before etcd
  for (const record of [...records].reverse()) {
    if (isRunning(record)) log(`stopping ${record.name} (pid ${record.pid})`);
    await stopProcess(record);
  }
  rmSync(config.stateDir, { recursive: true, force: true });
}

export interface ComponentStatus {
  name: string;
  pid: number;
  running: boolean;
}

export async function status(
  requested: TestbedConfig = loadConfig(),
): Promise<{ components: ComponentStatus[]; apiserverReady: boolean }> {
  const config = runningConfig(requested);
  const components = currentRecords(config).map((r) => ({ name: r.name, pid: r.pid, running: isRunning(r) }));
  const ready = components.length > 0 && (await apiserverReady(config).catch(() => false));
  return { components, apiserverReady: ready };
}

/** The last `lines` lines of each component's log, for failure reports. */
export function logTails(logDir: string, names: string[], lines = 40): string {
  return names
    .map((name) => {
      const file = join(logDir, `${name}.log`);
      if (!existsSync(file)) return `--- ${name}: no log\n`;
      const tail = readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
      return `--- ${name} (${file}), last ${lines} lines:\n${tail}\n`;
    })
    .join('\n');
}
