// Golden files: every template, rendered for a minimal and a standard cluster, must equal the
// committed file in templates/golden/. `npm run golden:update` rewrites them; CI refuses to.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { dump, loadAll } from 'js-yaml';
import { describe, expect, it } from 'vitest';
import type { ControlPlaneFacts } from '../model/control-plane.ts';
import type { ClusterSpec } from '../api/cluster.generated.ts';
import {
  addonTemplates,
  controlPlaneAddonContext,
  corednsAddonContext,
  customAddonContext,
  customTemplateKey,
  kubeProxyAddonContext,
  tunnelAgentAddonContext,
  type AddonSpec,
  type BuiltinAddon,
} from '../model/addons.ts';
import { renderControlPlane } from './control-plane-objects.ts';
import { boundPauseMs, TemplateSandbox, transientFailureMs } from './template-sandbox.ts';
import { Renderer, templatesDir } from './renderer.ts';
import { repoRoot } from '../../scripts/testbed/config.ts';
import { withDefaults } from '../api/defaults.ts';

const goldenDir = join(templatesDir, 'golden');
const update = process.env.UPDATE_GOLDEN === '1';
if (update && process.env.CI)
  throw new Error('golden files are never regenerated in CI: run npm run golden:update locally and commit');

const minimal = withDefaults({
  version: 'v1.34.4',
  mode: 'minimal',
  network: { serviceCIDR: '10.96.0.0/12', podCIDR: '10.244.0.0/16', dnsDomain: 'cluster.local' },
  etcd: {
    version: 'v3.6.16',
    storage: { claimTemplate: { resources: { requests: { storage: '1Gi' } } } },
    restoreFrom: { volume: { persistentVolumeClaim: { claimName: 'etcd-backups' } }, path: 'old-20261123T101500Z.db' },
  },
});
const standard = withDefaults({
  ...minimal,
  mode: 'standard',
  controlPlane: {
    nodeSelector: { 'node-role.kubernetes.io/control-plane': '' },
    tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'control-plane', effect: 'NoSchedule' }],
    apiServer: {
      extraArgs: { 'audit-log-maxage': '7', 'profiling': 'true' },
      resources: { requests: { cpu: '1', memory: '2Gi' } },
    },
  },
  endpoint: {
    service: { type: 'LoadBalancer', annotations: { 'example.com/lb': 'internal' } },
    host: 'api.prod.example.com',
  },
  etcd: {
    version: 'v3.6.16',
    storage: { volumeSource: { hostPath: { path: '/var/lib/prod-etcd', type: 'DirectoryOrCreate' } } },
    backup: { schedule: '0 */6 * * *', retention: 5, volume: { persistentVolumeClaim: { claimName: 'etcd-backups' } } },
  },
});
const facts = (name: string, members: number): ControlPlaneFacts => ({
  name,
  namespace: 'tenants',
  // the standard fixture has an in-cluster operator and a formed etcd cluster
  ...(members > 1 ? { operatorNamespace: 'kubeonkube-system', etcdInitialized: true } : {}),
  uid: '0b9f1c2e-0000-4000-8000-000000000001',
  operatorImage: 'ghcr.io/kubeonkube/kubeonkube:0.1.0',
  metaDnsDomain: 'cluster.local',
  apiserverAddress: '10.112.0.42',
  inputHashes: {
    apiserver: 'a1',
    controllerManager: 'c1',
    scheduler: 's1',
    etcd: Array.from({ length: members }, (_, i) => `e${i}`),
  },
});

const renderer = new Renderer();

