// Processes the meta-cluster started, recorded by pid and kernel start time, so that `down` stops
// exactly those (a pid reused by an unrelated process is never signalled) and never goes by name.
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ProcessRecord {
  name: string;
  pid: number;
  /** Field 22 of /proc/<pid>/stat: clock ticks since boot at which the process started. */
  startTime: string;
  logFile: string;
}

export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // the command name (field 2) may hold spaces and parentheses: count fields after the last ')'
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = rest[0];
    if (state === 'Z' || state === 'X') return undefined; // exited, not yet reaped
    return rest[19];
  } catch {
    return undefined;
  }
}

export function isRunning(record: ProcessRecord): boolean {
  return processStartTime(record.pid) === record.startTime;
}

/** Starts a long-running process detached from this one, its output appended to `logFile`. */
export function startProcess(
  name: string,
  command: string,
  args: string[],
  logFile: string,
  env: NodeJS.ProcessEnv = process.env,
): ProcessRecord {
  const fd = openSync(logFile, 'a');
  try {
    const child = spawn(command, args, { detached: true, stdio: ['ignore', fd, fd], env });
    if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
    child.unref();
    const startTime = processStartTime(child.pid);
    if (startTime === undefined) throw new Error(`${name} exited at once; see ${logFile}`);
    return { name, pid: child.pid, startTime, logFile };
  } finally {
    closeSync(fd);
  }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function stopProcess(record: ProcessRecord, graceMs = 10_000): Promise<void> {
  if (!isRunning(record)) return;
  process.kill(record.pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isRunning(record)) {
    if (Date.now() > deadline) {
      process.kill(record.pid, 'SIGKILL');
      await sleep(100);
      if (!isRunning(record)) return;
    }
    await sleep(50);
  }
}

export function readRecords(file: string): ProcessRecord[] {
  if (!existsSync(file)) return [];
  return JSON.parse(readFileSync(file, 'utf8')) as ProcessRecord[];
}

export function writeRecords(file: string, records: ProcessRecord[]): void {
  writeFileSync(file, JSON.stringify(records, null, 2) + '\n');
}
