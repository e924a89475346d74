// etcd: the client Service, the NetworkPolicy, and per member a Service, a claim and a Pod.
//
// Forming: every member Pod starts at once with initial-cluster-state=new. Once all are ready the
// cluster is recorded as formed (status.etcd.initialized, which lives on the Cluster and so
// survives the loss of any member's data), and from then on membership is etcd's business, asked
// over its v3 API with the operator's own client certificate (operator/etcd/): the member list is
// the truth, and operator/etcd/membership.ts decides at most one membership call per pass. A
// member Pod is created only for a member that etcd knows (state existing), so a member never
// starts empty as a new cluster.
//
// The only member of a one-member cluster cannot be replaced: when its data is gone (claim deleted,
// or etcd says it started without its data) the Cluster reports DataLost and the apiserver,
// controller-manager and scheduler are scaled to 0, so nothing answers from a cache of data that
// is gone. Restoring a snapshot into a new Cluster is the way back.
import { X509Certificate } from 'node:crypto';
import type {
  KubernetesObject,
  V1Job,
  V1PersistentVolumeClaim,
  V1Pod,
  V1Secret,
  V1Service,
} from '@kubernetes/client-node';
import { keptBy, ownedBy } from '../../../kube/apply.ts';
import type { OwnedKind } from '../watches.ts';
import {
  memberIdHex,
  type EtcdClient,
  type EtcdMember,
  type EtcdStatus,
  type EtcdTarget,
} from '../../../etcd/client.ts';
import {
  healthy,
  leaderIdOf,
  planMembership,
  quorum,
  type MembershipPlan,
  type SlotView,
} from '../../../etcd/membership.ts';
import {
  etcdDataDirAnnotation,
  etcdMemberHost,
  etcdMemberIdAnnotation,
  etcdMembers,
  etcdPeerURL,
  etcdTemplateHashAnnotation,
  maxEtcdMembers,
  type ControlPlaneFacts,
  type EtcdJoin,
} from '../../../model/control-plane.ts';
import { inputsHashAnnotation, names, secrets } from '../../../names/cluster-names.ts';
import { notReady, ready, Reasons } from '../conditions.ts';
import { trustBundle, type AuthorityState } from '../../../pki/ca-rotation.ts';
import { modelFacts } from '../model-facts.ts';
import { decode } from '../../../kube/secret-data.ts';
import { cached, type ClusterSpec, type ClusterStatus, type ObjectRef, type ReconcileContext } from '../context.ts';
import { controlPlaneParts } from '../../../model/control-plane-parts.ts';
import { isReady as podReady } from '../../../kube/ready.ts';

const alive = (pod: V1Pod | undefined): pod is V1Pod => pod !== undefined && !pod.metadata?.deletionTimestamp;

/** What etcd prints when it starts as a member of a formed cluster without its data. */
const startedWithoutData = ['cannot fetch cluster info from peer urls', 'has already been bootstrapped'];

/** Why a member of a formed cluster has no data, or undefined while it has (as far as can be seen). */
function dataLoss(
  spec: ClusterSpec,
  member: string,
  claim: V1PersistentVolumeClaim | undefined,
  pod: V1Pod | undefined,
): string | undefined {
  if (spec.etcd.storage.claimTemplate && !alive(pod) && (!claim || claim.metadata?.deletionTimestamp)) {
    return `the claim ${member} that held the data of member ${member} was deleted`;
  }
  if (spec.etcd.storage.volumeSource?.emptyDir !== undefined && !alive(pod))
    return `the Pod ${member} kept its data in an emptyDir and is gone`;
  const status = pod?.status?.containerStatuses?.find((c) => c.name === 'etcd');
  const message = `${status?.lastState?.terminated?.message ?? ''}${status?.state?.terminated?.message ?? ''}`;
  if (startedWithoutData.some((m) => message.includes(m)))
    return `member ${member} started without its data (its data directory is empty)`;
  return undefined;
}

export function wantedEtcdObjects(cluster: string, spec: ClusterSpec): ObjectRef[] {
  const wanted: ObjectRef[] = [
    { kind: 'Service', name: names.etcdClient(cluster) },
    { kind: 'NetworkPolicy', name: names.etcdClient(cluster) },
    { kind: 'NetworkPolicy', name: names.egressPolicy(cluster) },
  ];
  for (let i = 0; i < etcdMembers(spec); i++) {
    const member = names.etcdMember(cluster, i);
    wanted.push({ kind: 'Service', name: member }, { kind: 'Pod', name: member });
    if (spec.etcd.storage.claimTemplate) wanted.push({ kind: 'PersistentVolumeClaim', name: member });
  }
  return wanted;
}

