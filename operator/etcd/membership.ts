// What to do next with the membership of a formed etcd cluster: a pure function of what was
// observed (the member list as etcd itself reports it, each member's status, the Pods and claims).
// It answers with at most one membership call per pass; the caller makes it and looks again.
//
// The rules, each one a guard against a way the anchors lost data:
// - the etcd member list is the truth about membership, not Pod readiness;
// - without a linearizable member list (no quorum) there is no membership call at all;
// - a member is removed only while the others keep quorum without it, and only one at a time;
// - a member is added as a learner, its Pod started only after the add (with state existing), and
//   promoted once etcd says it caught up; nothing else changes while a learner is pending;
// - nothing is ever removed because the spec asks for fewer members: never a scale-down;
// - a member whose Pod runs an older template (etcd version, flags, certificates) is restarted
//   with its data, one at a time, only while every member is a healthy voter that has caught up,
//   and the leader last: its leadership is moved to an up-to-date member first.
import type { EtcdMember, EtcdStatus } from './client.ts';

/** One wanted member, as observed. */
export interface SlotView {
  index: number;
  name: string;
  peerURL: string;
  /** Its Pod, if one exists. */
  pod?: { deleting: boolean; address?: string | undefined; memberId?: string | undefined; ready?: boolean | undefined };
  /** Why its data is known to be gone (claim deleted, Pod on an emptyDir gone, etcd said so), if it is. */
  dataLost?: string | undefined;
  /** Its status, when it answered. */
  status?: EtcdStatus | undefined;
  /** Why it did not answer, when it did not. */
  statusError?: string | undefined;
  /** How long it has been unhealthy without a break (0 while healthy). */
  unhealthyForMs: number;
  /** Why its Pod is to be restarted with its data (it runs an older template), if it is. */
  outdated?: string | undefined;
}

export interface MembershipView {
  slots: SlotView[];
  /** The member list read through raft; undefined when no member could give one. */
  members: EtcdMember[] | undefined;
  /** An unhealthy member is replaced after this long. */
  replaceUnhealthyAfterMs: number;
}

export type MembershipCall =
  | { call: 'promote'; slot: number; id: string }
  | { call: 'add'; slot: number; peerURL: string; why: string }
  | { call: 'remove'; slot: number; id: string; why: string }
  /** `slot` is the leader's, `id` the member that is to lead. */
  | { call: 'move-leader'; slot: number; id: string; why: string };

export interface MembershipPlan {
  call?: MembershipCall;
  /** Slots whose Pod is to be created (it is missing and its member may start). */
  startPods: { slot: number; memberId?: string }[];
  /**
   * Slots whose Pod is deleted: it belongs to a member that is no longer in the cluster (before a
   * new one starts), or, with `restart`, it runs an older template and is started again with its data.
   */
  deletePods: { slot: number; why: string; restart?: boolean }[];
  /** When nothing can be done safely: why, for a human. */
  blocked?: { reason: 'QuorumLost' | 'ReplacementBlocked'; message: string };
  /** A change is under way: look again soon. */
  progressing: boolean;
  /** Members that answer etcd's list but are no wanted slot's (never removed by the operator). */
  strangers: EtcdMember[];
  /** Voting members etcd lists, and how many of them are healthy (both 0 without a member list). */
  voters: number;
  healthyVoters: number;
}

export const healthy = (s: SlotView): boolean =>
  s.status !== undefined && s.status.errors.length === 0 && s.status.leader !== '0';

/** The member ID the slots report as their leader ('0' means "none known" and is passed over). */
export const leaderIdOf = (slots: SlotView[]): string | undefined =>
  slots.find((s) => s.status && s.status.leader !== '0')?.status?.leader;

/** Members needed for quorum among `voters`. */
export const quorum = (voters: number): number => Math.floor(voters / 2) + 1;

/** How far (in raft entries) a member may be behind the leader and still count as caught up before the next restart. */
export const caughtUpEntries = 1000n;

