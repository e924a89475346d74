// The CRD, installed in the real apiserver, refuses bad Clusters with a message that names the
// field, and the offline validator gives the same answer.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig, repoRoot } from '../../scripts/testbed/config.ts';
import { validate, validateUpdate } from './validate.ts';

const run = promisify(execFile);
const kubectlBinary = join(loadConfig().binDirs.kubernetes, 'kubectl');
const namespace = 'default';

function kubectl(args: string[], input?: object): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      kubectlBinary,
      ['--kubeconfig', inject('metaCluster').kubeconfig, ...args],
      (err, stdout, stderr) => {
        if (err) reject(new Error(stderr || err.message));
        else resolve(stdout);
      },
    );
    if (input) child.stdin?.end(JSON.stringify(input));
  });
}

const base = {
  version: 'v1.34.4',
  etcd: { storage: { claimTemplate: { resources: { requests: { storage: '1Gi' } } } } },
};
const cluster = (name: string, spec: object) => ({
  apiVersion: 'kubeonkube.io/v1alpha1',
  kind: 'Cluster',
  metadata: { name, namespace },
  spec,
});

beforeAll(async () => {
  await run(kubectlBinary, [
    '--kubeconfig',
    inject('metaCluster').kubeconfig,
    'apply',
    '--server-side',
    '-f',
    join(repoRoot, 'crds/kubeonkube.io_clusters.yaml'),
  ]);
  await run(kubectlBinary, [
    '--kubeconfig',
    inject('metaCluster').kubeconfig,
    'wait',
    '--for=condition=Established',
    'crd/clusters.kubeonkube.io',
    '--timeout=60s',
  ]);
});

describe('the Cluster CRD in the apiserver', () => {
  it('accepts a minimal Cluster and fills in the defaults', async () => {
    const out = JSON.parse(
      await kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], cluster('ok', base)),
    ) as { spec: Record<string, unknown> };
    expect(out.spec).toMatchObject({
      mode: 'standard',
      network: { serviceCIDR: '10.96.0.0/12', podCIDR: '10.244.0.0/16', dnsDomain: 'cluster.local' },
      paused: false,
    });
    const offline = validate(cluster('ok', base));
    expect(offline.ok && offline.cluster.spec).toEqual(out.spec);
  });

  it.each([
    ['a malformed version', { ...base, version: '1.34' }, 'spec.version'],
    ['an unknown mode', { ...base, mode: 'huge' }, 'spec.mode'],
    [
      'both storage modes',
      { ...base, etcd: { storage: { ...base.etcd.storage, volumeSource: { emptyDir: {} } } } },
      'exactly one of claimTemplate or volumeSource must be set',
    ],
    [
      'neither storage mode',
      { ...base, etcd: { storage: {} } },
      'exactly one of claimTemplate or volumeSource must be set',
    ],
    ['an invalid CIDR', { ...base, network: { serviceCIDR: '10.96.0.0/33' } }, 'spec.network.serviceCIDR'],
    [
      'overlapping ranges',
      { ...base, network: { serviceCIDR: '10.0.0.0/8', podCIDR: '10.244.0.0/16' } },
      'must not overlap',
    ],
    ['duplicate users', { ...base, users: [{ name: 'alice' }, { name: 'alice' }] }, 'spec.users[1]: Duplicate value'],
    [
      'renewBefore not shorter than validity',
      { ...base, certificates: { validity: '24h', renewBefore: '24h' } },
      'renewBefore must be at least 1m shorter than validity',
    ],
    [
      'a template for a built-in add-on',
      { ...base, addons: [{ name: 'kube-proxy', template: { configMapRef: { name: 'kp' } } }] },
      'kube-proxy and coredns are built in and take no template',
    ],
    [
      'a user named as the tunnel agent',
      { ...base, users: [{ name: 'kubeonkube-tunnel-agent' }] },
      'the name is reserved for an identity of the control plane',
    ],
    [
      'an add-on named tunnel-agent',
      { ...base, addons: [{ name: 'tunnel-agent', template: { configMapRef: { name: 't' } } }] },
      "control-plane and tunnel-agent are the operator's own add-ons",
    ],
  ])('refuses %s, naming the field', async (_what, spec, message) => {
    await expect(kubectl(['create', '--dry-run=server', '-f', '-'], cluster('bad', spec))).rejects.toThrow(message);
    const offline = validate(cluster('bad', spec));
    expect(offline.ok).toBe(false);
    expect(offline.ok ? '' : offline.errors.join('\n')).toContain(
      message.replace(/^spec\.users\[1\]: Duplicate value$/, 'spec.users[1]'),
    );
  });

  it('lets the deletion policy of the claims change, and nothing else of the storage', async () => {
    const name = `upd-${Math.random().toString(36).slice(2, 8)}`;
    await kubectl(['create', '-f', '-'], cluster(name, base));
    try {
      const changed = { ...base, etcd: { storage: { ...base.etcd.storage, deletionPolicy: 'Delete' } } };
      await kubectl(['replace', '--dry-run=server', '-f', '-'], cluster(name, changed));
      expect(validateUpdate(cluster(name, base), cluster(name, changed)).ok).toBe(true);
    } finally {
      await kubectl(['delete', 'cluster', name, '-n', namespace]);
    }
  });

  it.each([
    ['a downgrade', { ...base, version: 'v1.34.3' }, 'version must not be downgraded (from v1.34.4 to v1.34.3)'],
    [
      'a skip of a minor version',
      { ...base, version: 'v1.36.0' },
      'version may only move up one minor version at a time (from v1.34.4 to v1.36.0)',
    ],
    [
      'a change of storage mode',
      { ...base, etcd: { storage: { volumeSource: { emptyDir: {} } } } },
      'etcd storage cannot change after creation',
    ],
    [
      "a change of the claims' size",
      { ...base, etcd: { storage: { claimTemplate: { resources: { requests: { storage: '2Gi' } } } } } },
      'etcd storage cannot change after creation',
    ],
  ])('refuses on update %s', async (_what, spec, message) => {
    const name = `upd-${Math.random().toString(36).slice(2, 8)}`;
    await kubectl(['create', '-f', '-'], cluster(name, base));
    try {
      await expect(kubectl(['replace', '--dry-run=server', '-f', '-'], cluster(name, spec))).rejects.toThrow(message);
      const offline = validateUpdate(cluster(name, base), cluster(name, spec));
      expect(offline.ok ? '' : offline.errors.join('\n')).toContain(message);
    } finally {
      await kubectl(['delete', 'cluster', name, '-n', namespace]);
    }
  });
});