/** The members' claims outlive the Cluster (spec.etcd.storage.deletionPolicy, Retain unless Delete). */
const retainsClaims = (spec: ClusterSpec) => spec.etcd.storage.deletionPolicy !== 'Delete';

/**
 * Every claim of a member is owned the way the deletion policy says: by an owner reference
 * (Delete: the garbage collector takes it with the Cluster) or by the annotation alone (Retain:
 * nothing for the garbage collector to follow, so no deletion of the Cluster, foreground or not,
 * reaches the data). Claims made before the policy existed, or before it changed, are moved over.
 */
async function keepClaimsAsAsked(ctx: ReconcileContext): Promise<void> {
  if (!ctx.cluster.spec.etcd.storage.claimTemplate) return;
  const retain = retainsClaims(ctx.cluster.spec);
  const moved: string[] = [];
  for (let i = 0; i < maxEtcdMembers; i++) {
    const claim = cached<V1PersistentVolumeClaim>(ctx, 'PersistentVolumeClaim', names.etcdMember(ctx.name, i));
    if (!claim || claim.metadata?.deletionTimestamp) continue;
    const referenced = (claim.metadata?.ownerReferences ?? []).some((r) => r.uid === ctx.owner.uid);
    if (retain !== referenced) continue;
    await ctx.writer.setOwnership({ ...claim, apiVersion: 'v1', kind: 'PersistentVolumeClaim' }, ctx.owner, !retain);
    moved.push(claim.metadata?.name ?? '');
  }
  if (moved.length > 0) {
    ctx.events.normal(
      'EtcdClaimsDeletionPolicy',
      retain
        ? `claims ${moved.join(', ')} stay with their data when the Cluster is deleted (deletionPolicy Retain)`
        : `claims ${moved.join(', ')} go with the Cluster when it is deleted (deletionPolicy Delete)`,
    );
  }
}

type MemberObjects = { service: KubernetesObject; claim?: KubernetesObject | undefined; pod: KubernetesObject };

function render(ctx: ReconcileContext, facts: ControlPlaneFacts, index: number, join?: EtcdJoin): MemberObjects {
  const member = names.etcdMember(ctx.name, index);
  const headless = cached<V1Service>(ctx, 'Service', member)?.spec?.clusterIP === 'None';
  const retain = retainsClaims(ctx.cluster.spec);
  const objects = ctx.renderer
    .render(
      controlPlaneParts.etcdMember.template,
      controlPlaneParts.etcdMember.context(ctx.cluster.spec, facts, index, { headless, ...(join ? { join } : {}) }),
    )
    .map((o) => (o.kind === 'PersistentVolumeClaim' && retain ? keptBy(o, ctx.owner) : ownedBy(o, ctx.owner)));
  const of = (kind: OwnedKind) => objects.find((o) => o.kind === kind);
  return { service: of('Service')!, claim: of('PersistentVolumeClaim'), pod: of('Pod')! };
}

export async function reconcileEtcd(ctx: ReconcileContext): Promise<void> {
  const spec = ctx.cluster.spec;
  const record = ctx.status.etcd ?? {};
  const count = etcdMembers(spec);
  // size: the voting members the apiserver is pointed at; it grows once a growth has completed
  ctx.status.etcd = { ...record, size: record.size ?? count, version: record.version ?? spec.etcd.version };
  const facts = modelFacts(ctx);

  const { etcdClientService, etcdNetworkPolicy, egressPolicy } = controlPlaneParts;
  for (const obj of ctx.renderer.render(etcdClientService.template, etcdClientService.context(facts))) {
    await ctx.writer.apply(ownedBy(obj, ctx.owner), cached(ctx, 'Service', names.etcdClient(ctx.name)));
  }
  for (const obj of ctx.renderer.render(etcdNetworkPolicy.template, etcdNetworkPolicy.context(facts))) {
    await ctx.writer.apply(ownedBy(obj, ctx.owner), cached(ctx, 'NetworkPolicy', names.etcdClient(ctx.name)));
  }
  // before any Pod of the Cluster starts: none of them ever reaches more than its own control plane
  for (const obj of ctx.renderer.render(
    egressPolicy.template,
    egressPolicy.context(facts, ctx.settings.policy.allowedEgressCIDRs),
  )) {
    await ctx.writer.apply(ownedBy(obj, ctx.owner), cached(ctx, 'NetworkPolicy', names.egressPolicy(ctx.name)));
  }
  // each member as the current template has it (a Pod that joins is rendered again with its peers)
  const rendered = Array.from({ length: count }, (_, i) => render(ctx, facts, i));
  for (const [i, member] of rendered.entries())
    await ctx.writer.apply(member.service, cached(ctx, 'Service', names.etcdMember(ctx.name, i)));
  await keepClaimsAsAsked(ctx);
  if (!record.initialized) await form(ctx, facts, rendered);
  else if ((record.size ?? count) === 1 && onlyMemberLost(ctx, spec)) return;
  else await manage(ctx, facts, rendered);
}

