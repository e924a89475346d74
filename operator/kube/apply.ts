// Writes to the meta-cluster. Objects are server-side applied with the field manager `kubeonkube`,
// and each carries a hash of what was applied: when the live object (read from the informer
// cache) already carries the hash of the desired one, nothing is sent, so a steady state issues
// no write at all. Every write is counted by verb for the metrics.
import { createHash } from 'node:crypto';
import { KubernetesObjectApi, PatchStrategy, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';

export const fieldManager = 'kubeonkube';
export const appliedHashAnnotation = 'kubeonkube.io/applied-hash';

export interface OwnerRef {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
}

/** Stable hash of an object as it will be applied (key order does not matter). */
export function objectHash(obj: unknown): string {
  const canonical = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(canonical);
    if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical((v as Record<string, unknown>)[k])]));
    return v;
  };
  return createHash('sha256').update(JSON.stringify(canonical(obj))).digest('hex').slice(0, 32);
}

/** The object with the owner reference that makes it garbage with its Cluster. */
export function ownedBy<T extends KubernetesObject>(obj: T, owner: OwnerRef): T {
  return {
    ...obj,
    metadata: {
      ...obj.metadata,
      ownerReferences: [{ ...owner, controller: true, blockOwnerDeletion: true }],
    },
  };
}

export class Writer {
  readonly #api: KubernetesObjectApi;
  readonly #counts = new Map<string, number>();

  constructor(kc: KubeConfig) {
    this.#api = KubernetesObjectApi.makeApiClient(kc);
  }

  /** Write requests sent so far, by verb (apply, create, event, patch-status). */
  counts(): Record<string, number> {
    return Object.fromEntries(this.#counts);
  }

  count(verb: string): void {
    this.#counts.set(verb, (this.#counts.get(verb) ?? 0) + 1);
  }

  /**
   * Applies `desired` unless `live` already carries its hash. Returns the object as the server
   * answered (fresher than the cache: a new ClusterIP, a new generation), or `live` when nothing
   * was sent.
   */
  async apply<L extends KubernetesObject>(desired: KubernetesObject, live: L | undefined): Promise<L | undefined> {
    const hash = objectHash(desired);
    if (live?.metadata?.annotations?.[appliedHashAnnotation] === hash) return live;
    const body = { ...desired, metadata: { ...desired.metadata, annotations: { ...desired.metadata?.annotations, [appliedHashAnnotation]: hash } } };
    this.count('apply');
    return this.#api.patch<L>(body as unknown as L, undefined, undefined, fieldManager, true, PatchStrategy.ServerSideApply);
  }

  /**
   * Creates `obj` only if nothing of that name exists: never overwrites. For what must not be
   * replaced when the cache lags behind (CAs, keys). Returns the live object either way.
   */
  async createOnly<T extends KubernetesObject>(obj: T): Promise<{ created: boolean; live: T }> {
    this.count('create');
    try {
      return { created: true, live: await this.#api.create<T>(obj, undefined, undefined, fieldManager) };
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
      return { created: false, live: await this.#api.read<T>(obj as T & { metadata: { name: string; namespace: string } }) };
    }
  }

  get api(): KubernetesObjectApi {
    return this.#api;
  }
}
