// Setup file of the integration tests: when a test fails, print the tail of every meta-cluster
// component's log beside the failure, since the cause is often on the server side.
import { inject, onTestFailed, beforeEach } from 'vitest';
import { logTails } from './meta-cluster.ts';

beforeEach(() => {
  onTestFailed(() => {
    const { logDir, components } = inject('metaCluster');
    console.error(`\nmeta-cluster component logs at the time of the failure:\n${logTails(logDir, components)}`);
  });
});