export function planMembership(view: MembershipView): MembershipPlan {
  const plan: MembershipPlan = {
    startPods: [],
    deletePods: [],
    progressing: false,
    strangers: [],
    voters: 0,
    healthyVoters: 0,
  };
  const { members } = view;
  if (!members) {
    // A deleted Pod whose claim is intact is not a membership change: starting it again may be
    // exactly what brings quorum back.
    for (const s of view.slots) if (!s.pod && !s.dataLost) plan.startPods.push({ slot: s.index });
    const down = view.slots
      .filter((s) => !healthy(s))
      .map((s) => `${s.name} (${s.dataLost ?? s.statusError ?? 'not healthy'})`);
    plan.blocked = {
      reason: 'QuorumLost',
      message:
        `no member could read the member list through raft: ${down.length} of ` +
        `${view.slots.length} members are down: ${down.join('; ')}. No membership change is made without quorum. Bring the members ` +
        `back (their Pods are restarted with their data; check their nodes and claims). If a majority has lost its data, the way back ` +
        `is a new Cluster restored from a snapshot`,
    };
    return plan;
  }

  const byPeer = new Map(members.flatMap((m) => m.peerURLs.map((u) => [u, m] as const)));
  const slotOf = new Map<string, SlotView>();
  for (const s of view.slots) {
    const m = byPeer.get(s.peerURL);
    if (m) slotOf.set(m.id, s);
  }
  plan.strangers = members.filter((m) => !slotOf.has(m.id));
  const voters = members.filter((m) => !m.isLearner);
  const healthyVoters = voters.filter((m) => {
    const s = slotOf.get(m.id);
    return s !== undefined && healthy(s);
  });
  plan.voters = voters.length;
  plan.healthyVoters = healthyVoters.length;

  const learners: { slot: SlotView; member: EtcdMember }[] = [];
  const lost: { slot: SlotView; member: EtcdMember; why: string }[] = [];
  const missing: SlotView[] = [];
  for (const s of view.slots) {
    const m = byPeer.get(s.peerURL);
    if (!m) {
      // never added, or removed: a Pod still there runs the removed member's data and must go first
      if (s.pod && !s.pod.deleting)
        plan.deletePods.push({ slot: s.index, why: `${s.name} is not a member of the etcd cluster` });
      else if (!s.pod) missing.push(s);
      continue;
    }
    if (s.pod?.memberId !== undefined && s.pod.memberId !== m.id && !s.pod.deleting) {
      // a Pod started for an earlier incarnation of this slot
      plan.deletePods.push({ slot: s.index, why: `${s.name} runs for member ${s.pod.memberId}, not ${m.id}` });
      continue;
    }
    // a member that never started has no data to lose: its claim and Pod are about to be made
    // a Pod on its way out is not judged: it is started again with its data once gone (a stuck one is removed)
    const why =
      (m.name !== '' ? s.dataLost : undefined) ??
      (s.pod && !s.pod.deleting && s.unhealthyForMs >= view.replaceUnhealthyAfterMs
        ? `unhealthy for ${Math.round(s.unhealthyForMs / 1000)} s (${s.statusError ?? 'not healthy'})`
        : undefined);
    if (why) {
      lost.push({ slot: s, member: m, why });
      continue;
    }
    if (!s.pod) plan.startPods.push({ slot: s.index, ...(m.name === '' ? { memberId: m.id } : {}) });
    if (m.isLearner) learners.push({ slot: s, member: m });
  }

  const change = (call: MembershipCall) => {
    plan.call = call;
    plan.progressing = true;
  };
  // finish what is under way before starting anything else
  const ready = learners.find((l) => l.member.name !== '' && healthy(l.slot));
  if (ready) {
    if (healthyVoters.length + 1 >= quorum(voters.length + 1))
      change({ call: 'promote', slot: ready.slot.index, id: ready.member.id });
    else
      plan.blocked = {
        reason: 'ReplacementBlocked',
        message: `learner ${ready.slot.name} waits: promoting it now would leave the cluster without quorum`,
      };
    return plan;
  }
  if (learners.length > 0 || plan.deletePods.length > 0) {
    plan.progressing = true;
    return plan;
  }
  const next = missing[0];
  if (next) {
    if (healthyVoters.length >= quorum(voters.length)) {
      change({
        call: 'add',
        slot: next.index,
        peerURL: next.peerURL,
        why: `${next.name} is wanted and is not a member`,
      });
    } else {
      plan.blocked = {
        reason: 'ReplacementBlocked',
        message: `${next.name} is not added yet: ${healthyVoters.length} of ${voters.length} voting members are healthy`,
      };
    }
    return plan;
  }
  const target = lost[0];
  if (!target) {
    planRestart(view, members, plan);
    return plan;
  }
  const remaining = voters.filter((m) => m.id !== target.member.id);
  const remainingHealthy = healthyVoters.filter((m) => m.id !== target.member.id);
  if (target.member.isLearner || remainingHealthy.length >= quorum(remaining.length)) {
    change({ call: 'remove', slot: target.slot.index, id: target.member.id, why: target.why });
  } else {
    plan.blocked = {
      reason: 'ReplacementBlocked',
      message:
        `${target.slot.name} must be replaced (${target.why}) but only ${remainingHealthy.length} of the other ${remaining.length} voting members ` +
        'are healthy: removing it would leave no quorum, so nothing is changed until they are back',
    };
  }
  return plan;
}

/**
 * The next member to restart on a newer template, once nothing else is under way: only while every
 * wanted member is a healthy voter that has caught up with the leader, one at a time, the leader
 * last (its leadership moved first, so no election waits on a timeout).
 */
function planRestart(view: MembershipView, members: EtcdMember[], plan: MembershipPlan): void {
  const outdated = view.slots.filter((s) => s.outdated !== undefined);
  if (outdated.length === 0 || plan.startPods.length > 0 || plan.strangers.length > 0) return;
  const leaderId = leaderIdOf(view.slots);
  const leader = view.slots.find((s) => s.status?.memberId === leaderId);
  const settled =
    leader?.status !== undefined &&
    plan.voters === view.slots.length &&
    plan.healthyVoters === view.slots.length &&
    members.every((m) => !m.isLearner) &&
    // the Pod's readiness too: what a human (and a PodDisruptionBudget) sees agrees before the next one goes
    view.slots.every(
      (s) =>
        s.pod &&
        !s.pod.deleting &&
        s.pod.ready !== false &&
        s.status &&
        leader.status!.raftIndex - s.status.raftAppliedIndex <= caughtUpEntries &&
        // every member has heard from the same leader: a member the leader cannot reach keeps its old
        // one (and a log within reach of the leader's while little is written), and restarting
        // another then would leave no quorum
        s.status.leader === leaderId,
    );
  if (!settled) return;
  const next = outdated.find((s) => s !== leader);
  if (next) {
    plan.deletePods.push({ slot: next.index, why: next.outdated!, restart: true });
    plan.progressing = true;
    return;
  }
  const successor = view.slots.find((s) => s !== leader && s.outdated === undefined);
  if (successor) {
    plan.call = {
      call: 'move-leader',
      slot: leader.index,
      id: successor.status!.memberId,
      why: `${leader.name} is to be restarted last (${leader.outdated!})`,
    };
  } else {
    // the only member: it cannot hand over, and restarting it is the only way to the new template
    plan.deletePods.push({ slot: leader.index, why: leader.outdated!, restart: true });
  }
  plan.progressing = true;
}
