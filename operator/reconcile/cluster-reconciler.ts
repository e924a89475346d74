// One reconcile of one Cluster: read it from the cache, run the units in order, compute status
// at the end (even after an error), and write status only when it changed. Level-triggered:
// everything is read from the world on each pass; nothing important lives in memory.
import type { Logger } from 'pino';
import { PatchStrategy, setHeaderOptions, type CustomObjectsApi } from '@kubernetes/client-node';
import { objectHash, type Writer } from '../kube/apply.ts';
import type { InformerSet } from '../kube/informers.ts';
import { clusterGroup, clusterPlural, clusterVersion } from '../kube/informers.ts';
import { externalServer, adminKubeconfigSecret } from '../pki/cluster-pki.ts';
import type { Result } from '../queue/work-queue.ts';
import type { Renderer } from '../render/renderer.ts';
import { conditionStatus, notReady, Reasons, setCondition, summarize, unknown, type Condition } from '../status/conditions.ts';
import { reconcileApiserverService } from './apiserver-service-unit.ts';
import type { EventSink } from '../kube/events.ts';
import type { ClusterObject, ClusterStatus, ReconcileContext, Settings } from './context.ts';
import { reconcileDeployments } from './deployments-unit.ts';
import { reconcileEtcd } from './etcd-unit.ts';
import { PkiError, reconcilePki } from './pki-unit.ts';

export interface ReconcilerDeps {
  caches: InformerSet;
  writer: Writer;
  renderer: Renderer;
  settings: Settings;
  log: Logger;
  events: (cluster: ClusterObject) => EventSink;
  /** Checks a spec beyond what the CRD schema already refused; returns the problems. */
  validate: (cluster: ClusterObject) => string[];
  custom: CustomObjectsApi;
  now?: () => Date;
}

/** The units in order; each comment says why it comes where it does. */
const units: [string, (ctx: ReconcileContext) => Promise<void>][] = [
  // its address goes into the apiserver certificate and the kubeconfigs
  ['apiserver-service', reconcileApiserverService],
  // every component mounts its certificates
  ['pki', reconcilePki],
  // the apiserver needs etcd
  ['etcd', reconcileEtcd],
  // apiserver first, then controller-manager and scheduler, which need it
  ['deployments', reconcileDeployments],
];

const readinessParts = ['EtcdReady', 'APIServerReady', 'ControllerManagerReady', 'SchedulerReady', 'CertificatesReady'] as const;

let reconcileCounter = 0;

export class ClusterReconciler {
  readonly #deps: ReconcilerDeps;
  /** Per cluster: reconcile count, errors, and the last certificate expiry, for the metrics. */
  readonly stats = { reconciles: 0, errors: 0, durationSeconds: 0, certificateExpiry: new Map<string, number>() };

  constructor(deps: ReconcilerDeps) {
    this.#deps = deps;
  }

  async reconcile(key: string): Promise<Result> {
    const started = performance.now();
    const [namespace = '', name = ''] = key.split('/');
    const cluster = this.#deps.caches.clusters.get(name, namespace) as ClusterObject | undefined;
    // gone: its objects are garbage-collected through their owner references
    if (!cluster || cluster.metadata?.deletionTimestamp) {
      this.stats.certificateExpiry.delete(key);
      return undefined;
    }
    const log = this.#deps.log.child({ cluster: name, namespace, reconcileID: ++reconcileCounter });
    this.stats.reconciles++;
    try {
      if (cluster.spec.paused) {
        log.debug('paused: no writes');
        return undefined;
      }
      return await this.#reconcile(cluster, name, namespace, log);
    } catch (err) {
      this.stats.errors++;
      throw err;
    } finally {
      this.stats.durationSeconds += (performance.now() - started) / 1000;
    }
  }

