import { describe, expect, it } from 'vitest';
import { notReady, ready, Reasons, setCondition, summarize, type Condition } from './conditions.ts';

const t0 = new Date('2026-01-01T00:00:00Z');
const t1 = new Date('2026-01-01T00:05:00Z');

describe('setCondition', () => {
  it('adds a condition with the transition time of now', () => {
    const out = setCondition([], 'EtcdReady', ready(), 3, t0);
    expect(out).toEqual([
      {
        type: 'EtcdReady',
        status: 'True',
        reason: 'Ready',
        message: '',
        lastTransitionTime: t0.toISOString(),
        observedGeneration: 3,
      },
    ]);
  });

  it('returns the same list when nothing changed', () => {
    const first = setCondition([], 'EtcdReady', ready(), 3, t0);
    expect(setCondition(first, 'EtcdReady', ready(), 3, t1)).toBe(first);
  });

  it('keeps the transition time when only the message or reason changes', () => {
    const first = setCondition([], 'APIServerReady', notReady(Reasons.ReplicasNotReady, '0/1 ready'), 1, t0);
    const second = setCondition(first, 'APIServerReady', notReady(Reasons.WaitingForEtcd, 'etcd not ready'), 1, t1);
    expect(second[0]).toMatchObject({ reason: 'WaitingForEtcd', lastTransitionTime: t0.toISOString() });
  });

  it('moves the transition time when the status changes', () => {
    const first = setCondition([], 'APIServerReady', notReady(Reasons.ReplicasNotReady, '0/1 ready'), 1, t0);
    const second = setCondition(first, 'APIServerReady', ready(), 1, t1);
    expect(second[0]).toMatchObject({ status: 'True', lastTransitionTime: t1.toISOString() });
  });

  it('records the generation it was computed for', () => {
    const first = setCondition([], 'Ready', ready(), 1, t0);
    const second = setCondition(first, 'Ready', ready(), 2, t1);
    expect(second).not.toBe(first);
    expect(second[0]).toMatchObject({ observedGeneration: 2, lastTransitionTime: t0.toISOString() });
  });

  it('keeps conditions in a stable order whatever the order of setting', () => {
    let list: Condition[] = [];
    for (const type of ['SchedulerReady', 'Ready', 'EtcdReady'] as const)
      list = setCondition(list, type, ready(), 1, t0);
    expect(list.map((c) => c.type)).toEqual(['Ready', 'EtcdReady', 'SchedulerReady']);
  });
});

describe('summarize', () => {
  it('is ready only when every part is', () => {
    let list: Condition[] = [];
    list = setCondition(list, 'EtcdReady', ready(), 1, t0);
    expect(summarize(list, ['EtcdReady', 'APIServerReady'])).toEqual(
      notReady(Reasons.Provisioning, 'waiting for APIServerReady'),
    );
    list = setCondition(list, 'APIServerReady', ready(), 1, t0);
    expect(summarize(list, ['EtcdReady', 'APIServerReady']).status).toBe('True');
  });
});
