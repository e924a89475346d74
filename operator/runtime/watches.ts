// Watches of one kind a controller reconciles (its primary kind) and of the kinds it owns, each a
// client-node informer restarted (with backoff) after any watch or list error. Events only say
// which primary object to look at again: an owned object maps back to it through `ownerKey`.
import {
  KubernetesObjectApi,
  makeInformer,
  type Informer,
  type KubeConfig,
  type KubernetesObject,
  type ObjectCache,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';

/** A kind as the API serves it. */
export interface KindRef {
  /** `group/version`, or `v1` for the core group. */
  apiVersion: string;
  kind: string;
  /** The resource's plural name (its path segment). */
  plural: string;
}

export interface WatchSpec<Owned extends string> {
  primary: KindRef;
  owned: Record<Owned, KindRef>;
  /** Only owned objects this label selector matches are listed and cached (what the controller makes carries it). */
  ownedSelector: string;
  /** The name of the primary object an owned object belongs to (same namespace); undefined: none. */
  ownerName: (obj: KubernetesObject) => string | undefined;
}

export interface WatchSet<Owned extends string> {
  primary: ObjectCache<KubernetesObject>;
  owned: Record<Owned, ObjectCache<KubernetesObject>>;
  /** Resolves once every informer has listed successfully once (a failed list does not count). */
  synced: Promise<void>;
  /** `namespace/name` of every primary object in the cache. */
  keys(): string[];
  stop(): Promise<void>;
}

type Cache = Informer<KubernetesObject> & ObjectCache<KubernetesObject>;

export const objectKey = (namespace: string | undefined, name: string | undefined) =>
  `${namespace ?? ''}/${name ?? ''}`;

/** What of a primary object, when it changes, calls for a reconcile: not its status, which the controller writes. */
function specFingerprint(obj: KubernetesObject): string {
  const m = obj.metadata ?? {};
  return JSON.stringify([
    m.generation,
    m.annotations ?? {},
    m.labels ?? {},
    m.deletionTimestamp ?? null,
    m.finalizers ?? [],
  ]);
}

/** The watch path of a kind, in one namespace or in all. */
function watchPath(ref: KindRef, namespace: string | undefined): string {
  const prefix = ref.apiVersion.includes('/') ? `/apis/${ref.apiVersion}` : `/api/${ref.apiVersion}`;
  return `${prefix}${namespace ? `/namespaces/${namespace}` : ''}/${ref.plural}`;
}

/**
 * Starts the informers of `spec`; `enqueue` receives the `namespace/name` key of the primary object
 * to reconcile. `namespace`: watch only that namespace; undefined: all of them.
 */
export function startWatches<Owned extends string>(
  kc: KubeConfig,
  log: Logger,
  spec: WatchSpec<Owned>,
  enqueue: (key: string) => void,
  namespace?: string,
): WatchSet<Owned> {
  const api = KubernetesObjectApi.makeApiClient(kc);
  const informer = (ref: KindRef, labelSelector?: string): Cache =>
    makeInformer(
      kc,
      watchPath(ref, namespace),
      () => api.list(ref.apiVersion, ref.kind, namespace, undefined, undefined, undefined, undefined, labelSelector),
      labelSelector,
    );

  const primary = informer(spec.primary);
  const owned = Object.fromEntries(
    (Object.entries(spec.owned) as [Owned, KindRef][]).map(([kind, ref]) => [kind, informer(ref, spec.ownedSelector)]),
  ) as Record<Owned, Cache>;

  const seen = new Map<string, string>();
  const onPrimary = (obj: KubernetesObject) => {
    const k = objectKey(obj.metadata?.namespace, obj.metadata?.name);
    const fingerprint = specFingerprint(obj);
    if (seen.get(k) === fingerprint) return; // a status-only update, most likely our own
    seen.set(k, fingerprint);
    enqueue(k);
  };
  primary.on('add', onPrimary);
  primary.on('update', onPrimary);
  primary.on('delete', (obj) => {
    const k = objectKey(obj.metadata?.namespace, obj.metadata?.name);
    seen.delete(k);
    enqueue(k);
  });
  const onOwned = (obj: KubernetesObject) => {
    const owner = spec.ownerName(obj);
    if (owner) enqueue(objectKey(obj.metadata?.namespace, owner));
  };
  for (const cache of Object.values<Cache>(owned)) {
    cache.on('add', onOwned);
    cache.on('update', onOwned);
    cache.on('delete', onOwned);
  }

  const all: [string, Cache][] = [[spec.primary.kind, primary], ...Object.entries<Cache>(owned)];
  let stopped = false;
  const synced = Promise.all(
    all.map(
      ([kind, cache]) =>
        new Promise<void>((resolve) => {
          let delayMs = 1000;
          // start() resolves after a failed list too; only a list that succeeded leaves a resourceVersion
          const start = () =>
            cache.start().then(
              () => {
                if ((cache as unknown as { latestResourceVersion(): string }).latestResourceVersion() !== '') resolve();
              },
              (e: unknown) => {
                log.error({ kind, err: (e as Error).message }, 'informer start failed');
              },
            );
          cache.on('connect', () => {
            delayMs = 1000;
          });
          cache.on('error', (err) => {
            if (stopped) return;
            // e.g. a CRD installed after start answers 429 until its watch cache is ready: retry, backing off
            log.warn({ kind, err: (err as Error)?.message ?? String(err) }, 'watch failed; restarting');
            setTimeout(() => {
              if (!stopped) void start();
            }, delayMs).unref();
            delayMs = Math.min(delayMs * 2, 30_000);
          });
          void start();
        }),
    ),
  ).then(() => undefined);

  return {
    primary,
    owned,
    synced,
    keys: () => primary.list().map((o) => objectKey(o.metadata?.namespace, o.metadata?.name)),
    stop: async () => {
      stopped = true;
      await Promise.all(all.map(([, i]) => i.stop()));
    },
  };
}