/**
 * Before a Cluster created from a snapshot forms: one Job per member restores it into the
 * member's data volume. True once every member was restored (recorded in status.etcd.restored, so
 * it never runs again); until then no member Pod starts.
 */
async function restored(ctx: ReconcileContext, facts: ControlPlaneFacts, rendered: MemberObjects[]): Promise<boolean> {
  const from = ctx.cluster.spec.etcd.restoreFrom;
  const count = rendered.length;
  if (!from || ctx.status.etcd?.restored) return true;
  const failures: string[] = [];
  let done = 0;
  for (let i = 0; i < count; i++) {
    const member = names.etcdMember(ctx.name, i);
    const claim = rendered[i]!.claim;
    if (claim && !cached(ctx, 'PersistentVolumeClaim', member)) await ctx.writer.createOnly(claim);
    const name = names.etcdRestore(ctx.name, i);
    let job = cached<V1Job>(ctx, 'Job', name);
    if (!job) {
      const part = controlPlaneParts.etcdRestore;
      const [obj] = ctx.renderer.render(part.template, part.context(ctx.cluster.spec, facts, i));
      const { created, live } = await ctx.writer.createOnly(ownedBy(obj!, ctx.owner));
      job = live;
      if (created) ctx.events.normal('RestoreStarted', `restoring ${from.path} into ${member}`);
    }
    const finished = (type: string) => job.status?.conditions?.some((c) => c.type === type && c.status === 'True');
    if (finished('Complete')) done++;
    else if (finished('Failed')) failures.push(`${name}: ${restoreFailure(ctx, name)}`);
  }
  if (done === count) {
    ctx.status.etcd = { ...ctx.status.etcd, restored: true };
    ctx.events.normal('Restored', `every member was restored from ${from.path}`);
    return true;
  }
  ctx.facts.etcd.quorum = false;
  ctx.setCondition(
    'EtcdReady',
    failures.length > 0
      ? notReady(
          Reasons.RestoreFailed,
          `restoring ${from.path} failed: ${failures.join('; ')}. Fix spec.etcd.restoreFrom's volume or file by creating the Cluster anew`,
        )
      : notReady(Reasons.Restoring, `restoring ${from.path}: ${done}/${count} members restored`),
  );
  ctx.requeueAfter(2000);
  return false;
}

/** What the restore Pod of Job `job` said when it failed (its last log lines), or a pointer to it. */
function restoreFailure(ctx: ReconcileContext, job: string): string {
  const pods = (ctx.caches.owned.Pod.list(ctx.namespace) as V1Pod[]).filter(
    (p) => p.metadata?.labels?.['job-name'] === job,
  );
  const message = pods.map((p) => p.status?.containerStatuses?.[0]?.state?.terminated?.message?.trim()).find((m) => m);
  return message ? message.split('\n').slice(-3).join(' ') : `see kubectl logs job/${job}`;
}

/** Creation: every member starts at once and they form the cluster together. */
async function form(ctx: ReconcileContext, facts: ControlPlaneFacts, rendered: MemberObjects[]): Promise<void> {
  if (!(await restored(ctx, facts, rendered))) return;
  const count = rendered.length;
  let readyCount = 0;
  for (const [i, objects] of rendered.entries()) {
    const member = names.etcdMember(ctx.name, i);
    if (objects.claim && !cached(ctx, 'PersistentVolumeClaim', member)) await ctx.writer.createOnly(objects.claim);
    const pod = cached<V1Pod>(ctx, 'Pod', member);
    if (!pod) await ctx.writer.createOnly(objects.pod);
    if (podReady(pod)) readyCount++;
  }
  ctx.facts.etcd.quorum = readyCount > count / 2;
  ctx.status.etcd = { ...ctx.status.etcd, size: count, ...(readyCount === count ? { initialized: true } : {}) };
  ctx.setCondition(
    'EtcdReady',
    readyCount === count
      ? ready(`${readyCount}/${count} members ready`)
      : notReady(
          ctx.facts.etcd.quorum ? Reasons.MembersNotReady : Reasons.NoQuorum,
          `forming: ${readyCount}/${count} members ready`,
        ),
  );
}

