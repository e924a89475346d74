// Leader election on a coordination.k8s.io Lease, with client-go's timings: a lease of 15 s, a
// renew deadline of 10 s, a retry period of 2 s. Several operator replicas can run; one leads.
//
// Safety rests on time, not on the event loop: `mayWrite()` is true only while the last successful
// renewal was sent less than the renew deadline ago (monotonic clock). A leader that was paused
// (SIGSTOP, a long GC, a starved node) therefore refuses every write the moment it resumes, before
// any timer of its own runs, and a candidate takes over only a lease that it has seen unchanged for
// a whole lease duration (its own clock, so clock skew between replicas does not matter). The
// renew deadline being shorter than the lease is what makes the two never overlap.
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { setTimeout as sleep } from 'node:timers/promises';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseDurationSeconds?: number;
  renewDeadlineMs?: number;
  retryMs?: number;
}

export class LeaderElector {
  readonly #api: CoordinationV1Api;
  readonly #o: Required<LeaderElectionOptions>;
  readonly #log: Logger;
  #stopped = false;
  #leader = false;
  /** Monotonic time at which the last successful renewal was sent. */
  #renewedAt = -Infinity;
  /** The lease record as last seen, and when (monotonic), to judge another holder's expiry. */
  #observed = { record: '', at: 0 };

  constructor(kc: KubeConfig, options: LeaderElectionOptions, log: Logger) {
    this.#api = kc.makeApiClient(CoordinationV1Api);
    this.#o = { leaseDurationSeconds: 15, renewDeadlineMs: 10_000, retryMs: 2000, ...options };
    if (this.#o.renewDeadlineMs >= this.#o.leaseDurationSeconds * 1000)
      throw new Error('the renew deadline must be shorter than the lease duration');
    this.#log = log;
  }

  get isLeader(): boolean {
    return this.#leader;
  }

  /** Whether this process may write now: it leads and renewed within the renew deadline. */
  mayWrite(): boolean {
    return this.#leader && !this.#stopped && performance.now() - this.#renewedAt < this.#o.renewDeadlineMs;
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity, leaseDurationSeconds } = this.#o;
    const sentAt = performance.now();
    const now = new V1MicroTime();
    let lease: V1Lease | undefined;
    try {
      lease = await this.#api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
    }
    if (!lease) {
      await this.#api.createNamespacedLease({
        namespace,
        body: {
          metadata: { name, namespace },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds,
            acquireTime: now,
            renewTime: now,
            leaseTransitions: 0,
          },
        },
      });
      this.#renewedAt = sentAt;
      return true;
    }
    const spec = lease.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    if (holder !== identity && holder !== '') {
      const record = JSON.stringify([holder, spec.renewTime, lease.metadata?.resourceVersion]);
      if (record !== this.#observed.record) this.#observed = { record, at: performance.now() };
      const expired =
        performance.now() - this.#observed.at > (spec.leaseDurationSeconds ?? leaseDurationSeconds) * 1000;
      if (!expired) return false;
    }
    const takeover = holder !== identity;
    // the resourceVersion makes this a compare-and-swap: two candidates cannot both win
    await this.#api.replaceNamespacedLease({
      name,
      namespace,
      body: {
        ...lease,
        spec: {
          ...spec,
          holderIdentity: identity,
          leaseDurationSeconds,
          renewTime: now,
          ...(takeover ? { acquireTime: now, leaseTransitions: (spec.leaseTransitions ?? 0) + 1 } : {}),
        },
      },
    });
    this.#renewedAt = sentAt;
    return true;
  }

  /**
   * Resolves true once this process leads (false if stopped first); then keeps renewing, and calls
   * `onLost` once if a renewal does not succeed within the renew deadline.
   */
  async acquire(onLost: () => void): Promise<boolean> {
    while (!this.#stopped) {
      const won = await this.#tryAcquireOrRenew().catch((err: unknown) => {
        this.#log.warn({ err: (err as Error).message }, 'lease attempt failed');
        return false;
      });
      if (won) break;
      await sleep(this.#o.retryMs);
    }
    if (this.#stopped) return false;
    this.#leader = true;
    this.#log.info({ lease: `${this.#o.namespace}/${this.#o.name}` }, 'leading');
    void this.#renewLoop(onLost);
    return true;
  }

  async #renewLoop(onLost: () => void): Promise<void> {
    while (!this.#stopped) {
      await sleep(this.#o.retryMs);
      if (this.#stopped) return;
      // a renewal that lands after the deadline does not count: another replica may lead by now
      const ok = this.mayWrite() && (await this.#tryAcquireOrRenew().catch(() => false));
      if (!ok && !this.mayWrite()) {
        this.#leader = false;
        this.#log.error('lost the lease (not renewed within the renew deadline); stopping');
        onLost();
        return;
      }
    }
  }

  /** Stops renewing and gives the lease up, so a successor need not wait for it to expire. */
  async release(): Promise<void> {
    this.#stopped = true;
    if (!this.#leader) return;
    this.#leader = false;
    const { namespace, name } = this.#o;
    const lease = await this.#api.readNamespacedLease({ name, namespace }).catch(() => undefined);
    if (lease?.spec?.holderIdentity !== this.#o.identity) return;
    await this.#api
      .replaceNamespacedLease({
        name,
        namespace,
        body: { ...lease, spec: { ...lease.spec, holderIdentity: undefined, renewTime: undefined } },
      })
      .catch(() => undefined);
  }
}
