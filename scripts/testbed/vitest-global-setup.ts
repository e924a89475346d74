// Integration and end-to-end tests share one real meta-cluster: started here once per run (or
// reused when one is already up, for example the demo's), its admin kubeconfig handed to the
// tests through `provide`, and stopped at the end only if this run started it. The e2e project
// needs a node (tier 2); when it takes part in the run, the meta-cluster is started with one.
import type { TestProject } from 'vitest/node';
import { componentCommands } from './components.ts';
import { loadConfig } from './config.ts';
import { down, up, type UpResult } from './meta-cluster.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    metaCluster: { kubeconfig: string; logDir: string; components: string[]; withNode: boolean };
  }
}

interface Shared {
  started: Promise<UpResult & { withNode: boolean }>;
  users: number;
}

// each project loads this module on its own; the process-wide registry makes them share one start
const registry = globalThis as { [key: symbol]: Shared | undefined };
const key = Symbol.for('kubeonkube.testbed.metaCluster');

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const withNode = project.vitest.projects.some((p) => p.name === 'e2e');
  const config = loadConfig({ withNode });
  const shared = (registry[key] ??= {
    users: 0,
    started: up((line) => console.log(`[meta-cluster] ${line}`), config).then((r) => ({ ...r, withNode })),
  });
  shared.users++;
  const result = await shared.started;
  if (project.name === 'e2e' && !result.withNode) throw new Error('the e2e tests need a meta-cluster with a node');
  const components = [
    ...componentCommands(config).map((c) => c.name),
    ...(result.withNode ? ['containerd', 'kubelet', 'kube-proxy'] : []),
  ];
  project.provide('metaCluster', {
    kubeconfig: result.kubeconfig,
    logDir: result.logDir,
    components,
    withNode: result.withNode,
  });
  return async () => {
    if (--shared.users > 0) return;
    registry[key] = undefined;
    if (result.started && process.env.KUBEONKUBE_KEEP_META_CLUSTER !== '1') await down(() => {}, config);
  };
}
