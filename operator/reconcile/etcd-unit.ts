// etcd: the client Service and, per member, a headless Service, a claim and a Pod. A member Pod
// is created when missing and otherwise left alone here: replacing a member (new certificates,
// lost data) is a membership change that needs quorum, not an object update.
import type { KubernetesObject, V1Pod } from '@kubernetes/client-node';
import { ownedBy } from '../kube/apply.ts';
import type { OwnedKind } from '../kube/informers.ts';
import { etcdClientServiceContext, etcdMemberContext, etcdMembers } from '../model/control-plane.ts';
import { names } from '../model/names.ts';
import { notReady, ready, Reasons } from '../status/conditions.ts';
import { modelFacts } from './apiserver-service-unit.ts';
import { cached, type ReconcileContext } from './context.ts';

const podReady = (pod: V1Pod | undefined) => pod?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

export async function reconcileEtcd(ctx: ReconcileContext): Promise<void> {
  const spec = ctx.cluster.spec;
  const facts = modelFacts(ctx);
  for (const obj of ctx.renderer.render('etcd-client-service.yaml.hbs', etcdClientServiceContext(facts))) {
    await ctx.writer.apply(ownedBy(obj, ctx.owner), cached(ctx, 'Service', names.etcdClient(ctx.name)));
  }
  const count = etcdMembers(spec);
  const members: { name: string; healthy: boolean }[] = [];
  for (let i = 0; i < count; i++) {
    const memberName = names.etcdMember(ctx.name, i);
    for (const obj of ctx.renderer.render('etcd-member.yaml.hbs', etcdMemberContext(spec, facts, i))) {
      const kind = obj.kind as OwnedKind;
      const live = cached<KubernetesObject>(ctx, kind, obj.metadata.name);
      // pods and claims are created once; their specs are mostly immutable
      if ((kind === 'Pod' || kind === 'PersistentVolumeClaim') && live) continue;
      await ctx.writer.apply(ownedBy(obj, ctx.owner), live);
    }
    members.push({ name: memberName, healthy: podReady(cached<V1Pod>(ctx, 'Pod', memberName)) });
  }
  const healthy = members.filter((m) => m.healthy).length;
  ctx.facts.etcdQuorum = healthy > count / 2;
  ctx.status.etcd = { members };
  ctx.setCondition('EtcdReady', healthy === count
    ? ready(`${healthy}/${count} members ready`)
    : notReady(ctx.facts.etcdQuorum ? Reasons.MembersNotReady : Reasons.NoQuorum, `${healthy}/${count} members ready`));
}
