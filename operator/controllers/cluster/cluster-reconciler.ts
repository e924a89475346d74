// One reconcile of one Cluster: read it from the cache, check what it asks for (schema, policy,
// changes that cannot be carried out), run the units in order, delete what no unit wants any more,
// compute status at the end (even after an error), and write status only when it changed.
// Level-triggered: everything is read from the world on each pass; nothing important lives in memory.
import type { Logger } from 'pino';
import { PatchStrategy, setHeaderOptions, type CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import { isOwnedBy, objectHash, OwnershipConflict, type Writer } from '../../kube/apply.ts';
import type { ClusterCaches, OwnedKind } from './watches.ts';
import { apiVersionOf, clusterKind } from './watches.ts';
import { maxEtcdMembers } from '../../model/control-plane.ts';
import { clusterLabel, names, secrets } from '../../names/cluster-names.ts';
import { externalServer } from '../../pki/cluster-pki.ts';
import type { Result } from '../../runtime/work-queue.ts';
import type { Renderer } from '../../render/renderer.ts';
import {
  conditionStatus,
  notReady,
  ready,
  Reasons,
  setCondition,
  summarize,
  unknown,
  type Condition,
} from './conditions.ts';
import { reconcileApiserverService, wantedApiserverService, type NodeAddresses } from './units/apiserver-service.ts';
import type { EtcdConnections } from '../../etcd/connections.ts';
import type { EventSink } from '../../kube/events.ts';
import {
  initialFacts,
  type ClusterObject,
  type ClusterSpec,
  type ClusterStatus,
  type ObjectRef,
  type ReconcileContext,
  type Settings,
} from './context.ts';
import { exchangeWithBusinessWing } from './units/business-exchange.ts';
import type { ClusterReports } from './business/reports.ts';
import { reconcileCaRotation } from './units/ca-rotation.ts';
import { reconcileDeployments, wantedDeployments } from './units/deployments.ts';
import { reconcileEtcdBackup, wantedEtcdBackup } from './units/etcd-backup.ts';
import { reconcileEtcd, wantedEtcdObjects } from './units/etcd.ts';
import { reconcileJoin, wantedJoinObjects } from './units/join.ts';
import { reconcileTunnelReadiness } from './units/tunnel-readiness.ts';
import { PkiError } from '../../pki/authority-secret.ts';
import { mountedCopyAnnotation, reconcilePki, wantedPkiObjects } from './units/pki.ts';
import { policyViolations } from './policy.ts';
import { refusedChanges } from './refusals.ts';

export interface ReconcilerDeps {
  caches: ClusterCaches;
  writer: Writer;
  renderer: Renderer;
  settings: Settings;
  log: Logger;
  events: (cluster: ClusterObject) => EventSink;
  /** Checks a spec beyond what the CRD schema already refused; returns the problems. */
  validate: (cluster: ClusterObject) => string[];
  custom: CustomObjectsApi;
  etcd: EtcdConnections;
  /** The meta-cluster's nodes and their addresses (read only for NodePort endpoints). */
  nodes: () => Promise<(NodeAddresses & { ready: boolean })[]>;
  /** What this pass and the business wing tell each other. */
  reports: ClusterReports;
  now?: () => Date;
}

interface Unit {
  name: string;
  run: (ctx: ReconcileContext) => Promise<void>;
  /** What the unit wants to exist for this spec (a pure function): anything else it made is deleted. */
  wanted: (cluster: string, spec: ClusterSpec) => ObjectRef[];
}

/** The units in order; each comment says why it comes where it does. */
const units: Unit[] = [
  // its address goes into the apiserver certificate and the kubeconfigs
  { name: 'apiserver-service', run: reconcileApiserverService, wanted: wantedApiserverService },
  // every component mounts its certificates
  { name: 'pki', run: reconcilePki, wanted: wantedPkiObjects },
  // the apiserver needs etcd
  { name: 'etcd', run: reconcileEtcd, wanted: wantedEtcdObjects },
  // apiserver first, then controller-manager and scheduler, which need it
  { name: 'deployments', run: reconcileDeployments, wanted: wantedDeployments },
  // a new apiserver Pod is let take requests once an agent reached its tunnel server
  { name: 'tunnel-readiness', run: reconcileTunnelReadiness, wanted: () => [] },
  // snapshots of a running etcd
  { name: 'etcd-backup', run: reconcileEtcdBackup, wanted: wantedEtcdBackup },
  // what a new worker needs: the endpoint and the CA bundle, known once the PKI ran
  { name: 'join', run: reconcileJoin, wanted: wantedJoinObjects },
  // what the business wing needs, and what it found (it works in the business cluster in a queue
  // of its own; its trouble is said in AddonsReady and TunnelConnected and stops nothing here)
  { name: 'business-exchange', run: exchangeWithBusinessWing, wanted: () => [] },
  // last: a CA rotation moves on once everything above runs with what its last step gave it
  { name: 'ca-rotation', run: reconcileCaRotation, wanted: () => [] },
];

/** Every object a Cluster of this name and spec wants, by kind and name. */
export function wantedObjects(cluster: string, spec: ClusterSpec): ObjectRef[] {
  return units.flatMap((u) => u.wanted(cluster, spec));
}

/**
 * Kinds whose surplus objects are deleted. etcd member Pods and claims never are: a member leaves
 * the etcd cluster only through a membership change, never because a spec stopped naming it.
 */
const collectable: OwnedKind[] = ['Secret', 'Service', 'Deployment', 'NetworkPolicy', 'CronJob'];

const readinessParts = [
  'EtcdReady',
  'APIServerReady',
  'ControllerManagerReady',
  'SchedulerReady',
  'CertificatesReady',
] as const;

let reconcileCounter = 0;

export class ClusterReconciler {
  readonly #deps: ReconcilerDeps;
  /** Per cluster: the end of each certificate (ms since the epoch, by Secret), and how long its last pass took (s), for the metrics. */
  readonly stats = {
    certificateExpiry: new Map<string, Map<string, number>>(),
    lastPassSeconds: new Map<string, number>(),
  };
  /**
   * Per cluster: the status last written, and the resourceVersion it was written over. A pass that
   * starts before the watch has delivered that write sees the older object in the cache; it uses
   * the status it wrote instead, so it never writes an older status (a stale lastChange) back.
   */
  readonly #written = new Map<string, { over: string; status: ClusterStatus }>();

  constructor(deps: ReconcilerDeps) {
    this.#deps = deps;
  }

  async reconcile(key: string): Promise<Result> {
    const started = performance.now();
    const [namespace = '', name = ''] = key.split('/');
    let cluster = this.#deps.caches.primary.get(name, namespace) as ClusterObject | undefined;
    const written = this.#written.get(key);
    if (cluster && written) {
      if (written.over === cluster.metadata?.resourceVersion) cluster = { ...cluster, status: written.status };
      else this.#written.delete(key);
    }
    // gone: its objects are garbage-collected through their owner references
    if (!cluster) {
      this.#written.delete(key);
      this.stats.certificateExpiry.delete(key);
      this.stats.lastPassSeconds.delete(key);
      this.#deps.etcd.forget(key);
      this.#deps.reports.forget(key);
      return undefined;
    }
    const log = this.#deps.log.child({ cluster: name, namespace, reconcileID: ++reconcileCounter });
    try {
      if (cluster.metadata?.deletionTimestamp) {
        // still there while the garbage collector removes its objects first (foreground deletion)
        this.stats.certificateExpiry.delete(key);
        await this.#patchStatus(cluster, namespace, name, { ...cluster.status, phase: 'Deleting' }).catch(
          (err: unknown) => {
            if ((err as { code?: number }).code !== 404) throw err;
          },
        );
        return undefined;
      }
      if (cluster.spec.paused) {
        log.debug('paused: no writes');
        return undefined;
      }
      return await this.#reconcile(cluster, name, namespace, log);
    } finally {
      const seconds = (performance.now() - started) / 1000;
      if (this.#deps.caches.primary.get(name, namespace)) this.stats.lastPassSeconds.set(key, seconds);
    }
  }

  async #reconcile(cluster: ClusterObject, name: string, namespace: string, log: Logger): Promise<Result> {
    const now = this.#deps.now?.() ?? new Date();
    const generation = cluster.metadata?.generation ?? 0;
    // a condition of a type this operator does not set (another tool's) is carried along as it is
    let conditions = (cluster.status?.conditions ?? []) as Condition[];
    let requeueMs: number | undefined;
    const ctx: ReconcileContext = {
      cluster,
      name,
      namespace,
      generation,
      log,
      now,
      owner: { apiVersion: clusterKind.apiVersion, kind: clusterKind.kind, name, uid: cluster.metadata?.uid ?? '' },
      caches: this.#deps.caches,
      writer: this.#deps.writer,
      renderer: this.#deps.renderer,
      settings: this.#deps.settings,
      events: this.#deps.events(cluster),
      etcd: this.#deps.etcd,
      reports: this.#deps.reports,
      nodes: this.#deps.nodes,
      setCondition: (type, update) => {
        conditions = setCondition(conditions, type, update, generation, now);
      },
      requeueAfter: (ms) => {
        requeueMs = Math.max(1000, Math.min(requeueMs ?? Infinity, ms));
      },
      facts: initialFacts(),
      status: { ...cluster.status },
    };

    const invalid = this.#deps.validate(cluster);
    const forbidden = invalid.length === 0 ? policyViolations(cluster.spec, this.#deps.settings.policy) : [];
    if (invalid.length > 0 || forbidden.length > 0) {
      // nothing is built from a spec that does not hold; waiting for the user to fix it
      ctx.setCondition(
        'Ready',
        notReady(
          invalid.length > 0 ? Reasons.InvalidSpec : Reasons.PolicyViolation,
          [...invalid, ...forbidden].join('; '),
        ),
      );
      await this.#writeStatus(ctx, conditions, false);
      return undefined;
    }
    const refused = refusedChanges(cluster, this.#memberPods(ctx));
    if (refused.length > 0) {
      // the running cluster is left as it is: no unit runs, and the other conditions stay as they were
      ctx.setCondition('SpecApplied', notReady(Reasons.UnsupportedChange, refused.join('; ')));
      await this.#writeStatus(ctx, conditions, false);
      return undefined;
    }
    ctx.setCondition('SpecApplied', ready('the spec is applied as far as the conditions say'));

    let failure: Error | undefined;
    for (const unit of units) {
      try {
        await unit.run(ctx);
      } catch (err) {
        failure = err instanceof Error ? err : new Error(String(err));
        log.error({ unit: unit.name, err: failure.message }, 'reconcile unit failed');
        if (err instanceof OwnershipConflict) ctx.setCondition('Ready', notReady(Reasons.NameConflict, err.message));
        else if (err instanceof PkiError) ctx.setCondition('Ready', notReady(Reasons.InternalError, err.message));
        else ctx.setCondition('Ready', unknown(Reasons.InternalError, `${unit.name} failed; see the operator's log`));
        break;
      }
    }
    // only after a whole pass: a unit that did not run has not said what it still wants
    if (!failure)
      failure = await this.#collectGarbage(ctx).then(
        () => undefined,
        (err: unknown) => err as Error,
      );
    if (!failure) ctx.setCondition('Ready', readiness(conditions));
    await this.#writeStatus(ctx, conditions, failure === undefined);
    const expiries = ctx.facts.pki.certificates.expiries;
    if (expiries.size > 0)
      this.stats.certificateExpiry.set(
        `${namespace}/${name}`,
        new Map([...expiries].map(([secret, at]) => [secret, at.getTime()])),
      );
    // a name conflict waits for a human, not a backoff: the object's events (if labelled) or the resync bring the Cluster back
    if (failure && !(failure instanceof OwnershipConflict)) throw failure;
    return requeueMs === undefined ? undefined : { requeueAfter: requeueMs };
  }

  #memberPods(ctx: ReconcileContext): V1Pod[] {
    // whatever the spec says now: the members that run may be of the mode before the change
    return Array.from({ length: maxEtcdMembers }, (_, i) =>
      ctx.caches.owned.Pod.get(names.etcdMember(ctx.name, i), ctx.namespace),
    ).filter((p): p is V1Pod => p !== undefined && isOwnedBy(p, ctx.owner.uid));
  }

  /** Deletes what this Cluster made and no unit wants any more (a removed user's kubeconfig, ...). */
  async #collectGarbage(ctx: ReconcileContext): Promise<void> {
    const wanted = new Set(wantedObjects(ctx.name, ctx.cluster.spec).map((r) => `${r.kind}/${r.name}`));
    for (const kind of collectable) {
      for (const obj of ctx.caches.owned[kind].list(ctx.namespace)) {
        const objName = obj.metadata?.name ?? '';
        if (obj.metadata?.labels?.[clusterLabel] !== ctx.name || !isOwnedBy(obj, ctx.owner.uid)) continue;
        if (wanted.has(`${kind}/${objName}`) || obj.metadata?.deletionTimestamp) continue;
        // a Secret's copy that apiserver Pods mount: kept while it is the current one, or while
        // Pods of an earlier template may still run with it
        if (
          obj.metadata?.annotations?.[mountedCopyAnnotation] !== undefined &&
          (objName === ctx.facts.pki.kubeletClientSecret || !ctx.facts.deployments.rolledOut.apiServer)
        )
          continue;
        await ctx.writer.delete({ ...obj, apiVersion: apiVersionOf(kind), kind });
        ctx.log.info({ kind, name: objName }, 'deleted an object no longer wanted');
        ctx.events.normal('Deleted', `deleted ${kind} ${objName}: the spec no longer asks for it`);
      }
    }
  }

  async #writeStatus(ctx: ReconcileContext, conditions: Condition[], succeeded: boolean): Promise<void> {
    const old = ctx.cluster.status ?? {};
    const spec = ctx.cluster.spec;
    const apiserverCurrent = conditionStatus(conditions, 'APIServerReady') === 'True';
    const version = apiserverCurrent ? spec.version : old.version;
    const endpoint = externalServer({ endpoint: ctx.facts.apiserverService.endpoint }) ?? old.endpoint;
    const status: ClusterStatus = {
      ...ctx.status,
      observedGeneration: succeeded ? ctx.generation : old.observedGeneration,
      conditions,
      phase: phase(conditions, version, spec.version),
      ...(version ? { version } : {}),
      ...(endpoint ? { endpoint } : {}),
      kubeconfigSecretRef: { name: secrets.adminKubeconfig(ctx.name), key: 'value' },
      certificates: {
        ...ctx.status.certificates,
        ...(ctx.facts.pki.certificates.notAfter ? { notAfter: ctx.facts.pki.certificates.notAfter.toISOString() } : {}),
        ...(ctx.facts.pki.certificates.caNotAfter
          ? { caNotAfter: ctx.facts.pki.certificates.caNotAfter.toISOString() }
          : {}),
        ...(ctx.facts.pki.certificates.lastRotation
          ? { lastRotation: ctx.facts.pki.certificates.lastRotation.toISOString() }
          : {}),
      },
    };
    if (objectHash(status) === objectHash(old)) return;
    // what moved, in one line: a status write in a steady state is a defect to be found
    const moved = (Object.keys({ ...old, ...status }) as (keyof ClusterStatus)[]).filter(
      (k) => k !== 'conditions' && objectHash(status[k] ?? null) !== objectHash(old[k] ?? null),
    );
    const flipped = conditions
      .filter((c) => {
        const o = old.conditions?.find((x) => x.type === c.type);
        return !o || o.status !== c.status || o.reason !== c.reason || o.message !== c.message;
      })
      .map((c) => `${c.type}=${c.status}/${c.reason}`);
    ctx.log.info({ fields: moved, conditions: flipped }, 'status changed');
    await this.#patchStatus(ctx.cluster, ctx.namespace, ctx.name, status);
  }

  async #patchStatus(cluster: ClusterObject, namespace: string, name: string, status: ClusterStatus): Promise<void> {
    if (objectHash(status) === objectHash(cluster.status ?? {})) return;
    this.#deps.writer.count('patch-status', 'Cluster');
    const [group = '', version = ''] = clusterKind.apiVersion.split('/');
    await this.#deps.custom.patchNamespacedCustomObjectStatus(
      { group, version, plural: clusterKind.plural, namespace, name, body: { status } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    // what the server now holds, as far as this status goes (a merge patch: fields not written stay)
    this.#written.set(`${namespace}/${name}`, {
      over: cluster.metadata?.resourceVersion ?? '',
      status: { ...cluster.status, ...status },
    });
  }
}

/** Ready: the conjunction of the parts, carrying the reason of a part that needs a human. */
function readiness(conditions: readonly Condition[]) {
  const etcd = conditions.find((c) => c.type === 'EtcdReady');
  if (etcd?.status === 'False' && etcd.reason === Reasons.DataLost) return notReady(Reasons.DataLost, etcd.message);
  return summarize(conditions, readinessParts);
}

/**
 * The one-word summary, from the conditions and from whether the cluster ever ran (status.version
 * is set once an apiserver ran the spec's version): never alternating between two words.
 */
export function phase(
  conditions: readonly Condition[],
  runningVersion: string | undefined,
  specVersion: string,
): NonNullable<ClusterStatus['phase']> {
  if (conditionStatus(conditions, 'Ready') === 'True') return 'Ready';
  if (runningVersion && runningVersion !== specVersion) return 'Upgrading';
  return runningVersion ? 'Degraded' : 'Provisioning';
}