/** A one-member cluster whose member lost its data: DataLost, and nothing may serve. True when so. */
function onlyMemberLost(ctx: ReconcileContext, spec: ClusterSpec): boolean {
  const member = names.etcdMember(ctx.name, 0);
  const loss = dataLoss(spec, member, cached(ctx, 'PersistentVolumeClaim', member), cached(ctx, 'Pod', member));
  if (!loss) return false;
  ctx.facts.etcd.dataLost = true;
  ctx.facts.etcd.quorum = false;
  ctx.setCondition(
    'EtcdReady',
    notReady(
      Reasons.DataLost,
      `${loss} after the cluster was formed. It is not started empty, and the ` +
        'apiserver, controller-manager and scheduler are scaled to 0 so that nothing answers from a cache of data that is gone. ' +
        'To start over with an empty etcd, delete this Cluster and create it again',
    ),
  );
  return true;
}

interface Observed {
  slots: (SlotView & {
    podObject?: V1Pod | undefined;
    claimObject?: V1PersistentVolumeClaim | undefined;
    target?: EtcdTarget | undefined;
  })[];
  members: EtcdMember[] | undefined;
  client: EtcdClient;
}

async function observe(
  ctx: ReconcileContext,
  facts: ControlPlaneFacts,
  rendered: MemberObjects[],
  client: EtcdClient,
): Promise<Observed> {
  const now = ctx.now.getTime();
  const slots = await Promise.all(
    rendered.map(async (wanted, index) => {
      const name = names.etcdMember(ctx.name, index);
      const podObject = cached<V1Pod>(ctx, 'Pod', name);
      const claimObject = cached<V1PersistentVolumeClaim>(ctx, 'PersistentVolumeClaim', name);
      const address = alive(podObject) ? podObject.status?.podIP : undefined;
      const target = address ? { address, servername: etcdMemberHost(facts, index) } : undefined;
      let status: EtcdStatus | undefined;
      let statusError: string | undefined;
      if (target) {
        status = await client.status(target).catch((err: unknown) => {
          statusError = (err as Error).message;
          return undefined;
        });
      } else {
        statusError = podObject ? 'its Pod has no address' : 'it has no Pod';
      }
      const slot: SlotView = {
        index,
        name,
        peerURL: etcdPeerURL(facts, index),
        ...(podObject
          ? {
              pod: {
                deleting: !!podObject.metadata?.deletionTimestamp,
                address,
                memberId: memberIdOf(podObject),
                ready: podReady(podObject),
              },
            }
          : {}),
        dataLost: dataLoss(ctx.cluster.spec, name, claimObject, podObject),
        status,
        statusError,
        unhealthyForMs: 0,
        outdated: alive(podObject) ? outdated(ctx, wanted.pod, podObject) : undefined,
      };
      // timed per Pod: a replacement's new Pod starts with a clean slate, not with its predecessor's time
      slot.unhealthyForMs = ctx.etcd.unhealthyFor(timerKey(ctx, name, podObject), healthy(slot), now);
      return { ...slot, podObject, claimObject, target };
    }),
  );
  ctx.etcd.prune(
    `${ctx.namespace}/${ctx.name}/`,
    slots.map((s) => timerKey(ctx, s.name, s.podObject)),
  );
  let members: EtcdMember[] | undefined;
  // a healthy member first: the list is read through raft, so any member with quorum answers the same
  for (const s of [...slots].sort((a, b) => Number(healthy(b)) - Number(healthy(a)))) {
    if (!s.target) continue;
    members = await client.memberList(s.target).catch(() => undefined);
    if (members) break;
  }
  return { slots, members, client };
}

/**
 * Why a member's Pod is to be restarted on the current template, if it is. A member that keeps its
 * data in an emptyDir is never restarted for this: its data would go with the Pod.
 */
