// The tier-1 local meta-cluster: up, down and status, used by scripts/meta-cluster and by the
// integration tests' globalSetup.
import { accessSync, constants, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { componentCommands, type ComponentCommand } from './components.ts';
import { loadConfig, statePaths, type TestbedConfig } from './config.ts';
import { writeTestbedPki } from './pki.ts';
import { get, waitFor } from './probes.ts';
import { isRunning, readRecords, startProcess, stopProcess, writeRecords, type ProcessRecord } from './processes.ts';

/** A failure the user can act on; the CLI prints its message as one line. */
export class TestbedError extends Error {}

export interface UpResult {
  kubeconfig: string;
  /** False when a running meta-cluster was found and reused. */
  started: boolean;
  logDir: string;
}

type Log = (line: string) => void;

function portFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
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
      if (!(await portFree(port, config.bindAddress))) {
        throw new TestbedError(`port ${port} on ${config.bindAddress}, needed by ${c.name}, is already in use; free it or choose another port (see scripts/testbed/config.ts)`);
      }
    }
  }
}

async function apiserverReady(config: TestbedConfig): Promise<boolean> {
  const pki = statePaths(config.stateDir).pki;
  // the admin's key lives only in its kubeconfig; probing with the apiserver-kubelet-client
  // certificate (group system:masters) needs no copy of it
  const tls = { ca: join(pki, 'ca.crt'), cert: join(pki, 'apiserver-kubelet-client.crt'), key: join(pki, 'apiserver-kubelet-client.key') };
  const res = await get(`https://${config.bindAddress}:${config.ports.apiserver}/readyz`, tls);
  return res.status === 200 && res.body.trim() === 'ok';
}

/** Readiness check of each component, in the terms of its own health endpoint. */
function readinessProbe(config: TestbedConfig, name: ComponentCommand['name']): () => Promise<boolean> {
  const host = config.bindAddress;
  switch (name) {
    case 'etcd':
      return async () => (await get(`http://${host}:${config.ports.etcdClient}/health`)).body.includes('"health":"true"');
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

export async function up(log: Log = () => {}, config: TestbedConfig = loadConfig()): Promise<UpResult> {
  const paths = statePaths(config.stateDir);
  const commands = componentCommands(config);
  const existing = currentRecords(config);
  const result = { kubeconfig: paths.adminKubeconfig, logDir: paths.logs };
  if (existing.length === commands.length && existing.every(isRunning) && (await apiserverReady(config).catch(() => false))) {
    log(`meta-cluster is already up (state in ${config.stateDir})`);
    return { ...result, started: false };
  }
  if (existsSync(config.stateDir)) {
    log('cleaning up a meta-cluster that is only partly running');
    await down(() => {}, config);
  }
  await checkPrerequisites(config, commands);

  const started = Date.now();
  mkdirSync(paths.logs, { recursive: true });
  log('issuing certificates');
  await writeTestbedPki(config);
  const records: ProcessRecord[] = [];
  for (const c of commands) {
    log(`starting ${c.name}`);
    const record = startProcess(c.name, c.binary, c.args, join(paths.logs, `${c.name}.log`));
    records.push(record);
    // recorded before waiting, so `down` can stop it even if waiting fails
    writeRecords(paths.processes, records);
    await waitFor(record, 'ready', readinessProbe(config, c.name), 90_000);
  }
  log(`meta-cluster is up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return { ...result, started: true };
}

export async function down(log: Log = () => {}, config: TestbedConfig = loadConfig()): Promise<void> {
  const records = currentRecords(config);
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

export async function status(config: TestbedConfig = loadConfig()): Promise<{ components: ComponentStatus[]; apiserverReady: boolean }> {
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
