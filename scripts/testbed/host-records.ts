// The records the test bed keeps of its hosts (workers, machines): one JSON file per host beside
// its folder, written before anything of the host is made, so removal finds what a crash left.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadConfig, type TestbedConfig } from './config.ts';

/** The test bed's configuration with a node, at `stateDir` when given. */
export function hostsTestbed(stateDir: string | undefined): TestbedConfig {
  const config = loadConfig({ withNode: true });
  return stateDir === undefined ? config : { ...config, stateDir: resolve(stateDir) };
}

export function readRecord<T>(file: string): T | undefined {
  return existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as T) : undefined;
}

export function writeRecord(file: string, record: unknown): void {
  writeFileSync(file, JSON.stringify(record, null, 2) + '\n');
}

/** The names of the hosts recorded in `dir` (one <name>.json each), sorted. */
export function recordedNames(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}
