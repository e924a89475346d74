// The operator as the e2e tests run it: a real process outside the meta-cluster, with the admin
// kubeconfig, its log in a file that is printed when a test fails.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, inject } from 'vitest';
import { repoRoot } from '../scripts/testbed/config.ts';
import { apply, kubectl, namespaceObject, uniqueNamespace } from './kubectl.ts';

export interface OperatorProcess {
  child: ChildProcess;
  logFile: string;
  metricsUrl: string;
  /** Write requests by verb, from the operator's /metrics. */
  /** Write requests so far, by verb. */
  writes(): Promise<Record<string, number>>;
  /** Write requests so far, by verb and kind ("apply Secret"): what a steady-state check compares, to say what moved. */
  writesByKind(): Promise<Record<string, number>>;
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Resolves with the exit code once the process has exited (null: killed by a signal). */
  exited: Promise<number | null>;
  /** 1 while it holds the lease, from /metrics. */
  leader(): Promise<number>;
  /** Membership calls made to etcd, by call/result (add/ok, promote/refused, ...), from /metrics. */
  etcdCalls(): Promise<Record<string, number>>;
}

/**
 * The write counts once they have stopped moving for a few seconds. A change that was just made is
 * still being rolled out (a Deployment, the status that follows it): steady state is measured after
 * that. An operator that loops never settles, and this times out.
 */
export async function settledWrites(
  op: OperatorProcess,
  quietMs = 5000,
  timeoutMs = 120_000,
  read = () => op.writes(),
): Promise<Record<string, number>> {
  const deadline = Date.now() + timeoutMs;
  let last = JSON.stringify(await read());
  for (;;) {
    await new Promise((r) => setTimeout(r, quietMs));
    const now = await read();
    if (JSON.stringify(now) === last) return now;
    if (Date.now() > deadline)
      throw new Error(
        `the operator's writes never settled: still moving after ${timeoutMs} ms (${JSON.stringify(now)})`,
      );
    last = JSON.stringify(now);
  }
}

export function startOperator(name: string, port: number, extraEnv: Record<string, string> = {}): OperatorProcess {
  const logDir = join(inject('metaCluster').logDir, 'operator');
  mkdirSync(logDir, { recursive: true });
  const logFile = join(logDir, `${name}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [join(repoRoot, 'operator/main.ts')], {
    stdio: ['ignore', fd, fd],
    env: {
      ...process.env,
      KUBECONFIG: inject('metaCluster').kubeconfig,
      KUBEONKUBE_METRICS_ADDRESS: `127.0.0.1:${port}`,
      KUBEONKUBE_LEASE_NAMESPACE: 'default',
      KUBEONKUBE_RESYNC_SECONDS: '10',
      ...extraEnv,
    },
  });
  const metricsUrl = `http://127.0.0.1:${port}/metrics`;
  const writesByKind = async () => {
    const text = await (await fetch(metricsUrl)).text();
    const writes: Record<string, number> = {};
    for (const m of text.matchAll(/^kubeonkube_write_requests_total\{verb="([^"]+)",kind="([^"]*)"\} (\d+)$/gm))
      writes[`${m[1]} ${m[2]}`] = Number(m[3]);
    return writes;
  };
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    exited,
    leader: async () => Number(/^kubeonkube_leader (\d+)$/m.exec(await (await fetch(metricsUrl)).text())?.[1] ?? 0),
    child,
    logFile,
    metricsUrl,
    writes: async () => {
      const writes: Record<string, number> = {};
      for (const [key, value] of Object.entries(await writesByKind())) {
        const verb = key.split(' ')[0]!;
        writes[verb] = (writes[verb] ?? 0) + value;
      }
      return writes;
    },
    writesByKind,
    etcdCalls: async () => {
      const text = await (await fetch(metricsUrl)).text();
      const calls: Record<string, number> = {};
      for (const m of text.matchAll(
        /^kubeonkube_etcd_membership_calls_total\{call="([^"]+)",result="([^"]+)"\} (\d+)$/gm,
      ))
        calls[`${m[1]}/${m[2]}`] = Number(m[3]);
      return calls;
    },
    stop: (signal = 'SIGTERM') =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill(signal);
      }),
  };
}

export function operatorLogTail(op: OperatorProcess, lines = 60): string {
  return readFileSync(op.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

/** Installs the project's CRDs (idempotent) and waits until they are served. */
export async function installCrd(): Promise<void> {
  await kubectl(['apply', '--server-side', '-f', join(repoRoot, 'crds')]);
  await kubectl([
    'wait',
    '--for=condition=Established',
    'crd/clusters.kubeonkube.io',
    'crd/machines.kubeonkube.io',
    '--timeout=60s',
  ]);
}

/**
 * The set-up every operator test file shares: the CRD, a namespace of its own, and (with a port)
 * an operator process; both are removed after the file's tests.
 */
export function operatorTestBed(
  prefix: string,
  port?: number,
  env: Record<string, string> = {},
): { ns: string; current: { operator?: OperatorProcess } } {
  const ns = uniqueNamespace(prefix);
  const current: { operator?: OperatorProcess } = {};
  beforeAll(async () => {
    await installCrd();
    await apply(namespaceObject(ns));
    // an operator per test file, scoped to its namespace: the Clusters of earlier files, still
    // being torn down, are not its work (nor its writes)
    if (port !== undefined) current.operator = startOperator(ns, port, { KUBEONKUBE_WATCH_NAMESPACE: ns, ...env });
  });
  afterAll(async () => {
    await current.operator?.stop();
    await kubectl(['delete', 'namespace', ns, '--wait=false']);
  });
  return { ns, current };
}
