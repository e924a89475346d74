// Writes to the meta-cluster. Objects are server-side applied with the field manager `kubeonkube`,
// and each carries a hash of what was applied. Nothing is sent when the live object (read from the
// informer cache) carries the hash of the desired one AND still holds every field the operator
// sets: the first catches a changed template, the second a hand edit (`kubectl scale`), so a
// steady state issues no write while drift is repaired.
//
// Isolation: the operator writes only to objects its Cluster owns (controller owner reference with
// the Cluster's UID). An object of the same name owned by nobody or by someone else is never
// taken over (OwnershipConflict), and deletes carry the owner-checked UID as a precondition.
// Every write first asks the leadership guard: a process that may no longer lead sends nothing.
import { createHash } from 'node:crypto';
import {
  CoreV1Api,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type KubernetesObject,
  type V1Pod,
  type V1PodCondition,
} from '@kubernetes/client-node';
import { toClientModel } from './client-model.ts';
import { containsDesired } from './drift.ts';

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
    if (v && typeof v === 'object')
      return Object.fromEntries(
        Object.keys(v)
          .sort()
          .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
      );
    return v;
  };
  return createHash('sha256')
    .update(JSON.stringify(canonical(obj)))
    .digest('hex')
    .slice(0, 32);
}

/** The object with the owner reference that makes it garbage with its Cluster. */
export function ownedBy<T extends KubernetesObject>(obj: T, owner: OwnerRef): T {
  return { ...obj, metadata: { ...obj.metadata, ownerReferences: [controllerReference(owner)] } };
}

/** The owner reference by which `owner` controls an object. */
const controllerReference = (owner: OwnerRef) => ({ ...owner, controller: true, blockOwnerDeletion: true });

/**
 * On an object that must outlive its Cluster (an etcd claim under deletionPolicy Retain): the UID
 * of the Cluster that controls it, in place of an owner reference, which the garbage collector
 * would follow when the Cluster is deleted.
 */
export const ownerUidAnnotation = 'kubeonkube.io/owner-uid';

/** `obj` controlled by `owner` through the annotation alone: nothing for the garbage collector to follow. */
export function keptBy<T extends KubernetesObject>(obj: T, owner: OwnerRef): T {
  const { ownerReferences: _dropped, ...metadata } = obj.metadata ?? {};
  return {
    ...obj,
    metadata: { ...metadata, annotations: { ...metadata.annotations, [ownerUidAnnotation]: owner.uid } },
  };
}

/** Whether `obj` is controlled by the owner with this UID (by owner reference, or by annotation for what outlives it). */
export function isOwnedBy(obj: KubernetesObject, uid: string): boolean {
  if (uid === '') return false;
  return (
    (obj.metadata?.ownerReferences ?? []).some((r) => r.uid === uid && r.controller === true) ||
    obj.metadata?.annotations?.[ownerUidAnnotation] === uid
  );
}

/** The owner reference of `obj` that controls it, if one does. */
export const controllerOf = (obj: KubernetesObject | undefined) =>
  obj?.metadata?.ownerReferences?.find((r) => r.controller === true);

/** Who controls `obj`, in words, for a condition message. */
export function describeOwner(obj: KubernetesObject): string {
  const controller = controllerOf(obj);
  if (controller) return `owned by ${controller.kind} ${controller.name}`;
  const kept = obj.metadata?.annotations?.[ownerUidAnnotation];
  return kept ? `kept from a Cluster deleted before (UID ${kept}, deletionPolicy Retain)` : 'owned by nobody';
}

/** An object of a wanted name exists and is not this Cluster's: it is never adopted. */
export class OwnershipConflict extends Error {
  readonly kind: string;
  readonly objectName: string;

  constructor(kind: string, objectName: string, owner: string) {
    super(
      `${kind} ${objectName} already exists and is ${owner}, not by this Cluster; it is never taken over: delete or rename it, or give this Cluster another name`,
    );
    this.kind = kind;
    this.objectName = objectName;
  }
}

/** A write was attempted by a process that cannot be sure it still leads. */
export class NotLeaderError extends Error {
  constructor() {
    super('not the leader (or the lease was not renewed within the renew deadline): no write is sent');
  }
}

