// Leader election on a coordination.k8s.io Lease, so several operator replicas can run and only
// one reconciles. The leader renews every `renewMs`; a candidate takes over a lease that was not
// renewed within its duration. Losing the lease stops this process, as client-go advises: a
// former leader must not keep writing.
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { setTimeout as sleep } from 'node:timers/promises';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds?: number;
  renewMs?: number;
}

export class LeaderElector {
  readonly #api: CoordinationV1Api;
  readonly #o: Required<LeaderElectionOptions>;
  readonly #log: Logger;
  #stopped = false;
  #leader = false;

  constructor(kc: KubeConfig, options: LeaderElectionOptions, log: Logger) {
    this.#api = kc.makeApiClient(CoordinationV1Api);
    this.#o = { leaseDurationSeconds: 15, renewMs: 5000, ...options };
    this.#log = log;
  }

  get isLeader(): boolean {
    return this.#leader;
  }

  async #tryAcquire(): Promise<boolean> {
    const { namespace, name, identity, leaseDurationSeconds } = this.#o;
    const now = new V1MicroTime();
    let lease: V1Lease | undefined;
    try {
      lease = await this.#api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
    }
    if (!lease) {
      await this.#api.createNamespacedLease({ namespace, body: { metadata: { name, namespace }, spec: { holderIdentity: identity, leaseDurationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 } } });
      return true;
    }
    const spec = lease.spec ?? {};
    const renewed = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
    const expired = Date.now() > renewed + (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
    if (spec.holderIdentity !== identity && !expired) return false;
    const takeover = spec.holderIdentity !== identity;
    // the resourceVersion makes this a compare-and-swap: two candidates cannot both win
    await this.#api.replaceNamespacedLease({ name, namespace, body: {
      ...lease,
      spec: { ...spec, holderIdentity: identity, leaseDurationSeconds, renewTime: now, ...(takeover ? { acquireTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}) },
    } });
    return true;
  }

  /** Resolves once this process leads; then keeps renewing, and calls `onLost` if it stops leading. */
  async acquire(onLost: () => void): Promise<void> {
    while (!this.#stopped) {
      const won = await this.#tryAcquire().catch((err: unknown) => {
        this.#log.warn({ err: (err as Error).message }, 'lease attempt failed');
        return false;
      });
      if (won) break;
      await sleep(this.#o.renewMs);
    }
    if (this.#stopped) return;
    this.#leader = true;
    this.#log.info({ lease: `${this.#o.namespace}/${this.#o.name}` }, 'leading');
    void this.#renewLoop(onLost);
  }

  async #renewLoop(onLost: () => void): Promise<void> {
    let lastRenew = Date.now();
    while (!this.#stopped) {
      await sleep(this.#o.renewMs);
      if (this.#stopped) return;
      const ok = await this.#tryAcquire().catch(() => false);
      if (ok) lastRenew = Date.now();
      else if (Date.now() - lastRenew > this.#o.leaseDurationSeconds * 1000) {
        this.#leader = false;
        this.#log.error('lost the lease');
        onLost();
        return;
      }
    }
  }

  /** Gives the lease up so a successor need not wait for it to expire. */
  async release(): Promise<void> {
    this.#stopped = true;
    if (!this.#leader) return;
    this.#leader = false;
    const { namespace, name } = this.#o;
    const lease = await this.#api.readNamespacedLease({ name, namespace }).catch(() => undefined);
    if (lease?.spec?.holderIdentity !== this.#o.identity) return;
    await this.#api.replaceNamespacedLease({ name, namespace, body: { ...lease, spec: { ...lease.spec, holderIdentity: undefined, renewTime: undefined } } }).catch(() => undefined);
  }
}
