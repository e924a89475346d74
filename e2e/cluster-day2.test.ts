// Day 2 of a minimal Cluster, on real components: the names of other Clusters, extra users and
// their groups, hand edits, changes the operator refuses, a removed user, the endpoint by Service type, and finally the loss of the
// only etcd member's data. Each case fails on an operator that adopts, loops, half-applies or
// loses data silently.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it, onTestFailed } from 'vitest';
import { loadConfig } from '../scripts/testbed/config.ts';
import { apply, eventually, kubectl } from './kubectl.ts';
import { businessWingsAnswered } from './business-cluster.ts';
import { operatorLogTail, operatorTestBed, settledWrites, type OperatorProcess } from './operator-process.ts';

const run = promisify(execFile);
const { ns, current } = operatorTestBed('e2e-day2', 18060);
const operator = (): OperatorProcess => current.operator!;
const scratch = mkdtempSync(join(tmpdir(), 'kok-e2e-'));
const kubectlBinary = join(loadConfig().binDirs.kubernetes, 'kubectl');
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const storage = { claimTemplate: { resources: { requests: { storage: '256Mi' } } } };
const cluster = (name: string, spec: object = {}) => ({
  apiVersion: 'kubeonkube.io/v1alpha1',
  kind: 'Cluster',
  metadata: { name, namespace: ns },
  spec: { version: 'v1.34.4', mode: 'minimal', etcd: { storage }, ...spec },
});
const get = (what: string, path: string) => kubectl(['-n', ns, 'get', ...what.split(' '), '-o', `jsonpath=${path}`]);
/** Ready for the spec as it is now, not still Ready from before the last change was seen. */
async function applied(c: string): Promise<void> {
  const generation = await get(`cluster ${c}`, '{.metadata.generation}');
  await kubectl([
    '-n',
    ns,
    'wait',
    `cluster/${c}`,
    `--for=jsonpath={.status.observedGeneration}=${generation}`,
    '--timeout=60s',
  ]);
  await kubectl(['-n', ns, 'wait', '--for=condition=Ready', `cluster/${c}`, '--timeout=240s']);
}
const condition = (c: string, type: string, field = 'status') =>
  get(`cluster ${c}`, `{.status.conditions[?(@.type=="${type}")].${field}}`);

async function kubeconfigOf(secret: string): Promise<string> {
  const file = join(scratch, secret);
  writeFileSync(file, Buffer.from(await get(`secret ${secret}`, '{.data.value}'), 'base64'), { mode: 0o600 });
  return file;
}
const business = async (kubeconfig: string, ...args: string[]) =>
  (await run(kubectlBinary, ['--kubeconfig', kubeconfig, '--request-timeout=5s', ...args])).stdout;

