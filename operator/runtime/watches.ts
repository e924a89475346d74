// Watches of the Clusters and of every kind a Cluster owns, each a client-node informer that is
// restarted (with backoff) after any watch or list error. Events only say which Cluster to look
// at again: an owned object maps to its Cluster through the kubeonkube.io/cluster label.
import {
  AppsV1Api, BatchV1Api, CoreV1Api, CustomObjectsApi, makeInformer, NetworkingV1Api, type Informer, type KubeConfig, type KubernetesListObject,
  type KubernetesObject, type ObjectCache,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { clusterLabel } from '../model/names.ts';

export const clusterGroup = 'kubeonkube.io';
export const clusterVersion = 'v1alpha1';
export const clusterPlural = 'clusters';

export type OwnedKind = 'Pod' | 'Service' | 'PersistentVolumeClaim' | 'Secret' | 'Deployment' | 'NetworkPolicy' | 'CronJob' | 'Job';

type Cache = Informer<KubernetesObject> & ObjectCache<KubernetesObject>;

export interface InformerSet {
  clusters: ObjectCache<KubernetesObject>;
  owned: Record<OwnedKind, ObjectCache<KubernetesObject>>;
  /** Resolves once every informer has listed successfully once (a failed list does not count). */
  synced: Promise<void>;
  stop(): Promise<void>;
}

const key = (namespace: string | undefined, name: string | undefined) => `${namespace ?? ''}/${name ?? ''}`;

/** What of a Cluster, when it changes, calls for a reconcile: not its status, which we write. */
function specFingerprint(obj: KubernetesObject): string {
  const m = obj.metadata ?? {};
  return JSON.stringify([m.generation, m.annotations ?? {}, m.labels ?? {}, m.deletionTimestamp ?? null, m.finalizers ?? []]);
}

/**
 * `namespace`: watch only Clusters (and what they own) in that namespace; undefined: all of them.
 */
export function startInformers(kc: KubeConfig, log: Logger, enqueue: (clusterKey: string) => void, namespace?: string): InformerSet {
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const networking = kc.makeApiClient(NetworkingV1Api);
  const batch = kc.makeApiClient(BatchV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const labelSelector = clusterLabel;
  const list = <T>(fn: () => Promise<T>) => fn as unknown as () => Promise<KubernetesListObject<KubernetesObject>>;
  // the watch path of a resource, in the one namespace or in all
  const path = (prefix: string, plural: string) => `${prefix}${namespace ? `/namespaces/${namespace}` : ''}/${plural}`;

  const clusters = makeInformer(kc, path(`/apis/${clusterGroup}/${clusterVersion}`, clusterPlural), list(() => namespace
    ? custom.listNamespacedCustomObject({ group: clusterGroup, version: clusterVersion, namespace, plural: clusterPlural })
    : custom.listClusterCustomObject({ group: clusterGroup, version: clusterVersion, plural: clusterPlural })));
  const owned: Record<OwnedKind, Cache> = {
    Pod: makeInformer(kc, path('/api/v1', 'pods'), list(() => (namespace
      ? core.listNamespacedPod({ namespace, labelSelector }) : core.listPodForAllNamespaces({ labelSelector }))), labelSelector),
    Service: makeInformer(kc, path('/api/v1', 'services'), list(() => (namespace
      ? core.listNamespacedService({ namespace, labelSelector }) : core.listServiceForAllNamespaces({ labelSelector }))), labelSelector),
    PersistentVolumeClaim: makeInformer(kc, path('/api/v1', 'persistentvolumeclaims'), list(() => (namespace
      ? core.listNamespacedPersistentVolumeClaim({ namespace, labelSelector }) : core.listPersistentVolumeClaimForAllNamespaces({ labelSelector }))), labelSelector),
    Secret: makeInformer(kc, path('/api/v1', 'secrets'), list(() => (namespace
      ? core.listNamespacedSecret({ namespace, labelSelector }) : core.listSecretForAllNamespaces({ labelSelector }))), labelSelector),
    Deployment: makeInformer(kc, path('/apis/apps/v1', 'deployments'), list(() => (namespace
      ? apps.listNamespacedDeployment({ namespace, labelSelector }) : apps.listDeploymentForAllNamespaces({ labelSelector }))), labelSelector),
    NetworkPolicy: makeInformer(kc, path('/apis/networking.k8s.io/v1', 'networkpolicies'), list(() => (namespace
      ? networking.listNamespacedNetworkPolicy({ namespace, labelSelector }) : networking.listNetworkPolicyForAllNamespaces({ labelSelector }))), labelSelector),
    CronJob: makeInformer(kc, path('/apis/batch/v1', 'cronjobs'), list(() => (namespace
      ? batch.listNamespacedCronJob({ namespace, labelSelector }) : batch.listCronJobForAllNamespaces({ labelSelector }))), labelSelector),
    Job: makeInformer(kc, path('/apis/batch/v1', 'jobs'), list(() => (namespace
      ? batch.listNamespacedJob({ namespace, labelSelector }) : batch.listJobForAllNamespaces({ labelSelector }))), labelSelector),
  };

  const seen = new Map<string, string>();
  const onCluster = (obj: KubernetesObject) => {
    const k = key(obj.metadata?.namespace, obj.metadata?.name);
    const fingerprint = specFingerprint(obj);
    if (seen.get(k) === fingerprint) return; // a status-only update, most likely our own
    seen.set(k, fingerprint);
    enqueue(k);
  };
  clusters.on('add', onCluster);
  clusters.on('update', onCluster);
  clusters.on('delete', (obj) => {
    const k = key(obj.metadata?.namespace, obj.metadata?.name);
    seen.delete(k);
    enqueue(k);
  });
  const onOwned = (obj: KubernetesObject) => {
    const cluster = obj.metadata?.labels?.[clusterLabel];
    if (cluster) enqueue(key(obj.metadata?.namespace, cluster));
  };
  for (const informer of Object.values(owned)) {
    informer.on('add', onOwned);
    informer.on('update', onOwned);
    informer.on('delete', onOwned);
  }

  const all: [string, Cache][] = [['Cluster', clusters], ...Object.entries(owned)];
  let stopped = false;
  const synced = Promise.all(all.map(([kind, informer]) => new Promise<void>((resolve) => {
    let delayMs = 1000;
    // start() resolves after a failed list too; only a list that succeeded leaves a resourceVersion
    const start = () => informer.start().then(() => { if ((informer as unknown as { latestResourceVersion(): string }).latestResourceVersion() !== '') resolve(); }, (e: unknown) => {
      log.error({ kind, err: (e as Error).message }, 'informer start failed');
    });
    informer.on('connect', () => { delayMs = 1000; });
    informer.on('error', (err) => {
      if (stopped) return;
      // e.g. a CRD installed after start answers 429 until its watch cache is ready: retry, backing off
      log.warn({ kind, err: (err as Error)?.message ?? String(err) }, 'watch failed; restarting');
      setTimeout(() => { if (!stopped) void start(); }, delayMs).unref();
      delayMs = Math.min(delayMs * 2, 30_000);
    });
    void start();
  }))).then(() => undefined);

  return {
    clusters,
    owned,
    synced,
    stop: async () => {
      stopped = true;
      await Promise.all(all.map(([, i]) => i.stop()));
    },
  };
}
