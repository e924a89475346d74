// The project's pause program, as the node runs it: it holds on until told to stop, stops at once
// on SIGTERM or SIGINT, and as PID 1 of a PID namespace it reaps the orphans re-parented to it.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './config.ts';

const pause = join(
  execFileSync(join(repoRoot, 'scripts/build-binaries.sh'), ['--print-dir', 'pause'], { encoding: 'utf8' }).trim(),
  'pause',
);

/** Resolves once `pid` catches `signal` (its handler installed: SigCgt in /proc), so the test
 * never races the program's start-up on a loaded machine. */
async function catches(pid: number, signal: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const mask = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '0';
    if ((BigInt(`0x${mask}`) >> BigInt(signal - 1)) & 1n) return;
    await sleep(25);
  }
  throw new Error(`pid ${pid} never installed a handler for signal ${signal}`);
}

function exitOf(child: ReturnType<typeof spawn>): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

describe('pause', () => {
  for (const [signal, number] of [
    ['SIGTERM', 15],
    ['SIGINT', 2],
  ] as const) {
    it(`exits 0 on ${signal}`, async () => {
      const child = spawn(pause, { stdio: 'ignore' });
      const exited = exitOf(child);
      await catches(child.pid!, number);
      await sleep(100);
      expect(child.exitCode).toBeNull(); // still holding on
      child.kill(signal);
      expect(await exited).toEqual({ code: 0, signal: null });
    });
  }

  it('reaps orphaned children as PID 1 of a PID namespace', async () => {
    const namespace = spawn('unshare', ['--pid', '--fork', '--mount-proc', pause], { stdio: 'ignore' });
    const exited = exitOf(namespace);
    // unshare's only child is pause, PID 1 inside the namespace
    let pid = '';
    for (let i = 0; i < 200 && !pid; i++) {
      await sleep(25);
      pid = readFileSync(`/proc/${namespace.pid}/task/${namespace.pid}/children`, 'utf8').trim();
    }
    await catches(Number(pid), 15);
    // the shell exits at once and its sleep is re-parented to PID 1; once the sleep ends, only a
    // reaping PID 1 keeps it from lingering as a zombie
    execFileSync('nsenter', ['-t', pid, '-p', '-m', 'sh', '-c', 'sleep 0.2 & exit 0']);
    await sleep(800);
    const processes = execFileSync('nsenter', ['-t', pid, '-p', '-m', 'ps', '-eo', 'stat=,comm='], {
      encoding: 'utf8',
    });
    expect(processes).toMatch(/pause/);
    expect(processes).not.toMatch(/^\s*Z/m);
    process.kill(Number(pid), 'SIGTERM');
    expect((await exited).code).toBe(0);
  });
});