describe('a Cluster on day 2', () => {
  it("cannot be given a name whose objects could be another Cluster's", async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    await kubectl(
      ['-n', ns, 'apply', '-f', '-'],
      JSON.stringify(cluster('x', { users: [{ name: 'bob', groups: ['system:masters'] }] })),
    );
    for (const name of ['x-etcd', 'x-controller-manager', 'x-user-bob']) {
      await expect(kubectl(['-n', ns, 'apply', '-f', '-'], JSON.stringify(cluster(name)))).rejects.toThrow(
        /metadata.name must not end in -etcd/,
      );
    }
    await kubectl(['-n', ns, 'wait', '--for=condition=Ready', 'cluster/x', '--timeout=480s']);
    // every Secret of the namespace belongs to x and x alone
    const owners = JSON.parse(
      await kubectl(['-n', ns, 'get', 'secrets', '-l', 'kubeonkube.io/cluster', '-o', 'json']),
    ) as { items: { metadata: { name: string; ownerReferences: { name: string }[] } }[] };
    expect(owners.items.length).toBeGreaterThan(10);
    for (const s of owners.items)
      expect(
        s.metadata.ownerReferences.map((o) => o.name),
        s.metadata.name,
      ).toEqual(['x']);
  });

  it('never takes over an object of its name that it does not own, and says which', async () => {
    // made by hand, labelled like the operator's: in its cache, yet not its own
    await apply({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'y-ca', namespace: ns, labels: { 'kubeonkube.io/cluster': 'y' } },
      stringData: { 'tls.crt': 'mine' },
    });
    // made by hand without any label: not even in its cache
    await apply({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'z-apiserver', namespace: ns },
      spec: { ports: [{ port: 1234 }] },
    });
    await apply(cluster('y'), cluster('z'));
    await kubectl([
      '-n',
      ns,
      'wait',
      'cluster/y',
      '--for=jsonpath={.status.conditions[?(@.type=="Ready")].reason}=NameConflict',
      '--timeout=60s',
    ]);
    expect(await condition('y', 'Ready', 'message')).toMatch(
      /^Secret y-ca already exists and is owned by nobody, not by this Cluster/,
    );
    await kubectl([
      '-n',
      ns,
      'wait',
      'cluster/z',
      '--for=jsonpath={.status.conditions[?(@.type=="Ready")].reason}=NameConflict',
      '--timeout=60s',
    ]);
    expect(await condition('z', 'Ready', 'message')).toMatch(
      /^Service z-apiserver already exists and is owned by nobody/,
    );
    expect(Buffer.from(await get('secret y-ca', '{.data.tls\\.crt}'), 'base64').toString()).toBe('mine');
    expect(await get('service z-apiserver', '{.spec.ports[0].port}')).toBe('1234');
    expect(await get('service z-apiserver', '{.metadata.ownerReferences}')).toBe('');
    await kubectl(['-n', ns, 'delete', 'cluster', 'y', 'z']);
  });

  it("refuses a hostPath data volume the operator's policy does not allow, building nothing", async () => {
    await apply(
      cluster('hosted', { etcd: { storage: { volumeSource: { hostPath: { path: '/var/lib/etcd-hosted' } } } } }),
    );
    await kubectl([
      '-n',
      ns,
      'wait',
      'cluster/hosted',
      '--for=jsonpath={.status.conditions[?(@.type=="Ready")].reason}=PolicyViolation',
      '--timeout=60s',
    ]);
    expect(
      await kubectl(['-n', ns, 'get', 'secrets,pods,services', '-l', 'kubeonkube.io/cluster=hosted', '-o', 'name']),
    ).toBe('');
    await kubectl(['-n', ns, 'delete', 'cluster', 'hosted']);
  });

  it('keeps the etcd members behind a NetworkPolicy of their own', async () => {
    const policy = JSON.parse(await kubectl(['-n', ns, 'get', 'networkpolicy', 'x-etcd', '-o', 'json'])) as {
      spec: { podSelector: unknown; ingress: { from: { podSelector: { matchLabels: Record<string, string> } }[] }[] };
    };
    expect(policy.spec.podSelector).toEqual({
      matchLabels: { 'kubeonkube.io/cluster': 'x', 'app.kubernetes.io/component': 'etcd' },
    });
    expect(policy.spec.ingress.map((r) => r.from[0]?.podSelector.matchLabels['app.kubernetes.io/component'])).toEqual([
      'kube-apiserver',
      'etcd',
    ]);
  });

  it('gives each extra user the groups the spec names: forbidden without rights in the business cluster, re-issued when the groups change', async () => {
    onTestFailed(() => console.error(`operator log:\n${operatorLogTail(operator())}`));
    await kubectl([
      '-n',
      ns,
      'patch',
      'cluster',
      'x',
      '--type=merge',
      '-p',
      JSON.stringify({
        spec: {
          users: [
            { name: 'bob', groups: ['system:masters'] },
            { name: 'carol', groups: ['viewers'], validity: '800h' },
          ],
        },
      }),
    ]);
    await eventually(
      "carol's kubeconfig",
      async () =>
        (await kubectl(['-n', ns, 'get', 'secret', 'x-user-carol-kubeconfig', '--ignore-not-found', '-o', 'name'])) !==
          '' || undefined,
      30_000,
    );
    const certificate = async () =>
      new X509Certificate(Buffer.from(await get('secret x-user-carol-kubeconfig', '{.data.tls\\.crt}'), 'base64'));
    const first = await certificate();
    expect(first.subject).toBe('O=viewers\nCN=carol');
    // the user's own validity (issued 5 minutes back against clock skew)
    expect(first.validToDate.getTime() - first.validFromDate.getTime()).toBe(800 * 3600_000 + 5 * 60_000);
    const [bob, carol] = [await kubeconfigOf('x-user-bob-kubeconfig'), await kubeconfigOf('x-user-carol-kubeconfig')];
    await expect(business(carol, 'get', 'pods', '-n', 'default')).rejects.toThrow(/forbidden.*"carol"/);
    await business(bob, 'create', 'clusterrolebinding', 'viewers-view', '--clusterrole=view', '--group=viewers');
    await eventually('carol may read', () => business(carol, 'get', 'pods', '-n', 'default'), 30_000);
    await expect(business(carol, 'create', 'configmap', 'nope', '-n', 'default')).rejects.toThrow(/forbidden/);

    await kubectl([
      '-n',
      ns,
      'patch',
      'cluster',
      'x',
      '--type=merge',
      '-p',
      JSON.stringify({
        spec: {
          users: [
            { name: 'bob', groups: ['system:masters'] },
            { name: 'carol', groups: ['auditors'], validity: '800h' },
          ],
        },
      }),
    ]);
    const second = await eventually(
      'carol re-issued in group auditors',
      async () => {
        const c = await certificate();
        return c.subject === 'O=auditors\nCN=carol' ? c : undefined;
      },
      30_000,
    );
    expect(second.serialNumber).not.toBe(first.serialNumber);
    await expect(
      business(await kubeconfigOf('x-user-carol-kubeconfig'), 'get', 'pods', '-n', 'default'),
    ).rejects.toThrow(/forbidden.*"carol"/);
    await applied('x');
  });

  it("undoes a hand edit of what it owns within a resync, and deletes a removed user's kubeconfig", async () => {
    await kubectl(['-n', ns, 'scale', 'deployment', 'x-apiserver', '--replicas=0']);
    await kubectl(['-n', ns, 'label', 'service', 'x-etcd', 'app.kubernetes.io/part-of-']);
    // the operator's resync is 10 s here
    await eventually(
      'x-apiserver scaled back',
      async () => (await get('deployment x-apiserver', '{.spec.replicas}')) === '1' || undefined,
      20_000,
    );
    await eventually(
      'the label back',
      async () =>
        (await get('service x-etcd', '{.metadata.labels.app\\.kubernetes\\.io/part-of}')) === 'kubeonkube' || undefined,
      20_000,
    );
    // Ready may still be the one from before the scale-down: the new apiserver Pod is waited for first
    await kubectl(['-n', ns, 'rollout', 'status', 'deployment/x-apiserver', '--timeout=120s']);
    await kubectl(['-n', ns, 'wait', '--for=condition=Ready', 'cluster/x', '--timeout=120s']);

    const bob = await kubeconfigOf('x-user-bob-kubeconfig');
    // Ready says the Pod is; the Service answers once the node's kube-proxy has its new address
    expect(
      await eventually(
        'bob answered through the Service',
        () => business(bob, 'auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}').catch(() => undefined),
        30_000,
      ),
    ).toBe('bob');
    await kubectl(['-n', ns, 'patch', 'cluster', 'x', '--type=json', '-p', '[{"op":"remove","path":"/spec/users"}]']);
    await eventually(
      "bob's kubeconfig deleted",
      async () =>
        (await kubectl(['-n', ns, 'get', 'secret', 'x-user-bob-kubeconfig', '--ignore-not-found', '-o', 'name'])) ===
          '' || undefined,
      30_000,
    );
  });

  it('refuses a change of the etcd minor version and leaves the running cluster as it is', async () => {
    const admin = await kubeconfigOf('x-kubeconfig');
    for (let i = 0; i < 20; i++) await business(admin, 'create', 'configmap', `keep-${i}`, `--from-literal=i=${i}`);
    const generation = Number(await get('cluster x', '{.metadata.generation}'));
    await kubectl(['-n', ns, 'patch', 'cluster', 'x', '--type=merge', '-p', '{"spec":{"etcd":{"version":"v3.5.21"}}}']);
    await kubectl([
      '-n',
      ns,
      'wait',
      'cluster/x',
      '--for=jsonpath={.status.conditions[?(@.type=="SpecApplied")].reason}=UnsupportedChange',
      '--timeout=60s',
    ]);
    expect(await condition('x', 'SpecApplied', 'message')).toMatch(
      /^spec.etcd.version: changing v3.6.16 to v3.5.21 changes the minor version of etcd/,
    );
    // two resyncs later: nothing was rolled, and the cluster still serves its data
    await new Promise((r) => setTimeout(r, 21_000));
    expect(
      await kubectl([
        '-n',
        ns,
        'get',
        'pods,pvc',
        '-l',
        'kubeonkube.io/cluster=x,app.kubernetes.io/component=etcd',
        '-o',
        'name',
      ]),
    ).toBe('pod/x-etcd-0\npersistentvolumeclaim/x-etcd-0\n');
    expect(await get('pod x-etcd-0', '{.spec.containers[0].image}')).toMatch(/etcd:3\.6\.16-0$/);
    expect(await condition('x', 'Ready')).toBe('True');
    expect(Number(await get('cluster x', '{.status.observedGeneration}'))).toBe(generation);
    expect(
      (await business(admin, 'get', 'configmaps', '-o', 'name'))
        .split('\n')
        .filter((n) => n.startsWith('configmap/keep-')),
    ).toHaveLength(20);
    // setting it back clears the refusal
    await kubectl(['-n', ns, 'patch', 'cluster', 'x', '--type=merge', '-p', '{"spec":{"etcd":{"version":"v3.6.16"}}}']);
    await kubectl([
      '-n',
      ns,
      'wait',
      'cluster/x',
      '--for=jsonpath={.status.conditions[?(@.type=="SpecApplied")].status}=True',
      '--timeout=60s',
    ]);
  });

  it('puts the node address and node port into the kubeconfig of a NodePort Cluster, and it works from outside', async () => {
    await kubectl([
      '-n',
      ns,
      'patch',
      'cluster',
      'x',
      '--type=merge',
      '-p',
      '{"spec":{"endpoint":{"service":{"type":"NodePort"}}}}',
    ]);
    const nodePort = await eventually(
      'a node port',
      async () => (await get('service x-apiserver', '{.spec.ports[0].nodePort}')) || undefined,
      30_000,
    );
    const nodeIP = await kubectl([
      'get',
      'nodes',
      '-o',
      'jsonpath={.items[0].status.addresses[?(@.type=="InternalIP")].address}',
    ]);
    const endpoint = `https://${nodeIP}:${nodePort}`;
    await eventually(
      'the endpoint in status',
      async () => (await get('cluster x', '{.status.endpoint}')) === endpoint || undefined,
      60_000,
    );
    await eventually(
      'the admin kubeconfig',
      async () => {
        const file = await kubeconfigOf('x-kubeconfig');
        if ((await business(file, 'config', 'view', '-o', 'jsonpath={.clusters[0].cluster.server}')) !== endpoint)
          return undefined;
        // served with a certificate that names the node address: no TLS error, through kube-proxy's node port
        return (await business(file, 'get', '--raw', '/readyz')) === 'ok' || undefined;
      },
      180_000,
    );
  });

  it('points a LoadBalancer Cluster at its ingress once the load balancer has one', async () => {
    await kubectl([
      '-n',
      ns,
      'patch',
      'cluster',
      'x',
      '--type=merge',
      '-p',
      '{"spec":{"endpoint":{"service":{"type":"LoadBalancer"}}}}',
    ]);
    await eventually(
      'type LoadBalancer',
      async () => (await get('service x-apiserver', '{.spec.type}')) === 'LoadBalancer' || undefined,
      30_000,
    );
    // the test bed has no load-balancer controller: play its part
    await kubectl([
      '-n',
      ns,
      'patch',
      'service',
      'x-apiserver',
      '--subresource=status',
      '--type=merge',
      '-p',
      '{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.10"}]}}}',
    ]);
    await eventually(
      'the endpoint in status',
      async () => (await get('cluster x', '{.status.endpoint}')) === 'https://192.0.2.10:6443' || undefined,
      60_000,
    );
    await eventually(
      'the serving certificate names it',
      async () => {
        const pem = Buffer.from(await get('secret x-apiserver-tls', '{.data.tls\\.crt}'), 'base64');
        return new X509Certificate(pem).subjectAltName?.split(', ').includes('IP Address:192.0.2.10') || undefined;
      },
      60_000,
    );
    const file = await kubeconfigOf('x-kubeconfig');
    expect(await business(file, 'config', 'view', '-o', 'jsonpath={.clusters[0].cluster.server}')).toBe(
      'https://192.0.2.10:6443',
    );
    await kubectl([
      '-n',
      ns,
      'patch',
      'cluster',
      'x',
      '--type=merge',
      '-p',
      '{"spec":{"endpoint":{"service":{"type":"ClusterIP"}}}}',
    ]);
    await applied('x');
  });

  it('reaches zero writes in steady state after all of this', async () => {
    // the ClusterIP change rolled the apiserver (a new serving certificate): measured once that is done
    // the business wing too: after an etcd or apiserver restart it may wait out a request or two
    await businessWingsAnswered(ns);
    const before = await settledWrites(operator(), 5000, 120_000, () => operator().writesByKind());
    // past the wing's 30 s recheck of each business cluster
    await new Promise((r) => setTimeout(r, 35_000));
    expect(await operator().writesByKind()).toEqual(before);
  }, 300_000);

  it("loses its only etcd member's claim: DataLost, not an empty etcd, and no answer from a stale cache", async () => {
    const admin = await kubeconfigOf('x-kubeconfig');
    expect(
      (await business(admin, 'get', 'configmaps', '-o', 'name'))
        .split('\n')
        .filter((n) => n.startsWith('configmap/keep-')),
    ).toHaveLength(20);
    await kubectl(['-n', ns, 'delete', 'pvc', 'x-etcd-0', '--wait=false']);
    await kubectl(['-n', ns, 'delete', 'pod', 'x-etcd-0', '--wait=true', '--timeout=120s']);
    // from the moment the data is gone, every request to the business apiserver must fail: poll every 100 ms
    let answered = 0;
    let failed = 0;
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const started = Date.now();
        await run(kubectlBinary, [
          '--kubeconfig',
          admin,
          '--request-timeout=2s',
          'get',
          'configmaps',
          '-o',
          'name',
        ]).then(
          () => {
            answered++;
          },
          () => {
            failed++;
          },
        );
        await new Promise((r) => setTimeout(r, Math.max(0, 100 - (Date.now() - started))));
      }
    })();
    try {
      await kubectl([
        '-n',
        ns,
        'wait',
        'cluster/x',
        '--for=jsonpath={.status.conditions[?(@.type=="Ready")].reason}=DataLost',
        '--timeout=120s',
      ]);
      expect(await condition('x', 'EtcdReady', 'reason')).toBe('DataLost');
      expect(await condition('x', 'EtcdReady', 'message')).toMatch(
        /the claim x-etcd-0 that held the data of member x-etcd-0 was deleted/,
      );
      await eventually(
        'the apiserver scaled to 0',
        async () =>
          ((await get('deployment x-apiserver', '{.spec.replicas}')) === '0' &&
            (await kubectl([
              '-n',
              ns,
              'get',
              'pods',
              '-l',
              'kubeonkube.io/cluster=x,app.kubernetes.io/component=kube-apiserver',
              '-o',
              'name',
            ])) === '') ||
          undefined,
        120_000,
      );
      // nothing was started empty: no new claim, no new member pod, two resyncs later
      await new Promise((r) => setTimeout(r, 21_000));
      expect(
        await kubectl([
          '-n',
          ns,
          'get',
          'pods,pvc',
          '-l',
          'kubeonkube.io/cluster=x,app.kubernetes.io/component=etcd',
          '-o',
          'name',
        ]),
      ).toBe('');
    } finally {
      polling = false;
      await poller;
    }
    console.log(
      `requests to the business apiserver after the data was lost: ${answered + failed}, answered: ${answered}, failed: ${failed}`,
    );
    expect(failed).toBeGreaterThan(50);
    expect(answered).toBe(0);
    expect(await get('cluster x', '{.status.phase}')).toBe('Degraded');
  });
});
