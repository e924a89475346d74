import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { WorkQueue } from './work-queue.ts';
import type { Handler, Result } from './work-queue.ts';

type Call = { key: string; at: number; done: PromiseWithResolvers<Result | void> };

// A handler whose calls stay in flight until the test settles them, so overlap can be observed.
function controlledHandler(): { calls: Call[]; handler: Handler } {
  const calls: Call[] = [];
  const handler: Handler = (key) => {
    const done = Promise.withResolvers<Result | void>();
    calls.push({ key, at: Date.now(), done });
    return done.promise;
  };
  return { calls, handler };
}

// A handler that settles at once with the next scripted outcome (undefined once the script runs out).
function scriptedHandler(...outcomes: (Result | Error)[]): { times: number[]; keys: string[]; handler: Handler } {
  const times: number[] = [];
  const keys: string[] = [];
  const handler: Handler = (key) => {
    times.push(Date.now());
    keys.push(key);
    const outcome = outcomes.shift();
    return outcome instanceof Error ? Promise.reject(outcome) : Promise.resolve(outcome);
  };
  return { times, keys, handler };
}

function gaps(times: number[]): number[] {
  return times.slice(1).map((t, i) => t - (times[i] ?? 0));
}

const call = (calls: Call[], i: number): Call => {
  const c = calls[i];
  if (!c) throw new Error(`no call #${i}, only ${calls.length}`);
  return c;
};

// Lets every pending promise callback run without moving the fake clock.
const settle = () => vi.advanceTimersByTimeAsync(0);

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('adding keys', () => {
  it('keeps one entry per waiting key however often it is added', async () => {
    const q = new WorkQueue();
    q.add('a');
    q.add('b');
    q.add('a');
    q.add('a');
    expect(q.len()).toBe(2);
    const { keys, handler } = scriptedHandler();
    q.start(1, handler);
    await settle();
    expect(keys).toEqual(['a', 'b']);

    q.add('a');
    await settle();
    expect(keys).toEqual(['a', 'b', 'a']);
  });

  it('hands keys out in the order they became ready', async () => {
    const q = new WorkQueue();
    const { calls, handler } = controlledHandler();
    q.add('c');
    q.start(1, handler);
    await settle();
    // c is re-added while processing, so it becomes ready only when that ends: after a and b.
    q.add('a');
    q.add('c');
    q.add('b');
    call(calls, 0).done.resolve();
    for (let i = 1; i <= 3; i++) {
      await settle();
      call(calls, i).done.resolve();
    }
    await settle();
    expect(calls.map((c) => c.key)).toEqual(['c', 'a', 'b', 'c']);
  });

  it('does not run the handler inside the caller of add', async () => {
    const q = new WorkQueue();
    const { keys, handler } = scriptedHandler();
    q.start(1, handler);
    q.add('a');
    expect(keys).toEqual([]);
    await settle();
    expect(keys).toEqual(['a']);
  });

  it('reports the depth for metrics', async () => {
    const onDepth = vi.fn<(depth: number) => void>();
    const q = new WorkQueue({ onDepth });
    q.add('a');
    q.add('b');
    q.add('a');
    expect(onDepth.mock.calls.map(([d]) => d)).toEqual([1, 2]);
    const { calls, handler } = controlledHandler();
    q.start(1, handler);
    await settle();
    expect(onDepth.mock.calls.map(([d]) => d)).toEqual([1, 2, 1]);
    expect(q.len()).toBe(1);
    expect(q.processing()).toBe(1);
    call(calls, 0).done.resolve();
    await settle();
    expect(onDepth.mock.calls.map(([d]) => d)).toEqual([1, 2, 1, 0]);
    expect(q.len()).toBe(0);
    expect(q.processing()).toBe(1);
  });
});

describe('workers', () => {
  it('never hands a key being processed to a second worker, and re-queues it once if added meanwhile', async () => {
    const q = new WorkQueue();
    const { calls, handler } = controlledHandler();
    q.add('a');
    q.start(2, handler);
    await settle();
    expect(calls).toHaveLength(1);

    q.add('a');
    q.add('a');
    q.add('a');
    await settle();
    expect(calls).toHaveLength(1);
    expect(q.processing()).toBe(1);
    expect(q.len()).toBe(0);

    call(calls, 0).done.resolve();
    await settle();
    expect(calls.map((c) => c.key)).toEqual(['a', 'a']);

    call(calls, 1).done.resolve();
    await settle();
    expect(calls).toHaveLength(2);
    expect(q.processing()).toBe(0);
  });

  it('processes different keys concurrently, up to the number of workers', async () => {
    const q = new WorkQueue();
    const { calls, handler } = controlledHandler();
    for (const key of ['a', 'b', 'c', 'd']) q.add(key);
    q.start(3, handler);
    await settle();
    // all three are in flight at once: none has been resolved yet
    expect(calls.map((c) => c.key)).toEqual(['a', 'b', 'c']);
    expect(q.processing()).toBe(3);
    expect(q.len()).toBe(1);

    call(calls, 1).done.resolve();
    await settle();
    expect(calls.map((c) => c.key)).toEqual(['a', 'b', 'c', 'd']);
    expect(q.processing()).toBe(3);

    for (const c of calls) c.done.resolve();
    await settle();
    expect(q.processing()).toBe(0);
  });

  it('rejects a bad worker count and a second start', () => {
    const q = new WorkQueue();
    const { handler } = scriptedHandler();
    expect(() => q.start(0, handler)).toThrow(RangeError);
    expect(() => q.start(1.5, handler)).toThrow(RangeError);
    q.start(1, handler);
    expect(() => q.start(1, handler)).toThrow(/already started/);
  });
});

