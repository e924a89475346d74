// A controller work queue with client-go's semantics. Reconciles are level-triggered: a key only
// says "look at this object again", so adding it many times must cost one reconcile, a key must
// never be reconciled twice at once, and a failing key must back off without starving the others.

/** What a handler asks for next; nothing means "done, forget the key's failures". */
export type Result = { requeueAfter?: number } | undefined;

export type Handler = (key: string) => Promise<Result | void>;

export type WorkQueueOptions = {
  /** First retry delay after a failure, in ms. */
  baseDelay?: number;
  /** Each further consecutive failure multiplies the delay by this. */
  factor?: number;
  /** Longest retry delay, in ms. */
  maxDelay?: number;
  /** Receives what the handler threw; the key has already been scheduled for a retry. */
  onError?: (key: string, error: unknown) => void;
  /** Called with len() whenever it changes, e.g. to feed a depth gauge; must not throw. */
  onDepth?: (depth: number) => void;
  /**
   * A handler still running after this many ms gives its worker back: the key stays taken (never
   * handled twice at once) while other keys go on. One object that hangs (a business cluster that
   * trickles its answers) never holds up everyone else's.
   */
  passDeadlineMs?: number;
  /** Called once when a handler passes the deadline; must not throw. */
  onOverdue?: (key: string, ms: number) => void;
};

// Node fires longer timeouts at once (with a warning), which would turn a far deadline into a busy loop.
const maxTimeout = 2 ** 31 - 1;

export class WorkQueue {
  readonly #baseDelay: number;
  readonly #factor: number;
  readonly #maxDelay: number;
  readonly #onError: ((key: string, error: unknown) => void) | undefined;
  readonly #onDepth: ((depth: number) => void) | undefined;

  // A Set keeps insertion order, so it is both the FIFO and the de-duplication.
  readonly #ready = new Set<string>();
  readonly #active = new Set<string>();
  // Keys added while being processed: they go back to #ready once, when processing ends.
  readonly #dirty = new Set<string>();
  readonly #delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  readonly #failures = new Map<string, number>();
  readonly #inFlight = new Set<Promise<void>>();
  /** When a handler last started or returned (performance.now()). */
  #lastProgress = performance.now();
  readonly #passDeadlineMs: number;
  readonly #onOverdue: ((key: string, ms: number) => void) | undefined;
  /** Workers taken by handlers within their deadline (an overdue one has given its worker back). */
  #busy = 0;

  #handler: Handler | undefined;
  #workers = 0;
  #stopped = false;

  constructor(options: WorkQueueOptions = {}) {
    this.#baseDelay = options.baseDelay ?? 200;
    this.#factor = options.factor ?? 2;
    this.#maxDelay = options.maxDelay ?? 5 * 60_000;
    this.#onError = options.onError;
    this.#onDepth = options.onDepth;
    this.#passDeadlineMs = options.passDeadlineMs ?? Infinity;
    this.#onOverdue = options.onOverdue;
  }

  /**
   * How long keys have waited with no handler starting or returning meanwhile, in ms (0 when none
   * waits): the queue itself is stuck. One slow object is not that: past its deadline its worker
   * takes the next key.
   */
  stalledMs(now = performance.now()): number {
    return this.#ready.size === 0 ? 0 : Math.max(0, now - this.#lastProgress);
  }

  /** Keys waiting to be handed to a worker. */
  len(): number {
    return this.#ready.size;
  }

  /** Keys a handler is working on right now. */
  processing(): number {
    return this.#active.size;
  }

  add(key: string): void {
    if (this.#stopped) return;
    if (this.#active.has(key)) {
      this.#dirty.add(key);
      return;
    }
    this.#enqueue(key);
    this.#pump();
  }

  /** Adds the key after ms; of several pending delays for one key, the earliest wins. */
  addAfter(key: string, ms: number): void {
    if (this.#stopped) return;
    if (!(ms > 0)) {
      this.add(key);
      return;
    }
    const at = performance.now() + ms;
    const pending = this.#delayed.get(key);
    if (pending) {
      if (pending.at <= at) return;
      clearTimeout(pending.timer);
    }
    const timer = setTimeout(
      () => {
        this.#delayed.delete(key);
        this.add(key);
      },
      Math.min(ms, maxTimeout),
    );
    // A pending retry is no reason for the operator process to stay alive.
    timer.unref();
    this.#delayed.set(key, { at, timer });
  }

  /** Starts handing keys to at most `workers` concurrent handler calls. */
  start(workers: number, handler: Handler): void {
    if (!Number.isInteger(workers) || workers < 1)
      throw new RangeError(`workers must be a positive integer, got ${workers}`);
    if (this.#handler || this.#stopped) throw new Error('work queue already started or shut down');
    this.#handler = handler;
    this.#workers = workers;
    this.#pump();
  }

  /**
   * Stops handing out keys, drops pending delays, and resolves once running handlers have returned,
   * or after `timeoutMs` whatever still runs (false then).
   */
  async shutdown(timeoutMs = Infinity): Promise<boolean> {
    this.#stopped = true;
    for (const { timer } of this.#delayed.values()) clearTimeout(timer);
    this.#delayed.clear();
    const drained = Promise.all(this.#inFlight).then(() => true);
    if (!Number.isFinite(timeoutMs)) return drained;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([drained, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  #enqueue(key: string): void {
    if (this.#ready.has(key)) return;
    this.#ready.add(key);
    this.#onDepth?.(this.#ready.size);
  }

  #pump(): void {
    const handler = this.#handler;
    if (!handler) return;
    while (!this.#stopped && this.#busy < this.#workers) {
      const key = this.#ready.values().next();
      if (key.done) return;
      this.#ready.delete(key.value);
      this.#onDepth?.(this.#ready.size);
      this.#active.add(key.value);
      this.#busy++;
      const run = this.#process(key.value, handler).finally(() => this.#inFlight.delete(run));
      this.#inFlight.add(run);
    }
  }

  // Never rejects: a handler's failure becomes a retry, not a crash or a dead worker.
  async #process(key: string, handler: Handler): Promise<void> {
    let overdue = false;
    this.#lastProgress = performance.now();
    const deadline = Number.isFinite(this.#passDeadlineMs)
      ? setTimeout(
          () => {
            overdue = true;
            this.#busy--;
            try {
              this.#onOverdue?.(key, this.#passDeadlineMs);
            } catch {
              // as #report
            }
            this.#pump();
          },
          Math.min(this.#passDeadlineMs, maxTimeout),
        )
      : undefined;
    deadline?.unref();
    try {
      // Yield first, so add() and start() never run the handler inside their caller's stack.
      await Promise.resolve();
      const result = await handler(key);
      this.#failures.delete(key);
      if (result?.requeueAfter !== undefined) this.addAfter(key, result.requeueAfter);
    } catch (error) {
      const failures = this.#failures.get(key) ?? 0;
      this.#failures.set(key, failures + 1);
      this.addAfter(key, Math.min(this.#baseDelay * this.#factor ** failures, this.#maxDelay));
      this.#report(key, error);
    } finally {
      clearTimeout(deadline);
      if (!overdue) this.#busy--;
      this.#lastProgress = performance.now();
      this.#active.delete(key);
      if (this.#dirty.delete(key)) this.add(key);
      this.#pump();
    }
  }

  #report(key: string, error: unknown): void {
    try {
      this.#onError?.(key, error);
    } catch {
      // A broken logger must not take the queue down with it.
    }
  }
}