function outdated(ctx: ReconcileContext, wanted: KubernetesObject, pod: V1Pod): string | undefined {
  if (ctx.cluster.spec.etcd.storage.volumeSource?.emptyDir !== undefined) return undefined;
  const hash = (p: KubernetesObject) => p.metadata?.annotations?.[etcdTemplateHashAnnotation];
  if (hash(pod) === hash(wanted)) return undefined;
  const image = (p: V1Pod) => p.spec?.containers?.find((c) => c.name === 'etcd')?.image;
  const [running, want] = [image(pod), image(wanted)];
  if (running !== want) return `it runs ${running}, the spec wants ${want}`;
  if (pod.metadata?.annotations?.[inputsHashAnnotation] !== wanted.metadata?.annotations?.[inputsHashAnnotation])
    return 'its certificates changed';
  return 'its flags changed';
}

/**
 * While the etcd CA is being replaced (signing), whether every member serves the certificate its
 * Secret holds. Members pick up a re-issued certificate without a restart, once the kubelet has
 * updated their Secret volume; the old CA may leave the trust bundles only after that.
 */
async function servingIssuedCertificates(ctx: ReconcileContext, observed: Observed): Promise<boolean> {
  if (ctx.facts.pki.authorities?.['etcd-ca'].previous === undefined) return true;
  for (const s of observed.slots) {
    const pem = decode(cached<V1Secret>(ctx, 'Secret', secrets.etcdMemberTls(ctx.name, s.index)), 'tls.crt');
    const served = s.target ? await observed.client.servedSerial(s.target).catch(() => undefined) : undefined;
    if (!pem || served !== new X509Certificate(pem).serialNumber) {
      ctx.log.info({ member: s.name }, 'waiting for the member to serve its re-issued certificate');
      // nothing the operator watches changes when the kubelet updates the volume
      ctx.requeueAfter(10_000);
      return false;
    }
  }
  return true;
}

const timerKey = (ctx: ReconcileContext, member: string, pod: V1Pod | undefined) =>
  `${ctx.namespace}/${ctx.name}/${member}/${pod?.metadata?.uid ?? 'none'}`;

function memberIdOf(pod: V1Pod): string | undefined {
  const hex = pod.metadata?.annotations?.[etcdMemberIdAnnotation];
  return hex ? BigInt(`0x${hex}`).toString() : undefined;
}

/**
 * The operator's etcd credentials: the key pair of its Secret (which the PKI unit checks is the one
 * it issued) and the etcd CAs as the CA Secret holds them, not the ca.crt beside the pair.
 */
const credentialsOf = (secret: V1Secret | undefined, etcdCa: AuthorityState | undefined) => {
  const [cert, key] = ['tls.crt', 'tls.key'].map((k) => decode(secret, k));
  return etcdCa && cert && key ? { ca: trustBundle(etcdCa), cert, key } : undefined;
};

/** A formed cluster: observe through etcd, plan, make at most one membership call. */
async function manage(ctx: ReconcileContext, facts: ControlPlaneFacts, rendered: MemberObjects[]): Promise<void> {
  const count = rendered.length;
  const key = `${ctx.namespace}/${ctx.name}`;
  const credentials = credentialsOf(
    cached<V1Secret>(ctx, 'Secret', secrets.etcdOperatorClient(ctx.name)),
    ctx.facts.pki.authorities?.['etcd-ca'],
  );
  if (!credentials) {
    ctx.facts.etcd.quorum =
      ctx.cluster.status?.conditions?.some((c) => c.type === 'EtcdReady' && c.status === 'True') ?? false;
    ctx.setCondition(
      'EtcdReady',
      notReady(
        Reasons.EtcdUnreachable,
        `waiting for the operator's etcd client certificate ${secrets.etcdOperatorClient(ctx.name)}`,
      ),
    );
    ctx.requeueAfter(2000);
    return;
  }
  await forceDeleteStuckPods(ctx, count);
  const observed = await observe(ctx, facts, rendered, ctx.etcd.client(key, credentials));
  const plan = planMembership({
    slots: observed.slots,
    members: observed.members,
    replaceUnhealthyAfterMs: ctx.settings.etcdReplaceUnhealthyAfterMs,
  });

  let restarted: NonNullable<ClusterStatus['etcd']>['lastChange'];
  for (const { slot, why, restart } of plan.deletePods) {
    const pod = observed.slots[slot]!.podObject!;
    await ctx.writer.delete({ ...pod, apiVersion: 'v1', kind: 'Pod' });
    if (restart) {
      // started again with its data by a later pass, on the current template (one member at a time)
      ctx.log.info({ member: pod.metadata?.name, why }, 'restarting an etcd member on the current template');
      ctx.events.normal('MemberRestarting', `restarting ${pod.metadata?.name} with its data: ${why}`);
      restarted = { time: ctx.now.toISOString(), action: 'restart', member: pod.metadata?.name ?? '', reason: why };
    } else {
      ctx.log.info({ member: pod.metadata?.name, why }, 'deleted an etcd member Pod');
      ctx.events.normal('MemberPodDeleted', `deleted Pod ${pod.metadata?.name}: ${why}`);
    }
  }
  for (const { slot, memberId } of plan.startPods) await startPod(ctx, facts, observed, slot, memberId);
  const change = (plan.call ? await call(ctx, observed, plan) : undefined) ?? restarted;

  report(ctx, observed, plan, count, change);
  if (ctx.facts.etcd.current) ctx.facts.etcd.current = await servingIssuedCertificates(ctx, observed);
  if (plan.progressing || plan.startPods.length > 0) ctx.requeueAfter(2000);
  else if (observed.slots.some((s) => s.unhealthyForMs > 0)) {
    // to replace it once it has been unhealthy long enough, and to see it come back
    ctx.requeueAfter(
      Math.max(
        1000,
        Math.min(
          5000,
          ctx.settings.etcdReplaceUnhealthyAfterMs - Math.max(...observed.slots.map((s) => s.unhealthyForMs)),
        ),
      ),
    );
  }
}

