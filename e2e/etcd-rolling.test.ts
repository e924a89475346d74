// Rolling etcd members on real components: a standard Cluster created on the etcd release before
// the pinned one moves to the pinned one with every member restarted with its data, one at a time,
// the leader last, while a client writes every 100 ms; a member whose certificate Secret is lost
// gets a new certificate and serves it without a restart; a minimal Cluster's only member moves too; and
// afterwards the operator writes nothing.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFailed } from 'vitest';
import { repoRoot } from '../scripts/testbed/config.ts';
import { businessClusters, businessWingsAnswered, delta } from './business-cluster.ts';
import { startBusinessWriter, unexplainedFailures } from './business-writer.ts';
import { apply, eventually, kubectl } from './kubectl.ts';
import { operatorLogTail, operatorTestBed, settledWrites, type OperatorProcess } from './operator-process.ts';

const { ns, current } = operatorTestBed('e2e-etcd-roll', 18070);
const operator = (): OperatorProcess => current.operator!;
const scratch = mkdtempSync(join(tmpdir(), 'kok-e2e-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const { get, kubeconfig, members, healed, kept, writeObjects, servedSerial } = businessClusters(ns, scratch);

const etcdVersion = (group: string) =>
  execFileSync(join(repoRoot, 'scripts/build-binaries.sh'), ['--print-version', group], { encoding: 'utf8' }).trim();
const [previous, pinned] = [etcdVersion('etcd-previous'), etcdVersion('etcd')];

const cluster = (name: string, mode: 'minimal' | 'standard', version: string) => ({
  apiVersion: 'kubeonkube.io/v1alpha1',
  kind: 'Cluster',
  metadata: { name, namespace: ns },
  spec: {
    version: 'v1.34.4',
    mode,
    etcd: { version, storage: { claimTemplate: { resources: { requests: { storage: '256Mi' } } } } },
  },
});
const images = async (c: string) =>
  (
    await kubectl([
      '-n',
      ns,
      'get',
      'pods',
      '-l',
      `kubeonkube.io/cluster=${c},app.kubernetes.io/component=etcd`,
      '-o',
      'jsonpath={range .items[*]}{.spec.containers[0].image}{"\\n"}{end}',
    ])
  )
    .trim()
    .split('\n');
/** The members the operator restarted, oldest first, from its Events. */
const restarts = async (): Promise<string[]> => {
  const out = await kubectl([
    '-n',
    ns,
    'get',
    'events',
    '--field-selector',
    'reason=MemberRestarting',
    '--sort-by=.metadata.creationTimestamp',
    '-o',
    'jsonpath={range .items[*]}{.message}{"\\n"}{end}',
  ]);
  return out
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((m) => /^restarting (\S+)/.exec(m)![1]!);
};

describe('rolling etcd members', () => {
  it(`moves a standard Cluster from etcd ${previous} to ${pinned} one member at a time, the leader last, serving every write`, async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    await apply(cluster('r', 'standard', previous));
    await kubectl(['-n', ns, 'wait', '--for=condition=Ready', 'cluster/r', '--timeout=300s']);
    expect(await get('cluster r', '{.status.etcd.version}')).toBe(previous);
    await writeObjects('r', 300);
    const before = await members('r');
    const leader = await get('cluster r', '{.status.etcd.leader}');
    const calls = await operator().etcdCalls();

    // the etcd Pods, every 100 ms: never more than one member down at a time
    let worst = 0;
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const out = await kubectl([
          '-n',
          ns,
          'get',
          'pods',
          '-l',
          'kubeonkube.io/cluster=r,app.kubernetes.io/component=etcd',
          '-o',
          'jsonpath={range .items[*]}{.metadata.deletionTimestamp}/{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
        ]).catch(() => '');
        const up = out
          .trim()
          .split('\n')
          .filter((l) => l === '/True').length;
        if (out) worst = Math.max(worst, 3 - up);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const writer = startBusinessWriter(await kubeconfig('r'), 'roll');
    let writes;
    try {
      await kubectl([
        '-n',
        ns,
        'patch',
        'cluster',
        'r',
        '--type=merge',
        '-p',
        JSON.stringify({ spec: { etcd: { version: pinned } } }),
      ]);
      await eventually(
        'every member on the new release',
        async () => (await get('cluster r', '{.status.etcd.version}')) === pinned || undefined,
        300_000,
      );
      await healed(
        'r',
        before.map((m) => m.peerURL),
      );
    } finally {
      writes = await writer.stop();
      polling = false;
      await poller;
    }
    console.log(
      `writes while r's members were restarted: ${JSON.stringify({ ...writes, errors: writes.errors.slice(0, 5) })}; most members down at once: ${worst}`,
    );
    expect(new Set(await images('r'))).toEqual(new Set([`registry.k8s.io/etcd:${pinned.slice(1)}-0`]));
    // the same members (IDs), restarted with their data
    expect((await members('r')).map((m) => m.id)).toEqual(before.map((m) => m.id));
    const order = await restarts();
    expect(order).toHaveLength(3);
    expect(order[2]).toBe(leader);
    expect(delta(await operator().etcdCalls(), calls)).toEqual({ 'move-leader/ok': 1 });
    expect(worst).toBeLessThanOrEqual(1);
    expect(await kept('r')).toBe(300);
    expect(writes.written).toBeGreaterThan(50);
    // the one hand-over before the leader's restart may cost a write in flight at that instant
    expect(unexplainedFailures(writes, 1)).toEqual([]);
  });

  it('serves the certificate re-issued for a deleted Secret without a restart: etcd reads its key pair on each handshake', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    const before = await members('r');
    const secretSerial = async () =>
      new X509Certificate(Buffer.from(await get('secret r-etcd-1-tls', '{.data.tls\\.crt}'), 'base64')).serialNumber;
    const old = await secretSerial();
    await kubectl(['-n', ns, 'delete', 'secret', 'r-etcd-1-tls']);
    const issued = await eventually(
      'a new certificate in r-etcd-1-tls',
      async () => {
        const serial = await secretSerial();
        return serial !== old ? serial : undefined;
      },
      60_000,
    );
    // the kubelet updates the Secret volume within its sync period; the member is not restarted
    await eventually(
      'r-etcd-1 serving its new certificate',
      async () => (await servedSerial('r', 1)) === issued || undefined,
      240_000,
    );
    expect(await restarts()).toHaveLength(3);
    expect((await members('r')).map((m) => m.id)).toEqual(before.map((m) => m.id));
    expect(await kept('r')).toBe(300);
  });

  it(`moves a minimal Cluster's only member from ${previous} to ${pinned} with its data`, async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    await apply(cluster('s', 'minimal', previous));
    await kubectl(['-n', ns, 'wait', '--for=condition=Ready', 'cluster/s', '--timeout=300s']);
    await writeObjects('s', 100);
    const id = (await members('s'))[0]!.id;
    await kubectl([
      '-n',
      ns,
      'patch',
      'cluster',
      's',
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { etcd: { version: pinned } } }),
    ]);
    await eventually(
      'the member on the new release, Ready',
      async () =>
        ((await get('cluster s', '{.status.etcd.version}')) === pinned &&
          (await get('cluster s', '{.status.conditions[?(@.type=="Ready")].status}')) === 'True') ||
        undefined,
      300_000,
    );
    expect(await images('s')).toEqual([`registry.k8s.io/etcd:${pinned.slice(1)}-0`]);
    expect((await members('s')).map((m) => m.id)).toEqual([id]);
    // the only member restarting takes the apiserver's storage away for seconds: its readiness probe
    // may mark it unready just after the operator saw the member back, so the first answer is awaited
    expect(await eventually('the business apiserver answers', () => kept('s'), 120_000)).toBe(100);
  });

  it('writes nothing once the members run the current template', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    // the business wing too: after an etcd or apiserver restart it may wait out a request or two
    await businessWingsAnswered(ns);
    const before = await settledWrites(operator(), 5000, 120_000, () => operator().writesByKind());
    // past the wing's 30 s recheck of each business cluster
    await new Promise((r) => setTimeout(r, 35_000));
    expect(await operator().writesByKind()).toEqual(before);
    expect(await restarts()).toHaveLength(4);
  }, 300_000);
});
