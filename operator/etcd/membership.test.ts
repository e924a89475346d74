import { describe, expect, it } from 'vitest';
import type { EtcdMember, EtcdStatus } from './client.ts';
import { planMembership, type SlotView } from './membership.ts';

const peer = (i: number) => `https://c-etcd-${i}.ns.svc.cluster.local:2380`;
const member = (i: number, extra: Partial<EtcdMember> = {}): EtcdMember => ({
  id: String(100 + i),
  name: `c-etcd-${i}`,
  peerURLs: [peer(i)],
  clientURLs: [],
  isLearner: false,
  ...extra,
});
const status = (extra: Partial<EtcdStatus> = {}): EtcdStatus => ({
  memberId: '0',
  leader: '100',
  version: '3.6.16',
  raftIndex: 10n,
  raftAppliedIndex: 10n,
  dbSize: 1,
  dbSizeInUse: 1,
  isLearner: false,
  errors: [],
  ...extra,
});
const up = (i: number, extra: Partial<SlotView> = {}): SlotView => ({
  index: i,
  name: `c-etcd-${i}`,
  peerURL: peer(i),
  pod: { deleting: false, address: `10.0.0.${i}` },
  status: status(),
  unhealthyForMs: 0,
  ...extra,
});
const down = (i: number, extra: Partial<SlotView> = {}): SlotView =>
  up(i, { status: undefined, statusError: 'connection refused', unhealthyForMs: 1000, ...extra });
const plan = (slots: SlotView[], members: EtcdMember[] | undefined) =>
  planMembership({ slots, members, replaceUnhealthyAfterMs: 60_000 });