describe('failures', () => {
  it('retry with exponential backoff from 200 ms, doubling, capped at 5 minutes', async () => {
    const q = new WorkQueue({ onError: () => {} });
    const { times, handler } = scriptedHandler(...Array.from({ length: 20 }, () => new Error('down')));
    q.add('a');
    q.start(1, handler);
    await vi.advanceTimersByTimeAsync(1_100_000);
    expect(gaps(times)).toEqual([200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 102400, 204800, 300000, 300000]);
  });

  it('back off per key with the configured delays, and start over after a success', async () => {
    const q = new WorkQueue({ baseDelay: 10, factor: 3, maxDelay: 100, onError: () => {} });
    const boom = new Error('boom');
    const { times, handler } = scriptedHandler(boom, boom, boom, boom, undefined, boom, undefined);
    q.add('a');
    q.start(1, handler);
    await vi.advanceTimersByTimeAsync(1000);
    expect(gaps(times)).toEqual([10, 30, 90, 100]);

    q.add('a');
    await vi.advanceTimersByTimeAsync(1000);
    expect(times.slice(5)).toEqual([1000, 1010]);
  });

  it('count per key: one failing key does not delay another', async () => {
    const q = new WorkQueue({ onError: () => {} });
    const { keys, times, handler } = scriptedHandler(...Array.from({ length: 10 }, () => new Error('down')));
    q.add('a');
    q.start(1, handler);
    await vi.advanceTimersByTimeAsync(600); // a fails at 0, 200 and 600
    q.add('b'); // b's first failure, at 600, is retried after 200 ms, not after a's 800
    await vi.advanceTimersByTimeAsync(300);
    expect(keys).toEqual(['a', 'a', 'a', 'b', 'b']);
    expect(times).toEqual([0, 200, 600, 600, 800]);
  });

  it('go to onError and do not stop the worker, whether thrown or rejected', async () => {
    const onError = vi.fn<(key: string, error: unknown) => void>();
    const q = new WorkQueue({ onError });
    const thrown = new Error('thrown');
    const rejected = new Error('rejected');
    const seen: string[] = [];
    q.start(1, (key) => {
      seen.push(key);
      if (key === 'thrown') throw thrown;
      if (key === 'rejected') return Promise.reject(rejected);
      return Promise.resolve();
    });
    q.add('thrown');
    q.add('rejected');
    q.add('fine');
    await settle();
    expect(seen).toEqual(['thrown', 'rejected', 'fine']);
    expect(onError.mock.calls).toEqual([
      ['thrown', thrown],
      ['rejected', rejected],
    ]);

    await vi.advanceTimersByTimeAsync(200);
    expect(seen).toEqual(['thrown', 'rejected', 'fine', 'thrown', 'rejected']);
  });

  it('do not stop the queue when onError itself throws or is missing', async () => {
    for (const q of [
      new WorkQueue({
        onError: () => {
          throw new Error('logger down');
        },
      }),
      new WorkQueue(),
    ]) {
      const { keys, handler } = scriptedHandler(new Error('boom'));
      q.start(1, handler);
      q.add('bad');
      q.add('good');
      await settle();
      expect(keys).toEqual(['bad', 'good']);
      await q.shutdown();
    }
  });
});

