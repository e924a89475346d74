// What the benchmarks share: clients of the local meta-cluster (as its admin), the Cluster API's
// coordinates, and the resident memory of a process.
import { readFileSync } from 'node:fs';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { loadConfig, statePaths } from '../scripts/testbed/config.ts';

export const kubeconfigPath = statePaths(loadConfig().stateDir).adminKubeconfig;
export const kc = new KubeConfig();
kc.loadFromFile(kubeconfigPath);
export const core = kc.makeApiClient(CoreV1Api);
export const custom = kc.makeApiClient(CustomObjectsApi);
export const ref = { group: 'kubeonkube.io', version: 'v1alpha1', plural: 'clusters' };

/** A process's resident memory (VmRSS) or its peak (VmHWM), in KiB. */
export function rssKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}