/** How long past its grace period a member Pod on a node that is not Ready may stay terminating. */
const stuckAfterMs = 60_000;

/**
 * A member Pod that is terminating long past its grace period on a node that is gone or not Ready
 * would be waited on forever: its kubelet cannot confirm it stopped. It is removed without that
 * confirmation, so that the member can start again (or be replaced). Nodes are read only when
 * there is such a Pod.
 */
async function forceDeleteStuckPods(ctx: ReconcileContext, count: number): Promise<void> {
  const now = ctx.now.getTime();
  const stuck = Array.from({ length: count }, (_, i) =>
    cached<V1Pod>(ctx, 'Pod', names.etcdMember(ctx.name, i)),
  ).filter((pod): pod is V1Pod => {
    const since = pod?.metadata?.deletionTimestamp;
    return (
      since !== undefined &&
      now - new Date(since).getTime() > (pod!.metadata?.deletionGracePeriodSeconds ?? 30) * 1000 + stuckAfterMs
    );
  });
  if (stuck.length === 0) return;
  const nodes = await ctx.nodes();
  for (const pod of stuck) {
    const node = nodes.find((n) => n.name === pod.spec?.nodeName);
    if (node?.ready) continue; // its kubelet is there and will finish the job
    const why = node ? `its node ${node.name} is not Ready` : `its node ${pod.spec?.nodeName ?? '(none)'} is gone`;
    await ctx.writer.delete({ ...pod, apiVersion: 'v1', kind: 'Pod' }, { gracePeriodSeconds: 0 });
    ctx.log.warn({ member: pod.metadata?.name, why }, 'removed an etcd member Pod stuck terminating');
    ctx.events.warning(
      'MemberPodForceDeleted',
      `removed Pod ${pod.metadata?.name}, terminating since ${String(pod.metadata?.deletionTimestamp)}: ${why}`,
    );
  }
  ctx.requeueAfter(2000);
}

