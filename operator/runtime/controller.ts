// One controller: a work queue of object keys with its own workers, a reconcile function, and its
// own counters (the metrics carry its name). Keys come from watches and from a periodic resync of
// every object; the queue guarantees one pass per key at a time, backoff after failures, and a
// deadline after which a slow pass gives its worker back (see work-queue.ts).
import type { Logger } from 'pino';
import type { MetricFamily } from '../observability/http-server.ts';
import { WorkQueue, type Result } from './work-queue.ts';

export interface ControllerOptions {
  /** The controller's name: its metrics label and its log field. */
  name: string;
  workers: number;
  /** A pass running longer gives its worker to the other keys. */
  passDeadlineMs: number;
  reconcile: (key: string) => Promise<Result>;
  /** Every key there is (from the watches' cache): the first pass and each resync go over them. */
  keys: () => string[];
  log: Logger;
}

export class Controller {
  readonly name: string;
  readonly #options: ControllerOptions;
  readonly #queue: WorkQueue;
  readonly #log: Logger;
  #resync: NodeJS.Timeout | undefined;
  readonly stats = { reconciles: 0, errors: 0, durationSeconds: 0 };

  constructor(options: ControllerOptions) {
    this.name = options.name;
    this.#options = options;
    this.#log = options.log.child({ controller: options.name });
    this.#queue = new WorkQueue({
      onError: (key, err) =>
        this.#log.warn({ key, err: (err as Error).message }, 'reconcile failed; retrying with backoff'),
      passDeadlineMs: options.passDeadlineMs,
      onOverdue: (key, ms) =>
        this.#log.warn(
          { key, seconds: ms / 1000 },
          'reconcile still running past its deadline; its worker moves on to other keys',
        ),
    });
  }

  /** Look at this object again (many adds before a pass cost one pass). */
  enqueue(key: string): void {
    this.#queue.add(key);
  }

  /** Look at this object again after `ms` (the earliest of several such requests wins). */
  enqueueAfter(key: string, ms: number): void {
    this.#queue.addAfter(key, ms);
  }

  /** Starts the workers, queues every key, and queues them all again every `resyncMs` (what a watch missed). */
  start(resyncMs: number): void {
    this.#queue.start(this.#options.workers, (key) => this.#run(key));
    const all = () => {
      for (const key of this.#options.keys()) this.#queue.add(key);
    };
    all();
    this.#resync = setInterval(all, resyncMs);
    this.#resync.unref();
  }

  /** Stops handing out keys; true once the passes under way ended within `graceMs`. */
  shutdown(graceMs: number): Promise<boolean> {
    clearInterval(this.#resync);
    return this.#queue.shutdown(graceMs);
  }

  /** How long keys have waited with no pass starting or ending (0 when none waits). */
  stalledMs(): number {
    return this.#queue.stalledMs();
  }

  depth(): number {
    return this.#queue.len();
  }

  async #run(key: string): Promise<Result> {
    const started = performance.now();
    this.stats.reconciles++;
    try {
      return await this.#options.reconcile(key);
    } catch (err) {
      this.stats.errors++;
      throw err;
    } finally {
      this.stats.durationSeconds += (performance.now() - started) / 1000;
    }
  }
}

/** The metrics every controller has, one sample per controller. */
export function controllerMetrics(controllers: readonly Controller[]): MetricFamily[] {
  const per = (value: (c: Controller) => number) =>
    controllers.map((c) => ({ labels: { controller: c.name }, value: value(c) }));
  return [
    {
      name: 'kubeonkube_reconcile_total',
      help: 'Reconciles run, per controller.',
      type: 'counter',
      samples: per((c) => c.stats.reconciles),
    },
    {
      name: 'kubeonkube_reconcile_errors_total',
      help: 'Reconciles that failed, per controller.',
      type: 'counter',
      samples: per((c) => c.stats.errors),
    },
    {
      name: 'kubeonkube_reconcile_duration_seconds_total',
      help: 'Time spent reconciling, per controller.',
      type: 'counter',
      samples: per((c) => c.stats.durationSeconds),
    },
    {
      name: 'kubeonkube_queue_depth',
      help: "Keys waiting in a controller's work queue.",
      type: 'gauge',
      samples: per((c) => c.depth()),
    },
  ];
}
