// Benchmark: what a hostile tenant costs the Cluster beside it. A minimal Cluster ("calm") is
// reconciled over and over (a no-op annotation each time) and its pass time is read from the
// operator's kubeonkube_cluster_last_pass_seconds; the same again while a second Cluster
// ("hostile") has two add-ons of its own whose templates are an alias bomb and a template that
// renders for ever, rewritten every 500 ms so that no remembered result spares the renderer.
// Prints JSON on stdout: calm's pass time (median, p90) and the operator's RSS, without and with
// the neighbour, and their ratios. Runs against the local meta-cluster with a node.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { repoRoot } from '../scripts/testbed/config.ts';
import { core, custom, kubeconfigPath, ref, rssKiB } from './meta-cluster.ts';

const namespace = `bench-neighbour-${Date.now().toString(36)}`;
const metricsPort = 18181;
const passes = 20;

const rssMiB = (pid: number, field: 'VmRSS' | 'VmHWM') => Number((rssKiB(pid, field) / 1024).toFixed(1));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const merge = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

async function lastPass(cluster: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
  const m = new RegExp(
    `^kubeonkube_cluster_last_pass_seconds\\{cluster="${namespace}/${cluster}"\\} ([0-9.e-]+)$`,
    'm',
  ).exec(text);
  return m ? Number(m[1]) : undefined;
}

async function condition(name: string, type: string): Promise<{ status?: string; reason?: string } | undefined> {
  const c = (await custom.getNamespacedCustomObject({ ...ref, namespace, name })) as {
    status?: { conditions?: { type: string; status: string; reason: string }[] };
  };
  return c.status?.conditions?.find((x) => x.type === type);
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 600_000): Promise<void> {
  const started = Date.now();
  while (!(await check().catch(() => false))) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what} not reached after ${timeoutMs / 1000} s`);
    await sleep(250);
  }
}

/** `passes` passes of calm, each started by a new annotation value: their durations (s). */
async function calmPasses(label: string): Promise<number[]> {
  const seconds: number[] = [];
  for (let i = 0; i < passes; i++) {
    const before = await lastPass('calm');
    await custom.patchNamespacedCustomObject(
      {
        ...ref,
        namespace,
        name: 'calm',
        body: { metadata: { annotations: { 'bench.kubeonkube.io/poke': `${label}-${i}` } } },
      },
      merge,
    );
    // the gauge moves when the pass ends; a pass of the same length leaves it as it was, so wait a little at most
    const started = Date.now();
    let now = before;
    while (now === before && Date.now() - started < 3000) {
      await sleep(50);
      now = await lastPass('calm');
    }
    if (now !== undefined) seconds.push(now);
    await sleep(200);
  }
  return seconds;
}

const quantile = (xs: number[], q: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return Number((sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0).toFixed(4));
};

const cluster = (name: string, spec: object = {}) => ({
  apiVersion: 'kubeonkube.io/v1alpha1',
  kind: 'Cluster',
  metadata: { name },
  spec: {
    version: 'v1.34.4',
    mode: 'minimal',
    etcd: { storage: { claimTemplate: { resources: { requests: { storage: '256Mi' } } } } },
    ...spec,
  },
});

/** An alias bomb of about 500 bytes (9^9 strings once expanded), and a template of 200^4 iterations; `n` makes each text new. */
function hostileTemplates(n: number): Record<string, string> {
  const bomb = [
    'apiVersion: v1',
    'kind: ConfigMap',
    `metadata: {name: bomb-${n}}`,
    'data:',
    '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
    ...'bcdefghi'.split('').map((c, i) => `  ${c}: &${c} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(',')}]`),
  ].join('\n');
  const forever = `{{!-- ${n} --}}{{#each values.l}}{{#each @root.values.l}}{{#each @root.values.l}}{{#each @root.values.l}}x{{/each}}{{/each}}{{/each}}{{/each}}`;
  return { bomb, forever };
}

async function main(): Promise<void> {
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  const operator = spawn(process.execPath, [join(repoRoot, 'operator/main.ts')], {
    stdio: 'ignore',
    env: {
      ...process.env,
      KUBECONFIG: kubeconfigPath,
      KUBEONKUBE_METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
      KUBEONKUBE_LEADER_ELECT: 'false',
      LOG_LEVEL: 'warn',
      KUBEONKUBE_WATCH_NAMESPACE: namespace,
    },
  });
  const pid = operator.pid!;
  let attacking = true;
  try {
    await custom.createNamespacedCustomObject({ ...ref, namespace, body: cluster('calm') });
    await until('calm Ready', async () => (await condition('calm', 'Ready'))?.status === 'True');
    await sleep(5000);
    const alone = await calmPasses('alone');
    const rssAlone = rssMiB(pid, 'VmRSS');

    const list = Array.from({ length: 200 }, (_, i) => i);
    for (const [name, text] of Object.entries(hostileTemplates(0))) {
      await core.createNamespacedConfigMap({
        namespace,
        body: { metadata: { name }, data: { 'template.yaml.hbs': text } },
      });
    }
    await custom.createNamespacedCustomObject({
      ...ref,
      namespace,
      body: cluster('hostile', {
        addons: [
          { name: 'kube-proxy' },
          { name: 'coredns' },
          { name: 'bomb', template: { configMapRef: { name: 'bomb' } } },
          { name: 'forever', template: { configMapRef: { name: 'forever' } }, values: { l: list } },
        ],
      }),
    });
    await until(
      'hostile refused',
      async () => (await condition('hostile', 'AddonsReady'))?.reason === 'AddonTemplateInvalid',
    );
    // the tenant rewrites both templates every 500 ms, and pokes its Cluster so that they are read again
    const attack = (async () => {
      for (let n = 1; attacking; n++) {
        for (const [name, text] of Object.entries(hostileTemplates(n))) {
          await core
            .patchNamespacedConfigMap({ namespace, name, body: { data: { 'template.yaml.hbs': text } } }, merge)
            .catch(() => undefined);
        }
        await custom
          .patchNamespacedCustomObject(
            {
              ...ref,
              namespace,
              name: 'hostile',
              body: { metadata: { annotations: { 'bench.kubeonkube.io/poke': String(n) } } },
            },
            merge,
          )
          .catch(() => undefined);
        await sleep(500);
      }
    })();
    const beside = await calmPasses('beside');
    const rssBeside = rssMiB(pid, 'VmRSS');
    attacking = false;
    await attack;
    const hostilePass = await lastPass('hostile');
    const summary = (xs: number[]) => ({
      passes: xs.length,
      medianSeconds: quantile(xs, 0.5),
      p90Seconds: quantile(xs, 0.9),
    });
    const [a, b] = [summary(alone), summary(beside)];
    process.stdout.write(
      JSON.stringify(
        {
          benchmark: 'hostile-neighbour',
          calmPass: {
            alone: a,
            besideHostile: b,
            medianRatio: Number((b.medianSeconds / a.medianSeconds).toFixed(2)),
            p90Ratio: Number((b.p90Seconds / a.p90Seconds).toFixed(2)),
          },
          hostileLastPassSeconds: hostilePass,
          operatorRssMiB: {
            alone: rssAlone,
            besideHostile: rssBeside,
            ratio: Number((rssBeside / rssAlone).toFixed(2)),
            peak: rssMiB(pid, 'VmHWM'),
          },
        },
        null,
        2,
      ) + '\n',
    );
  } finally {
    attacking = false;
    operator.kill('SIGTERM');
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  }
}

await main();
