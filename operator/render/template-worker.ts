// A worker thread that renders one user's template (template-sandbox.ts starts it): whatever the
// template does, it does here, under the thread's memory limits and the sandbox's clock, never on
// the operator's event loop. It answers with the documents as JSON text, or with the error.
import { parentPort, workerData } from 'node:worker_threads';
import { compile, createInstance, renderDocuments, TemplateError, type OutputBounds } from './template-text.ts';

interface Job {
  template: string;
  source: string;
  context: object;
  bounds: OutputBounds;
}

const job = workerData as Job;
// the modules above are loaded: the sandbox's clock starts now (loading them is the operator's cost)
parentPort?.postMessage({ started: true });
try {
  const docs = renderDocuments(job.template, compile(createInstance(), job.source), job.context, job.bounds);
  parentPort?.postMessage({ ok: true, json: JSON.stringify(docs) });
} catch (err) {
  const message = err instanceof TemplateError ? err.message : `template ${job.template}: ${(err as Error).message}`;
  parentPort?.postMessage({ ok: false, message: message.split('\n')[0]!.slice(0, 500) });
}
