// Scheduled etcd snapshots (spec.etcd.backup): the CronJob <cluster>-etcd-backup, and the last
// snapshot its Jobs took, read from their Pods' termination messages into status.etcd.lastSnapshot
// (and the snapshot age metric). The snapshots live in the user's volume: removing spec.etcd.backup
// deletes the CronJob, never a snapshot.
import type { V1Pod } from '@kubernetes/client-node';
import { controllerOf, ownedBy } from '../../../kube/apply.ts';
import { names, selectorLabels } from '../../../names/cluster-names.ts';
import type { SnapshotResult } from '../../../etcd/snapshot-job.ts';
import { modelFacts } from '../model-facts.ts';
import { cached, type ClusterSpec, type ObjectRef, type ReconcileContext } from '../context.ts';
import { controlPlaneParts } from '../../../model/control-plane-parts.ts';

export const wantedEtcdBackup = (cluster: string, spec: ClusterSpec): ObjectRef[] =>
  spec.etcd.backup ? [{ kind: 'CronJob', name: names.etcdBackup(cluster) }] : [];

/** The snapshot a finished backup Pod reports, if it finished well and said so. */
export function snapshotOf(pod: V1Pod): SnapshotResult | undefined {
  if (pod.status?.phase !== 'Succeeded') return undefined;
  const message = pod.status.containerStatuses?.find((c) => c.name === 'snapshot')?.state?.terminated?.message;
  if (!message) return undefined;
  try {
    const r = JSON.parse(message) as Partial<SnapshotResult>;
    return typeof r.time === 'string' &&
      typeof r.file === 'string' &&
      typeof r.sizeBytes === 'number' &&
      typeof r.revision === 'number'
      ? { time: r.time, file: r.file, sizeBytes: r.sizeBytes, revision: r.revision }
      : undefined;
  } catch {
    return undefined;
  }
}

export async function reconcileEtcdBackup(ctx: ReconcileContext): Promise<void> {
  const key = `${ctx.namespace}/${ctx.name}`;
  const backup = ctx.cluster.spec.etcd.backup;
  if (backup) {
    const part = controlPlaneParts.etcdBackup;
    const context = part.context(ctx.cluster.spec, modelFacts(ctx), ctx.settings.operatorImage);
    for (const obj of ctx.renderer.render(part.template, context)) {
      await ctx.writer.apply(ownedBy(obj, ctx.owner), cached(ctx, 'CronJob', names.etcdBackup(ctx.name)));
    }
  }

  // the newest snapshot any backup Pod reports; the CronJob keeps one finished Job, so an older
  // one recorded in the status stays until a newer one appears
  const selector = selectorLabels(ctx.name, 'etcd-backup');
  const cronJobUid = cached(ctx, 'CronJob', names.etcdBackup(ctx.name))?.metadata?.uid;
  // only Pods of Jobs of this Cluster's CronJob: a Pod that merely carries the labels reports nothing
  const ours = (pod: V1Pod) => {
    const job = controllerOf(pod);
    return (
      job?.kind === 'Job' &&
      cronJobUid !== undefined &&
      controllerOf(ctx.caches.owned.Job.get(job.name, ctx.namespace))?.uid === cronJobUid
    );
  };
  const reported = (ctx.caches.owned.Pod.list(ctx.namespace) as V1Pod[])
    .filter((p) => Object.entries(selector).every(([k, v]) => p.metadata?.labels?.[k] === v) && ours(p))
    .map(snapshotOf)
    .filter((s): s is SnapshotResult => s !== undefined);
  const last = [ctx.status.etcd?.lastSnapshot, ...reported]
    .filter((s) => s !== undefined)
    .sort((a, b) => a.time.localeCompare(b.time))
    .at(-1);
  if (last) {
    ctx.status.etcd = { ...ctx.status.etcd, lastSnapshot: last };
    ctx.etcd.snapshots.set(key, Date.parse(last.time));
  }
}
