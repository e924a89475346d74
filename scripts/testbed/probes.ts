// Health probes of the meta-cluster's components, and a wait loop that gives up early when the
// process it waits for has exited.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { isRunning, type ProcessRecord } from './processes.ts';

export interface TlsFiles {
  ca?: string;
  cert?: string;
  key?: string;
}

export interface ProbeResult {
  status: number;
  body: string;
}

/** One GET; rejects on connection errors. Without a CA, the server's certificate is not checked
 * (controller-manager and scheduler serve /healthz with self-signed certificates). */
export function get(url: string, tls: TlsFiles = {}, timeoutMs = 3000): Promise<ProbeResult> {
  const secure = url.startsWith('https:');
  const options = secure
    ? {
        ca: tls.ca ? readFileSync(tls.ca) : undefined,
        cert: tls.cert ? readFileSync(tls.cert) : undefined,
        key: tls.key ? readFileSync(tls.key) : undefined,
        rejectUnauthorized: tls.ca !== undefined,
        timeout: timeoutMs,
      }
    : { timeout: timeoutMs };
  return new Promise((resolve, reject) => {
    const req = (secure ? httpsRequest : httpRequest)(url, options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

export class ComponentFailed extends Error {}

/**
 * Polls `probe` until it returns true. Fails at once if `record`'s process has exited, and after
 * `timeoutMs` otherwise; the error names the component and its log file.
 */
export async function waitFor(
  record: ProcessRecord,
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    if (!isRunning(record))
      throw new ComponentFailed(`${record.name} exited before it was ${what}; see ${record.logFile}`);
    try {
      if (await probe()) return;
    } catch (err) {
      lastError = (err as Error).message;
    }
    if (Date.now() > deadline) {
      throw new ComponentFailed(
        `${record.name} was not ${what} after ${timeoutMs / 1000} s${lastError ? ` (${lastError})` : ''}; see ${record.logFile}`,
      );
    }
    await sleep(200);
  }
}
