// The trust boundary, as a tenant would test it: the author of a Cluster edits what their namespace
// holds (the kubeconfig Secrets, an add-on template) and asks for more than a control plane
// (flags that hold the boundary, the tunnel off). Nothing of it may run or be followed in the
// operator, what it issued is put back, and a hostile Cluster never stops the one beside it ("ten"
// is a prefix of "tenant": nothing of one may be taken for the other's).
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { dump, load } from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { loadConfig } from '../scripts/testbed/config.ts';
import { apply, eventually, kubectl } from './kubectl.ts';
import { operatorLogTail, operatorTestBed, type OperatorProcess } from './operator-process.ts';

const { ns, current } = operatorTestBed('e2e-tenant', 18100);
const operator = (): OperatorProcess => current.operator!;

const storage = { claimTemplate: { resources: { requests: { storage: '256Mi' } } } };
const cluster = (name: string, spec: object = {}) => ({
  apiVersion: 'kubeonkube.io/v1alpha1',
  kind: 'Cluster',
  metadata: { name, namespace: ns },
  spec: { version: 'v1.34.4', mode: 'minimal', etcd: { storage }, ...spec },
});
const get = (what: string, path: string) => kubectl(['-n', ns, 'get', ...what.split(' '), '-o', `jsonpath=${path}`]);
const condition = async (c: string, type: string) =>
  JSON.parse((await get(`cluster ${c}`, `{.status.conditions[?(@.type=="${type}")]}`)) || '{}') as {
    status?: string;
    reason?: string;
    message?: string;
  };
const secretText = async (secret: string, key: string) =>
  Buffer.from(await get(`secret ${secret}`, `{.data.${key.replace('.', '\\.')}}`), 'base64').toString('utf8');

/** Whether the kubeconfig Secret says what the operator issues: its key pair, no other credential. */
async function issuedAsIs(secret: string): Promise<boolean> {
  const value = await secretText(secret, 'value');
  const doc = load(value) as {
    users: { user: Record<string, string> }[];
    clusters: { cluster: Record<string, string> }[];
  };
  const user = doc.users[0]!.user;
  if (Object.keys(user).sort().join() !== 'client-certificate-data,client-key-data') return false;
  if (Object.keys(doc.clusters[0]!.cluster).sort().join() !== 'certificate-authority-data,server') return false;
  const certificate = Buffer.from(user['client-certificate-data']!, 'base64').toString();
  const key = createPrivateKey(Buffer.from(user['client-key-data']!, 'base64').toString());
  return (
    certificate === (await secretText(secret, 'tls.crt')) &&
    new X509Certificate(certificate).publicKey
      .export({ type: 'spki', format: 'der' })
      .equals(createPublicKey(key).export({ type: 'spki', format: 'der' }))
  );
}

const marker = join(tmpdir(), `kok-e2e-tenant-${process.pid}`);
const scratch = mkdtempSync(join(tmpdir(), 'kok-e2e-'));
const run = promisify(execFile);
const kubectlBinary = join(loadConfig().binDirs.kubernetes, 'kubectl');
/** Runs a command with `input` on its stdin; rejects with its stderr. */
function runWithInput(file: string, args: string[], input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, (err, stdout, stderr) =>
      err ? reject(new Error(stderr || err.message)) : resolve(stdout),
    );
    child.stdin?.end(input);
  });
}
let proxy: Server;
let proxyConnections = 0;