const ownerUidOf = (obj: KubernetesObject) =>
  controllerOf(obj)?.uid ?? obj.metadata?.annotations?.[ownerUidAnnotation] ?? '';

export class Writer {
  readonly #api: KubernetesObjectApi;
  readonly #core: CoreV1Api;
  readonly #counts = new Map<string, number>();
  readonly #mayWrite: () => boolean;

  /** `mayWrite` is asked before every request: false stops every write (leadership lost or in doubt). */
  constructor(kc: KubeConfig, mayWrite: () => boolean = () => true) {
    this.#api = KubernetesObjectApi.makeApiClient(kc);
    this.#core = kc.makeApiClient(CoreV1Api);
    this.#mayWrite = mayWrite;
  }

  /** Write requests sent so far, by verb (apply, create, delete, event, patch, patch-status). */
  counts(): Record<string, number> {
    const byVerb: Record<string, number> = {};
    for (const { verb, value } of this.countsByKind()) byVerb[verb] = (byVerb[verb] ?? 0) + value;
    return byVerb;
  }

  /** Write requests sent so far, by verb and by the kind of object written. */
  countsByKind(): { verb: string; kind: string; value: number }[] {
    return [...this.#counts].map(([key, value]) => {
      const [verb, kind] = key.split('/') as [string, string];
      return { verb, kind, value };
    });
  }

  /** Counts a write about to be sent; throws NotLeaderError (sending nothing) when this process may not write. */
  count(verb: string, kind: string): void {
    if (!this.#mayWrite()) throw new NotLeaderError();
    const key = `${verb}/${kind}`;
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
  }

  /**
   * Applies `desired` (which carries its owner reference) unless `live` already matches it. Returns
   * the object as the server answered (fresher than the cache: a new ClusterIP, a new generation),
   * or `live` when nothing was sent. `live` undefined means "not in the cache": the object is read
   * first, so one made by someone else (and not labelled for the cache) is never overwritten.
   */
  async apply<L extends KubernetesObject>(desired: KubernetesObject, live: L | undefined): Promise<L | undefined> {
    const owner = ownerUidOf(desired);
    let current: L | undefined = live ?? (await this.#read<L>(desired));
    if (current && !isOwnedBy(current, owner))
      throw new OwnershipConflict(desired.kind ?? 'object', desired.metadata?.name ?? '', describeOwner(current));
    const hash = objectHash(desired);
    if (current && current.metadata?.annotations?.[appliedHashAnnotation] === hash && containsDesired(current, desired))
      return current;
    const body = {
      ...desired,
      metadata: {
        ...desired.metadata,
        annotations: { ...desired.metadata?.annotations, [appliedHashAnnotation]: hash },
      },
    };
    this.count('apply', desired.kind ?? '');
    current = await this.#api.patch<L>(
      toClientModel(body) as unknown as L,
      undefined,
      undefined,
      fieldManager,
      true,
      PatchStrategy.ServerSideApply,
    );
    return current;
  }

  /**
   * Writes `desired` over `live` whole (a PUT with live's resourceVersion: it fails if the object
   * changed meanwhile): for an object someone else edited, whose extra fields an apply would leave
   * in place (server-side apply removes only what its own field manager set).
   */
  async replace<L extends KubernetesObject>(desired: KubernetesObject, live: L): Promise<L> {
    if (!isOwnedBy(live, ownerUidOf(desired)))
      throw new OwnershipConflict(desired.kind ?? 'object', desired.metadata?.name ?? '', describeOwner(live));
    const hash = objectHash(desired);
    const body = {
      ...desired,
      metadata: {
        ...desired.metadata,
        resourceVersion: live.metadata?.resourceVersion,
        annotations: { ...desired.metadata?.annotations, [appliedHashAnnotation]: hash },
      },
    };
    this.count('replace', desired.kind ?? '');
    return this.#api.replace<L>(toClientModel(body) as unknown as L, undefined, undefined, fieldManager);
  }

  /**
   * Creates `obj` only if nothing of that name exists: never overwrites. For what must not be
   * replaced when the cache lags behind (CAs, keys). Returns the live object either way; one that
   * exists and is not owned by `obj`'s owner is an OwnershipConflict.
   */
  async createOnly<T extends KubernetesObject>(obj: T): Promise<{ created: boolean; live: T }> {
    const existing = (live: T) => {
      if (!isOwnedBy(live, ownerUidOf(obj)))
        throw new OwnershipConflict(obj.kind ?? 'object', obj.metadata?.name ?? '', describeOwner(live));
      return { created: false, live };
    };
    // read first: someone else's object of that name (not in the cache: unlabelled) costs a read
    // on each pass, not a refused write
    const found = await this.#read<T>(obj);
    if (found) return existing(found);
    this.count('create', obj.kind ?? '');
    try {
      return { created: true, live: await this.#api.create<T>(toClientModel(obj), undefined, undefined, fieldManager) };
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
      return existing(await this.#api.read<T>(obj as T & { metadata: { name: string; namespace: string } }));
    }
  }

  /** Sets one condition in a Pod's status (a readiness gate the operator answers), leaving the others as they are. */
  async setPodCondition(pod: V1Pod, condition: V1PodCondition): Promise<void> {
    this.count('patch-status', 'Pod');
    await this.#core.patchNamespacedPodStatus(
      {
        name: pod.metadata?.name ?? '',
        namespace: pod.metadata?.namespace ?? '',
        body: { status: { conditions: [condition] } },
      },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
  }

  /** Throws NotLeaderError unless this process may write now; for writes that go elsewhere (etcd membership calls). */
  assertMayWrite(): void {
    if (!this.#mayWrite()) throw new NotLeaderError();
  }

  /** Sets annotations on `live` (a merge patch that carries its resourceVersion: it fails if the object changed meanwhile). */
  async annotate<T extends KubernetesObject>(live: T, annotations: Record<string, string>): Promise<T> {
    this.count('patch', live.kind ?? '');
    const body = {
      apiVersion: live.apiVersion,
      kind: live.kind,
      metadata: {
        name: live.metadata?.name,
        namespace: live.metadata?.namespace,
        resourceVersion: live.metadata?.resourceVersion,
        annotations,
      },
    };
    return this.#api.patch<T>(body as T, undefined, undefined, fieldManager, undefined, PatchStrategy.MergePatch);
  }

  /**
   * Moves `live` between the two ways `owner` may own it: by an owner reference (`byReference`;
   * the garbage collector deletes it with its owner) or by the owner's UID in an annotation (it
   * outlives its owner). A merge patch carrying its resourceVersion.
   */
  async setOwnership<T extends KubernetesObject>(live: T, owner: OwnerRef, byReference: boolean): Promise<T> {
    this.count('patch', live.kind ?? '');
    const metadata = {
      name: live.metadata?.name,
      namespace: live.metadata?.namespace,
      resourceVersion: live.metadata?.resourceVersion,
      ownerReferences: byReference ? [controllerReference(owner)] : null,
      annotations: { [ownerUidAnnotation]: byReference ? null : owner.uid },
    };
    return this.#api.patch<T>(
      { apiVersion: live.apiVersion, kind: live.kind, metadata } as unknown as T,
      undefined,
      undefined,
      fieldManager,
      undefined,
      PatchStrategy.MergePatch,
    );
  }

  /**
   * Deletes `live` if it is still the very object that was checked (its UID as a precondition).
   * `gracePeriodSeconds: 0` removes a Pod without waiting for its kubelet (one on a lost node).
   */
  async delete(live: KubernetesObject, { gracePeriodSeconds }: { gracePeriodSeconds?: number } = {}): Promise<void> {
    this.count('delete', live.kind ?? '');
    try {
      await this.#api.delete(live, undefined, undefined, gracePeriodSeconds, undefined, 'Background', {
        preconditions: { uid: live.metadata?.uid },
        ...(gracePeriodSeconds !== undefined ? { gracePeriodSeconds } : {}),
      });
    } catch (err) {
      // already gone, or replaced by another object of that name (not ours to delete)
      if (![404, 409].includes((err as { code?: number }).code ?? 0)) throw err;
    }
  }

  async #read<T extends KubernetesObject>(obj: KubernetesObject): Promise<T | undefined> {
    try {
      return await this.#api.read<T>(obj as T & { metadata: { name: string; namespace: string } });
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      throw err;
    }
  }

  get api(): KubernetesObjectApi {
    return this.#api;
  }
}
