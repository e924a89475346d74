// What every reconcile unit works with: the Cluster as read, the caches, the writer, and the facts
// earlier units found out (the apiserver Service's address, the Secrets' hashes).
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describeOwner, isOwnedBy, OwnershipConflict, type OwnerRef, type Writer } from '../../kube/apply.ts';
import type { ClusterReports } from './business/reports.ts';
import type { EtcdConnections } from '../../etcd/connections.ts';
import type { EventSink } from '../../kube/events.ts';
import type { ClusterCaches, OwnedKind } from './watches.ts';
import type { AddonSpec, BootstrapToken } from '../../model/addons.ts';
import type { ControlPlaneSpec } from '../../model/control-plane.ts';
import type { AuthorityState } from '../../pki/ca-rotation.ts';
import type { Authority } from '../../pki/cluster-pki.ts';
import type { Renderer } from '../../render/renderer.ts';
import type { Policy } from './policy.ts';
import type { Condition, ConditionType, ConditionUpdate } from './conditions.ts';

export interface ClusterSpec extends ControlPlaneSpec {
  certificates?: { validity?: string; renewBefore?: string; caValidity?: string; kubeletValidity?: string };
  users?: { name: string; groups?: string[]; validity?: string }[];
  addons?: AddonSpec[];
  paused?: boolean;
  /** Where the nodes' addresses are (kubelet serving certificates name nothing else). */
  nodeNetworks?: string[];
}

export interface ClusterStatus {
  observedGeneration?: number;
  phase?: string;
  conditions?: Condition[];
  version?: string;
  endpoint?: string;
  kubeconfigSecretRef?: { name: string; key: string };
  components?: Record<string, { version: string; readyReplicas: number; replicas: number }>;
  etcd?: {
    /** Every member etcd lists, by the name of its slot. */
    members?: { name: string; id: string; peerURL: string; healthy: boolean; learner: boolean }[];
    leader?: string;
    /** The last change of the membership or of a member the operator made. */
    lastChange?: { time: string; action: 'add' | 'promote' | 'remove' | 'restart' | 'move-leader'; member: string; reason: string } | undefined;
    /** The etcd cluster was formed once: a member never starts empty as a new cluster again. */
    initialized?: boolean;
    /** Voting members the apiserver is pointed at (members 0 to size-1); grows once a growth completed. */
    size?: number;
    /** The etcd version every member runs (the one they were created with until all of them report another). */
    version?: string;
    /** Every member was restored from spec.etcd.restoreFrom: never again. */
    restored?: boolean;
    /** The newest snapshot spec.etcd.backup took. */
    lastSnapshot?: { time: string; file: string; sizeBytes: number; revision: number };
  };
  certificates?: {
    notAfter?: string;
    caNotAfter?: string;
    lastRotation?: string;
    /** The last kubeonkube.io/renew-certificates value honoured, and when. */
    forcedRenewal?: { request: string; time: string };
    /** The CA rotation asked for by kubeonkube.io/rotate-ca: where it stands. */
    caRotation?: CaRotationStatus;
  };
  /** The reverse tunnel as the tunnel servers see it. */
  tunnel?: { agents: number };
}

export interface CaRotationStatus {
  request: string;
  phase: 'Trusting' | 'Signing' | 'Dropping' | 'Completed' | 'Refused';
  message: string;
  started?: string;
  completed?: string;
  /** The business cluster's kubelets moving to the new cluster CA (from Signing on). */
  kubelets?: KubeletRenewals;
}

/**
 * Which kubelets hold certificates of the new cluster CA: the evidence is the business cluster's
 * CSRs, which it deletes an hour after issuing them, so what was seen is kept here.
 */
export interface KubeletRenewals {
  /** Nodes the business cluster has. */
  nodes: number;
  /** Of them, those whose client and serving certificates both come from the new CA. */
  renewed: number;
  /** Nodes seen with a client certificate of the new CA (while signing). */
  client?: string[];
  /** Nodes seen with a serving certificate of the new CA (while signing). */
  serving?: string[];
}

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
  facts: {
    apiserverAddresses: string[];
    /** Where clients outside the meta-cluster reach the apiserver; undefined while unknown (a load balancer without ingress). */
    endpoint?: { host: string; port: number } | undefined;
    /** Addresses of the tunnel Service, and where agents outside the meta-cluster reach it. */
    tunnelAddresses?: string[];
    tunnelEndpoint?: { host: string; port: number } | undefined;
    /** The (single) etcd member lost its data: nothing may serve from the apiserver's cache. */
    etcdDataLost: boolean;
    inputHashes: { apiserver: string; controllerManager: string; scheduler: string; etcd: string[] };
    /** `expiries`: the end of each certificate, by its Secret's name (for the metrics). */
    certificates: { notAfter?: Date; caNotAfter?: Date; lastRotation?: Date; expiries: Map<string, Date> };
    etcdQuorum: boolean;
    apiserverReady: boolean;
    /** Each CA as its Secret holds it (signer, the one coming or going), once the PKI unit read them. */
    authorities?: Record<Authority, AuthorityState>;
    /** The PKI unit found every certificate as it should be and wrote none this pass. */
    certificatesCurrent: boolean;
    /** Each Deployment runs the current template on every replica. */
    rolledOut: { apiServer: boolean; controllerManager: boolean; scheduler: boolean };
    /** Every etcd member runs the current template, healthy and voting, and no membership change is under way. */
    etcdCurrent: boolean;
    /** The bootstrap token of the join Secret, once the join unit read or made it. */
    bootstrapToken?: BootstrapToken | undefined;
    /** The immutable copy of the apiserver's kubelet client Secret that its Pods mount, once made (see the PKI unit). */
    kubeletClientSecret?: string | undefined;
    /** Names of the nodes the business cluster has, once the add-ons unit listed them this pass (undefined: not known). */
    businessNodes?: string[] | undefined;
    /**
     * While the cluster CA is in its signing phase: the nodes whose kubelet client and serving
     * certificates, signed by the new CA, the business cluster's CSRs show this pass.
     */
    kubeletRenewals?: { client: string[]; serving: string[] } | undefined;
    /** The token before the last renewal, accepted until it expires. */
    previousBootstrapToken?: { id: string; expires: string } | undefined;
  };
  status: ClusterStatus;
}

/**
 * The cached object of that kind and name, if this Cluster owns it; undefined if none exists. One
 * that exists but belongs to someone else is an OwnershipConflict: never read, never adopted.
 */
export function cached<T extends KubernetesObject>(ctx: Pick<ReconcileContext, 'caches' | 'namespace' | 'owner'>, kind: OwnedKind, name: string): T | undefined {
  const live = ctx.caches.owned[kind].get(name, ctx.namespace) as T | undefined;
  if (live && !isOwnedBy(live, ctx.owner.uid)) throw new OwnershipConflict(kind, name, describeOwner(live));
  return live;
}
