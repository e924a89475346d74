// The test bed's hosts each live below a cgroup of their own in every hierarchy of this machine
// (one per controller on cgroup v1, one on v2), removed with them.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Mount points of cgroup hierarchies (one per controller on cgroup v1, one on v2). */
export function cgroupHierarchies(): string[] {
  return readFileSync('/proc/self/mounts', 'utf8')
    .split('\n')
    .map((line) => line.split(' '))
    .filter((f) => (f[2] === 'cgroup' || f[2] === 'cgroup2') && f[1]?.startsWith('/sys/fs/cgroup'))
    .map((f) => f[1]!);
}

/** Makes `cgroup` (a name below the root) in every hierarchy: the kubelet refuses a cgroupRoot missing from one. */
export function createCgroups(cgroup: string): void {
  for (const hierarchy of cgroupHierarchies()) {
    const dir = join(hierarchy, cgroup);
    mkdirSync(dir, { recursive: true });
    // a v1 cpuset starts empty, and no process may join an empty cpuset
    for (const file of ['cpuset.cpus', 'cpuset.mems']) {
      if (existsSync(join(dir, file)) && readFileSync(join(dir, file), 'utf8').trim() === '') {
        writeFileSync(join(dir, file), readFileSync(join(hierarchy, file), 'utf8'));
      }
    }
  }
}

/** The folders of `cgroup` in every hierarchy, children before parents. */
export function cgroupDirs(cgroup: string): string[] {
  const dirs: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) walk(join(dir, e.name));
    dirs.push(dir);
  };
  for (const hierarchy of cgroupHierarchies()) {
    const top = join(hierarchy, cgroup);
    if (existsSync(top)) walk(top);
  }
  return dirs;
}

/** The processes in `cgroup` or below it. */
export function cgroupPids(cgroup: string): number[] {
  const pids = new Set<number>();
  for (const dir of cgroupDirs(cgroup)) {
    try {
      for (const pid of readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean))
        pids.add(Number(pid));
    } catch {
      /* removed meanwhile */
    }
  }
  return [...pids];
}

/** Removes `cgroup` everywhere once its processes are gone; throws `fail(leftovers)` after 10 s. */
export async function removeCgroups(cgroup: string, fail: (leftovers: string[]) => Error): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (let dirs = cgroupDirs(cgroup); dirs.length > 0; dirs = cgroupDirs(cgroup)) {
    for (const dir of dirs) {
      try {
        rmdirSync(dir);
      } catch {
        /* busy a little longer, or its children first */
      }
    }
    if (cgroupDirs(cgroup).length === 0) return;
    if (Date.now() > deadline) throw fail(cgroupDirs(cgroup));
    await sleep(200);
  }
}
