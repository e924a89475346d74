// etcd membership on real components: a standard Cluster loses a member in each way it can (its
// Pod, its claim, its data directory) and comes back to three started voting members at the same
// peer URLs with every object written before; with two members gone the operator makes no
// membership call and says why; a replacement the operator did not see begin is finished; a Pod
// stuck terminating on a lost node is removed; a minimal Cluster grows to standard. A client writes to the
// business cluster every 100 ms throughout, and its failures are counted.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it, onTestFailed } from 'vitest';
import { businessClusters, delta } from './business-cluster.ts';
import { apply, eventually, kubectl } from './kubectl.ts';
import { startBusinessWriter, type WriterCounts } from './business-writer.ts';
import { operatorLogTail, operatorTestBed, startOperator, type OperatorProcess } from './operator-process.ts';

const run = promisify(execFile);
const operatorEnv = { KUBEONKUBE_ETCD_REPLACE_UNHEALTHY_AFTER: '20s' };
const { ns, current } = operatorTestBed('e2e-etcd', 18070, operatorEnv);
const operator = (): OperatorProcess => current.operator!;
const scratch = mkdtempSync(join(tmpdir(), 'kok-e2e-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const cluster = (name: string, mode: 'minimal' | 'standard') => ({
  apiVersion: 'kubeonkube.io/v1alpha1',
  kind: 'Cluster',
  metadata: { name, namespace: ns },
  spec: {
    version: 'v1.34.4',
    mode,
    etcd: { storage: { claimTemplate: { resources: { requests: { storage: '256Mi' } } } } },
  },
});
const { get, kubeconfig, members, healed, kept, writeObjects } = businessClusters(ns, scratch);