/** Creates the Pod (and the claim, if gone) of a member etcd knows; `memberId` when the operator added it and it never started. */
async function startPod(
  ctx: ReconcileContext,
  facts: ControlPlaneFacts,
  observed: Observed,
  slot: number,
  memberId: string | undefined,
): Promise<void> {
  const s = observed.slots[slot]!;
  // a claim on its way out would take the new Pod's volume with it: wait until it is gone
  if (s.claimObject?.metadata?.deletionTimestamp) return;
  const hex = memberId ? memberIdHex(memberId) : undefined;
  // where the member's data is: recorded on its claim, or (a volumeSource has none) on its Service;
  // a new member starts in a directory of its own, and what an earlier member left stays there, unused
  const service = cached<V1Service>(ctx, 'Service', s.name);
  const recorded = (s.claimObject ?? service)?.metadata?.annotations?.[etcdDataDirAnnotation];
  const dataDir = hex ? `data-${hex}` : (recorded ?? 'data');
  // A member that ran before starts from its data and reads no peer list; it is given only itself,
  // so that one whose data is gone cannot quietly rejoin under its old ID with an empty log (it
  // would have forgotten its raft votes): it fails to find peers, says so, and is replaced. A new
  // member gets the started members to join.
  const started = hex ? (observed.members ?? []).filter((m) => m.name !== '' && !m.peerURLs.includes(s.peerURL)) : [];
  const join: EtcdJoin = {
    initialCluster: [...started.map((m) => `${m.name}=${m.peerURLs[0]}`), `${s.name}=${s.peerURL}`],
    dataDir,
    memberId: hex,
  };
  const objects = render(ctx, facts, slot, join);
  if (objects.claim) {
    if (!s.claimObject) await ctx.writer.createOnly(objects.claim);
    else if (recorded !== dataDir) {
      await ctx.writer.annotate(
        { ...s.claimObject, apiVersion: 'v1', kind: 'PersistentVolumeClaim' },
        { [etcdDataDirAnnotation]: dataDir },
      );
    }
  } else if (service && recorded !== dataDir) {
    // kept out of the rendered Service (its apply leaves an annotation it never set alone)
    await ctx.writer.annotate({ ...service, apiVersion: 'v1', kind: 'Service' }, { [etcdDataDirAnnotation]: dataDir });
  }
  const { created } = await ctx.writer.createOnly(objects.pod);
  if (created) {
    ctx.log.info({ member: s.name, dataDir, memberId: hex }, 'started an etcd member Pod');
    if (hex) ctx.events.normal('MemberStarted', `started Pod ${s.name} for the new member ${hex} (data in ${dataDir})`);
  }
}

/** Makes the plan's one membership call, through a healthy voting member (the leader if known). */
async function call(
  ctx: ReconcileContext,
  observed: Observed,
  plan: MembershipPlan,
): Promise<NonNullable<ClusterStatus['etcd']>['lastChange']> {
  const c = plan.call!;
  const slot = observed.slots[c.slot]!;
  const leaderId = leaderIdOf(observed.slots);
  const voters = new Set((observed.members ?? []).filter((m) => !m.isLearner).map((m) => m.id));
  // a leadership transfer is accepted from the leader only; the rest goes to any healthy voter, the leader first
  const through =
    c.call === 'move-leader'
      ? slot
      : observed.slots
          .filter((s) => s.target && healthy(s) && s.status && voters.has(s.status.memberId))
          .sort((a, b) => Number(b.status!.memberId === leaderId) - Number(a.status!.memberId === leaderId))[0];
  if (!through?.target) return undefined;
  // a replica that may no longer lead makes no call, to etcd no more than to the meta-cluster
  ctx.writer.assertMayWrite();
  const time = ctx.now.toISOString();
  try {
    if (c.call === 'promote') {
      await observed.client.memberPromote(through.target, c.id);
      ctx.etcd.countCall(c.call, 'ok');
      ctx.events.normal('MemberPromoted', `promoted ${slot.name} (${memberIdHex(c.id)}) to a voting member`);
      ctx.log.info({ member: slot.name, id: memberIdHex(c.id) }, 'etcd member promoted');
      return { time, action: 'promote', member: slot.name, reason: 'caught up with the leader' };
    }
    if (c.call === 'move-leader') {
      await observed.client.moveLeader(through.target, c.id);
      ctx.etcd.countCall(c.call, 'ok');
      const to = observed.slots.find((s) => s.status?.memberId === c.id)?.name ?? memberIdHex(c.id);
      ctx.events.normal('LeaderMoved', `moved the etcd leadership from ${slot.name} to ${to}: ${c.why}`);
      ctx.log.info({ from: slot.name, to, why: c.why }, 'etcd leadership moved');
      return { time, action: 'move-leader', member: slot.name, reason: c.why };
    }
    if (c.call === 'add') {
      const added = await observed.client.memberAdd(through.target, c.peerURL, { learner: true });
      ctx.etcd.countCall(c.call, 'ok');
      ctx.events.normal('MemberAdded', `added ${slot.name} (${memberIdHex(added.id)}) as a learner: ${c.why}`);
      ctx.log.info({ member: slot.name, id: memberIdHex(added.id), why: c.why }, 'etcd member added as a learner');
      return { time, action: 'add', member: slot.name, reason: c.why };
    }
    await observed.client.memberRemove(through.target, c.id);
    ctx.etcd.countCall(c.call, 'ok');
    ctx.events.warning('MemberRemoved', `removed ${slot.name} (${memberIdHex(c.id)}) to replace it: ${c.why}`);
    ctx.log.warn({ member: slot.name, id: memberIdHex(c.id), why: c.why }, 'etcd member removed to be replaced');
    return { time, action: 'remove', member: slot.name, reason: c.why };
  } catch (err) {
    ctx.etcd.countCall(c.call, 'refused');
    // e.g. a learner not caught up yet ("can only promote a learner member which is in sync with leader"): looked at again soon
    ctx.log.info({ member: slot.name, call: c.call, err: (err as Error).message }, 'etcd membership call not made yet');
    return undefined;
  }
}

