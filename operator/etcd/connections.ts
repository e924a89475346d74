// What the operator keeps between passes about each Cluster's etcd: one client per Cluster (its
// credentials change only with a certificate renewal), since when each member has been unhealthy
// (to replace it after the configured time), and the numbers the metrics show. All of it can be
// lost with the process: a restarted operator only waits the unhealthy time again.
import { objectHash } from '../kube/apply.ts';
import { EtcdClient, type EtcdCredentials } from './client.ts';

export interface EtcdClusterMetrics {
  members: number;
  healthyMembers: number;
  learners: number;
  /** Largest database size reported by a member, bytes. */
  dbSizeBytes: number;
  hasLeader: boolean;
}

export class EtcdConnections {
  readonly #clients = new Map<string, { hash: string; client: EtcdClient }>();
  readonly #unhealthySince = new Map<string, number>();
  /** Membership calls, by call (add, promote, remove) and result (ok, refused: etcd said no, e.g. a learner not caught up). */
  readonly calls = new Map<string, number>();
  readonly clusters = new Map<string, EtcdClusterMetrics>();
  /** Per cluster: when its last snapshot was taken (epoch ms), for the snapshot age metric. */
  readonly snapshots = new Map<string, number>();
  readonly #timeoutMs: number;

  constructor({ timeoutMs = 3000 } = {}) {
    this.#timeoutMs = timeoutMs;
  }

  client(cluster: string, credentials: EtcdCredentials): EtcdClient {
    const hash = objectHash(credentials);
    const known = this.#clients.get(cluster);
    if (known?.hash === hash) return known.client;
    known?.client.close();
    const client = new EtcdClient(credentials, { timeoutMs: this.#timeoutMs });
    this.#clients.set(cluster, { hash, client });
    return client;
  }

  /** How long `member` has been unhealthy without a break, as of `now` (0 while healthy). */
  unhealthyFor(member: string, healthy: boolean, now: number): number {
    if (healthy) {
      this.#unhealthySince.delete(member);
      return 0;
    }
    const since = this.#unhealthySince.get(member) ?? now;
    this.#unhealthySince.set(member, since);
    return now - since;
  }

  /** Forgets the timers under `prefix` other than `keep` (Pods that are gone). */
  prune(prefix: string, keep: string[]): void {
    for (const key of this.#unhealthySince.keys())
      if (key.startsWith(prefix) && !keep.includes(key)) this.#unhealthySince.delete(key);
  }

  countCall(call: string, result: 'ok' | 'refused'): void {
    const key = `${call}/${result}`;
    this.calls.set(key, (this.calls.get(key) ?? 0) + 1);
  }

  /** Forgets a Cluster that is gone. */
  forget(cluster: string): void {
    this.#clients.get(cluster)?.client.close();
    this.#clients.delete(cluster);
    this.clusters.delete(cluster);
    this.snapshots.delete(cluster);
    for (const key of this.#unhealthySince.keys()) if (key.startsWith(`${cluster}/`)) this.#unhealthySince.delete(key);
  }

  close(): void {
    for (const { client } of this.#clients.values()) client.close();
    this.#clients.clear();
  }
}
