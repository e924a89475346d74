// Killing the operator at any moment of a Cluster's creation and starting it again converges to
// the same result, with the same CA: nothing it needs is kept only in memory, and a CA that
// exists is never replaced.
import { afterAll, describe, expect, it, onTestFailed } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { kubectl } from './kubectl.ts';
import { operatorLogTail, operatorTestBed, startOperator, type OperatorProcess } from './operator-process.ts';
import { join } from 'node:path';
import { loadConfig } from '../scripts/testbed/config.ts';

const { ns } = operatorTestBed('e2e-restart');
let operator: OperatorProcess | undefined;
afterAll(async () => {
  await operator?.stop();
});

const caOf = () => kubectl(['-n', ns, 'get', 'secret', 'crash-ca', '-o', 'jsonpath={.data.tls\\.crt}']).catch(() => '');

describe('an operator killed during creation', () => {
  it('converges, after restarts, to a Ready cluster with the CA it made first', async () => {
    onTestFailed(() => {
      if (operator) console.error(`operator log:\n${operatorLogTail(operator)}`);
    });
    await kubectl(
      ['-n', ns, 'apply', '-f', '-'],
      JSON.stringify({
        apiVersion: 'kubeonkube.io/v1alpha1',
        kind: 'Cluster',
        metadata: { name: 'crash' },
        spec: {
          version: 'v1.34.4',
          mode: 'minimal',
          etcd: { storage: { claimTemplate: { resources: { requests: { storage: '256Mi' } } } } },
        },
      }),
    );
    let firstCa = '';
    // SIGKILL at points spread over the creation: mid-PKI, mid-etcd, mid-apiserver
    // one operator at a time, each on this namespace: no lease to wait for after a kill (a killed
    // leader's lease would hold the next one off for 15 s, past the kill points)
    const alone = { KUBEONKUBE_LEADER_ELECT: 'false', KUBEONKUBE_WATCH_NAMESPACE: ns };
    for (const [round, delayMs] of [400, 1500, 3000, 6000, 10_000].entries()) {
      operator = startOperator(`${ns}-${round}`, 18090 + round, alone);
      await new Promise((r) => setTimeout(r, delayMs));
      await operator.stop('SIGKILL');
      firstCa ||= await caOf();
    }
    operator = startOperator(`${ns}-final`, 18099, alone);
    await kubectl(['-n', ns, 'wait', '--for=condition=Ready', 'cluster/crash', '--timeout=480s']);
    expect(firstCa).not.toBe('');
    expect(await caOf()).toBe(firstCa);
    // what it serves is signed by that CA: the admin kubeconfig works against it
    const kubeconfig = join(mkdtempSync(join(tmpdir(), 'kok-e2e-')), 'crash.kubeconfig');
    writeFileSync(
      kubeconfig,
      Buffer.from(
        await kubectl(['-n', ns, 'get', 'secret', 'crash-kubeconfig', '-o', 'jsonpath={.data.value}']),
        'base64',
      ),
      { mode: 0o600 },
    );
    const { stdout } = await promisify(execFile)(join(loadConfig().binDirs.kubernetes, 'kubectl'), [
      '--kubeconfig',
      kubeconfig,
      'get',
      '--raw',
      '/readyz',
    ]);
    expect(stdout).toBe('ok');
    // killed or not, no CA was ever made twice
    const events = await kubectl([
      '-n',
      ns,
      'get',
      'events',
      '--field-selector',
      'involvedObject.name=crash',
      '-o',
      'jsonpath={.items[*].reason}',
    ]);
    expect(events.split(' ').filter((r) => r === 'CACreated').length).toBeLessThanOrEqual(4);
  });
});
