// Users' templates (custom add-ons) are the tenant's text: a few hundred bytes can ask for
// gigabytes (YAML anchors and aliases) or for ever (nested #each over the add-on's values). Each is
// rendered in a worker thread of its own with a heap limit and a deadline, so the worst a template
// can do is fail with a message naming the bound it hit, while the operator goes on serving every
// other Cluster. Results and the template's own errors are remembered per template text and
// values, so a template is rendered again only when either changes; a bound of time or memory hit
// (which a busy machine can cause too) is remembered for five minutes.
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { TemplateError, type OutputBounds } from './template-text.ts';

export interface SandboxLimits extends OutputBounds {
  /** Wall-clock time for one render, compile and YAML reading included. */
  timeoutMs: number;
  /** The worker's heap. */
  maxHeapMb: number;
}

export const defaultSandboxLimits: SandboxLimits = {
  timeoutMs: 2000,
  maxHeapMb: 64,
  maxTextChars: 1 << 20,
  maxExpandedSize: 4 << 20,
  maxDepth: 64,
};

// the sources run as they are (type stripping); the image runs the built .js beside this file
const workerFile = new URL(
  import.meta.url.endsWith('.ts') ? './template-worker.ts' : './template-worker.js',
  import.meta.url,
);

/** `transient`: a bound of time or memory was hit, which a busy machine can cause too: remembered only for a while. */
type Outcome = { ok: true; json: string } | { ok: false; message: string; transient?: boolean };

/** A failure at one of the sandbox's bounds (time, memory, output), by its words. */
const hitBound = (o: Outcome) => !o.ok && /\(the bound on a template's (time|memory|output)\)/.test(o.message);

/** How long a worker may take to load the renderer before its template's clock starts (a stuck start still ends). */
const startupMs = 30_000;

function renderInWorker(template: string, source: string, context: object, limits: SandboxLimits): Promise<Outcome> {
  const { timeoutMs, maxHeapMb, ...bounds } = limits;
  return new Promise((resolve) => {
    const worker = new Worker(workerFile, {
      workerData: { template, source, context, bounds },
      resourceLimits: { maxOldGenerationSizeMb: maxHeapMb, maxYoungGenerationSizeMb: 16, stackSizeMb: 4 },
      stdout: true,
      stderr: true,
    });
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const settle = (outcome: Outcome) => {
      if (settled) return;
      settled = true;
      if (timer) clearTimeout(timer);
      void worker.terminate();
      resolve(outcome);
    };
    // the clock starts once the thread has loaded the renderer: its start-up is the operator's
    // cost, not the template's (on a busy machine it takes longer than a template may)
    timer = setTimeout(
      () =>
        settle({
          ok: false,
          transient: true,
          message: `template ${template}: the renderer did not start within ${startupMs / 1000} s`,
        }),
      startupMs,
    );
    worker.on('message', (m: Outcome | { started: true }) => {
      if (!('started' in m)) return settle(m);
      clearTimeout(timer);
      timer = setTimeout(
        () =>
          settle({
            ok: false,
            transient: true,
            message: `template ${template}: rendering took longer than ${timeoutMs / 1000} s (the bound on a template's time)`,
          }),
        timeoutMs,
      );
    });
    worker.once('error', (err: Error & { code?: string }) =>
      settle({
        ok: false,
        transient: true,
        message:
          err.code === 'ERR_WORKER_OUT_OF_MEMORY'
            ? `template ${template}: rendering needed more than ${maxHeapMb} MiB (the bound on a template's memory)`
            : `template ${template}: ${err.message.split('\n')[0]}`,
      }),
    );
    worker.once('exit', () =>
      settle({ ok: false, transient: true, message: `template ${template}: the renderer stopped without an answer` }),
    );
  });
}

/** How long a failure by time or memory is remembered: a hostile template costs a worker this often, a busy moment heals this soon. */
export const transientFailureMs = 5 * 60_000;
/**
 * After a template hit a bound, how long no new text of the same template (by its name: the
 * add-on's ConfigMap) is rendered: a tenant who rewrites a bomb again and again gets a worker this
 * often, not once per edit.
 */
export const boundPauseMs = 30_000;

export class TemplateSandbox {
  readonly #limits: SandboxLimits;
  readonly #outcomes = new Map<string, { outcome: Outcome; until: number }>();
  readonly #maxRemembered: number;
  /** Per template name: until when no new text of it is rendered, and the failure that paused it. */
  readonly #paused = new Map<string, { until: number; message: string }>();
  /** Worker threads started so far. */
  workers = 0;

  constructor(limits: Partial<SandboxLimits> = {}, maxRemembered = 256) {
    this.#limits = { ...defaultSandboxLimits, ...limits };
    this.#maxRemembered = maxRemembered;
  }

  /** The template's documents (plain data), or a TemplateError naming what is wrong or which bound it hit. */
  async render(template: string, source: string, context: object, now = Date.now()): Promise<unknown[]> {
    const key = createHash('sha256')
      .update(template)
      .update('\0')
      .update(source)
      .update('\0')
      .update(JSON.stringify(context))
      .digest('hex');
    let remembered = this.#outcomes.get(key);
    // the newest last: the oldest goes first when the map is full
    this.#outcomes.delete(key);
    if (!remembered || remembered.until <= now) {
      const pause = this.#paused.get(template);
      if (pause && pause.until > now)
        throw new TemplateError(`${pause.message}; a new text of it is rendered ${boundPauseMs / 1000} s after that`);
      this.#paused.delete(template);
      this.workers++;
      const outcome = await renderInWorker(template, source, context, this.#limits);
      if (this.#outcomes.size >= this.#maxRemembered) this.#outcomes.delete(this.#outcomes.keys().next().value!);
      remembered = { outcome, until: !outcome.ok && outcome.transient ? now + transientFailureMs : Infinity };
      if (!outcome.ok && hitBound(outcome)) {
        if (this.#paused.size >= this.#maxRemembered) this.#paused.delete(this.#paused.keys().next().value!);
        this.#paused.set(template, { until: now + boundPauseMs, message: outcome.message });
      }
    }
    this.#outcomes.set(key, remembered);
    const { outcome } = remembered;
    if (!outcome.ok) throw new TemplateError(outcome.message);
    return JSON.parse(outcome.json) as unknown[];
  }
}
