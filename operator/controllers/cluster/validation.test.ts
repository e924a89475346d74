import { describe, expect, it } from 'vitest';
import type { ClusterObject } from './context.ts';
import { validateCluster } from './validation.ts';

const cluster = (spec: Record<string, unknown>): ClusterObject => ({
  apiVersion: 'kubeonkube.io/v1alpha1',
  kind: 'Cluster',
  metadata: { name: 'dev', namespace: 'ns', uid: 'u', generation: 1, managedFields: [] },
  spec: {
    version: 'v1.34.4',
    etcd: { storage: { claimTemplate: { resources: { requests: { storage: '1Gi' } } } } },
    ...spec,
  } as never,
});

describe('validateCluster', () => {
  it('accepts a minimal spec, and leaves the cached object untouched', () => {
    const c = cluster({});
    expect(validateCluster(c)).toEqual([]);
    expect(c.spec.mode).toBeUndefined();
  });

  it('names the field of a CRD rule a stored object breaks', () => {
    expect(validateCluster(cluster({ network: { serviceCIDR: '10.0.0.0/8', podCIDR: '10.244.0.0/16' } }))).toEqual([
      expect.stringContaining('must not overlap'),
    ]);
  });

  it('refuses versions the operator cannot run', () => {
    expect(validateCluster(cluster({ version: 'v1.29.0' }))).toEqual([
      'spec.version: v1.29.0 is not supported; this operator runs v1.33 to v1.35',
    ]);
    expect(
      validateCluster(cluster({ etcd: { version: 'v3.4.30', storage: { volumeSource: { emptyDir: {} } } } })),
    ).toEqual(['spec.etcd.version: v3.4.30 is not supported; use v3.5.x or v3.6.x']);
  });

  it('refuses a restore into members that keep their data in an emptyDir', () => {
    const restoreFrom = { volume: { persistentVolumeClaim: { claimName: 'b' } }, path: 'x.db' };
    expect(validateCluster(cluster({ etcd: { storage: { volumeSource: { emptyDir: {} } }, restoreFrom } }))).toEqual([
      'spec.etcd.restoreFrom: a restore needs storage that outlives a Pod (a claimTemplate, or a volumeSource other than emptyDir)',
    ]);
    expect(
      validateCluster(
        cluster({ etcd: { storage: { claimTemplate: { resources: { requests: { storage: '1Gi' } } } }, restoreFrom } }),
      ),
    ).toEqual([]);
  });
});
