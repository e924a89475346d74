// The operator as users run it: installed with its Helm chart (least-privilege RBAC, the project's
// own image) into the meta-cluster. Three Clusters — two in one namespace, one in another — come
// up side by side without touching each other: each has its own CA and its kubeconfig opens only
// its own control plane.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { projectVersion } from '../scripts/images/build.ts';
import { binDir, loadConfig, repoRoot } from '../scripts/testbed/config.ts';
import { apply, kubectl, namespaceObject, uniqueNamespace } from './kubectl.ts';

const run = promisify(execFile);
const helm = join(binDir('helm'), 'helm');
const kubectlBinary = join(loadConfig().binDirs.kubernetes, 'kubectl');
const release = 'kubeonkube';
const system = uniqueNamespace('e2e-kok-system');
const [nsA, nsB] = [uniqueNamespace('e2e-tenant-a'), uniqueNamespace('e2e-tenant-b')];
const clusters = [
  [nsA, 'one'],
  [nsA, 'two'],
  [nsB, 'one'],
] as const;
const scratch = mkdtempSync(join(tmpdir(), 'kok-e2e-'));

function minimalCluster(name: string): object {
  return {
    apiVersion: 'kubeonkube.io/v1alpha1',
    kind: 'Cluster',
    metadata: { name },
    spec: {
      version: 'v1.34.4',
      mode: 'minimal',
      etcd: { storage: { claimTemplate: { resources: { requests: { storage: '256Mi' } } } } },
    },
  };
}

beforeAll(async () => {
  await run(helm, [
    'upgrade',
    '--install',
    release,
    join(repoRoot, 'charts/kubeonkube'),
    '--namespace',
    system,
    '--create-namespace',
    '--kubeconfig',
    inject('metaCluster').kubeconfig,
    '--set',
    `image.tag=${projectVersion()}`,
    '--set',
    'resyncSeconds=30',
    '--wait',
    '--timeout',
    '3m',
  ]);
  await apply(namespaceObject(nsA), namespaceObject(nsB));
});
afterAll(async () => {
  await run(helm, [
    'uninstall',
    release,
    '--namespace',
    system,
    '--kubeconfig',
    inject('metaCluster').kubeconfig,
  ]).catch(() => undefined);
  for (const ns of [nsA, nsB, system]) await kubectl(['delete', 'namespace', ns, '--wait=false']);
  rmSync(scratch, { recursive: true, force: true });
});

describe('the operator installed by its chart', () => {
  it('runs as a non-root pod of its own image and becomes ready', async () => {
    const pod = JSON.parse(
      await kubectl(['-n', system, 'get', 'pods', '-l', 'app.kubernetes.io/name=kubeonkube', '-o', 'json']),
    ) as {
      items: {
        spec: { containers: { image: string }[]; securityContext: { runAsUser: number } };
        status: { phase: string };
      }[];
    };
    expect(pod.items).toHaveLength(1);
    expect(pod.items[0]?.spec.containers[0]?.image).toBe(`ghcr.io/kubeonkube/kubeonkube:${projectVersion()}`);
    expect(pod.items[0]?.spec.securityContext.runAsUser).toBe(65532);
  });

  it('brings up two Clusters in one namespace and one in another, each its own', async () => {
    for (const [ns, name] of clusters)
      await kubectl(['-n', ns, 'apply', '-f', '-'], JSON.stringify(minimalCluster(name)));
    for (const [ns, name] of clusters)
      await kubectl(['-n', ns, 'wait', '--for=condition=Ready', `cluster/${name}`, '--timeout=480s']);

    const cas = new Set<string>();
    const kubeconfigs: string[] = [];
    for (const [ns, name] of clusters) {
      cas.add(await kubectl(['-n', ns, 'get', 'secret', `${name}-ca`, '-o', 'jsonpath={.data.tls\\.crt}']));
      const file = join(scratch, `${ns}-${name}.kubeconfig`);
      writeFileSync(
        file,
        Buffer.from(
          await kubectl(['-n', ns, 'get', 'secret', `${name}-kubeconfig`, '-o', 'jsonpath={.data.value}']),
          'base64',
        ),
        { mode: 0o600 },
      );
      kubeconfigs.push(file);
    }
    expect(cas.size).toBe(3);

    // each business cluster keeps its own objects
    for (const [i, file] of kubeconfigs.entries()) {
      await run(kubectlBinary, ['--kubeconfig', file, 'create', 'namespace', `only-in-${i}`]);
    }
    for (const [i, file] of kubeconfigs.entries()) {
      const { stdout } = await run(kubectlBinary, [
        '--kubeconfig',
        file,
        'get',
        'namespaces',
        '-o',
        'jsonpath={.items[*].metadata.name}',
      ]);
      const own = stdout.split(' ').filter((n) => n.startsWith('only-in-'));
      expect(own).toEqual([`only-in-${i}`]);
    }

    // a kubeconfig of one cluster is no key to another: its CA does not vouch for the other's server
    const server = (file: string) =>
      run(kubectlBinary, [
        '--kubeconfig',
        file,
        'config',
        'view',
        '--raw',
        '-o',
        'jsonpath={.clusters[0].cluster.server}',
      ]);
    const other = (await server(kubeconfigs[1]!)).stdout;
    await expect(
      run(kubectlBinary, ['--kubeconfig', kubeconfigs[0]!, '--server', other, 'get', 'namespaces']),
    ).rejects.toThrow(/certificate|x509|tls/i);
  });

  it('refuses to delete a Cluster whose deletion was not confirmed, and keeps its data once it is', async () => {
    const [ns, name] = clusters[2];
    await expect(kubectl(['-n', ns, 'delete', 'cluster', name])).rejects.toThrow(
      `Cluster ${ns}/${name} is protected: annotate it with kubeonkube.io/confirm-deletion=true, then delete it`,
    );
    await expect(kubectl(['-n', ns, 'delete', 'clusters', '--all'])).rejects.toThrow('is protected');
    expect(await kubectl(['-n', ns, 'get', 'cluster', name, '-o', 'jsonpath={.metadata.deletionTimestamp}'])).toBe('');
    await kubectl(['-n', ns, 'annotate', 'cluster', name, 'kubeonkube.io/confirm-deletion=true']);
    await kubectl(['-n', ns, 'delete', 'cluster', name, '--wait=true', '--timeout=120s']);
    // deletionPolicy Retain, the default: the member's claim stays, with its volume
    expect(await kubectl(['-n', ns, 'get', 'pvc', `${name}-etcd-0`, '-o', 'jsonpath={.status.phase}'])).toBe('Bound');
  });
});
