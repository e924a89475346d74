// The chart ships the same CRDs as crds/ and the version of the project it installs, and grants
// no more than the mode it installs needs (rendered by the real helm, built like every binary).
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadAll } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import { binDir, repoRoot } from './testbed/config.ts';

interface Rendered {
  kind: string;
  metadata: { name: string; namespace?: string };
  rules?: { resources?: string[]; nonResourceURLs?: string[] }[];
  spec?: unknown;
}

function render(...set: string[]): Rendered[] {
  const text = execFileSync(
    join(binDir('helm'), 'helm'),
    ['template', 'k', join(repoRoot, 'charts/kubeonkube'), '--namespace', 'sys', ...set.flatMap((s) => ['--set', s])],
    { encoding: 'utf8' },
  );
  return (loadAll(text) as (Rendered | null)[]).filter((d): d is Rendered => d !== null);
}
const resourcesOf = (d: Rendered) => (d.rules ?? []).flatMap((r) => r.resources ?? []);

const read = (path: string) => readFileSync(join(repoRoot, path), 'utf8');

describe('charts/kubeonkube', () => {
  it('carries every CRD of crds/ unchanged, and only those (cp them after editing one)', () => {
    const crds = readdirSync(join(repoRoot, 'crds')).filter((f) => f.endsWith('.yaml'));
    expect(crds).toContain('kubeonkube.io_machines.yaml');
    expect(readdirSync(join(repoRoot, 'charts/kubeonkube/crds')).sort()).toEqual(crds.sort());
    for (const crd of crds) expect(read(`charts/kubeonkube/crds/${crd}`), crd).toBe(read(`crds/${crd}`));
  });

  it('installs the version package.json names', () => {
    const version = (JSON.parse(read('package.json')) as { version: string }).version;
    expect(read('charts/kubeonkube/Chart.yaml')).toContain(`appVersion: "${version}"`);
  });

  it('grants cluster-wide rights on Clusters and their objects only when it watches every namespace', () => {
    const all = render();
    const clusterRole = all.find((d) => d.kind === 'ClusterRole' && d.metadata.name === 'k')!;
    expect(resourcesOf(clusterRole)).toEqual(
      expect.arrayContaining([
        'clusters',
        'secrets',
        'pods',
        'events',
        'nodes',
        'tokenreviews',
        'subjectaccessreviews',
      ]),
    );
    expect(all.filter((d) => d.kind === 'Role').map((d) => d.metadata.namespace)).toEqual(['sys']);

    const scoped = render('watchNamespace=team');
    const wide = scoped.filter((d) => d.kind === 'ClusterRole').flatMap(resourcesOf);
    expect(wide.sort()).toEqual(['nodes', 'subjectaccessreviews', 'tokenreviews']);
    const team = scoped.find((d) => d.kind === 'Role' && d.metadata.namespace === 'team')!;
    expect(resourcesOf(team)).toEqual(
      expect.arrayContaining([
        'clusters',
        'clusters/status',
        'secrets',
        'pods',
        'persistentvolumeclaims',
        'events',
        'configmaps',
      ]),
    );
    expect(scoped.find((d) => d.kind === 'RoleBinding' && d.metadata.namespace === 'team')).toBeDefined();
    expect(JSON.stringify(scoped.find((d) => d.kind === 'Deployment'))).toContain(
      '{"name":"KUBEONKUBE_WATCH_NAMESPACE","value":"team"}',
    );
  });

  it("puts /metrics behind the meta-cluster's authentication unless told not to, and offers a reader role", () => {
    const env = (docs: Rendered[]) => JSON.stringify(docs.find((d) => d.kind === 'Deployment'));
    expect(env(render())).toContain('{"name":"KUBEONKUBE_METRICS_AUTH","value":"kubernetes"}');
    const open = render('metricsAuthentication=false');
    expect(env(open)).toContain('{"name":"KUBEONKUBE_METRICS_AUTH","value":"none"}');
    expect(open.filter((d) => d.kind === 'ClusterRole').flatMap(resourcesOf)).not.toContain('tokenreviews');
    expect(render().find((d) => d.metadata.name === 'k-metrics-reader')?.rules).toEqual([
      { nonResourceURLs: ['/metrics'], verbs: ['get'] },
    ]);
  });
});
