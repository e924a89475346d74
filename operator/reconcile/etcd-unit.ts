// etcd: the client Service, the NetworkPolicy, and per member a headless Service, a claim and a
// Pod. A member Pod and its claim are created when missing and otherwise left alone here:
// replacing a member (new certificates, lost data) is a membership change that needs quorum.
//
// Nothing is lost silently. Once the etcd cluster has formed (status.etcd.initialized, which lives
// on the Cluster and so survives the loss of any member's data), members start with
// initial-cluster-state=existing: one whose data directory is empty fails instead of forming a
// new, empty cluster. A member whose claim is gone, or which fails for lack of its data, is not
// started again: EtcdReady=False with reason DataLost (the only member: the apiserver is scaled
// to 0, so nothing answers from a cache of data that is gone) or MemberDataLost (one of three;
// the others keep serving).
import type { KubernetesObject, V1PersistentVolumeClaim, V1Pod, V1Service } from '@kubernetes/client-node';
import { ownedBy } from '../kube/apply.ts';
import type { OwnedKind } from '../kube/informers.ts';
import { etcdClientServiceContext, etcdMemberContext, etcdMembers, etcdNetworkPolicyContext } from '../model/control-plane.ts';
import { names } from '../model/names.ts';
import { notReady, ready, Reasons } from '../status/conditions.ts';
import { modelFacts } from './apiserver-service-unit.ts';
import { cached, type ClusterSpec, type ObjectRef, type ReconcileContext } from './context.ts';

const podReady = (pod: V1Pod | undefined) => pod?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

/** What etcd prints when it starts as a member of an existing cluster without any data of its own. */
const startedWithoutData = 'cannot fetch cluster info from peer urls';

/** Why a member of a formed cluster has no data, or undefined while it has (as far as can be seen). */
function dataLoss(spec: ClusterSpec, member: string, claim: V1PersistentVolumeClaim | undefined, pod: V1Pod | undefined): string | undefined {
  const podAlive = pod !== undefined && !pod.metadata?.deletionTimestamp;
  if (spec.etcd.storage.claimTemplate && !podAlive && (!claim || claim.metadata?.deletionTimestamp)) {
    return `the claim ${member} that held the data of member ${member} was deleted`;
  }
  const status = pod?.status?.containerStatuses?.find((c) => c.name === 'etcd');
  const message = `${status?.lastState?.terminated?.message ?? ''}${status?.state?.terminated?.message ?? ''}`;
  if (message.includes(startedWithoutData)) return `member ${member} started without its data (its data directory is empty)`;
  return undefined;
}

export function wantedEtcdObjects(cluster: string, spec: ClusterSpec): ObjectRef[] {
  const wanted: ObjectRef[] = [{ kind: 'Service', name: names.etcdClient(cluster) }, { kind: 'NetworkPolicy', name: names.etcdClient(cluster) }];
  for (let i = 0; i < etcdMembers(spec); i++) {
    const member = names.etcdMember(cluster, i);
    wanted.push({ kind: 'Service', name: member }, { kind: 'Pod', name: member });
    if (spec.etcd.storage.claimTemplate) wanted.push({ kind: 'PersistentVolumeClaim', name: member });
  }
  return wanted;
}

export async function reconcileEtcd(ctx: ReconcileContext): Promise<void> {
  const spec = ctx.cluster.spec;
  const record = ctx.status.etcd ?? {};
  const initialized = record.initialized ?? false;
  const count = etcdMembers(spec);
  // what the cluster is formed with; a later change of either is refused before any unit runs
  ctx.status.etcd = { ...record, size: record.size ?? count, version: record.version ?? spec.etcd.version };
  const facts = modelFacts(ctx);

  for (const obj of ctx.renderer.render('etcd-client-service.yaml.hbs', etcdClientServiceContext(facts))) {
    await ctx.writer.apply(ownedBy(obj, ctx.owner), cached(ctx, 'Service', names.etcdClient(ctx.name)));
  }
  for (const obj of ctx.renderer.render('etcd-network-policy.yaml.hbs', etcdNetworkPolicyContext(facts))) {
    await ctx.writer.apply(ownedBy(obj, ctx.owner), cached(ctx, 'NetworkPolicy', names.etcdClient(ctx.name)));
  }

  const members: { name: string; healthy: boolean }[] = [];
  const lost: string[] = [];
  for (let i = 0; i < count; i++) {
    const member = names.etcdMember(ctx.name, i);
    const pod = cached<V1Pod>(ctx, 'Pod', member);
    const claim = cached<V1PersistentVolumeClaim>(ctx, 'PersistentVolumeClaim', member);
    const loss = initialized ? dataLoss(spec, member, claim, pod) : undefined;
    const headless = cached<V1Service>(ctx, 'Service', member)?.spec?.clusterIP === 'None';
    for (const obj of ctx.renderer.render('etcd-member.yaml.hbs', etcdMemberContext(spec, facts, i, { headless }))) {
      const kind = obj.kind as OwnedKind;
      const live = cached<KubernetesObject>(ctx, kind, obj.metadata.name);
      if (kind === 'Pod' || kind === 'PersistentVolumeClaim') {
        // created once (their specs are mostly immutable), and never again for a member whose data is gone
        if (!live && !loss) await ctx.writer.createOnly(ownedBy(obj, ctx.owner));
        continue;
      }
      await ctx.writer.apply(ownedBy(obj, ctx.owner), live);
    }
    if (loss) lost.push(loss);
    members.push({ name: member, healthy: !loss && podReady(pod) });
  }

  const healthy = members.filter((m) => m.healthy).length;
  ctx.facts.etcdQuorum = healthy > count / 2;
  ctx.status.etcd = { ...ctx.status.etcd, members, ...(healthy === count ? { initialized: true } : {}) };
  if (lost.length > 0 && count === 1) {
    ctx.facts.etcdDataLost = true;
    ctx.facts.etcdQuorum = false;
    ctx.setCondition('EtcdReady', notReady(Reasons.DataLost, `${lost.join('; ')} after the cluster was formed. It is not started empty, and the `
      + 'apiserver, controller-manager and scheduler are scaled to 0 so that nothing answers from a cache of data that is gone. '
      + 'To start over with an empty etcd, delete this Cluster and create it again'));
    return;
  }
  if (lost.length > 0) {
    ctx.setCondition('EtcdReady', notReady(Reasons.MemberDataLost, `${lost.join('; ')}; the member is not started empty (replacing a member `
      + `is not supported yet); ${healthy}/${count} members ready`));
    return;
  }
  ctx.setCondition('EtcdReady', healthy === count
    ? ready(`${healthy}/${count} members ready`)
    : notReady(ctx.facts.etcdQuorum ? Reasons.MembersNotReady : Reasons.NoQuorum, `${healthy}/${count} members ready`));
}
