// Helpers of the end-to-end tests: the real kubectl against the meta-cluster, and polling.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { inject } from 'vitest';
import { loadConfig } from '../scripts/testbed/config.ts';

const kubectlBinary = join(loadConfig().binDirs.kubernetes, 'kubectl');

function baseArgs(): string[] {
  return ['--kubeconfig', inject('metaCluster').kubeconfig];
}

/** Runs kubectl; resolves with stdout, rejects with stderr in the message. */
export function kubectl(args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(kubectlBinary, [...baseArgs(), ...args], { maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`kubectl ${args.join(' ')} failed: ${stderr || err.message}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Applies objects (server-side) from their JSON form. */
export function apply(...objects: object[]): Promise<string> {
  return kubectl(
    ['apply', '--server-side', '--field-manager=e2e', '-f', '-'],
    JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }),
  );
}

/** A long-running kubectl (port-forward, logs -f); the caller kills it. */
export function kubectlBackground(args: string[]): ChildProcess {
  return spawn(kubectlBinary, [...baseArgs(), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Polls `check` until it returns a value other than undefined. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 120_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ''}`);
    await sleep(500);
  }
}

/**
 * Waits for a pod to reach `phase`, and returns its logs. A pod that never gets there is described
 * in the error: its phase, each container's state and the tail of its log.
 */
export async function podFinished(
  namespace: string,
  pod: string,
  phase = 'Succeeded',
  timeoutMs = 120_000,
): Promise<string> {
  let seen = '';
  try {
    await eventually(
      `pod ${namespace}/${pod} to be ${phase}`,
      async () => {
        const current = await kubectl(['-n', namespace, 'get', 'pod', pod, '-o', 'json']);
        const status = (JSON.parse(current) as { status?: PodStatus }).status ?? {};
        seen = describePodStatus(status);
        if (status.phase === 'Failed' && phase !== 'Failed')
          throw new Error(`pod failed: ${await kubectl(['-n', namespace, 'logs', pod]).catch(() => '')}`);
        return status.phase === phase ? true : undefined;
      },
      timeoutMs,
    );
  } catch (err) {
    const logs = await kubectl(['-n', namespace, 'logs', pod, '--tail=20']).catch((e: Error) => e.message);
    throw new Error(`${(err as Error).message}; last seen ${seen || 'nothing'}; log tail:\n${logs}`, { cause: err });
  }
  return kubectl(['-n', namespace, 'logs', pod]);
}

interface PodStatus {
  phase?: string;
  containerStatuses?: { name: string; state?: Record<string, { reason?: string; message?: string }> }[];
}

function describePodStatus(status: PodStatus): string {
  const containers = (status.containerStatuses ?? []).map((c) => {
    const [state = 'unknown', detail = {}] = Object.entries(c.state ?? {})[0] ?? [];
    return `${c.name} ${state}${detail.reason ? ` (${detail.reason}${detail.message ? `: ${detail.message}` : ''})` : ''}`;
  });
  return `phase ${status.phase ?? 'unknown'}${containers.length ? `, ${containers.join(', ')}` : ''}`;
}

/** A namespace name of its own for each run: the previous run's may still be terminating. */
export function uniqueNamespace(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}`;
}

export function namespaceObject(name: string): object {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name } };
}
