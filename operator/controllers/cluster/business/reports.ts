// What the Cluster's two loops tell each other. The control-plane pass (meta-cluster objects) and
// the business wing (the business cluster, through its apiserver) run in queues of their own, so a
// slow business apiserver never holds up the control plane. Each publishes a typed record named
// after itself; a record that changed wakes the other loop. Records live in memory only: each is
// worked out again by every pass of its producer, so a restarted operator loses nothing.
import { objectHash } from '../../../kube/apply.ts';
import type { BootstrapToken } from '../../../model/addons.ts';
import type { AuthorityState } from '../../../pki/ca-rotation.ts';
import type { ConditionUpdate } from '../conditions.ts';
import type { ClusterSpec } from '../context.ts';

/** What the control-plane pass found out that the business wing needs. */
export interface ControlPlaneReport {
  /** The Cluster's generation the pass worked from (a new spec wakes the wing). */
  generation: number;
  /**
   * The spec the pass accepted (valid, allowed by the policy, no change refused): the wing builds
   * from it, never from a spec the control plane has not taken yet.
   */
  spec: ClusterSpec;
  etcdQuorum: boolean;
  apiserverReady: boolean;
  /** Addresses of the apiserver Service (the wing dials the first). */
  apiserverAddresses: string[];
  /** Where clients outside the meta-cluster reach the apiserver; undefined while unknown. */
  endpoint: { host: string; port: number } | undefined;
  /** Addresses of the tunnel Service, and where agents reach it. */
  tunnelAddresses: string[];
  tunnelEndpoint: { host: string; port: number } | undefined;
  bootstrapToken: BootstrapToken | undefined;
  /** The token before the last renewal, accepted until it expires. */
  previousBootstrapToken: { id: string; expires: string } | undefined;
  /** The apiserver Pods not on their way out, and which are ready (agents are told of every one). */
  apiserverPods: { name: string; ready: boolean }[];
  /** The resourceVersion of the tunnel agent's Secret (renewed certificates go to the agents). */
  tunnelAgentSecret: string | undefined;
  /** The cluster CA (the wing's client identity, the apiserver's trust) and the kubelet-serving CA. */
  ca: AuthorityState | undefined;
  kubeletServingCa: AuthorityState | undefined;
}

/** Business-cluster conditions of a Cluster: the wing's to work out. */
export type BusinessCondition = 'AddonsReady' | 'TunnelConnected';

/** What the business wing found out in the business cluster. */
export interface BusinessReport {
  conditions: Partial<Record<BusinessCondition, ConditionUpdate>>;
  /** Connected agents as the tunnel servers count them (the fewest any ready server holds); undefined: not known. */
  tunnelAgents?: number | undefined;
  /** The business cluster's nodes; undefined when they could not all be listed. */
  nodes?: string[] | undefined;
  /**
   * While a CA rotation signs: the nodes whose kubelet client and serving certificates the CSRs
   * show signed by the new CAs, and those CAs (a report about other CAs is not evidence).
   */
  kubeletRenewals?: { client: string[]; serving: string[]; clientCa: string; servingCa: string } | undefined;
}

/** The latest record per Cluster key, by content: a record published again unchanged wakes nobody. */
class Latest<T> {
  readonly #records = new Map<string, { hash: string; record: T }>();
  readonly #onChange: (key: string) => void;

  constructor(onChange: (key: string) => void) {
    this.#onChange = onChange;
  }

  publish(key: string, record: T): void {
    const hash = objectHash(record);
    if (this.#records.get(key)?.hash === hash) return;
    this.#records.set(key, { hash, record });
    this.#onChange(key);
  }

  get(key: string): T | undefined {
    return this.#records.get(key)?.record;
  }

  forget(key: string): void {
    this.#records.delete(key);
  }
}

/** The latest record of each loop, per Cluster key; a changed one queues the other loop's pass. */
export class ClusterReports {
  readonly #controlPlane: Latest<ControlPlaneReport>;
  readonly #business: Latest<BusinessReport>;

  constructor(wake: { business: (key: string) => void; controlPlane: (key: string) => void }) {
    this.#controlPlane = new Latest(wake.business);
    this.#business = new Latest(wake.controlPlane);
  }

  publishControlPlane(key: string, report: ControlPlaneReport): void {
    this.#controlPlane.publish(key, report);
  }

  controlPlane(key: string): ControlPlaneReport | undefined {
    return this.#controlPlane.get(key);
  }

  publishBusiness(key: string, report: BusinessReport): void {
    this.#business.publish(key, report);
  }

  business(key: string): BusinessReport | undefined {
    return this.#business.get(key);
  }

  /** The Cluster is gone. */
  forget(key: string): void {
    this.#controlPlane.forget(key);
    this.#business.forget(key);
  }
}
