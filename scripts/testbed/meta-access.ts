// What the test bed's hosts need of the meta-cluster: that it is up with a node (whose kube-proxy
// routes them to its Services), and kubectl as its admin.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { statePaths, type TestbedConfig } from './config.ts';
import { isRunning, readRecords } from './processes.ts';

/** Throws `fail(reason)` unless the meta-cluster runs, with a node. */
export function checkMetaNode(config: TestbedConfig, fail: (reason: string) => Error): void {
  const records = readRecords(statePaths(config.stateDir).processes);
  if (!existsSync(statePaths(config.stateDir).adminKubeconfig) || records.length === 0 || !records.every(isRunning))
    throw fail('the meta-cluster is not up; run scripts/meta-cluster up --with-node');
  if (!records.some((r) => r.name === 'kube-proxy'))
    throw fail(
      'the meta-cluster has no node, whose kube-proxy routes the test bed to Services; run scripts/meta-cluster down, then up --with-node',
    );
}

/** kubectl against the meta-cluster as its admin; `input` goes to its stdin. */
export function metaKubectl(config: TestbedConfig): (args: string[], input?: string) => SpawnSyncReturns<string> {
  const kubectl = join(config.binDirs.kubernetes, 'kubectl');
  const kubeconfig = statePaths(config.stateDir).adminKubeconfig;
  return (args, input) =>
    spawnSync(kubectl, ['--kubeconfig', kubeconfig, '--request-timeout=10s', ...args], { encoding: 'utf8', input });
}