beforeAll(async () => {
  rmSync(marker, { force: true });
  proxy = createServer((socket) => {
    proxyConnections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  await apply(cluster('ten'), cluster('tenant'));
  await kubectl(['-n', ns, 'wait', '--for=condition=Ready', 'cluster/ten', 'cluster/tenant', '--timeout=480s']);
}, 600_000);

afterAll(async () => {
  rmSync(marker, { force: true });
  rmSync(scratch, { recursive: true, force: true });
  await new Promise((resolve) => proxy?.close(resolve));
});

describe('a tenant', () => {
  it('cannot make the operator run, read or follow anything through a kubeconfig Secret, and gets the issued one back', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    const address = proxy.address() as { port: number };
    const original = load(await secretText('ten-kubeconfig', 'value')) as {
      users: { name: string; user: Record<string, unknown> }[];
      clusters: { name: string; cluster: Record<string, unknown> }[];
    };
    const edits: [string, (doc: typeof original) => void][] = [
      [
        'a credential plugin',
        (doc) => {
          doc.users[0]!.user = {
            exec: {
              apiVersion: 'client.authentication.k8s.io/v1',
              command: 'sh',
              args: [
                '-c',
                `touch ${marker}; echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"x"}}'`,
              ],
              interactiveMode: 'Never',
            },
          };
        },
      ],
      [
        'a proxy',
        (doc) => {
          doc.clusters[0]!.cluster['proxy-url'] = `http://127.0.0.1:${address.port}`;
        },
      ],
      [
        'a token file',
        (doc) => {
          doc.users[0]!.user = { tokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token' };
        },
      ],
      [
        'a skipped verification',
        (doc) => {
          delete doc.clusters[0]!.cluster['certificate-authority-data'];
          doc.clusters[0]!.cluster['insecure-skip-tls-verify'] = true;
        },
      ],
    ];
    for (const [what, edit] of edits) {
      const doc = structuredClone(original);
      edit(doc);
      const before = await get('secret ten-kubeconfig', '{.metadata.resourceVersion}');
      await kubectl([
        '-n',
        ns,
        'patch',
        'secret',
        'ten-kubeconfig',
        '--type=merge',
        '-p',
        JSON.stringify({ data: { value: Buffer.from(dump(doc)).toString('base64') } }),
      ]);
      await eventually(
        `the kubeconfig issued anew after ${what}`,
        async () => {
          const rv = await get('secret ten-kubeconfig', '{.metadata.resourceVersion}');
          return rv !== before && (await issuedAsIs('ten-kubeconfig')) ? true : undefined;
        },
        60_000,
      );
    }
    // the add-ons pass (the business cluster's client) ran meanwhile, and keeps answering
    await eventually(
      'a business pass after the edits',
      async () => ((await condition('ten', 'AddonsReady')).reason !== 'BusinessClusterUnreachable' ? true : undefined),
      60_000,
    );
    expect(existsSync(marker), 'the credential plugin ran').toBe(false);
    expect(proxyConnections, 'the operator dialled the proxy').toBe(0);
    const events = await kubectl([
      '-n',
      ns,
      'get',
      'events',
      '--field-selector',
      'reason=SecretEdited,involvedObject.name=ten',
      '-o',
      'jsonpath={.items[*].message}',
    ]);
    expect(events).toContain(
      'Secret ten-kubeconfig did not hold what the operator issued (kubeconfig edited): re-issued',
    );
    // "tenant" was never touched by what was done to "ten"
    expect(await issuedAsIs('tenant-kubeconfig')).toBe(true);
    expect((await condition('tenant', 'Ready')).status).toBe('True');
  }, 300_000);

  it('gets an edited key pair of a certificate Secret re-issued', async () => {
    const before = await secretText('ten-front-proxy-client', 'tls.crt');
    const otherKey = await secretText('ten-apiserver-tls', 'tls.key');
    await kubectl([
      '-n',
      ns,
      'patch',
      'secret',
      'ten-front-proxy-client',
      '--type=merge',
      '-p',
      JSON.stringify({ data: { 'tls.key': Buffer.from(otherKey).toString('base64') } }),
    ]);
    await eventually(
      'the pair issued anew',
      async () => ((await secretText('ten-front-proxy-client', 'tls.crt')) !== before ? true : undefined),
      60_000,
    );
    const [certificate, key] = [
      await secretText('ten-front-proxy-client', 'tls.crt'),
      await secretText('ten-front-proxy-client', 'tls.key'),
    ];
    expect(new X509Certificate(certificate).checkPrivateKey(createPrivateKey(key))).toBe(true);
    // a key of its own added by another field manager: an apply would leave it; the Secret is written whole, once
    await kubectl([
      '-n',
      ns,
      'patch',
      'secret',
      'ten-front-proxy-client',
      '--type=merge',
      '-p',
      JSON.stringify({ data: { extra: Buffer.from('mine').toString('base64') } }),
    ]);
    await eventually(
      'the extra key gone',
      async () => ((await get('secret ten-front-proxy-client', '{.data.extra}')) === '' ? true : undefined),
      60_000,
    );
    const settled = await get('secret ten-front-proxy-client', '{.metadata.resourceVersion}');
    await new Promise((r) => setTimeout(r, 12_000));
    expect(
      await get('secret ten-front-proxy-client', '{.metadata.resourceVersion}'),
      'the Secret is written again and again',
    ).toBe(settled);
  }, 120_000);

  it('cannot override a flag that holds the boundary, nor switch the tunnel off, and nothing is built from such a spec', async () => {
    await apply(
      cluster('flags', { controlPlane: { apiServer: { extraArgs: { 'egress-selector-config-file': '/dev/null' } } } }),
      cluster('untunnelled', { tunnel: { enabled: false } }),
    );
    await eventually(
      'flags refused',
      async () => ((await condition('flags', 'Ready')).reason === 'InvalidSpec' ? true : undefined),
      60_000,
    );
    expect((await condition('flags', 'Ready')).message).toBe(
      'spec.controlPlane.apiServer.extraArgs.egress-selector-config-file: --egress-selector-config-file holds the boundary between the business cluster and the meta-cluster; the operator sets it and it cannot be overridden',
    );
    await eventually(
      'tunnel off refused',
      async () => ((await condition('untunnelled', 'Ready')).reason === 'PolicyViolation' ? true : undefined),
      60_000,
    );
    expect((await condition('untunnelled', 'Ready')).message).toMatch(
      /^spec\.tunnel\.enabled: false is not allowed by the operator's policy \(allowTunnelDisabled\)/,
    );
    expect(
      await kubectl([
        '-n',
        ns,
        'get',
        'secrets,pods,services',
        '-l',
        'kubeonkube.io/cluster in (flags,untunnelled)',
        '-o',
        'name',
      ]),
    ).toBe('');
    await kubectl(['-n', ns, 'delete', 'cluster', 'flags', 'untunnelled']);
  });

  it('cannot reach the meta-cluster through its apiserver: a Node or a Service that names a meta-cluster address is dialled only through the tunnel', async () => {
    const { node, ports } = loadConfig();
    const file = join(scratch, 'tenant.kubeconfig');
    writeFileSync(file, await secretText('tenant-kubeconfig', 'value'), { mode: 0o600 });
    const business = async (...args: string[]) =>
      (await run(kubectlBinary, ['--kubeconfig', file, '--request-timeout=20s', ...args])).stdout;
    // a Node that says it lives where the meta-cluster's apiserver is, and a Service whose endpoint is there
    const objects = {
      apiVersion: 'v1',
      kind: 'List',
      items: [
        {
          apiVersion: 'v1',
          kind: 'Node',
          metadata: { name: 'meta-node' },
          status: {
            addresses: [{ type: 'InternalIP', address: node.ip }],
            daemonEndpoints: { kubeletEndpoint: { Port: ports.apiserver } },
          },
        },
        {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: 'meta', namespace: 'default' },
          spec: { ports: [{ name: 'https', port: 443, targetPort: ports.apiserver }] },
        },
        {
          apiVersion: 'discovery.k8s.io/v1',
          kind: 'EndpointSlice',
          metadata: { name: 'meta-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'meta' } },
          addressType: 'IPv4',
          endpoints: [{ addresses: [node.ip] }],
          ports: [{ name: 'https', port: ports.apiserver, protocol: 'TCP' }],
        },
        // the apiserver's Service proxy reads the Endpoints of a Service
        {
          apiVersion: 'v1',
          kind: 'Endpoints',
          metadata: { name: 'meta', namespace: 'default' },
          subsets: [{ addresses: [{ ip: node.ip }], ports: [{ name: 'https', port: ports.apiserver }] }],
        },
      ],
    };
    for (const obj of objects.items)
      await runWithInput(kubectlBinary, ['--kubeconfig', file, 'create', '-f', '-'], JSON.stringify(obj));
    await business(
      'patch',
      'node',
      'meta-node',
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status: objects.items[0]!.status }),
    );
    expect(await business('-n', 'default', 'get', 'service,endpointslice', '-o', 'name')).toContain('service/meta');
    // node proxies are dialled through the tunnel, whose agents are the business cluster's own (none here)
    for (const path of [
      `/api/v1/nodes/https:meta-node:${ports.apiserver}/proxy/version`,
      '/api/v1/nodes/meta-node/proxy/healthz',
    ]) {
      const answer = await business('get', '--raw', path).then(
        (out) => `answered: ${out}`,
        (err: Error) => err.message,
      );
      expect(answer, path).not.toMatch(/^answered/);
      expect(answer, path).toContain(
        `no tunnel agent of the business cluster is connected to this server; cannot reach ${node.ip}:${ports.apiserver}`,
      );
    }
    // a Service whose endpoints were set by hand: this apiserver does not proxy to them at all
    // ("no endpoints available"); were it to, the dial would go through the tunnel like the above
    const path = '/api/v1/namespaces/default/services/https:meta:https/proxy/version';
    const answer = await business('get', '--raw', path).then(
      (out) => `answered: ${out}`,
      (err: Error) => err.message,
    );
    expect(answer, path).not.toMatch(/^answered/);
    expect(answer, path).not.toContain('gitVersion');
    await business('delete', 'node', 'meta-node');
    await business('-n', 'default', 'delete', 'service', 'meta');
  });

  it('runs etcd without a credential of the meta-cluster, and fences every Pod of a Cluster in to its own control plane', async () => {
    expect(await get('pod ten-etcd-0', '{.spec.automountServiceAccountToken}')).toBe('false');
    expect(await get('pod ten-etcd-0', '{.spec.containers[0].volumeMounts[*].mountPath}')).not.toContain(
      'serviceaccount',
    );
    type Policy = {
      spec: {
        podSelector: unknown;
        policyTypes: string[];
        egress: { to?: { podSelector?: { matchLabels: Record<string, string> } }[]; ports: { port: number }[] }[];
      };
    };
    const egress = async () =>
      JSON.parse(await kubectl(['-n', ns, 'get', 'networkpolicy', 'ten-egress', '-o', 'json'])) as Policy;
    const policy = await egress();
    expect(policy.spec.podSelector).toEqual({ matchLabels: { 'kubeonkube.io/cluster': 'ten' } });
    expect(policy.spec.policyTypes).toEqual(['Egress']);
    expect(
      policy.spec.egress.map((r) => {
        const m = r.to?.[0]?.podSelector?.matchLabels ?? {};
        return `${m['app.kubernetes.io/component'] ?? m['k8s-app'] ?? 'anywhere'}:${r.ports.map((p) => p.port).join(',')}`;
      }),
    ).toEqual(['etcd:2379,2380', 'kube-apiserver:6443', 'kube-dns:53,53']);
    // its own, never the other Cluster's, and back when deleted by hand
    expect(JSON.stringify(policy)).not.toContain('"tenant"');
    await kubectl(['-n', ns, 'delete', 'networkpolicy', 'ten-egress']);
    await eventually(
      'ten-egress back',
      async () =>
        (await kubectl(['-n', ns, 'get', 'networkpolicy', 'ten-egress', '--ignore-not-found', '-o', 'name'])) !== '' ||
        undefined,
      30_000,
    );
  });

  it('cannot stop the operator with an alias bomb, and the Cluster beside it goes on being served', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    const rss = () =>
      Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${operator().child.pid}/status`, 'utf8'))?.[1]) * 1024;
    const rssBefore = rss();
    const bomb = [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata: {name: bomb}',
      'data:',
      '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
      ...'bcdefghi'.split('').map((c, i) => `  ${c}: &${c} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(',')}]`),
    ].join('\n');
    expect(bomb.length).toBeLessThan(600);
    await apply({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'bomb', namespace: ns },
      data: { 'template.yaml.hbs': bomb },
    });
    await kubectl([
      '-n',
      ns,
      'patch',
      'cluster',
      'ten',
      '--type=merge',
      '-p',
      JSON.stringify({
        spec: {
          addons: [
            { name: 'kube-proxy' },
            { name: 'coredns' },
            { name: 'bomb', template: { configMapRef: { name: 'bomb' } } },
          ],
        },
      }),
    ]);
    await eventually(
      'the bomb refused',
      async () => ((await condition('ten', 'AddonsReady')).reason === 'AddonTemplateInvalid' ? true : undefined),
      90_000,
    );
    expect((await condition('ten', 'AddonsReady')).message).toContain(
      "once its YAML aliases are expanded (the bound on a template's output)",
    );
    // the other Cluster takes a change as usual meanwhile: a new user's kubeconfig
    await kubectl([
      '-n',
      ns,
      'patch',
      'cluster',
      'tenant',
      '--type=merge',
      '-p',
      JSON.stringify({ spec: { users: [{ name: 'dave' }] } }),
    ]);
    await eventually(
      "dave's kubeconfig",
      async () =>
        (await kubectl([
          '-n',
          ns,
          'get',
          'secret',
          'tenant-user-dave-kubeconfig',
          '--ignore-not-found',
          '-o',
          'name',
        ])) !== '' || undefined,
      30_000,
    );
    expect(operator().child.exitCode).toBe(null);
    expect(rss(), `RSS ${rss()} against ${rssBefore} before the bomb`).toBeLessThan(2 * rssBefore);
  }, 300_000);

  it('keeps the data of a deleted Cluster (deletionPolicy Retain, the default), and a new Cluster of its name never takes it over', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    const uid = await get('cluster ten', '{.metadata.uid}');
    const volume = await get('pvc ten-etcd-0', '{.spec.volumeName}');
    // foreground: the garbage collector deletes every dependent before the Cluster goes
    await kubectl(['-n', ns, 'delete', 'cluster', 'ten', '--cascade=foreground', '--wait=true', '--timeout=120s']);
    await eventually(
      "the Cluster's objects gone",
      async () =>
        (
          await kubectl([
            '-n',
            ns,
            'get',
            'pods,services,deployments,secrets',
            '-l',
            'kubeonkube.io/cluster=ten',
            '-o',
            'name',
          ])
        ).trim() === ''
          ? true
          : undefined,
      120_000,
    );
    expect(
      await get(
        'pvc ten-etcd-0',
        '{.spec.volumeName}|{.metadata.annotations.kubeonkube\\.io/owner-uid}|{.metadata.deletionTimestamp}',
      ),
    ).toBe(`${volume}|${uid}|`);
    await apply(cluster('ten'));
    await eventually(
      'NameConflict',
      async () => ((await condition('ten', 'Ready')).reason === 'NameConflict' ? true : undefined),
      60_000,
    );
    expect((await condition('ten', 'Ready')).message).toContain(
      `PersistentVolumeClaim ten-etcd-0 already exists and is kept from a Cluster deleted before (UID ${uid}, deletionPolicy Retain)`,
    );
    expect((await condition('tenant', 'Ready')).status).toBe('True');
  }, 300_000);
});
