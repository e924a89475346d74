// What every job of the business wing works with: the Cluster as read, what the control-plane pass
// reported, the client of the business cluster, and the report this pass is building.
import type { V1ConfigMap } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { BusinessApplier } from '../../../business/applier.ts';
import type { BusinessClient } from '../../../business/clients.ts';
import type { OwnerRef, Writer } from '../../../kube/apply.ts';
import type { EventSink } from '../../../kube/events.ts';
import type { Renderer } from '../../../render/renderer.ts';
import type { ConditionUpdate } from '../conditions.ts';
import type { ClusterObject, Settings } from '../context.ts';
import type { ClusterCaches } from '../watches.ts';
import type { BusinessCondition, BusinessReport, ControlPlaneReport } from './reports.ts';

export interface BusinessContext {
  cluster: ClusterObject;
  name: string;
  namespace: string;
  owner: OwnerRef;
  log: Logger;
  now: Date;
  /** The meta-cluster's objects of the Cluster (the tunnel agent's Secret, the apiserver Pods). */
  caches: ClusterCaches;
  /** What the control-plane pass last reported. */
  inputs: ControlPlaneReport;
  renderer: Renderer;
  settings: Settings;
  /** Counts the writes into the business cluster, and refuses them once this replica may not write. */
  writer: Writer;
  events: EventSink;
  /** A ConfigMap of the Cluster's namespace (custom add-on templates); undefined when there is none. */
  configMap(name: string): Promise<V1ConfigMap | undefined>;
  setCondition(type: BusinessCondition, update: ConditionUpdate): void;
  /** Ask to be run again after `ms` (the earliest request wins). */
  requeueAfter(ms: number): void;
  /** What this pass found out, for the control-plane pass. */
  report: BusinessReport;
}

/** A job's view once the business cluster answers: its client and the applier over it. */
export interface BusinessSession {
  client: BusinessClient;
  applier: BusinessApplier;
}
