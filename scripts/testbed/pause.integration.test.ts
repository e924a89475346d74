// The project's pause program, as the node runs it: it holds on until told to stop, stops at once
// on SIGTERM or SIGINT, and as PID 1 of a PID namespace it reaps the orphans re-parented to it.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './config.ts';

const pause = join(execFileSync(join(repoRoot, 'scripts/build-binaries.sh'), ['--print-dir', 'pause'], { encoding: 'utf8' }).trim(), 'pause');

function exitOf(child: ReturnType<typeof spawn>): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

describe('pause', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`exits 0 on ${signal}`, async () => {
      const child = spawn(pause, { stdio: 'ignore' });
      const exited = exitOf(child);
      await sleep(200);
      expect(child.exitCode).toBeNull(); // still holding on
      child.kill(signal);
      expect(await exited).toEqual({ code: 0, signal: null });
    });
  }

  it('reaps orphaned children as PID 1 of a PID namespace', async () => {
    const namespace = spawn('unshare', ['--pid', '--fork', '--mount-proc', pause], { stdio: 'ignore' });
    const exited = exitOf(namespace);
    await sleep(300);
    // unshare's only child is pause, PID 1 inside the namespace
    const pid = readFileSync(`/proc/${namespace.pid}/task/${namespace.pid}/children`, 'utf8').trim();
    // the shell exits at once and its sleep is re-parented to PID 1; once the sleep ends, only a
    // reaping PID 1 keeps it from lingering as a zombie
    execFileSync('nsenter', ['-t', pid, '-p', '-m', 'sh', '-c', 'sleep 0.2 & exit 0']);
    await sleep(800);
    const processes = execFileSync('nsenter', ['-t', pid, '-p', '-m', 'ps', '-eo', 'stat=,comm='], { encoding: 'utf8' });
    expect(processes).toMatch(/pause/);
    expect(processes).not.toMatch(/^\s*Z/m);
    process.kill(Number(pid), 'SIGTERM');
    expect((await exited).code).toBe(0);
  });
});