describe('templates', () => {
  for (const [fixture, spec, f] of [
    ['minimal', minimal, facts('dev', 1)],
    ['standard', standard, facts('prod', 3)],
  ] as const) {
    const objects = renderControlPlane(renderer, spec, f);
    for (const [part, rendered] of Object.entries(objects)) {
      it(`${fixture}: ${part} matches its golden file`, () => {
        const text = dump(rendered, { lineWidth: 160 });
        const file = join(goldenDir, `${fixture}.${part}.yaml`);
        if (update || !existsSync(file)) {
          if (process.env.CI) throw new Error(`${file} is missing: run npm run golden:update locally and commit`);
          mkdirSync(goldenDir, { recursive: true });
          writeFileSync(file, text);
        }
        expect(text).toBe(readFileSync(file, 'utf8'));
      });
    }
  }

  // the add-ons applied into the business cluster, with fixed stand-ins for keys and tokens
  const addonContexts = (spec: ClusterSpec) => ({
    'control-plane': controlPlaneAddonContext({ id: 'abcdef', secret: '0123456789abcdef' }),
    'tunnel-agent': tunnelAgentAddonContext(spec, {
      server: { host: '10.112.0.42', port: 8132 },
      tls: { cert: 'CERT', key: 'KEY', ca: 'CA' },
      image: 'ghcr.io/kubeonkube/kubeonkube:0.1.0',
      servers: ['dev-apiserver-6b7c9-x2x4q'],
    }),
    'kube-proxy': kubeProxyAddonContext(spec, 'https://10.112.0.42:6443'),
    coredns: corednsAddonContext(spec),
  });
  for (const [fixture, spec] of [
    ['minimal', minimal],
    ['standard', standard],
  ] as const) {
    for (const [addon, context] of Object.entries(addonContexts(spec))) {
      it(`${fixture}: add-on ${addon} matches its golden file`, () => {
        const text = dump(renderer.render(addonTemplates[addon as BuiltinAddon], context), { lineWidth: 160 });
        const file = join(goldenDir, `${fixture}.addon-${addon}.yaml`);
        if (update || !existsSync(file)) {
          if (process.env.CI) throw new Error(`${file} is missing: run npm run golden:update locally and commit`);
          writeFileSync(file, text);
        }
        expect(text).toBe(readFileSync(file, 'utf8'));
      });
    }
  }

  it('renders every template it knows', () => {
    expect(renderer.names()).toEqual([
      'addon-control-plane.yaml.hbs',
      'addon-coredns.yaml.hbs',
      'addon-kube-proxy.yaml.hbs',
      'addon-tunnel-agent.yaml.hbs',
      'apiserver-deployment.yaml.hbs',
      'apiserver-service.yaml.hbs',
      'control-plane-egress-policy.yaml.hbs',
      'controller-manager-deployment.yaml.hbs',
      'etcd-backup-cronjob.yaml.hbs',
      'etcd-client-service.yaml.hbs',
      'etcd-member.yaml.hbs',
      'etcd-network-policy.yaml.hbs',
      'etcd-restore-job.yaml.hbs',
      'scheduler-deployment.yaml.hbs',
      'tunnel-service.yaml.hbs',
    ]);
  });

  it('refuses a context that lacks a value the template uses', () => {
    expect(() => renderer.render('etcd-client-service.yaml.hbs', { service: { name: 'x', namespace: 'y' } })).toThrow(
      'template etcd-client-service.yaml.hbs: a value given to json is missing (line 7)',
    );
  });

  describe('of custom add-ons, given as text', () => {
    const [configMap, cluster] = loadAll(readFileSync(join(repoRoot, 'examples/own-addon.yaml'), 'utf8')) as [
      { data: Record<string, string> },
      { metadata: { name: string }; spec: { addons: AddonSpec[] } },
    ];
    const source = configMap.data[customTemplateKey]!;
    const addon = cluster.spec.addons.find((a) => a.template)!;
    const context = customAddonContext({ name: cluster.metadata.name, namespace: 'teams' }, minimal, addon, {
      host: '10.0.0.1',
      port: 6443,
    });

    it("renders the example of examples/own-addon.yaml with the Cluster's facts and the add-on's values", async () => {
      const objects = await renderer.renderSource('teams/team-defaults', source, context);
      expect(objects.map((o) => `${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`)).toEqual([
        'Namespace /payments',
        'ResourceQuota payments/pods',
        'Namespace /search',
        'ResourceQuota search/pods',
        'ConfigMap kube-public/cluster-facts',
      ]);
      expect(objects[1]).toMatchObject({ spec: { hard: { pods: '20' } } });
      expect(objects[4]).toMatchObject({
        data: { name: 'team', version: 'v1.34.4', podCIDR: '10.244.0.0/16', dnsAddress: '10.96.0.10' },
      });
      expect(context.cluster.server).toBe('https://10.0.0.1:6443');
    });

    it('names the template and the line of a value the context lacks', async () => {
      await expect(
        renderer.renderSource(
          'teams/broken',
          'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{json values.missing}}\n',
          context,
        ),
      ).rejects.toThrow('template teams/broken: a value given to json is missing (line 4)');
      await expect(renderer.renderSource('teams/broken', 'kind: {{#if}}', context)).rejects.toThrow(
        /^template teams\/broken: /,
      );
      await expect(
        renderer.renderSource(
          'teams/broken',
          'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: "Not_A_Name"}\n',
          context,
        ),
      ).rejects.toThrow('template teams/broken, document 1: metadata.name "Not_A_Name" is not a valid object name');
    });

    // a YAML alias bomb of about 500 bytes: nine levels of nine aliases stand for 9^9 strings
    const aliasBomb = [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata: {name: bomb}',
      'data:',
      '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
      ...'bcdefghi'.split('').map((c, i) => `  ${c}: &${c} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(',')}]`),
    ].join('\n');

    it('refuses a YAML alias bomb by the size it expands to, in a worker, without expanding it', async () => {
      expect(aliasBomb.length).toBeLessThan(600);
      await expect(renderer.renderSource('teams/bomb', aliasBomb, context)).rejects.toThrow(
        `template teams/bomb rendered more than ${4 << 20} nodes and characters once its YAML aliases are expanded (the bound on a template's output)`,
      );
    });

    it('stops a template that renders for ever, and one that renders too much, naming the bound', async () => {
      const slow = new Renderer(undefined, { timeoutMs: 300 });
      // nested #each over one list: 200^4 iterations
      const list = Array.from({ length: 200 }, (_, i) => i);
      const nested =
        '{{#each values.l}}{{#each @root.values.l}}{{#each @root.values.l}}{{#each @root.values.l}}x{{/each}}{{/each}}{{/each}}{{/each}}';
      await expect(slow.renderSource('teams/loop', nested, { values: { l: list } })).rejects.toThrow(
        "template teams/loop: rendering took longer than 0.3 s (the bound on a template's time)",
      );
      const wide = new Renderer(undefined, { maxTextChars: 1000 });
      await expect(
        wide.renderSource('teams/wide', '{{#each values.l}}0123456789{{/each}}', { values: { l: list } }),
      ).rejects.toThrow(
        "template teams/wide rendered 2000 characters, more than 1000 (the bound on a template's output)",
      );
    });

    it("renders a text and values once: results and the template's own errors are remembered, a bound of time only for a while", async () => {
      const sandbox = new TemplateSandbox({ timeoutMs: 300 });
      const ok = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{json values.n}}\n';
      await sandbox.render('t/ok', ok, { values: { n: 'a' } });
      await sandbox.render('t/ok', ok, { values: { n: 'a' } });
      expect(sandbox.workers).toBe(1);
      await sandbox.render('t/ok', ok, { values: { n: 'b' } });
      expect(sandbox.workers).toBe(2);
      await expect(sandbox.render('t/bad', '{{json values.missing}}', { values: {} })).rejects.toThrow('missing');
      await expect(sandbox.render('t/bad', '{{json values.missing}}', { values: {} })).rejects.toThrow('missing');
      expect(sandbox.workers).toBe(3);
      const list = Array.from({ length: 200 }, (_, i) => i);
      const slowText =
        '{{#each values.l}}{{#each @root.values.l}}{{#each @root.values.l}}{{#each @root.values.l}}x{{/each}}{{/each}}{{/each}}{{/each}}';
      const now = Date.now();
      await expect(sandbox.render('t/slow', slowText, { values: { l: list } }, now)).rejects.toThrow(
        'longer than 0.3 s',
      );
      await expect(sandbox.render('t/slow', slowText, { values: { l: list } }, now + 1000)).rejects.toThrow(
        'longer than 0.3 s',
      );
      expect(sandbox.workers).toBe(4);
      await expect(
        sandbox.render('t/slow', slowText, { values: { l: list } }, now + transientFailureMs + 1),
      ).rejects.toThrow('longer than 0.3 s');
      expect(sandbox.workers).toBe(5);
    });

    it('renders no new text of a template for a while after it hit a bound: rewriting a bomb costs one worker per pause', async () => {
      const sandbox = new TemplateSandbox({ timeoutMs: 300 });
      const list = Array.from({ length: 200 }, (_, i) => i);
      const slow = (n: number) =>
        `{{!-- ${n} --}}{{#each values.l}}{{#each @root.values.l}}{{#each @root.values.l}}{{#each @root.values.l}}x{{/each}}{{/each}}{{/each}}{{/each}}`;
      const now = Date.now();
      await expect(sandbox.render('t/bomb', slow(1), { values: { l: list } }, now)).rejects.toThrow(
        'longer than 0.3 s',
      );
      await expect(sandbox.render('t/bomb', slow(2), { values: { l: list } }, now + 1000)).rejects.toThrow(
        `longer than 0.3 s (the bound on a template's time); a new text of it is rendered ${boundPauseMs / 1000} s after that`,
      );
      expect(sandbox.workers).toBe(1);
      // another template is not held up
      await sandbox.render('t/other', 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n', {}, now + 1000);
      expect(sandbox.workers).toBe(2);
      await expect(sandbox.render('t/bomb', slow(3), { values: { l: list } }, now + boundPauseMs + 1)).rejects.toThrow(
        'longer than 0.3 s',
      );
      expect(sandbox.workers).toBe(3);
    });
  });

  it('keeps user values from breaking the YAML', () => {
    const hostile = {
      ...standard,
      endpoint: { service: { type: 'ClusterIP' as const, annotations: { a: 'x"\n  evil: true\n---\nkind: Secret' } } },
    };
    const [service] = renderControlPlane(renderer, hostile, facts('prod', 3)).apiserverService;
    expect(service?.metadata.annotations).toEqual({ a: 'x"\n  evil: true\n---\nkind: Secret' });
  });

  it('lets extraArgs replace a default flag in place and add new ones', () => {
    const [deployment] = renderControlPlane(renderer, standard, facts('prod', 3)).apiserver;
    const command = (deployment as unknown as { spec: { template: { spec: { containers: { command: string[] }[] } } } })
      .spec.template.spec.containers[0]!.command;
    expect(command.filter((f) => f.startsWith('--profiling='))).toEqual(['--profiling=true']);
    expect(command.at(-1)).toBe('--audit-log-maxage=7');
  });
});