describe('delays', () => {
  it('honour requeueAfter from the handler', async () => {
    const q = new WorkQueue();
    const { times, handler } = scriptedHandler({ requeueAfter: 1000 });
    q.add('a');
    q.start(1, handler);
    await vi.advanceTimersByTimeAsync(999);
    expect(times).toEqual([0]);
    await vi.advanceTimersByTimeAsync(1);
    expect(times).toEqual([0, 1000]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(times).toEqual([0, 1000]);
  });

  it('keep an earlier pending deadline over a later requeueAfter', async () => {
    const q = new WorkQueue();
    const { times, handler } = scriptedHandler({ requeueAfter: 5000 });
    q.addAfter('a', 300);
    q.add('a');
    q.start(1, handler);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(times).toEqual([0, 300]);
  });

  it('replace a later pending deadline with an earlier requeueAfter', async () => {
    const q = new WorkQueue();
    const { times, handler } = scriptedHandler({ requeueAfter: 300 });
    q.addAfter('a', 5000);
    q.add('a');
    q.start(1, handler);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(times).toEqual([0, 300]);
  });

  it('add a key with addAfter once its delay has passed, at the earliest requested time', async () => {
    const q = new WorkQueue();
    const { times, handler } = scriptedHandler();
    q.start(1, handler);
    q.addAfter('a', 5000);
    q.addAfter('a', 1000);
    q.addAfter('a', 3000);
    await vi.advanceTimersByTimeAsync(999);
    expect(q.len()).toBe(0);
    expect(times).toEqual([]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(times).toEqual([1000]);
  });

  it('add at once for a delay of zero or less', async () => {
    const q = new WorkQueue();
    const { keys, handler } = scriptedHandler();
    q.addAfter('a', 0);
    q.addAfter('b', -5);
    expect(q.len()).toBe(2);
    q.start(1, handler);
    await settle();
    expect(keys).toEqual(['a', 'b']);
  });

  it('are not cancelled by a direct add', async () => {
    const q = new WorkQueue();
    const { times, handler } = scriptedHandler();
    q.start(1, handler);
    q.addAfter('a', 1000);
    q.add('a');
    await vi.advanceTimersByTimeAsync(2000);
    expect(times).toEqual([0, 1000]);
  });

  it('do not keep the process alive', () => {
    const setTimeoutSpy = vi.spyOn(globalThis, 'setTimeout');
    const q = new WorkQueue();
    q.addAfter('a', 1000);
    expect(setTimeoutSpy).toHaveBeenCalledTimes(1);
    const timer = setTimeoutSpy.mock.results[0]?.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
  });
});

describe('shutdown', () => {
  it('waits for in-flight handlers, hands out nothing more and drops pending delays', async () => {
    const q = new WorkQueue({ onError: () => {} });
    const { calls, handler } = controlledHandler();
    for (const key of ['a', 'b', 'c']) q.add(key);
    q.addAfter('d', 100);
    q.start(2, handler);
    await settle();
    expect(calls).toHaveLength(2);

    let finished = false;
    const done = q.shutdown().then(() => {
      finished = true;
    });
    expect(vi.getTimerCount()).toBe(0);
    q.add('e');
    q.addAfter('f', 10);
    await settle();
    expect(finished).toBe(false);

    call(calls, 0).done.resolve({ requeueAfter: 10 });
    await settle();
    expect(finished).toBe(false);
    expect(calls).toHaveLength(2);

    // a failure during shutdown must not schedule a retry either
    call(calls, 1).done.reject(new Error('late'));
    await settle();
    expect(finished).toBe(true);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(10 * 60_000);
    expect(calls).toHaveLength(2);
    await done;
  });

  it('resolves at once when nothing is in flight, and start is refused afterwards', async () => {
    const q = new WorkQueue();
    await q.shutdown();
    expect(() => q.start(1, scriptedHandler().handler)).toThrow(/shut down/);
  });
});

describe('a handler past its deadline', () => {
  it('gives its worker back, stays the only handler of its key, and is reported once', async () => {
    const overdue: string[] = [];
    const q = new WorkQueue({ passDeadlineMs: 1000, onOverdue: (key) => overdue.push(key) });
    const { calls, handler } = controlledHandler();
    q.add('stuck');
    q.start(1, handler);
    await settle();
    q.add('other');
    await settle();
    // one worker, taken by the stuck key: the other waits until the deadline
    expect(calls.map((c) => c.key)).toEqual(['stuck']);
    await vi.advanceTimersByTimeAsync(999);
    expect(calls.map((c) => c.key)).toEqual(['stuck']);
    await vi.advanceTimersByTimeAsync(1);
    expect(overdue).toEqual(['stuck']);
    expect(calls.map((c) => c.key)).toEqual(['stuck', 'other']);
    // the queue is not stuck: a handler started the moment the deadline passed
    expect(q.stalledMs()).toBe(0);
    // the stuck key asked for again is not handled twice at once
    q.add('stuck');
    call(calls, 1).done.resolve(undefined);
    await settle();
    expect(calls.map((c) => c.key)).toEqual(['stuck', 'other']);
    // once it returns, it runs again (it was asked for meanwhile), and the worker count is whole
    call(calls, 0).done.resolve(undefined);
    await settle();
    expect(calls.map((c) => c.key)).toEqual(['stuck', 'other', 'stuck']);
    q.add('third');
    await settle();
    expect(calls).toHaveLength(3);
    call(calls, 2).done.resolve(undefined);
    await settle();
    expect(calls.map((c) => c.key)).toEqual(['stuck', 'other', 'stuck', 'third']);
    expect(overdue).toEqual(['stuck']);
  });

  it('says it is stalled only when keys wait and no handler starts or returns', async () => {
    const q = new WorkQueue();
    const { calls, handler } = controlledHandler();
    q.add('a');
    q.start(1, handler);
    await settle();
    expect(q.stalledMs()).toBe(0);
    q.add('b');
    await vi.advanceTimersByTimeAsync(5000);
    expect(q.stalledMs()).toBe(5000);
    call(calls, 0).done.resolve(undefined);
    await settle();
    expect(q.stalledMs()).toBe(0);
  });

  it('does not keep a shutdown waiting past its bound', async () => {
    const q = new WorkQueue();
    const { handler } = controlledHandler();
    q.add('hung');
    q.start(1, handler);
    await settle();
    const result = q.shutdown(5000);
    await vi.advanceTimersByTimeAsync(5000);
    expect(await result).toBe(false);
  });
});