function report(
  ctx: ReconcileContext,
  observed: Observed,
  plan: MembershipPlan,
  count: number,
  change: NonNullable<ClusterStatus['etcd']>['lastChange'],
): void {
  const members = observed.members ?? [];
  const bySlot = new Map(observed.slots.map((s) => [s.peerURL, s]));
  const voters = members.filter((m) => !m.isLearner);
  const leaderId = leaderIdOf(observed.slots);
  const grown =
    observed.members !== undefined &&
    !plan.progressing &&
    !plan.blocked &&
    observed.slots.every((s) => voters.some((m) => m.peerURLs.includes(s.peerURL)));
  const record = ctx.status.etcd ?? {};
  // the version every member reports: after a restart onto a new version, once the last one runs it
  const versions = new Set(observed.slots.map((s) => s.status?.version));
  const [version] = versions;
  ctx.status.etcd = {
    ...record,
    ...(versions.size === 1 && version ? { version: `v${version}` } : {}),
    ...(observed.members
      ? {
          members: members
            .map((m) => {
              const s = bySlot.get(m.peerURLs[0] ?? '');
              return {
                name: s?.name ?? (m.name || memberIdHex(m.id)),
                id: memberIdHex(m.id),
                peerURL: m.peerURLs[0] ?? '',
                healthy: s !== undefined && healthy(s),
                learner: m.isLearner,
              };
            })
            .sort((a, b) => a.name.localeCompare(b.name)),
          leader: observed.slots.find((s) => s.status?.memberId === leaderId)?.name ?? '',
        }
      : {}),
    ...(grown ? { size: Math.max(record.size ?? 0, count) } : {}),
    ...(change ? { lastChange: change } : {}),
  };
  ctx.facts.etcd.quorum = observed.members !== undefined && plan.healthyVoters >= quorum(plan.voters);
  ctx.facts.etcd.current =
    grown &&
    plan.healthyVoters === count &&
    observed.slots.every((s) => healthy(s) && s.outdated === undefined && s.pod?.ready === true);
  ctx.etcd.clusters.set(`${ctx.namespace}/${ctx.name}`, {
    members: members.length,
    healthyMembers: observed.slots.filter(healthy).length,
    learners: members.filter((m) => m.isLearner).length,
    dbSizeBytes: Math.max(0, ...observed.slots.map((s) => s.status?.dbSize ?? 0)),
    hasLeader: leaderId !== undefined,
  });

  const summary = `${plan.healthyVoters}/${count} voting members healthy`;
  const strangers =
    plan.strangers.length > 0
      ? `; etcd also lists ${plan.strangers.map((m) => `${m.name || '(unstarted)'} ${memberIdHex(m.id)} at ${m.peerURLs.join(',')}`).join(', ')}, which no wanted member is: it is left alone`
      : '';
  if (plan.blocked) {
    ctx.setCondition(
      'EtcdReady',
      notReady(
        plan.blocked.reason === 'QuorumLost' ? Reasons.QuorumLost : Reasons.ReplacementBlocked,
        plan.blocked.message + strangers,
      ),
    );
  } else if (plan.progressing) {
    const doing = change ? `${change.action} ${change.member}` : 'waiting for the last change to settle';
    ctx.setCondition('EtcdReady', notReady(Reasons.MembershipChanging, `${doing}; ${summary}${strangers}`));
  } else if (plan.healthyVoters === count && grown) {
    ctx.setCondition('EtcdReady', ready(`${summary}${strangers}`));
  } else {
    const down = observed.slots
      .filter((s) => !healthy(s))
      .map((s) => `${s.name}: ${s.dataLost ?? s.statusError ?? 'not healthy'}`);
    ctx.setCondition(
      'EtcdReady',
      notReady(
        ctx.facts.etcd.quorum ? Reasons.MembersNotReady : Reasons.QuorumLost,
        `${summary}; ${down.join('; ')}${strangers}`,
      ),
    );
  }
}
