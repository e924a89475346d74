// Integration tests share one real meta-cluster: started here once (or reused when one is already
// up, for example the demo's), its admin kubeconfig handed to the tests through `provide`, and
// stopped at the end only if this run started it.
import type { TestProject } from 'vitest/node';
import { componentCommands } from './components.ts';
import { loadConfig } from './config.ts';
import { down, up } from './meta-cluster.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    metaCluster: { kubeconfig: string; logDir: string; components: string[] };
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const config = loadConfig();
  const result = await up((line) => console.log(`[meta-cluster] ${line}`), config);
  project.provide('metaCluster', {
    kubeconfig: result.kubeconfig,
    logDir: result.logDir,
    components: componentCommands(config).map((c) => c.name),
  });
  return async () => {
    if (result.started && process.env.KUBEONKUBE_KEEP_META_CLUSTER !== '1') await down(() => {}, config);
  };
}