describe('planMembership', () => {
  it('does nothing to three healthy voting members', () => {
    expect(plan([up(0), up(1), up(2)], [member(0), member(1), member(2)])).toEqual({
      startPods: [],
      deletePods: [],
      progressing: false,
      strangers: [],
      voters: 3,
      healthyVoters: 3,
    });
  });

  it('restarts a deleted Pod whose data is intact, without a membership call', () => {
    const p = plan([up(0), up(1, { pod: undefined, status: undefined }), up(2)], [member(0), member(1), member(2)]);
    expect(p.call).toBeUndefined();
    expect(p.startPods).toEqual([{ slot: 1 }]);
  });

  it('replaces a member whose data is lost: remove, then add as a learner, start, promote', () => {
    const lost = down(1, { pod: undefined, dataLost: 'claim deleted' });
    expect(plan([up(0), lost, up(2)], [member(0), member(1), member(2)]).call).toEqual({
      call: 'remove',
      slot: 1,
      id: '101',
      why: 'claim deleted',
    });
    // removed; its Pod (Pending without a claim) goes first
    const stale = plan([up(0), down(1, { pod: { deleting: false } }), up(2)], [member(0), member(2)]);
    expect(stale.call).toBeUndefined();
    expect(stale.deletePods).toEqual([{ slot: 1, why: 'c-etcd-1 is not a member of the etcd cluster' }]);
    expect(plan([up(0), down(1, { pod: undefined }), up(2)], [member(0), member(2)]).call).toEqual({
      call: 'add',
      slot: 1,
      peerURL: peer(1),
      why: 'c-etcd-1 is wanted and is not a member',
    });
    // added, not started: its Pod is created for that member, nothing else changes
    const added = member(1, { id: '555', name: '', isLearner: true });
    // (its claim is still the deleted one: an unstarted member has no data to lose)
    const starting = plan(
      [up(0), down(1, { pod: undefined, dataLost: 'claim deleted' }), up(2)],
      [member(0), added, member(2)],
    );
    expect(starting).toMatchObject({ startPods: [{ slot: 1, memberId: '555' }], progressing: true });
    expect(starting.call).toBeUndefined();
    // started and caught up: promoted
    const started = member(1, { id: '555', isLearner: true });
    expect(
      plan([up(0), up(1, { status: status({ isLearner: true }) }), up(2)], [member(0), started, member(2)]).call,
    ).toEqual({ call: 'promote', slot: 1, id: '555' });
  });

  it('makes no membership call without a member list (quorum lost), but restarts Pods with their data', () => {
    const p = plan(
      [up(0), down(1, { pod: undefined }), down(2, { pod: undefined, dataLost: 'claim deleted' })],
      undefined,
    );
    expect(p.call).toBeUndefined();
    expect(p.startPods).toEqual([{ slot: 1 }]);
    expect(p.blocked?.reason).toBe('QuorumLost');
    expect(p.blocked?.message).toMatch(/2 of 3 members are down/);
  });

  it('never removes a member when the others would have no quorum without it', () => {
    const p = plan(
      [up(0), down(1, { dataLost: 'claim deleted', pod: undefined }), down(2)],
      [member(0), member(1), member(2)],
    );
    expect(p.call).toBeUndefined();
    expect(p.blocked).toMatchObject({ reason: 'ReplacementBlocked' });
  });

  it('does not replace a member for the time its Pod spends terminating', () => {
    const p = plan(
      [up(0), down(1, { pod: { deleting: true }, unhealthyForMs: 120_000 }), up(2)],
      [member(0), member(1), member(2)],
    );
    expect(p.call).toBeUndefined();
  });

  it('replaces a member unhealthy for longer than allowed, one at a time', () => {
    const p = plan(
      [up(0), down(1, { unhealthyForMs: 61_000 }), down(2, { unhealthyForMs: 61_000 })],
      [member(0), member(1), member(2)],
    );
    // two of three down: quorum is gone in fact, even though the list was read
    expect(p.call).toBeUndefined();
    const q = plan([up(0), down(1, { unhealthyForMs: 61_000 }), up(2)], [member(0), member(1), member(2)]);
    expect(q.call).toMatchObject({ call: 'remove', slot: 1 });
    expect(
      plan([up(0), down(1, { unhealthyForMs: 59_000 }), up(2)], [member(0), member(1), member(2)]).call,
    ).toBeUndefined();
  });

  it('grows one member at a time, each a learner first', () => {
    const growing = [up(0), down(1, { pod: undefined }), down(2, { pod: undefined })];
    expect(plan(growing, [member(0)]).call).toEqual({
      call: 'add',
      slot: 1,
      peerURL: peer(1),
      why: 'c-etcd-1 is wanted and is not a member',
    });
    // member 1 is a learner not caught up yet: member 2 waits
    const learner = member(1, { id: '555', isLearner: true });
    const waiting = plan(
      [up(0), up(1, { status: status({ isLearner: true, leader: '0' }) }), down(2, { pod: undefined })],
      [member(0), learner],
    );
    expect(waiting.call).toBeUndefined();
    expect(waiting.progressing).toBe(true);
    expect(plan([up(0), up(1), down(2, { pod: undefined })], [member(0), member(1)]).call).toMatchObject({
      call: 'add',
      slot: 2,
    });
  });

  it('deletes a Pod left from an earlier incarnation of its slot', () => {
    const p = plan(
      [up(0), up(1, { pod: { deleting: false, memberId: '555' } }), up(2)],
      [member(0), member(1, { id: '777' }), member(2)],
    );
    expect(p.deletePods).toEqual([{ slot: 1, why: 'c-etcd-1 runs for member 555, not 777' }]);
  });

  it('reports members it does not know and never removes them', () => {
    const stranger = { id: '9', name: 'other', peerURLs: ['https://other:2380'], clientURLs: [], isLearner: false };
    const p = plan([up(0), up(1), up(2)], [member(0), member(1), member(2), stranger]);
    expect(p.strangers).toEqual([stranger]);
    expect(p.call).toBeUndefined();
  });

  describe('restarting members on a newer template', () => {
    // member 0 leads; every member reports its own ID
    const at = (i: number, extra: Partial<SlotView> = {}) =>
      up(i, { status: status({ memberId: String(100 + i), raftIndex: 5000n, raftAppliedIndex: 5000n }), ...extra });
    const three = [member(0), member(1), member(2)];

    it('restarts one follower at a time, with its data, while all are healthy voters', () => {
      const p = plan([at(0, { outdated: 'v' }), at(1, { outdated: 'v' }), at(2, { outdated: 'v' })], three);
      expect(p.call).toBeUndefined();
      expect(p.deletePods).toEqual([{ slot: 1, why: 'v', restart: true }]);
      expect(p.startPods).toEqual([]);
    });

    it('moves the leadership away before restarting the leader, last', () => {
      const p = plan([at(0, { outdated: 'v' }), at(1), at(2)], three);
      expect(p.call).toEqual({ call: 'move-leader', slot: 0, id: '101', why: 'c-etcd-0 is to be restarted last (v)' });
      expect(p.deletePods).toEqual([]);
    });

    it('restarts the only member of a one-member cluster', () => {
      expect(plan([at(0, { outdated: 'v' })], [member(0)]).deletePods).toEqual([{ slot: 0, why: 'v', restart: true }]);
    });

    it('waits while any member is unhealthy, restarting, not Ready, behind the leader, or follows another', () => {
      for (const other of [
        down(2),
        at(2, { pod: undefined, status: undefined }),
        at(2, { pod: { deleting: true } }),
        at(2, { pod: { deleting: false, ready: false } }),
        at(2, { status: status({ memberId: '102', raftIndex: 5000n, raftAppliedIndex: 3000n }) }),
        // it has not heard from the leader the others follow (right after a hand-over, or cut off from it)
        at(2, { status: status({ memberId: '102', leader: '102' }) }),
      ]) {
        const p = plan([at(0), at(1, { outdated: 'v' }), other], three);
        expect(p.deletePods.filter((d) => d.restart)).toEqual([]);
        expect(p.call).toBeUndefined();
      }
    });

    it('finishes a replacement before restarting anything', () => {
      const p = plan(
        [
          at(0, { outdated: 'v' }),
          at(1, { outdated: 'v' }),
          at(2, { status: status({ memberId: '102', isLearner: true }) }),
        ],
        [member(0), member(1), member(2, { isLearner: true })],
      );
      expect(p.call).toMatchObject({ call: 'promote', slot: 2 });
      expect(p.deletePods).toEqual([]);
    });
  });
});
