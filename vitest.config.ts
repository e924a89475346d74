import { defineConfig } from 'vitest/config';

// Three tiers: unit (pure code, fakes allowed), integration (a real kube-apiserver and etcd of the
// tier-1 meta-cluster, started once in globalSetup) and e2e (tier 2: a real node runs pods).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['operator/**/*.test.ts', 'scripts/**/*.test.ts'],
          exclude: ['**/*.integration.test.ts', '**/node_modules/**'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['operator/**/*.integration.test.ts', 'scripts/**/*.integration.test.ts'],
          globalSetup: ['scripts/testbed/vitest-global-setup.ts'],
          setupFiles: ['scripts/testbed/vitest-log-tails.ts'],
          testTimeout: 60_000,
          hookTimeout: 300_000,
          // one meta-cluster is shared: files run one after another
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['e2e/**/*.test.ts'],
          // the Machines suite makes hosts and installs nodes on them over SSH (tens of minutes
          // here): a long suite of its own, npm run test:machines
          exclude: process.env.KUBEONKUBE_MACHINES_SUITE === '1' ? [] : ['e2e/machines.test.ts'],
          globalSetup: ['scripts/testbed/vitest-global-setup.ts'],
          setupFiles: ['scripts/testbed/vitest-log-tails.ts'],
          testTimeout: 180_000,
          hookTimeout: 600_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
