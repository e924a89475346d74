// A slice of the upstream conformance suite (e2e.test of the Cluster's release), one spec or two
// of each sig, against a business cluster with two workers: what `npm run conformance` runs in
// full, small enough for every CI run. The slice goes through the paths this product owns: the
// aggregated API and admission webhooks (the apiserver reaching the business cluster's Services
// through the tunnel), exec and logs through the tunnel, the service and pod proxy, DNS from the
// CoreDNS add-on, Services and NodePorts over both workers (the kube-proxy add-on), volumes, and
// service account tokens from the Cluster's PKI.
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it, onTestFailed } from 'vitest';
import { tally } from '../scripts/conformance-summary.ts';
import { loadConfig, repoRoot } from '../scripts/testbed/config.ts';
import { startWorker, stopWorker } from '../scripts/testbed/worker.ts';
import { businessClusters } from './business-cluster.ts';
import { apply, kubectl } from './kubectl.ts';
import { operatorLogTail, operatorTestBed, type OperatorProcess } from './operator-process.ts';

const run = promisify(execFile);
const { ns, current } = operatorTestBed('e2e-conformance', 18110);
const operator = (): OperatorProcess => current.operator!;
const scratch = mkdtempSync(join(tmpdir(), 'kok-e2e-'));
const { kubeconfigFile, addonsAndTunnel, workersServing } = businessClusters(ns, scratch);
const workers = ['cs-0', 'cs-1'] as const;

/** The slice: whole spec names of the `[Conformance]` focus, matched exactly. */
const slice = [
  '[sig-api-machinery] Aggregator Should be able to support the 1.17 Sample API Server using the current Aggregator [Conformance]',
  '[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should be able to deny pod and configmap creation [Conformance]',
  '[sig-apps] Deployment deployment should support rollover [Conformance]',
  '[sig-auth] ServiceAccounts should mount an API token into pods [Conformance]',
  '[sig-cli] Kubectl logs logs should be able to retrieve and filter logs [Conformance]',
  '[sig-network] DNS should provide DNS for services [Conformance]',
  '[sig-network] Proxy version v1 should proxy through a service and a pod [Conformance]',
  '[sig-network] Services should be able to create a functioning NodePort service [Conformance]',
  '[sig-network] Services should serve a basic endpoint from pods [Conformance]',
  '[sig-node] Pods should support remote command execution over websockets [NodeConformance] [Conformance]',
  // the busybox image: upstream's ash passes on variables named `p-data-1` and words its errors
  '[sig-node] ConfigMap should be consumable via the environment [NodeConformance] [Conformance]',
  '[sig-node] Kubelet when scheduling a read only busybox container should not write to root filesystem [LinuxOnly] [NodeConformance] [Conformance]',
  '[sig-storage] ConfigMap should be consumable from pods in volume [NodeConformance] [Conformance]',
  '[sig-storage] Projected secret should be consumable from pods in volume [NodeConformance] [Conformance]',
];

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

afterAll(async () => {
  for (const name of workers) await stopWorker({ name });
  rmSync(scratch, { recursive: true, force: true });
});

describe('the upstream conformance suite, a slice', () => {
  it('a business cluster with two workers and the suite images', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    await apply({
      apiVersion: 'kubeonkube.io/v1alpha1',
      kind: 'Cluster',
      metadata: { name: 'cs', namespace: ns },
      spec: {
        version: 'v1.34.4',
        mode: 'minimal',
        addons: [{ name: 'kube-proxy' }, { name: 'coredns', values: { upstreams: [] } }],
        etcd: { version: 'v3.6.16', storage: { claimTemplate: { resources: { requests: { storage: '256Mi' } } } } },
      },
    });
    await kubectl(['-n', ns, 'wait', '--for=condition=Ready', 'cluster/cs', '--timeout=300s']);
    for (const name of workers)
      await startWorker({
        namespace: ns,
        cluster: 'cs',
        name,
        conformanceImages: true,
        log: (l) => console.log(`${name}: ${l}`),
      });
    await addonsAndTunnel('cs');
    await workersServing('cs', workers);
  }, 900_000);

  it('passes each spec of the slice', async () => {
    const bins = (await run(join(repoRoot, 'scripts/build-binaries.sh'), ['--print-dir', 'conformance'])).stdout.trim();
    const file = await kubeconfigFile('cs');
    const reports = join(scratch, 'reports');
    const focus = slice.map(escape).join('|');
    const output = await run(
      join(bins, 'e2e.test'),
      [
        `--kubeconfig=${file}`,
        '--provider=skeleton',
        `--kubectl-path=${join(loadConfig().binDirs.kubernetes, 'kubectl')}`,
        '--dns-domain=cluster.local',
        `--report-dir=${reports}`,
        '--ginkgo.label-filter=Conformance',
        `--ginkgo.focus=${focus}`,
        '--ginkgo.no-color',
        '--ginkgo.timeout=20m',
      ],
      { maxBuffer: 256 << 20, timeout: 25 * 60_000 },
    ).then(
      (r) => r.stdout,
      (e: Error & { stdout?: string }) => e.stdout ?? e.message,
    );
    onTestFailed(() => console.error(output.split('\n').slice(-200).join('\n')));
    const junit = readdirSync(reports)
      .filter((f) => f.startsWith('junit'))
      .map((f) => readFileSync(join(reports, f), 'utf8'));
    const { outcomes, failed } = tally(junit, (name) => slice.some((s) => name === `[It] ${s}`));
    expect(failed).toEqual([]);
    expect([...outcomes].filter(([, o]) => o === 'passed').length).toBe(slice.length);
  }, 1_800_000);
});
