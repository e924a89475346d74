// The heart of the product, end to end: a minimal Cluster applied to the meta-cluster becomes a
// running business cluster; its admin kubeconfig works with the real kubectl.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFailed } from 'vitest';
import { loadConfig, repoRoot } from '../scripts/testbed/config.ts';
import { eventually, kubectl } from './kubectl.ts';
import { operatorLogTail, operatorTestBed, type OperatorProcess } from './operator-process.ts';

const { ns, current } = operatorTestBed('e2e-cluster', 18080);
const operator = (): OperatorProcess => current.operator!;
const scratch = mkdtempSync(join(tmpdir(), 'kok-e2e-'));
const kubectlBinary = join(loadConfig().binDirs.kubernetes, 'kubectl');
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('a minimal Cluster', () => {
  it('becomes Ready, and its kubeconfig drives the business cluster', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    await kubectl(['-n', ns, 'apply', '-f', join(repoRoot, 'examples/minimal.yaml')]);
    await kubectl(['-n', ns, 'wait', '--for=condition=Ready', 'cluster/dev', '--timeout=480s']);

    const cluster = JSON.parse(await kubectl(['-n', ns, 'get', 'cluster', 'dev', '-o', 'json'])) as {
      metadata: { generation: number };
      status: {
        version: string;
        endpoint: string;
        observedGeneration: number;
        kubeconfigSecretRef: { name: string; key: string };
      };
    };
    expect(cluster.status.version).toBe('v1.34.4');
    expect(cluster.status.observedGeneration).toBe(cluster.metadata.generation);
    expect(cluster.status.kubeconfigSecretRef).toEqual({ name: 'dev-kubeconfig', key: 'value' });

    const encoded = await kubectl(['-n', ns, 'get', 'secret', 'dev-kubeconfig', '-o', 'jsonpath={.data.value}']);
    const kubeconfig = join(scratch, 'dev.kubeconfig');
    writeFileSync(kubeconfig, Buffer.from(encoded, 'base64'), { mode: 0o600 });
    const business = (...args: string[]) =>
      execFileSync(kubectlBinary, ['--kubeconfig', kubeconfig, ...args], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      });

    expect(
      (JSON.parse(business('version', '-o', 'json')) as { serverVersion: { gitVersion: string } }).serverVersion
        .gitVersion,
    ).toBe('v1.34.4');
    business('create', 'namespace', 'hello');
    business('-n', 'hello', 'create', 'configmap', 'greeting', '--from-literal=text=from the business cluster');
    expect(business('-n', 'hello', 'get', 'configmap', 'greeting', '-o', 'jsonpath={.data.text}')).toBe(
      'from the business cluster',
    );
    // the controller-manager runs: it gives every new namespace its root CA ConfigMap
    await eventually(
      'kube-root-ca.crt in the new namespace',
      () => {
        try {
          return Promise.resolve(
            business('-n', 'hello', 'get', 'configmap', 'kube-root-ca.crt', '-o', 'name').trim() || undefined,
          );
        } catch {
          return Promise.resolve(undefined);
        }
      },
      60_000,
    );
  });

  it('runs one started etcd member', async () => {
    const out = await kubectl([
      '-n',
      ns,
      'exec',
      'dev-etcd-0',
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
    const members = (JSON.parse(out) as { members: { name: string; clientURLs?: string[] }[] }).members;
    expect(members.map((m) => m.name)).toEqual(['dev-etcd-0']);
    expect(members[0]?.clientURLs?.length).toBeGreaterThan(0);
  });

  it('makes no write request in steady state', async () => {
    const before = await operator().writesByKind();
    // two resync periods of the operator (10 s each here)
    await new Promise((r) => setTimeout(r, 25_000));
    const after = await operator().writesByKind();
    expect(after).toEqual(before);
  });

  it('stops writing while paused, and repairs what was lost once resumed', async () => {
    await kubectl(['-n', ns, 'patch', 'cluster', 'dev', '--type=merge', '-p', '{"spec":{"paused":true}}']);
    await kubectl(['-n', ns, 'delete', 'service', 'dev-etcd']);
    const before = await operator().writesByKind();
    // two resync periods: a paused Cluster is not touched, not even its status
    await new Promise((r) => setTimeout(r, 22_000));
    expect(await operator().writesByKind()).toEqual(before);
    await expect(kubectl(['-n', ns, 'get', 'service', 'dev-etcd'])).rejects.toThrow(/NotFound/);
    await kubectl(['-n', ns, 'patch', 'cluster', 'dev', '--type=merge', '-p', '{"spec":{"paused":false}}']);
    await eventually(
      'the etcd client Service back',
      async () => (await kubectl(['-n', ns, 'get', 'service', 'dev-etcd', '-o', 'name']).catch(() => '')) || undefined,
      60_000,
    );
  });

  it('reports a spec it cannot run, without building anything', async () => {
    await kubectl(
      ['-n', ns, 'apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'kubeonkube.io/v1alpha1',
        kind: 'Cluster',
        metadata: { name: 'too-old' },
        spec: {
          version: 'v1.29.0',
          etcd: { storage: { claimTemplate: { resources: { requests: { storage: '1Gi' } } } } },
        },
      }),
    );
    await kubectl([
      '-n',
      ns,
      'wait',
      'cluster/too-old',
      '--for=jsonpath={.status.conditions[?(@.type=="Ready")].reason}=InvalidSpec',
      '--timeout=60s',
    ]);
    expect(
      await kubectl([
        '-n',
        ns,
        'get',
        'cluster',
        'too-old',
        '-o',
        'jsonpath={.status.conditions[?(@.type=="Ready")].message}',
      ]),
    ).toBe('spec.version: v1.29.0 is not supported; this operator runs v1.33 to v1.35');
    expect(
      await kubectl(['-n', ns, 'get', 'secrets,pods,services', '-l', 'kubeonkube.io/cluster=too-old', '-o', 'name']),
    ).toBe('');
  });

  it("keeps its claim out of the garbage collector's reach by default, and takes everything it made with it when deleted under deletionPolicy Delete", async () => {
    const uid = await kubectl(['-n', ns, 'get', 'cluster', 'dev', '-o', 'jsonpath={.metadata.uid}']);
    const claim = () =>
      kubectl([
        '-n',
        ns,
        'get',
        'pvc',
        'dev-etcd-0',
        '-o',
        'jsonpath={.metadata.ownerReferences[*].uid}|{.metadata.annotations.kubeonkube\\.io/owner-uid}',
      ]);
    // Retain, the default: owned by annotation only, nothing for the garbage collector to follow
    expect(await claim()).toBe(`|${uid}`);
    await kubectl([
      '-n',
      ns,
      'patch',
      'cluster',
      'dev',
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { etcd: { storage: { deletionPolicy: 'Delete' } } } }),
    ]);
    await eventually(
      'the claim owned by reference',
      async () => ((await claim()) === `${uid}|` ? true : undefined),
      30_000,
    );
    await kubectl(['-n', ns, 'delete', 'cluster', 'dev', '--wait=true', '--timeout=60s']);
    const kinds = 'pods,services,deployments,secrets,persistentvolumeclaims';
    await eventually(
      'no object of the deleted cluster',
      async () =>
        (await kubectl(['-n', ns, 'get', kinds, '-l', 'kubeonkube.io/cluster=dev', '-o', 'name'])).trim() === ''
          ? true
          : undefined,
      120_000,
    );
  });
});
