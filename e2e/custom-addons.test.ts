// Users' own add-ons, end to end: the Cluster of examples/own-addon.yaml puts what its template in a
// ConfigMap renders into the business cluster; an edit of the template is followed there (what it no
// longer renders is removed), a hand-deleted object comes back, a broken template or an object of
// someone else's changes nothing and says why, a renamed add-on hands its objects over in place,
// and an add-on removed from the spec takes all it made with it, and nothing else.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { loadAll } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { loadConfig, repoRoot } from '../scripts/testbed/config.ts';
import { eventually, kubectl } from './kubectl.ts';
import { operatorLogTail, operatorTestBed, settledWrites, type OperatorProcess } from './operator-process.ts';

const { ns, current } = operatorTestBed('e2e-addons', 18090, {
  KUBEONKUBE_POLICY: JSON.stringify({ allowTunnelDisabled: true }),
});
const operator = (): OperatorProcess => current.operator!;
const scratch = mkdtempSync(join(tmpdir(), 'kok-e2e-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const kubectlBinary = join(loadConfig().binDirs.kubernetes, 'kubectl');
const kubeconfig = join(scratch, 'team.kubeconfig');

/** kubectl against the business cluster. */
const business = async (...args: string[]) =>
  (await promisify(execFile)(kubectlBinary, ['--kubeconfig', kubeconfig, ...args])).stdout;
const exists = (what: string, namespace?: string) =>
  business(...(namespace ? ['-n', namespace] : []), 'get', ...what.split(' '), '-o', 'name').then(
    () => true,
    (err: Error) => {
      if (/NotFound/.test(err.message)) return false;
      throw err;
    },
  );
/** A Namespace there and not being deleted. */
const active = async (namespace: string) =>
  (await exists(`namespace ${namespace}`)) &&
  (await business('get', 'namespace', namespace, '-o', 'jsonpath={.status.phase}')) === 'Active';
const addonsReady = async () =>
  JSON.parse(
    (await kubectl([
      '-n',
      ns,
      'get',
      'cluster',
      'team',
      '-o',
      'jsonpath={.status.conditions[?(@.type=="AddonsReady")]}',
    ])) || '{}',
  ) as { status?: string; reason?: string; message?: string };
const inventory = async (addon = 'team-defaults') =>
  JSON.parse(
    await business(
      '-n',
      'kube-system',
      'get',
      'configmap',
      `kubeonkube-addon-${addon}`,
      '-o',
      'jsonpath={.data.objects}',
    ),
  ) as { kind: string; name: string }[];

const [exampleConfigMap, exampleCluster] = loadAll(readFileSync(join(repoRoot, 'examples/own-addon.yaml'), 'utf8')) as [
  { data: Record<string, string> },
  object,
];
const template = exampleConfigMap.data['template.yaml.hbs']!;
const setTemplate = (text: string) =>
  kubectl([
    '-n',
    ns,
    'patch',
    'configmap',
    'team-defaults',
    '--type=merge',
    '-p',
    JSON.stringify({ data: { 'template.yaml.hbs': text } }),
  ]);

beforeAll(async () => {
  // the example as shipped, without the built-in workloads (no worker joins here) and without the tunnel (its agent needs a node)
  await kubectl(['-n', ns, 'apply', '-f', join(repoRoot, 'examples/own-addon.yaml')]);
  await kubectl([
    '-n',
    ns,
    'patch',
    'cluster',
    'team',
    '--type=merge',
    '-p',
    JSON.stringify({ spec: { tunnel: { enabled: false } } }),
  ]);
  await kubectl([
    '-n',
    ns,
    'patch',
    'cluster',
    'team',
    '--type=json',
    '-p',
    JSON.stringify([
      {
        op: 'replace',
        path: '/spec/addons',
        value: (exampleCluster as { spec: { addons: { name: string }[] } }).spec.addons.filter(
          (a) => a.name === 'team-defaults',
        ),
      },
    ]),
  ]);
  await kubectl(['-n', ns, 'wait', '--for=condition=Ready', 'cluster/team', '--timeout=480s']);
  writeFileSync(
    kubeconfig,
    Buffer.from(
      await kubectl(['-n', ns, 'get', 'secret', 'team-kubeconfig', '-o', 'jsonpath={.data.value}']),
      'base64',
    ),
    { mode: 0o600 },
  );
}, 600_000);

describe('a custom add-on', () => {
  it("puts what its template renders into the business cluster, with the Cluster's facts and its values", async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    await eventually('AddonsReady', async () => (await addonsReady()).status === 'True' || undefined, 180_000);
    expect((await addonsReady()).message).toBe('control-plane, team-defaults applied and available');
    expect(await business('get', 'namespace', 'payments', '-o', 'jsonpath={.metadata.labels}')).toContain(
      '"app.kubernetes.io/managed-by":"kubeonkube","kubeonkube.io/addon":"team-defaults"',
    );
    expect(await business('-n', 'search', 'get', 'resourcequota', 'pods', '-o', 'jsonpath={.spec.hard.pods}')).toBe(
      '10',
    );
    expect(
      JSON.parse(await business('-n', 'kube-public', 'get', 'configmap', 'cluster-facts', '-o', 'jsonpath={.data}')),
    ).toEqual({
      name: 'team',
      version: 'v1.34.4',
      podCIDR: '10.244.0.0/16',
      dnsAddress: '10.96.0.10',
    });
    expect((await inventory()).map((r) => `${r.kind}/${r.name}`)).toEqual([
      'ConfigMap/cluster-facts',
      'Namespace/payments',
      'Namespace/search',
      'ResourceQuota/pods',
      'ResourceQuota/pods',
    ]);
  }, 300_000);

  it('reaches zero writes in steady state', async () => {
    const before = await settledWrites(operator(), 5000, 120_000, () => operator().writesByKind());
    // past the 30 s recheck of the business cluster, and two resyncs
    await new Promise((r) => setTimeout(r, 35_000));
    expect(await operator().writesByKind()).toEqual(before);
  }, 180_000);

  it('brings back an object deleted by hand, and follows an edit of the template: what it no longer renders is removed', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    await business('-n', 'kube-public', 'delete', 'configmap', 'cluster-facts');
    await eventually(
      'cluster-facts back',
      () => exists('configmap cluster-facts', 'kube-public').then((e) => e || undefined),
      60_000,
    );

    // the search team leaves; the facts gain the service range
    await kubectl([
      '-n',
      ns,
      'patch',
      'cluster',
      'team',
      '--type=json',
      '-p',
      JSON.stringify([
        { op: 'replace', path: '/spec/addons/0/values/teams', value: [{ name: 'payments', pods: '20' }] },
      ]),
    ]);
    await setTemplate(
      template.replace(
        'podCIDR: {{json cluster.network.podCIDR}}',
        'podCIDR: {{json cluster.network.podCIDR}}\n  serviceCIDR: {{json cluster.network.serviceCIDR}}',
      ),
    );
    await eventually(
      'the search namespace removed and the new fact there',
      async () =>
        ((!(await exists('namespace search')) ||
          (await business('get', 'namespace', 'search', '-o', 'jsonpath={.status.phase}')) === 'Terminating') &&
          (await business(
            '-n',
            'kube-public',
            'get',
            'configmap',
            'cluster-facts',
            '-o',
            'jsonpath={.data.serviceCIDR}',
          )) === '10.96.0.0/12') ||
        undefined,
      90_000,
    );
    expect(await active('payments')).toBe(true);
    await eventually(
      'the inventory without search',
      async () =>
        JSON.stringify((await inventory()).map((r) => `${r.kind}/${r.name}`)) ===
          JSON.stringify(['ConfigMap/cluster-facts', 'Namespace/payments', 'ResourceQuota/pods']) || undefined,
      60_000,
    );
  }, 300_000);

  it("changes nothing there for a broken template, an object of someone else's or a kind the cluster does not serve, and says why", async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    await setTemplate(`${template}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{json values.missing}}\n`);
    await eventually(
      'AddonTemplateInvalid',
      async () => {
        const c = await addonsReady();
        return c.reason === 'AddonTemplateInvalid' ? c : undefined;
      },
      90_000,
    ).then((c) =>
      expect(c.message).toBe(
        `add-on team-defaults: template ${ns}/team-defaults: a value given to json is missing (line ${template.split('\n').length + 4}); what it applied before is kept`,
      ),
    );
    expect(await active('payments')).toBe(true);

    // an object of the same name the operator did not make is never taken over
    await business('create', 'namespace', 'mine');
    await setTemplate(`${template}---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: mine\n`);
    await eventually(
      'AddonConflict',
      async () => (await addonsReady()).reason === 'AddonConflict' || undefined,
      90_000,
    );
    expect((await addonsReady()).message).toMatch(
      /^Namespace mine already exists in the business cluster and is not kubeonkube's team-defaults add-on/,
    );
    expect(await business('get', 'namespace', 'mine', '-o', 'jsonpath={.metadata.labels}')).not.toContain('kubeonkube');
    expect(await active('payments')).toBe(true);

    await setTemplate(`${template}---\napiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n`);
    await eventually(
      'AddonApplyFailed',
      async () => (await addonsReady()).reason === 'AddonApplyFailed' || undefined,
      90_000,
    );
    expect((await addonsReady()).message).toBe(
      'add-on team-defaults: the business cluster serves no Widget in example.com/v1; what it applied before is kept',
    );
    // nothing of the add-on went meanwhile
    expect([
      await active('payments'),
      await exists('configmap cluster-facts', 'kube-public'),
      await active('mine'),
    ]).toEqual([true, true, true]);

    await setTemplate(template);
    await eventually('AddonsReady again', async () => (await addonsReady()).status === 'True' || undefined, 90_000);
  }, 400_000);

  it('hands its objects over in place when renamed: nothing deleted and made anew', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    const uid = await business('get', 'namespace', 'payments', '-o', 'jsonpath={.metadata.uid}');
    await kubectl([
      '-n',
      ns,
      'patch',
      'cluster',
      'team',
      '--type=json',
      '-p',
      JSON.stringify([{ op: 'replace', path: '/spec/addons/0/name', value: 'platform' }]),
    ]);
    await eventually(
      'the objects labelled for platform, the old inventory gone',
      async () =>
        ((await business('get', 'namespace', 'payments', '-o', 'jsonpath={.metadata.labels.kubeonkube\\.io/addon}')) ===
          'platform' &&
          !(await exists('configmap kubeonkube-addon-team-defaults', 'kube-system'))) ||
        undefined,
      90_000,
    );
    expect(await business('get', 'namespace', 'payments', '-o', 'jsonpath={.metadata.uid}')).toBe(uid);
    expect(await active('payments')).toBe(true);
    expect((await inventory('platform')).map((r) => `${r.kind}/${r.name}`)).toEqual([
      'ConfigMap/cluster-facts',
      'Namespace/payments',
      'ResourceQuota/pods',
    ]);
    await eventually(
      'AddonsReady',
      async () => (await addonsReady()).message === 'control-plane, platform applied and available' || undefined,
      60_000,
    );
  }, 300_000);

  it('goes with all it made once removed from the spec, leaving what was not its own', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    await kubectl([
      '-n',
      ns,
      'patch',
      'cluster',
      'team',
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { addons: [] } }),
    ]);
    await eventually(
      "the add-on's objects gone",
      async () => {
        const left = await Promise.all([
          exists('configmap cluster-facts', 'kube-public'),
          exists('configmap kubeonkube-addon-platform', 'kube-system'),
          active('payments'),
        ]);
        return left.every((l) => !l) || undefined;
      },
      90_000,
    );
    expect(await active('mine')).toBe(true);
    await eventually(
      'the AddonRemoved Event',
      async () =>
        (
          await kubectl([
            '-n',
            ns,
            'get',
            'events',
            '--field-selector',
            'reason=AddonRemoved',
            '-o',
            'jsonpath={range .items[*]}{.message}{"\\n"}{end}',
          ])
        ).includes(
          'removed ConfigMap kube-public/cluster-facts of add-on platform from the business cluster: the spec no longer asks for it',
        ) || undefined,
      30_000,
    );
    await eventually(
      'AddonsReady',
      async () => (await addonsReady()).message === 'control-plane applied and available' || undefined,
      60_000,
    );
  }, 300_000);
});
