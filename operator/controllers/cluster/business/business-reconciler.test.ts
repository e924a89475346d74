// The business wing's loop with fakes for what it reads (no business cluster is reached: etcd has
// no quorum in these reports, so the wing stops before dialling one).
import type { KubernetesObject, ObjectCache } from '@kubernetes/client-node';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { withDefaults } from '../../../api/defaults.ts';
import type { Writer } from '../../../kube/apply.ts';
import type { Renderer } from '../../../render/renderer.ts';
import { defaultPolicy } from '../policy.ts';
import type { ClusterObject } from '../context.ts';
import type { ClusterCaches } from '../watches.ts';
import { BusinessReconciler } from './business-reconciler.ts';
import { ClusterReports, type ControlPlaneReport } from './reports.ts';

const spec = (extra: object = {}) =>
  withDefaults({ version: 'v1.34.4', etcd: { storage: { volumeSource: { emptyDir: {} } } }, ...extra });

function cacheOf(objects: KubernetesObject[]): ObjectCache<KubernetesObject> {
  return {
    get: (name, namespace) => objects.find((o) => o.metadata?.name === name && o.metadata?.namespace === namespace),
    list: (namespace) => objects.filter((o) => namespace === undefined || o.metadata?.namespace === namespace),
  };
}

function wing(live: ClusterObject) {
  const woken: string[] = [];
  const reports = new ClusterReports({ business: () => undefined, controlPlane: (key) => woken.push(key) });
  const empty = cacheOf([]);
  const caches = {
    primary: cacheOf([live]),
    owned: new Proxy({}, { get: () => empty }),
    synced: Promise.resolve(),
    keys: () => ['t/c'],
    stop: () => Promise.resolve(),
  } as unknown as ClusterCaches;
  const reconciler = new BusinessReconciler({
    caches,
    reports,
    writer: {} as Writer,
    renderer: {} as Renderer,
    settings: {
      metaDnsDomain: 'cluster.local',
      policy: defaultPolicy,
      etcdReplaceUnhealthyAfterMs: 1,
      operatorImage: 'x',
    },
    log: pino({ level: 'silent' }),
    events: () => ({ normal: () => undefined, warning: () => undefined }),
    configMap: () => Promise.resolve(undefined),
  });
  return { reports, reconciler, woken };
}

const report = (accepted: ControlPlaneReport['spec']): ControlPlaneReport => ({
  generation: 1,
  spec: accepted,
  etcdQuorum: false,
  apiserverReady: false,
  apiserverAddresses: [],
  endpoint: undefined,
  tunnelAddresses: [],
  tunnelEndpoint: undefined,
  apiserverPods: [],
  tunnelAgentSecret: undefined,
  bootstrapToken: undefined,
  previousBootstrapToken: undefined,
  ca: undefined,
  kubeletServingCa: undefined,
});

const cluster = (s: ClusterObject['spec']): ClusterObject => ({
  apiVersion: 'kubeonkube.io/v1alpha1',
  kind: 'Cluster',
  metadata: { name: 'c', namespace: 't', uid: 'u', generation: 2 },
  spec: s,
});

describe('the business wing', () => {
  it('waits for the control-plane pass to report first', async () => {
    const { reports, reconciler } = wing(cluster(spec()));
    expect(await reconciler.reconcile('t/c')).toBeUndefined();
    expect(reports.business('t/c')).toBeUndefined();
  });

  it('builds from the spec the control-plane pass accepted, not from a newer one it refused', async () => {
    // the live spec switches the tunnel off (say, refused by the policy); the accepted one has it
    const { reports, reconciler, woken } = wing(cluster(spec({ tunnel: { enabled: false } })));
    reports.publishControlPlane('t/c', report(spec()));
    await reconciler.reconcile('t/c');
    expect(reports.business('t/c')?.conditions).toEqual({
      AddonsReady: { status: 'Unknown', reason: 'WaitingForEtcd', message: 'waiting for etcd quorum' },
      TunnelConnected: { status: 'Unknown', reason: 'WaitingForEtcd', message: 'waiting for etcd quorum' },
    });
    expect(woken).toEqual(['t/c']);
  });

  it('wakes the control-plane pass only when what it found changed', async () => {
    const { reports, reconciler, woken } = wing(cluster(spec()));
    reports.publishControlPlane('t/c', report(spec()));
    await reconciler.reconcile('t/c');
    await reconciler.reconcile('t/c');
    expect(woken).toEqual(['t/c']);
  });

  it('does nothing for a paused Cluster', async () => {
    const { reports, reconciler } = wing(cluster(spec({ paused: true })));
    reports.publishControlPlane('t/c', report(spec()));
    await reconciler.reconcile('t/c');
    expect(reports.business('t/c')).toBeUndefined();
  });
});
