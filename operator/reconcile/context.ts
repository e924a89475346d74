// What every reconcile unit works with: the Cluster as read, the caches, the writer, and the facts
// earlier units found out (the apiserver Service's address, the Secrets' hashes).
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { OwnerRef, Writer } from '../kube/apply.ts';
import type { EventSink } from '../kube/events.ts';
import type { InformerSet, OwnedKind } from '../kube/informers.ts';
import type { ControlPlaneSpec } from '../model/control-plane.ts';
import type { Renderer } from '../render/renderer.ts';
import type { Condition, ConditionType, ConditionUpdate } from '../status/conditions.ts';

export interface ClusterSpec extends ControlPlaneSpec {
  certificates?: { validity?: string; renewBefore?: string; caValidity?: string };
  users?: { name: string; groups?: string[]; validity?: string }[];
  paused?: boolean;
}

export interface ClusterStatus {
  observedGeneration?: number;
  phase?: string;
  conditions?: Condition[];
  version?: string;
  endpoint?: string;
  kubeconfigSecretRef?: { name: string; key: string };
  components?: Record<string, { version: string; readyReplicas: number; replicas: number }>;
  etcd?: { members: { name: string; healthy: boolean }[] };
  certificates?: { notAfter?: string; caNotAfter?: string; lastRotation?: string };
}

export interface ClusterObject extends KubernetesObject {
  spec: ClusterSpec;
  status?: ClusterStatus;
}

export interface Settings {
  /** DNS domain of the meta-cluster. */
  metaDnsDomain: string;
}

export interface ReconcileContext {
  cluster: ClusterObject;
  name: string;
  namespace: string;
  generation: number;
  owner: OwnerRef;
  log: Logger;
  now: Date;
  caches: InformerSet;
  writer: Writer;
  renderer: Renderer;
  settings: Settings;
  events: EventSink;
  /** Conditions as this pass computes them. */
  setCondition(type: ConditionType, update: ConditionUpdate): void;
  /** Ask to be run again after `ms` (the earliest request wins). */
  requeueAfter(ms: number): void;
  facts: {
    apiserverAddresses: string[];
    inputHashes: { apiserver: string; controllerManager: string; scheduler: string; etcd: string[] };
    certificates: { notAfter?: Date; caNotAfter?: Date; lastRotation?: Date };
    etcdQuorum: boolean;
    apiserverReady: boolean;
  };
  status: ClusterStatus;
}

export function cached<T extends KubernetesObject>(ctx: ReconcileContext, kind: OwnedKind, name: string): T | undefined {
  return ctx.caches.owned[kind].get(name, ctx.namespace) as T | undefined;
}
