import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { ready, notReady, Reasons, type Condition } from './conditions.ts';
import { pickNodeAddress } from './units/apiserver-service.ts';
import { phase } from './cluster-reconciler.ts';
import type { ClusterObject } from './context.ts';
import { refusedChanges } from './refusals.ts';
import { withDefaults } from '../../api/defaults.ts';

const cond = (status: 'True' | 'False'): Condition[] => [
  {
    type: 'Ready',
    ...(status === 'True' ? ready() : notReady(Reasons.Provisioning, 'x')),
    lastTransitionTime: '2026-01-01T00:00:00Z',
  },
];

describe('phase', () => {
  it('follows Ready and whether the cluster ever ran, never alternating', () => {
    expect(phase(cond('True'), 'v1.34.4', 'v1.34.4')).toBe('Ready');
    expect(phase(cond('False'), undefined, 'v1.34.4')).toBe('Provisioning');
    expect(phase(cond('False'), 'v1.34.4', 'v1.34.4')).toBe('Degraded');
    // asked twice, the same answer (the old phase is not an input)
    expect(phase(cond('False'), 'v1.34.4', 'v1.34.4')).toBe('Degraded');
    expect(phase(cond('False'), 'v1.34.4', 'v1.35.0')).toBe('Upgrading');
  });
});

describe('pickNodeAddress', () => {
  const nodes = [
    { name: 'b', addresses: [{ type: 'InternalIP', address: '10.0.0.2' }] },
    {
      name: 'a',
      addresses: [
        { type: 'InternalIP', address: '10.0.0.1' },
        { type: 'ExternalIP', address: '203.0.113.1' },
      ],
    },
  ];
  it('keeps the address in use while its node is there, else the first node by name, external first', () => {
    expect(pickNodeAddress(nodes, undefined)).toBe('203.0.113.1');
    expect(pickNodeAddress(nodes, '10.0.0.2')).toBe('10.0.0.2');
    expect(pickNodeAddress(nodes, '10.9.9.9')).toBe('203.0.113.1');
    expect(pickNodeAddress([], undefined)).toBeUndefined();
  });
});

describe('refusedChanges', () => {
  const cluster = (
    mode: 'minimal' | 'standard',
    etcdVersion: string,
    status?: ClusterObject['status'],
  ): ClusterObject => ({
    metadata: { name: 'x' },
    spec: withDefaults({
      version: 'v1.34.4',
      mode,
      etcd: { version: etcdVersion, storage: { claimTemplate: { resources: { requests: { storage: '1Gi' } } } } },
    }),
    ...(status ? { status } : {}),
  });
  const pod = (members: number, tag = '3.6.16-0'): V1Pod => ({
    spec: {
      containers: [
        {
          name: 'etcd',
          image: `registry.k8s.io/etcd:${tag}`,
          command: [
            'etcd',
            `--initial-cluster=${Array.from({ length: members }, (_, i) => `x-etcd-${i}=https://x-etcd-${i}:2380`).join(',')}`,
          ],
        },
      ],
    },
  });

  it('lets etcd grow but never shrink, and change its patch release but not its minor version, from the status record or the live members', () => {
    expect(refusedChanges(cluster('minimal', 'v3.6.16'), [])).toEqual([]);
    expect(refusedChanges(cluster('standard', 'v3.6.16', { etcd: { size: 3, version: 'v3.6.16' } }), [])).toEqual([]);
    expect(refusedChanges(cluster('standard', 'v3.6.16', { etcd: { size: 1, version: 'v3.6.16' } }), [])).toEqual([]);
    expect(refusedChanges(cluster('minimal', 'v3.6.16', { etcd: { size: 3, version: 'v3.6.16' } }), [])[0]).toMatch(
      /^spec.mode: minimal needs 1 etcd members but the running etcd cluster has 3 voting members/,
    );
    expect(refusedChanges(cluster('minimal', 'v3.6.16'), [pod(3)])[0]).toMatch(/set spec.mode back to standard$/);
    expect(refusedChanges(cluster('standard', 'v3.6.16'), [pod(1)])).toEqual([]);
    expect(refusedChanges(cluster('minimal', 'v3.6.17'), [pod(1)])).toEqual([]);
    expect(refusedChanges(cluster('minimal', 'v3.6.15', { etcd: { size: 1, version: 'v3.6.16' } }), [])).toEqual([]);
    expect(refusedChanges(cluster('minimal', 'v3.7.0'), [pod(1)])[0]).toMatch(
      /^spec.etcd.version: changing v3.6.16 to v3.7.0 changes the minor version of etcd.*set it back to a v3.6.x release$/,
    );
    expect(refusedChanges(cluster('minimal', 'v3.5.21', { etcd: { size: 1, version: 'v3.6.16' } }), [])[0]).toMatch(
      /^spec.etcd.version: changing v3.6.16 to v3.5.21/,
    );
  });
});
