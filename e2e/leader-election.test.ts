// Two operator replicas. The leader is frozen (SIGSTOP) for longer than its lease; the other takes
// over and repairs what was broken meanwhile; the frozen one, resumed with a stale cache and work
// in its queue, sends no write at all (its own count of sent writes, logged when it stops) and
// leaves. A replica asked to stop (SIGTERM) finishes its work and exits 0, leader or standby.
import { readFileSync } from 'node:fs';
import { afterAll, describe, expect, it, onTestFailed } from 'vitest';
import { apply, eventually, kubectl } from './kubectl.ts';
import {
  operatorLogTail,
  operatorTestBed,
  settledWrites,
  startOperator,
  type OperatorProcess,
} from './operator-process.ts';

const { ns } = operatorTestBed('e2e-leader');
const replicas: OperatorProcess[] = [];
const start = (name: string, port: number) => {
  // a lease of its own, so that no other test's operator takes part
  const op = startOperator(`${ns}-${name}`, port, { KUBEONKUBE_LEASE_NAMESPACE: ns });
  replicas.push(op);
  return op;
};
afterAll(async () => {
  for (const op of replicas) await op.stop('SIGKILL');
});
const ready = async (op: OperatorProcess) =>
  (await fetch(op.metricsUrl.replace('/metrics', '/readyz')).then(
    (r) => r.ok,
    () => false,
  )) || undefined;

/** The write counts an operator logged when it stopped. */
function writesAtStop(op: OperatorProcess): Record<string, number> | undefined {
  const line = readFileSync(op.logFile, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { msg?: string; writes?: Record<string, number> })
    .find((l) => l.msg === 'stopped');
  return line?.writes;
}

describe('two operator replicas', () => {
  it('a leader frozen past its lease writes nothing once the other has taken over', async () => {
    onTestFailed(() => {
      for (const op of replicas) console.error(`${op.logFile}:\n${operatorLogTail(op)}`);
    });
    const a = start('a', 18110);
    await eventually('a leads', async () => (await a.leader().catch(() => 0)) === 1 || undefined, 60_000);
    const b = start('b', 18111);
    await eventually('b synced, standing by', () => ready(b), 60_000);
    expect(await b.leader()).toBe(0);

    await apply({
      apiVersion: 'kubeonkube.io/v1alpha1',
      kind: 'Cluster',
      metadata: { name: 'le', namespace: ns },
      spec: {
        version: 'v1.34.4',
        mode: 'minimal',
        etcd: { storage: { claimTemplate: { resources: { requests: { storage: '256Mi' } } } } },
      },
    });
    await kubectl(['-n', ns, 'wait', '--for=condition=Ready', 'cluster/le', '--timeout=480s']);
    expect((await b.writes()).apply ?? 0).toBe(0);
    // a settled count: the pass that set Ready may still be writing its status
    const aWritesBefore = await settledWrites(a, 3000, 60_000);

    a.child.kill('SIGSTOP');
    // the lease is 15 s: b takes over after seeing it unrenewed that long
    await eventually('b leads', async () => (await b.leader()) === 1 || undefined, 40_000);
    // work for whoever leads, waiting in the frozen one's watches too
    await kubectl(['-n', ns, 'delete', 'service', 'le-etcd']);
    await kubectl(['-n', ns, 'scale', 'deployment', 'le-scheduler', '--replicas=0']);
    await eventually(
      'b repaired the Service',
      async () =>
        (await kubectl(['-n', ns, 'get', 'service', 'le-etcd', '--ignore-not-found', '-o', 'name'])) || undefined,
      30_000,
    );

    a.child.kill('SIGCONT');
    // a finds its lease gone and leaves with a failure, to be restarted as a candidate
    expect(await a.exited).toBe(1);
    expect(writesAtStop(a)).toEqual(aWritesBefore);
    await eventually(
      'b scaled the scheduler back',
      async () =>
        (await kubectl(['-n', ns, 'get', 'deployment', 'le-scheduler', '-o', 'jsonpath={.spec.replicas}'])) === '1' ||
        undefined,
      30_000,
    );
    expect((await b.writes()).apply ?? 0).toBeGreaterThan(0);

    // a standby and a leader asked to stop both finish and exit 0
    const c = start('c', 18112);
    await eventually('c synced, standing by', () => ready(c), 60_000);
    await c.stop('SIGTERM');
    expect(await c.exited).toBe(0);
    await b.stop('SIGTERM');
    expect(await b.exited).toBe(0);
    expect(writesAtStop(b)).toBeDefined();
  });
});
