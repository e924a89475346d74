// Isolation by construction: no two Clusters in one namespace can be given the same object name.
// A Cluster's objects are named <cluster>-<suffix>. Two Clusters a and b = a-t collide exactly when
// a suffix of a's is t-<a suffix of b's>. This test takes every suffix the units really produce
// (wantedObjects, with users named to provoke it) and checks that each such t is refused by the
// CRD's name rule, through its offline twin: a new suffix that needs a new refusal fails here.
import { describe, expect, it } from 'vitest';
import { withDefaults } from '../../api/defaults.ts';
import { validate } from '../../api/validate.ts';
import { mountedSecrets } from '../../names/cluster-names.ts';
import { wantedObjects } from './cluster-reconciler.ts';
import type { ClusterSpec } from './context.ts';

const users = ['bob', 'user-bob', 'kubeconfig', 'etcd-ca', 'controller-manager', 'scheduler-kubeconfig', 'ca', 'a'];
const spec = (mode: 'minimal' | 'standard'): ClusterSpec =>
  withDefaults({
    version: 'v1.34.4',
    mode,
    etcd: {
      version: 'v3.6.16',
      storage: { claimTemplate: { resources: { requests: { storage: '1Gi' } } } },
      backup: { schedule: '@daily', retention: 7, volume: { persistentVolumeClaim: { claimName: 'b' } } },
    },
    users: users.map((name) => ({ name })),
  });

const suffixes = (cluster: string) =>
  new Set(
    [...wantedObjects(cluster, spec('standard')), ...wantedObjects(cluster, spec('minimal'))].map((o) =>
      o.name.slice(cluster.length + 1),
    ),
  );

const nameRefused = (name: string) => {
  const result = validate({
    apiVersion: 'kubeonkube.io/v1alpha1',
    kind: 'Cluster',
    metadata: { name },
    spec: { version: 'v1.34.4', etcd: { storage: { claimTemplate: { resources: { requests: { storage: '1Gi' } } } } } },
  });
  return !result.ok && result.errors.some((e) => e.startsWith('metadata.name'));
};

describe('object names', () => {
  it('of every Cluster start with its name and a dash', () => {
    for (const o of wantedObjects('x', spec('standard'))) expect(o.name.startsWith('x-')).toBe(true);
  });

  it('cannot collide between two Clusters: every name that could is refused by the CRD', () => {
    const all = suffixes('x');
    const dangerous = new Set<string>();
    for (const s1 of all)
      for (const s2 of all) if (s1 !== s2 && s1.endsWith(`-${s2}`)) dangerous.add(s1.slice(0, -s2.length - 1));
    // the known cases must be among them, or this test would prove nothing
    expect(dangerous).toContain('etcd');
    expect(dangerous).toContain('controller-manager');
    expect(dangerous).toContain('user-bob');
    for (const t of dangerous)
      expect(nameRefused(`x-${t}`), `Cluster x-${t} would share object names with Cluster x`).toBe(true);
  });

  it('leaves ordinary names alone', () => {
    for (const name of ['x', 'prod-a', 'etcd', 'payments-eu-1', 'users', 'x-etcd-0', 'x-apiserver', 'superuser-x'])
      expect(nameRefused(name), name).toBe(false);
  });

  it('refuses the names of the collisions found in the field', () => {
    for (const name of ['x-etcd', 'x-controller-manager', 'x-user-bob', 'x-front-proxy', 'x-scheduler', 'x-user'])
      expect(nameRefused(name), name).toBe(true);
  });

  it('of every Secret a component mounts are Secrets the Cluster makes', () => {
    for (const mode of ['minimal', 'standard'] as const) {
      const made = new Set(
        wantedObjects('x', spec(mode))
          .filter((o) => o.kind === 'Secret')
          .map((o) => o.name),
      );
      const m = mountedSecrets('x');
      const members = mode === 'standard' ? 3 : 1;
      const mounted = [
        ...Object.values(m.apiserver),
        ...Object.values(m.controllerManager),
        ...Object.values(m.scheduler),
        ...Object.values(m.etcdBackup),
        ...Object.values(m.tunnelAgent),
        ...Array.from({ length: members }, (_, i) => m.etcdMember(i).tls),
      ];
      for (const name of mounted) expect(made.has(name), `${mode}: ${name} is mounted but not made`).toBe(true);
    }
  });
});
