// What every reconcile unit works with: the Cluster as read, the caches, the writer, and the facts
// earlier units found out (the apiserver Service's address, the Secrets' hashes).
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describeOwner, isOwnedBy, OwnershipConflict, type OwnerRef, type Writer } from '../../kube/apply.ts';
import type { ClusterReports } from './business/reports.ts';
import type { EtcdConnections } from '../../etcd/connections.ts';
import type { EventSink } from '../../kube/events.ts';
import type { ClusterCaches, OwnedKind } from './watches.ts';
import type { BootstrapToken } from '../../model/addons.ts';
import type * as api from '../../api/cluster.generated.ts';
import type { AuthorityState } from '../../pki/ca-rotation.ts';
import type { Authority } from '../../pki/cluster-pki.ts';
import type { Renderer } from '../../render/renderer.ts';
import type { Policy } from './policy.ts';
import type { ConditionType, ConditionUpdate } from './conditions.ts';

/** The Cluster's spec and status as the CRD defines them (generated; defaults applied by the apiserver). */
export type ClusterSpec = api.ClusterSpec;
export type ClusterStatus = api.ClusterStatus;
export type CaRotationStatus = api.ClusterStatusCertificatesCaRotation;

export interface ClusterObject extends KubernetesObject {
  spec: ClusterSpec;
  status?: ClusterStatus;
}

export interface Settings {
  /** DNS domain of the meta-cluster. */
  metaDnsDomain: string;
  /** Namespace the operator runs in (in-cluster); its pods may reach etcd through the NetworkPolicy. */
  operatorNamespace?: string | undefined;
  /** What a Cluster may ask for (images, etcd volume sources). */
  policy: Policy;
  /** An etcd member unhealthy this long is replaced (when quorum allows). */
  etcdReplaceUnhealthyAfterMs: number;
  /** The operator's own image: snapshot Jobs run it. */
  operatorImage: string;
}

/** An object the Cluster wants to exist, by kind and name. */
export interface ObjectRef {
  kind: OwnedKind;
  name: string;
}

export interface ReconcileContext {
  cluster: ClusterObject;
  name: string;
  namespace: string;
  generation: number;
  owner: OwnerRef;
  log: Logger;
  now: Date;
  caches: ClusterCaches;
  writer: Writer;
  renderer: Renderer;
  settings: Settings;
  events: EventSink;
  /** Clients of each Cluster's etcd, and what is remembered of its members between passes. */
  etcd: EtcdConnections;
  /** What this pass and the business wing tell each other. */
  reports: ClusterReports;
  /** The meta-cluster's nodes with their addresses and readiness (read on demand: NodePort endpoints and stuck Pods need them). */
  nodes(): Promise<{ name: string; addresses: { type: string; address: string }[]; ready: boolean }[]>;
  /** Conditions as this pass computes them. */
  setCondition(type: ConditionType, update: ConditionUpdate): void;
  /** Ask to be run again after `ms` (the earliest request wins). */
  requeueAfter(ms: number): void;
  /** What the units found out this pass, one record per unit that produces it (earlier units feed later ones). */
  facts: UnitFacts;
  status: ClusterStatus;
}

/** What the apiserver-service unit found: where the apiserver and the tunnel are reached. */
export interface ApiserverServiceFacts {
  /** Addresses of the apiserver Service. */
  addresses: string[];
  /** Where clients outside the meta-cluster reach the apiserver; undefined while unknown (a load balancer without ingress). */
  endpoint?: { host: string; port: number } | undefined;
  /** Addresses of the tunnel Service, and where agents outside the meta-cluster reach it. */
  tunnelAddresses?: string[];
  tunnelEndpoint?: { host: string; port: number } | undefined;
}

/** What the PKI unit found and made. */
export interface PkiFacts {
  /** Content hashes of what each component mounts; a change rolls its Pods. */
  inputHashes: { apiserver: string; controllerManager: string; scheduler: string; etcd: string[] };
  /** `expiries`: the end of each certificate, by its Secret's name (for the metrics). */
  certificates: { notAfter?: Date; caNotAfter?: Date; lastRotation?: Date; expiries: Map<string, Date> };
  /** Each CA as its Secret holds it (signer, the one coming or going), once read. */
  authorities?: Record<Authority, AuthorityState>;
  /** Every certificate was found as it should be and none was written this pass. */
  current: boolean;
  /** The immutable copy of the apiserver's kubelet client Secret that its Pods mount, once made. */
  kubeletClientSecret?: string | undefined;
}

/** What the etcd unit found. */
export interface EtcdFacts {
  quorum: boolean;
  /** The (single) member lost its data: nothing may serve from the apiserver's cache. */
  dataLost: boolean;
  /** Every member runs the current template, healthy and voting, and no membership change is under way. */
  current: boolean;
}

/** What the deployments unit found. */
export interface DeploymentFacts {
  apiserverReady: boolean;
  /** Each Deployment runs the current template on every replica. */
  rolledOut: { apiServer: boolean; controllerManager: boolean; scheduler: boolean };
}

/** What the join unit read or made. */
export interface JoinFacts {
  bootstrapToken?: BootstrapToken | undefined;
  /** The token before the last renewal, accepted until it expires. */
  previousBootstrapToken?: { id: string; expires: string } | undefined;
}

/** What the business wing last reported, as far as the CA rotation needs it. */
export interface BusinessFacts {
  /** The business cluster's nodes (undefined: not known). */
  nodes?: string[] | undefined;
  /** While a CA signs: the nodes whose kubelet client and serving certificates the new CAs signed. */
  kubeletRenewals?: { client: string[]; serving: string[] } | undefined;
}

export interface UnitFacts {
  apiserverService: ApiserverServiceFacts;
  pki: PkiFacts;
  etcd: EtcdFacts;
  deployments: DeploymentFacts;
  join: JoinFacts;
  business: BusinessFacts;
}

/** The facts before any unit ran: nothing known, nothing ready. */
export function initialFacts(): UnitFacts {
  return {
    apiserverService: { addresses: [] },
    pki: {
      inputHashes: { apiserver: '', controllerManager: '', scheduler: '', etcd: [] },
      certificates: { expiries: new Map() },
      current: false,
    },
    etcd: { quorum: false, dataLost: false, current: false },
    deployments: { apiserverReady: false, rolledOut: { apiServer: false, controllerManager: false, scheduler: false } },
    join: {},
    business: {},
  };
}

/**
 * The cached object of that kind and name, if this Cluster owns it; undefined if none exists. One
 * that exists but belongs to someone else is an OwnershipConflict: never read, never adopted.
 */
export function cached<T extends KubernetesObject>(
  ctx: Pick<ReconcileContext, 'caches' | 'namespace' | 'owner'>,
  kind: OwnedKind,
  name: string,
): T | undefined {
  const live = ctx.caches.owned[kind].get(name, ctx.namespace) as T | undefined;
  if (live && !isOwnedBy(live, ctx.owner.uid)) throw new OwnershipConflict(kind, name, describeOwner(live));
  return live;
}
