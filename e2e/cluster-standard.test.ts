// A standard Cluster: three apiservers behind one Service, two controller-managers and schedulers
// with leader election, and three etcd members that form one cluster.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFailed } from 'vitest';
import { loadConfig, repoRoot } from '../scripts/testbed/config.ts';
import { eventually, kubectl } from './kubectl.ts';
import { operatorLogTail, operatorTestBed, type OperatorProcess } from './operator-process.ts';

const { ns, current } = operatorTestBed('e2e-standard', 18070);
const operator = (): OperatorProcess => current.operator!;
const scratch = mkdtempSync(join(tmpdir(), 'kok-e2e-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('a standard Cluster', () => {
  it('runs three of everything that needs three, and serves through its kubeconfig', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    await kubectl(['-n', ns, 'apply', '-f', join(repoRoot, 'examples/standard.yaml')]);
    await kubectl(['-n', ns, 'wait', '--for=condition=Ready', 'cluster/prod-a', '--timeout=480s']);

    const ready = async (name: string) =>
      Number(await kubectl(['-n', ns, 'get', 'deployment', name, '-o', 'jsonpath={.status.readyReplicas}']));
    expect(await ready('prod-a-apiserver')).toBe(3);
    expect(await ready('prod-a-controller-manager')).toBe(2);
    expect(await ready('prod-a-scheduler')).toBe(2);

    const out = await kubectl([
      '-n',
      ns,
      'exec',
      'prod-a-etcd-1',
      '--',
      'etcdctl',
      '--endpoints=https://127.0.0.1:2379',
      '--cacert=/etc/etcd/pki/ca.crt',
      '--cert=/etc/etcd/pki/tls.crt',
      '--key=/etc/etcd/pki/tls.key',
      'member',
      'list',
      '-w',
      'json',
    ]);
    const members = (JSON.parse(out) as { members: { name: string; clientURLs?: string[]; isLearner?: boolean }[] })
      .members;
    expect(members.map((m) => m.name).sort()).toEqual(['prod-a-etcd-0', 'prod-a-etcd-1', 'prod-a-etcd-2']);
    // a started member has client URLs; a learner or one that never started has none
    expect(members.every((m) => (m.clientURLs?.length ?? 0) > 0 && !m.isLearner)).toBe(true);

    for (const [secret, file] of [
      ['prod-a-kubeconfig', 'admin'],
      ['prod-a-user-alice-kubeconfig', 'alice'],
    ] as const) {
      const kubeconfig = join(scratch, file);
      writeFileSync(
        kubeconfig,
        Buffer.from(await kubectl(['-n', ns, 'get', 'secret', secret, '-o', 'jsonpath={.data.value}']), 'base64'),
        { mode: 0o600 },
      );
      const whoami = execFileSync(
        join(loadConfig().binDirs.kubernetes, 'kubectl'),
        ['--kubeconfig', kubeconfig, 'auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'],
        { encoding: 'utf8' },
      );
      expect(whoami).toBe(file === 'admin' ? 'kubeonkube-admin' : 'alice');
    }
  });

  it('as shipped in examples/, reaches zero writes in steady state (users included)', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    // Ready is the control plane's; the business wing applies the add-ons in its own loop after the
    // apiserver answers. The example has no worker, so its add-ons settle at NoNodes.
    await eventually(
      'AddonsReady saying no node has joined',
      async () =>
        (await kubectl([
          '-n',
          ns,
          'get',
          'cluster',
          'prod-a',
          '-o',
          'jsonpath={.status.conditions[?(@.type=="AddonsReady")].reason}',
        ])) === 'NoNodes' || undefined,
      120_000,
    );
    const before = await operator().writesByKind();
    // past the 30 s recheck of the business cluster, and three resyncs of the operator (10 s each here)
    await new Promise((r) => setTimeout(r, 35_000));
    expect(await operator().writesByKind()).toEqual(before);
    expect(await kubectl(['-n', ns, 'get', 'cluster', 'prod-a', '-o', 'jsonpath={.status.phase}'])).toBe('Ready');
  }, 200_000);
});
