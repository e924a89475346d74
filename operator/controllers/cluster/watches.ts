// What the Cluster controller watches: Clusters, and the kinds of objects a Cluster makes in its
// namespace of the meta-cluster, each mapped back to its Cluster through the kubeonkube.io/cluster
// label (only labelled objects are listed and cached).
import type { KubernetesObject } from '@kubernetes/client-node';
import type { KindRef, WatchSet, WatchSpec } from '../../runtime/watches.ts';
import { clusterResource } from '../../api/cluster.generated.ts';
import { clusterLabel } from '../../names/cluster-names.ts';

export const clusterKind: KindRef = {
  apiVersion: clusterResource.apiVersion,
  kind: clusterResource.kind,
  plural: clusterResource.plural,
};

const owned = {
  Pod: { apiVersion: 'v1', kind: 'Pod', plural: 'pods' },
  Service: { apiVersion: 'v1', kind: 'Service', plural: 'services' },
  PersistentVolumeClaim: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', plural: 'persistentvolumeclaims' },
  Secret: { apiVersion: 'v1', kind: 'Secret', plural: 'secrets' },
  Deployment: { apiVersion: 'apps/v1', kind: 'Deployment', plural: 'deployments' },
  NetworkPolicy: { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', plural: 'networkpolicies' },
  CronJob: { apiVersion: 'batch/v1', kind: 'CronJob', plural: 'cronjobs' },
  Job: { apiVersion: 'batch/v1', kind: 'Job', plural: 'jobs' },
} as const satisfies Record<string, KindRef>;

export type OwnedKind = keyof typeof owned;

/** The apiVersion of an owned kind (what a delete or an apply of it names). */
export const apiVersionOf = (kind: OwnedKind): string => owned[kind].apiVersion;

export const clusterWatches: WatchSpec<OwnedKind> = {
  primary: clusterKind,
  owned,
  ownedSelector: clusterLabel,
  ownerName: (obj: KubernetesObject) => obj.metadata?.labels?.[clusterLabel],
};

/** The caches the Cluster controller reads. */
export type ClusterCaches = WatchSet<OwnedKind>;
