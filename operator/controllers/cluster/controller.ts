// The Cluster controller as the operator registers it: its watches, and two loops with a queue
// each: the control-plane pass over the meta-cluster's objects and the business wing in the
// business cluster. Made from a kubeconfig, the guarded writer and the settings. main.ts and the controller's
// integration tests build it the same way.
import { CoreV1Api, CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { EtcdConnections } from '../../etcd/connections.ts';
import type { Writer } from '../../kube/apply.ts';
import { eventRecorder } from '../../kube/events.ts';
import type { MetricFamily } from '../../observability/http-server.ts';
import { Renderer } from '../../render/renderer.ts';
import { Controller } from '../../runtime/controller.ts';
import { startWatches } from '../../runtime/watches.ts';
import { BusinessReconciler } from './business/business-reconciler.ts';
import { ClusterReports } from './business/reports.ts';
import { ClusterReconciler } from './cluster-reconciler.ts';
import type { Settings } from './context.ts';
import { validateCluster } from './validation.ts';
import { clusterWatches, type ClusterCaches } from './watches.ts';
import { isReady } from '../../kube/ready.ts';

export interface ClusterControllerOptions {
  kc: KubeConfig;
  writer: Writer;
  log: Logger;
  settings: Settings;
  workers: number;
  /** Workers of the business wing's queue. */
  businessWorkers: number;
  passDeadlineMs: number;
  /** Only the Clusters of this namespace; undefined: all. */
  namespace?: string | undefined;
}

export interface ClusterController {
  /** The control-plane pass (meta-cluster objects). */
  controller: Controller;
  /** The business wing (the business cluster, through its apiserver). */
  business: Controller;
  caches: ClusterCaches;
  /** The Cluster controller's own metrics (certificates, passes, etcd), beside the runtime's. */
  metrics(): MetricFamily[];
  stop(): Promise<void>;
}

export function clusterController(options: ClusterControllerOptions): ClusterController {
  const { kc, writer, log } = options;
  // keys queued before the workers start wait for them
  const controller = new Controller({
    name: 'cluster',
    workers: options.workers,
    passDeadlineMs: options.passDeadlineMs,
    log,
    reconcile: (key) => reconciler.reconcile(key),
    keys: () => caches.keys(),
  });
  const business = new Controller({
    name: 'cluster-business',
    workers: options.businessWorkers,
    passDeadlineMs: options.passDeadlineMs,
    log,
    reconcile: (key) => wing.reconcile(key),
    keys: () => caches.keys(),
  });
  // the control-plane pass wakes the wing with what it found, and the wing wakes it back
  const reports = new ClusterReports({
    business: (key) => business.enqueue(key),
    controlPlane: (key) => controller.enqueue(key),
  });
  const caches = startWatches(kc, log, clusterWatches, (key) => controller.enqueue(key), options.namespace);
  const etcd = new EtcdConnections();
  // reads of the meta-cluster beside the informers: nodes (NodePort endpoints) and add-on templates
  const core = kc.makeApiClient(CoreV1Api);
  const renderer = new Renderer();
  const events = eventRecorder(kc, writer, log);
  const reconciler = new ClusterReconciler({
    caches,
    writer,
    renderer,
    settings: options.settings,
    etcd,
    log,
    events,
    reports,
    validate: validateCluster,
    custom: kc.makeApiClient(CustomObjectsApi),
    nodes: async () =>
      (await core.listNode()).items.map((n) => ({
        name: n.metadata?.name ?? '',
        addresses: (n.status?.addresses ?? []).map((a) => ({ type: a.type, address: a.address })),
        ready: isReady(n),
      })),
  });
  const wing = new BusinessReconciler({
    caches,
    reports,
    writer,
    renderer,
    settings: options.settings,
    log,
    events,
    configMap: async (namespace, name) => {
      try {
        return await core.readNamespacedConfigMap({ namespace, name });
      } catch (err) {
        if ((err as { code?: number }).code === 404) return undefined;
        throw err;
      }
    },
  });

  const metrics = (): MetricFamily[] => [
    {
      name: 'kubeonkube_cluster_last_pass_seconds',
      help: 'How long the last pass over a cluster took.',
      type: 'gauge',
      samples: [...reconciler.stats.lastPassSeconds].map(([cluster, value]) => ({ labels: { cluster }, value })),
    },
    {
      name: 'kubeonkube_certificate_expires_in_seconds',
      help: 'Seconds until a certificate (a leaf or a CA, by its Secret) of a cluster expires.',
      type: 'gauge',
      samples: [...reconciler.stats.certificateExpiry].flatMap(([cluster, ends]) =>
        [...ends].map(([certificate, at]) => ({
          labels: { cluster, certificate },
          value: Math.round((at - Date.now()) / 1000),
        })),
      ),
    },
    {
      name: 'kubeonkube_etcd_membership_calls_total',
      help: 'Membership calls made to etcd (add, promote, remove), by result (ok, refused).',
      type: 'counter',
      samples: [...etcd.calls].map(([key, value]) => {
        const [call = '', result = ''] = key.split('/');
        return { labels: { call, result }, value };
      }),
    },
    {
      name: 'kubeonkube_etcd_members',
      help: 'Members etcd lists, per cluster.',
      type: 'gauge',
      samples: [...etcd.clusters].map(([cluster, m]) => ({ labels: { cluster }, value: m.members })),
    },
    {
      name: 'kubeonkube_etcd_healthy_members',
      help: 'Members that answered their last status request healthy, per cluster.',
      type: 'gauge',
      samples: [...etcd.clusters].map(([cluster, m]) => ({ labels: { cluster }, value: m.healthyMembers })),
    },
    {
      name: 'kubeonkube_etcd_learners',
      help: 'Learners (members not voting yet), per cluster.',
      type: 'gauge',
      samples: [...etcd.clusters].map(([cluster, m]) => ({ labels: { cluster }, value: m.learners })),
    },
    {
      name: 'kubeonkube_etcd_db_size_bytes',
      help: 'Largest database size a member reports, per cluster.',
      type: 'gauge',
      samples: [...etcd.clusters].map(([cluster, m]) => ({ labels: { cluster }, value: m.dbSizeBytes })),
    },
    {
      name: 'kubeonkube_etcd_has_leader',
      help: '1 when a member reports a leader, per cluster.',
      type: 'gauge',
      samples: [...etcd.clusters].map(([cluster, m]) => ({ labels: { cluster }, value: Number(m.hasLeader) })),
    },
    {
      name: 'kubeonkube_etcd_snapshot_age_seconds',
      help: 'Age of the newest snapshot spec.etcd.backup took, per cluster.',
      type: 'gauge',
      samples: [...etcd.snapshots].map(([cluster, at]) => ({
        labels: { cluster },
        value: Math.max(0, Math.round((Date.now() - at) / 1000)),
      })),
    },
  ];

  return {
    controller,
    business,
    caches,
    metrics,
    stop: async () => {
      await caches.stop();
      etcd.close();
    },
  };
}