describe('etcd membership', () => {
  let peerURLs: string[] = [];
  const writes: Record<string, WriterCounts> = {};

  it('forms a standard Cluster and keeps 1,000 objects written through it', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    await apply(cluster('m', 'standard'));
    await kubectl(['-n', ns, 'wait', '--for=condition=Ready', 'cluster/m', '--timeout=300s']);
    peerURLs = (await members('m')).map((m) => m.peerURL);
    expect(peerURLs).toHaveLength(3);
    await writeObjects('m', 1000);
    expect(await kept('m')).toBe(1000);
  });

  it('starts a deleted member Pod again with its data: no membership call', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    const before = await members('m');
    const calls = await operator().etcdCalls();
    await kubectl(['-n', ns, 'delete', 'pod', 'm-etcd-2']);
    const after = await healed('m', peerURLs);
    expect(after.map((m) => m.id)).toEqual(before.map((m) => m.id));
    expect(delta(await operator().etcdCalls(), calls)).toEqual({});
    expect(await kept('m')).toBe(1000);
  });

  it('replaces a member whose claim was deleted (remove, learner, promote), serving every write', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    const before = await members('m');
    // a follower: losing the leader is an election of its own, whatever replaces it (measured apart)
    const leader = await get('cluster m', '{.status.etcd.leader}');
    const lost = ['m-etcd-1', 'm-etcd-2'].find((m) => m !== leader)!;
    const calls = await operator().etcdCalls();
    const writer = startBusinessWriter(await kubeconfig('m'), 'claim');
    try {
      await kubectl(['-n', ns, 'delete', 'pvc', lost, '--wait=false']);
      await kubectl(['-n', ns, 'delete', 'pod', lost]);
      const after = await healed(
        'm',
        peerURLs,
        before.find((m) => m.name === lost),
      );
      expect(after.find((m) => m.name === lost)!.id).not.toBe(before.find((m) => m.name === lost)!.id);
    } finally {
      writes.claim = await writer.stop();
    }
    // etcd may refuse a call for a while (a remove right after a restart, a promote before the learner caught up); one of each was made
    const made = delta(await operator().etcdCalls(), calls);
    expect([made['remove/ok'], made['add/ok'], made['promote/ok']]).toEqual([1, 1, 1]);
    expect(await get('cluster m', '{.status.etcd.lastChange.member}')).toBe(lost);
    expect(await kept('m')).toBe(1000);
    console.log(
      `writes while ${lost} was replaced: ${JSON.stringify({ ...writes.claim, errors: writes.claim.errors.slice(0, 5) })}`,
    );
    expect(writes.claim.written).toBeGreaterThan(50);
    expect(writes.claim.errors).toEqual([]);
  });

  it('replaces a member whose data directory was wiped', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    const before = await members('m');
    const pv = await get('pvc m-etcd-0', '{.spec.volumeName}');
    const path = await kubectl(['get', 'pv', pv, '-o', 'jsonpath={.spec.hostPath.path}{.spec.local.path}']);
    const dataDir = (await get('pvc m-etcd-0', '{.metadata.annotations.kubeonkube\\.io/etcd-data-dir}')) || 'data';
    // the test bed's node is this machine: the volume is a directory here
    for (const entry of readdirSync(join(path, dataDir)))
      rmSync(join(path, dataDir, entry), { recursive: true, force: true });
    await kubectl(['-n', ns, 'delete', 'pod', 'm-etcd-0']);
    const after = await healed(
      'm',
      peerURLs,
      before.find((m) => m.name === 'm-etcd-0'),
    );
    expect(after.find((m) => m.name === 'm-etcd-0')!.id).not.toBe(before.find((m) => m.name === 'm-etcd-0')!.id);
    expect(await get('pvc m-etcd-0', '{.metadata.annotations.kubeonkube\\.io/etcd-data-dir}')).toBe(
      `data-${after.find((m) => m.name === 'm-etcd-0')!.id}`,
    );
    expect(await kept('m')).toBe(1000);
  });

  it('makes no membership call with two members gone, says why, and heals when they are back', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    const calls = await operator().etcdCalls();
    // both Pods' etcd processes stopped on the node: they hold their data but answer nothing
    const pids = await Promise.all(
      ['m-etcd-1', 'm-etcd-2'].map(async (member) => {
        const { stdout } = await run('pgrep', ['-f', '--', `--name=${member} `]);
        return stdout.trim().split('\n').filter(Boolean);
      }),
    );
    expect(pids.flat()).toHaveLength(2);
    for (const pid of pids.flat()) process.kill(Number(pid), 'SIGSTOP');
    try {
      await kubectl([
        '-n',
        ns,
        'wait',
        'cluster/m',
        '--for=jsonpath={.status.conditions[?(@.type=="EtcdReady")].reason}=QuorumLost',
        '--timeout=90s',
      ]);
      expect(await get('cluster m', '{.status.conditions[?(@.type=="EtcdReady")].message}')).toMatch(
        /No membership change is made without quorum/,
      );
      // longer than the 20 s after which a single unhealthy member would be replaced
      await new Promise((r) => setTimeout(r, 30_000));
      expect(delta(await operator().etcdCalls(), calls)).toEqual({});
    } finally {
      for (const pid of pids.flat()) process.kill(Number(pid), 'SIGCONT');
    }
    await healed('m', peerURLs);
    expect(delta(await operator().etcdCalls(), calls)).toEqual({});
    expect(await kept('m')).toBe(1000);
  });

  it('finishes a replacement it did not see begin: a learner added while the operator was stopped is started and promoted', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    // a follower (removing the leader would add an election to what is tested), asked through another follower
    const leader = await get('cluster m', '{.status.etcd.leader}');
    const [victim, via] = ['m-etcd-0', 'm-etcd-1', 'm-etcd-2'].filter((m) => m !== leader) as [string, string];
    const target = (await members('m')).find((m) => m.name === victim)!;
    await operator().stop();
    try {
      // what a pass that died between its member add and the member's Pod would leave behind
      const etcdctl = (...args: string[]) =>
        kubectl([
          '-n',
          ns,
          'exec',
          via,
          '--',
          'etcdctl',
          '--endpoints=https://127.0.0.1:2379',
          '--command-timeout=20s',
          '--cacert=/etc/etcd/pki/ca.crt',
          '--cert=/etc/etcd/pki/tls.crt',
          '--key=/etc/etcd/pki/tls.key',
          ...args,
        ]);
      await kubectl(['-n', ns, 'delete', 'pvc', victim, '--wait=false']);
      await kubectl(['-n', ns, 'delete', 'pod', victim]);
      await etcdctl('member', 'remove', target.id);
      await etcdctl('member', 'add', victim, `--peer-urls=${target.peerURL}`, '--learner');
    } finally {
      current.operator = startOperator(ns, 18070, { KUBEONKUBE_WATCH_NAMESPACE: ns, ...operatorEnv });
    }
    await healed('m', peerURLs, target);
    // the add was not the operator's: it started the learner's Pod and promoted it, nothing else
    const made = await operator().etcdCalls();
    expect(made['promote/ok']).toBe(1);
    expect(Object.keys(made).filter((k) => !k.startsWith('promote/'))).toEqual([]);
    expect(await kept('m')).toBe(1000);
  });

  it('does not wait forever on a member Pod stuck terminating on a lost node', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    const before = await members('m');
    const calls = await operator().etcdCalls();
    const uid = await get('pod m-etcd-2', '{.metadata.uid}');
    // the node is lost: its kubelet stops answering (its containers keep running, as on a partitioned node)
    const { stdout } = await run('pgrep', ['-x', 'kubelet']);
    const kubelet = Number(stdout.trim().split('\n')[0]);
    process.kill(kubelet, 'SIGSTOP');
    try {
      await eventually(
        'the node NotReady',
        async () =>
          (await kubectl([
            'get',
            'nodes',
            '-o',
            'jsonpath={.items[0].status.conditions[?(@.type=="Ready")].status}',
          ])) !== 'True' || undefined,
        180_000,
      );
      await kubectl(['-n', ns, 'delete', 'pod', 'm-etcd-2', '--wait=false']);
      // its grace period (30 s) and a minute more
      await eventually(
        'the stuck Pod removed',
        async () =>
          (
            await kubectl([
              '-n',
              ns,
              'get',
              'events',
              '--field-selector',
              'reason=MemberPodForceDeleted',
              '-o',
              'jsonpath={.items[*].message}',
            ])
          ).includes('m-etcd-2') || undefined,
        240_000,
      );
      await eventually(
        'a new Pod for the member',
        async () => {
          const now = await get('pod m-etcd-2', '{.metadata.uid}').catch(() => '');
          return (now !== '' && now !== uid) || undefined;
        },
        60_000,
      );
    } finally {
      process.kill(kubelet, 'SIGCONT');
    }
    // the same member, started again with its data once the node is back
    const after = await healed('m', peerURLs);
    expect(after.map((m) => m.id)).toEqual(before.map((m) => m.id));
    expect(delta(await operator().etcdCalls(), calls)).toEqual({});
    expect(await kept('m')).toBe(1000);
    // the node's grace (40 s), the Pod's (30 s) and a minute are waited out
  }, 420_000);

  it('grows a minimal Cluster to standard one member at a time, serving every write', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    await apply(cluster('g', 'minimal'));
    await kubectl(['-n', ns, 'wait', '--for=condition=Ready', 'cluster/g', '--timeout=300s']);
    await writeObjects('g', 1000);
    const calls = await operator().etcdCalls();
    const writer = startBusinessWriter(await kubeconfig('g'), 'grow');
    try {
      await kubectl(['-n', ns, 'patch', 'cluster', 'g', '--type=merge', '-p', '{"spec":{"mode":"standard"}}']);
      await healed(
        'g',
        [0, 1, 2].map((i) => `https://g-etcd-${i}.${ns}.svc.cluster.local:2380`),
      );
      await kubectl(['-n', ns, 'rollout', 'status', 'deployment/g-apiserver', '--timeout=120s']);
    } finally {
      writes.grow = await writer.stop();
    }
    expect(delta(await operator().etcdCalls(), calls)).toMatchObject({ 'add/ok': 2, 'promote/ok': 2 });
    expect(await get('cluster g', '{.status.etcd.size}')).toBe('3');
    expect(await get('deployment g-apiserver', '{.spec.template.spec.containers[0].command}')).toContain(
      `https://g-etcd-2.${ns}.svc.cluster.local:2379`,
    );
    // back to minimal is refused now that etcd has grown
    await expect(
      kubectl(['-n', ns, 'patch', 'cluster', 'g', '--type=merge', '-p', '{"spec":{"mode":"minimal"}}']),
    ).rejects.toThrow(/mode cannot change from standard to minimal/);
    expect(await kept('g')).toBe(1000);
    console.log(
      `writes while g grew from 1 to 3 members: ${JSON.stringify({ ...writes.grow, errors: writes.grow.errors.slice(0, 5) })}`,
    );
    expect(writes.grow.written).toBeGreaterThan(50);
    expect(writes.grow.errors).toEqual([]);
  });
});