  async #reconcile(cluster: ClusterObject, name: string, namespace: string, log: Logger): Promise<Result> {
    const now = this.#deps.now?.() ?? new Date();
    const generation = cluster.metadata?.generation ?? 0;
    let conditions: Condition[] = cluster.status?.conditions ?? [];
    let requeueMs: number | undefined;
    const ctx: ReconcileContext = {
      cluster, name, namespace, generation, log, now,
      owner: { apiVersion: `${clusterGroup}/${clusterVersion}`, kind: 'Cluster', name, uid: cluster.metadata?.uid ?? '' },
      caches: this.#deps.caches,
      writer: this.#deps.writer,
      renderer: this.#deps.renderer,
      settings: this.#deps.settings,
      events: this.#deps.events(cluster),
      setCondition: (type, update) => { conditions = setCondition(conditions, type, update, generation, now); },
      requeueAfter: (ms) => { requeueMs = Math.max(1000, Math.min(requeueMs ?? Infinity, ms)); },
      facts: {
        apiserverAddresses: [],
        inputHashes: { apiserver: '', controllerManager: '', scheduler: '', etcd: [] },
        certificates: {},
        etcdQuorum: false,
        apiserverReady: false,
      },
      status: { ...cluster.status },
    };

    const problems = this.#deps.validate(cluster);
    if (problems.length > 0) {
      // nothing is built from a spec that does not hold; waiting for the user to fix it
      ctx.setCondition('Ready', notReady(Reasons.InvalidSpec, problems.join('; ')));
      await this.#writeStatus(ctx, conditions, false);
      return undefined;
    }

    let failure: Error | undefined;
    for (const [unit, run] of units) {
      try {
        await run(ctx);
      } catch (err) {
        failure = err instanceof Error ? err : new Error(String(err));
        const message = err instanceof PkiError ? err.message : `${unit} failed; see the operator's log`;
        log.error({ unit, err: (err as Error).message }, 'reconcile unit failed');
        ctx.setCondition('Ready', err instanceof PkiError ? notReady(Reasons.InternalError, message) : unknown(Reasons.InternalError, message));
        break;
      }
    }
    if (!failure) ctx.setCondition('Ready', summarize(conditions, readinessParts));
    await this.#writeStatus(ctx, conditions, failure === undefined);
    if (ctx.facts.certificates.notAfter) this.stats.certificateExpiry.set(`${namespace}/${name}`, ctx.facts.certificates.notAfter.getTime() / 1000);
    if (failure) throw failure;
    return requeueMs === undefined ? undefined : { requeueAfter: requeueMs };
  }

  async #writeStatus(ctx: ReconcileContext, conditions: Condition[], succeeded: boolean): Promise<void> {
    const old = ctx.cluster.status ?? {};
    const spec = ctx.cluster.spec;
    const readyNow = conditionStatus(conditions, 'Ready') === 'True';
    const apiserverCurrent = conditionStatus(conditions, 'APIServerReady') === 'True';
    const version = apiserverCurrent ? spec.version : old.version;
    const status: ClusterStatus = {
      ...ctx.status,
      observedGeneration: succeeded ? ctx.generation : old.observedGeneration,
      conditions,
      phase: readyNow ? 'Ready' : old.version && old.version !== spec.version ? 'Upgrading' : old.phase === 'Ready' ? 'Degraded' : 'Provisioning',
      ...(version ? { version } : {}),
      endpoint: externalServer({ ...ctx.settings, name: ctx.name, namespace: ctx.namespace, endpointHost: spec.endpoint?.host, apiserverAddresses: ctx.facts.apiserverAddresses }),
      kubeconfigSecretRef: { name: adminKubeconfigSecret(ctx.name), key: 'value' },
      certificates: {
        ...old.certificates,
        ...(ctx.facts.certificates.notAfter ? { notAfter: ctx.facts.certificates.notAfter.toISOString() } : {}),
        ...(ctx.facts.certificates.caNotAfter ? { caNotAfter: ctx.facts.certificates.caNotAfter.toISOString() } : {}),
        ...(ctx.facts.certificates.lastRotation ? { lastRotation: ctx.facts.certificates.lastRotation.toISOString() } : {}),
      },
    };
    if (objectHash(status) === objectHash(old)) return;
    ctx.writer.count('patch-status');
    await this.#deps.custom.patchNamespacedCustomObjectStatus(
      { group: clusterGroup, version: clusterVersion, plural: clusterPlural, namespace: ctx.namespace, name: ctx.name, body: { status } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
  }
}
