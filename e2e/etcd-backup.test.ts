// etcd snapshots and restore on real components: a minimal Cluster snapshots its etcd into a claim
// of the user's, keeps `retention` of them, loses its only member's claim (DataLost), and a new
// Cluster created from the snapshot serves every object written before. A snapshot that is not
// there fails the restore with a clear reason and starts nothing; restoreFrom cannot be added or
// removed after creation.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFailed } from 'vitest';
import { businessClusters } from './business-cluster.ts';
import { apply, eventually, kubectl } from './kubectl.ts';
import { operatorLogTail, operatorTestBed, type OperatorProcess } from './operator-process.ts';

const { ns, current } = operatorTestBed('e2e-backup', 18070);
const operator = (): OperatorProcess => current.operator!;
const scratch = mkdtempSync(join(tmpdir(), 'kok-e2e-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const { get, kept, writeObjects } = businessClusters(ns, scratch);

const backups = { persistentVolumeClaim: { claimName: 'backups' } };
const cluster = (name: string, etcd: Record<string, unknown> = {}) => ({
  apiVersion: 'kubeonkube.io/v1alpha1',
  kind: 'Cluster',
  metadata: { name, namespace: ns },
  spec: {
    version: 'v1.34.4',
    mode: 'minimal',
    etcd: { storage: { claimTemplate: { resources: { requests: { storage: '256Mi' } } } }, ...etcd },
  },
});
const condition = (c: string, type: string, field = 'status') =>
  get(`cluster ${c}`, `{.status.conditions[?(@.type=="${type}")].${field}}`);

/** Runs the backup CronJob now, as a human would, and waits for the Job to finish. */
async function snapshotNow(
  c: string,
  job: string,
): Promise<{ time: string; file: string; sizeBytes: number; revision: number }> {
  const before = await get(`cluster ${c}`, '{.status.etcd.lastSnapshot.file}');
  await kubectl(['-n', ns, 'create', 'job', `--from=cronjob/${c}-etcd-backup`, job]);
  await kubectl(['-n', ns, 'wait', `job/${job}`, '--for=condition=Complete', '--timeout=120s']);
  return eventually(
    'the snapshot in the status',
    async () => {
      const last = await get(`cluster ${c}`, '{.status.etcd.lastSnapshot}');
      const parsed = last
        ? (JSON.parse(last) as { time: string; file: string; sizeBytes: number; revision: number })
        : undefined;
      return parsed && parsed.file !== before ? parsed : undefined;
    },
    60_000,
  );
}

describe('etcd snapshots', () => {
  let snapshot = '';

  it("snapshots a minimal Cluster into the user's claim on demand, keeping the newest `retention`", async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    await apply({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'backups', namespace: ns },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '256Mi' } } },
    });
    // a schedule that does not fire during the test: snapshots are taken by hand
    await apply(cluster('b', { backup: { schedule: '0 0 1 1 *', retention: 1, volume: backups } }));
    await kubectl(['-n', ns, 'wait', '--for=condition=Ready', 'cluster/b', '--timeout=300s']);
    await writeObjects('b', 200);

    const first = await snapshotNow('b', 'snap-1');
    expect(first.file).toMatch(/^b-\d{8}T\d{6}Z\.db$/);
    expect(first.sizeBytes).toBeGreaterThan(100_000);
    const second = await snapshotNow('b', 'snap-2');
    expect(second.file > first.file).toBe(true);
    expect(second.revision).toBeGreaterThanOrEqual(first.revision);
    snapshot = second.file;
    // retention 1: only the newest is kept (the test bed's volumes are directories on this machine)
    const pv = await get('pvc backups', '{.spec.volumeName}');
    const dir = await kubectl(['get', 'pv', pv, '-o', 'jsonpath={.spec.hostPath.path}{.spec.local.path}']);
    expect(readdirSync(dir).filter((f) => f.startsWith('b-'))).toEqual([second.file]);
    const metrics = await (await fetch(operator().metricsUrl)).text();
    expect(metrics).toMatch(new RegExp(`^kubeonkube_etcd_snapshot_age_seconds\\{cluster="${ns}/b"\\} \\d+$`, 'm'));
  });

  it("restores the snapshot into a new Cluster after the first lost its only member's claim: every object is back", async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    await kubectl(['-n', ns, 'delete', 'pvc', 'b-etcd-0', '--wait=false']);
    await kubectl(['-n', ns, 'delete', 'pod', 'b-etcd-0']);
    await kubectl([
      '-n',
      ns,
      'wait',
      'cluster/b',
      '--for=jsonpath={.status.conditions[?(@.type=="EtcdReady")].reason}=DataLost',
      '--timeout=120s',
    ]);

    await apply(cluster('b2', { restoreFrom: { volume: backups, path: snapshot } }));
    await kubectl(['-n', ns, 'wait', '--for=condition=Ready', 'cluster/b2', '--timeout=300s']);
    expect(await get('cluster b2', '{.status.etcd.restored}')).toBe('true');
    expect(await kept('b2')).toBe(200);
  });

  it('refuses adding or removing restoreFrom after creation', async () => {
    await expect(
      kubectl([
        '-n',
        ns,
        'patch',
        'cluster',
        'b2',
        '--type=json',
        '-p',
        '[{"op":"remove","path":"/spec/etcd/restoreFrom"}]',
      ]),
    ).rejects.toThrow(/restoreFrom can only be given when the Cluster is created/);
    await expect(
      kubectl([
        '-n',
        ns,
        'patch',
        'cluster',
        'b',
        '--type=merge',
        '-p',
        JSON.stringify({ spec: { etcd: { restoreFrom: { volume: backups, path: snapshot } } } }),
      ]),
    ).rejects.toThrow(/restoreFrom can only be given when the Cluster is created/);
  });

  it('fails a restore from a file that is not there with a clear reason, and starts no member', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    await apply(cluster('b3', { restoreFrom: { volume: backups, path: 'no-such-snapshot.db' } }));
    await kubectl([
      '-n',
      ns,
      'wait',
      'cluster/b3',
      '--for=jsonpath={.status.conditions[?(@.type=="EtcdReady")].reason}=RestoreFailed',
      '--timeout=180s',
    ]);
    expect(await condition('b3', 'EtcdReady', 'message')).toMatch(
      /^restoring no-such-snapshot.db failed: b3-etcd-0-restore: /,
    );
    expect(await kubectl(['-n', ns, 'get', 'pod', 'b3-etcd-0', '--ignore-not-found', '-o', 'name'])).toBe('');
  });
});
