// The Cluster controller, built as main.ts builds it, against the test bed's real apiserver (no
// node: Pods stay Pending, so etcd never answers). What it makes, what it says, and what it does
// on day 2: no writes in steady state, drift repaired, garbage collected, a refused change left
// alone, and two Clusters whose names are prefixes of each other kept apart.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type KubernetesObject,
  type V1Secret,
} from '@kubernetes/client-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig, repoRoot } from '../../../scripts/testbed/config.ts';
import { Writer } from '../../kube/apply.ts';
import { defaultPolicy } from './policy.ts';
import { clusterController, type ClusterController } from './controller.ts';
import type { ClusterObject } from './context.ts';

const run = promisify(execFile);
const namespace = `cc-${Math.random().toString(36).slice(2, 8)}`;
const group = { group: 'kubeonkube.io', version: 'v1alpha1', plural: 'clusters', namespace };

let kc: KubeConfig;
let core: CoreV1Api;
let custom: CustomObjectsApi;
let writer: Writer;
let clusters: ClusterController;

const spec = (extra: object = {}) => ({
  version: 'v1.34.4',
  mode: 'minimal',
  etcd: { storage: { volumeSource: { emptyDir: {} } } },
  users: [{ name: 'alice' }],
  ...extra,
});

async function create(name: string, body: object): Promise<void> {
  await custom.createNamespacedCustomObject({
    ...group,
    body: { apiVersion: 'kubeonkube.io/v1alpha1', kind: 'Cluster', metadata: { name }, spec: body },
  });
}

async function patchSpec(name: string, patch: object): Promise<void> {
  await custom.patchNamespacedCustomObject(
    { ...group, name, body: { spec: patch } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}

const read = async (name: string) => (await custom.getNamespacedCustomObject({ ...group, name })) as ClusterObject;

async function until<T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < end) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

const condition = (c: ClusterObject, type: string) => c.status?.conditions?.find((x) => x.type === type);
const secretNames = async () =>
  (await core.listNamespacedSecret({ namespace })).items.map((s) => s.metadata?.name ?? '');
const writes = () => writer.countsByKind().reduce((sum, c) => sum + c.value, 0);

/** Waits until three forced passes over every Cluster write nothing (90 s at most). */
async function settle(): Promise<void> {
  await until(
    'no writes over three passes of every Cluster',
    async () => {
      const before = writes();
      for (let i = 0; i < 3; i++) {
        for (const key of clusters.caches.keys()) clusters.controller.enqueue(key);
        await new Promise((r) => setTimeout(r, 700));
      }
      return writes() === before;
    },
    90_000,
  );
}

beforeAll(async () => {
  const kubeconfig = inject('metaCluster').kubeconfig;
  const kubectl = join(loadConfig().binDirs.kubernetes, 'kubectl');
  await run(kubectl, [
    '--kubeconfig',
    kubeconfig,
    'apply',
    '--server-side',
    '-f',
    join(repoRoot, 'crds/kubeonkube.io_clusters.yaml'),
  ]);
  await run(kubectl, [
    '--kubeconfig',
    kubeconfig,
    'wait',
    '--for=condition=Established',
    'crd/clusters.kubeonkube.io',
    '--timeout=60s',
  ]);
  kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  core = kc.makeApiClient(CoreV1Api);
  custom = kc.makeApiClient(CustomObjectsApi);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  writer = new Writer(kc, () => true);
  clusters = clusterController({
    kc,
    writer,
    namespace,
    workers: 2,
    businessWorkers: 2,
    passDeadlineMs: 60_000,
    log: pino({ level: process.env.LOG_LEVEL ?? 'warn' }),
    settings: {
      metaDnsDomain: 'cluster.local',
      policy: defaultPolicy,
      etcdReplaceUnhealthyAfterMs: 300_000,
      operatorImage: 'kubeonkube:test',
    },
  });
  await clusters.caches.synced;
  clusters.controller.start(300_000);
  clusters.business.start(300_000);
});

afterAll(async () => {
  await clusters?.controller.shutdown(10_000);
  await clusters?.business.shutdown(10_000);
  await clusters?.stop();
  await core?.deleteNamespace({ name: namespace }).catch(() => undefined);
});

describe('the Cluster controller against a real apiserver', () => {
  it('makes the objects of a new Cluster and says what it waits for', async () => {
    await create('db', spec());
    const cluster = await until('status with conditions', async () => {
      const c = await read('db');
      return condition(c, 'EtcdReady') && condition(c, 'CertificatesReady')?.status === 'True' ? c : undefined;
    });
    expect(cluster.status).toMatchObject({
      phase: 'Provisioning',
      kubeconfigSecretRef: { name: 'db-kubeconfig', key: 'value' },
    });
    expect(condition(cluster, 'Ready')).toMatchObject({ status: 'False' });
    expect(condition(cluster, 'EtcdReady')?.status).not.toBe('True');
    // the business wing, in its own queue, reported what it waits for
    const reported = await until("the business wing's conditions", async () => {
      const c = await read('db');
      return condition(c, 'AddonsReady') && condition(c, 'TunnelConnected') ? c : undefined;
    });
    expect(condition(reported, 'AddonsReady')).toMatchObject({ status: 'Unknown', reason: 'WaitingForEtcd' });
    expect(condition(reported, 'TunnelConnected')).toMatchObject({ status: 'Unknown', reason: 'WaitingForEtcd' });
    const secrets = await secretNames();
    for (const name of [
      'db-ca',
      'db-etcd-ca',
      'db-front-proxy-ca',
      'db-sa',
      'db-kubeconfig',
      'db-user-alice-kubeconfig',
      'db-join',
    ])
      expect(secrets).toContain(name);
    const services = (await core.listNamespacedService({ namespace })).items.map((s) => s.metadata?.name);
    expect(services).toEqual(expect.arrayContaining(['db-apiserver', 'db-etcd']));
    const pod = await core.readNamespacedPod({ namespace, name: 'db-etcd-0' });
    expect(pod.metadata?.ownerReferences?.[0]).toMatchObject({
      kind: 'Cluster',
      name: 'db',
      uid: cluster.metadata?.uid,
    });
  });

  it('reaches a steady state that writes nothing', async () => {
    await settle();
  });

  it('repairs an object edited or deleted by hand, and nothing else', async () => {
    await settle();
    const before = writes();
    await core.patchNamespacedSecret(
      { namespace, name: 'db-user-alice-kubeconfig', body: { data: { extra: Buffer.from('x').toString('base64') } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await core.deleteNamespacedService({ namespace, name: 'db-etcd' });
    await until('the Secret restored', async () => {
      const s: V1Secret = await core.readNamespacedSecret({ namespace, name: 'db-user-alice-kubeconfig' });
      return s.data?.extra === undefined;
    });
    await until(
      'the Service made again',
      async () => (await core.readNamespacedService({ namespace, name: 'db-etcd' })).metadata?.uid,
    );
    await settle();
    // the repair is a few writes (the Secret, the Service, perhaps an event and a status), not a rewrite of everything
    expect(writes() - before).toBeLessThan(10);
  });

  it('deletes what the spec no longer asks for, and only that', async () => {
    await patchSpec('db', { users: [] });
    await until('the user kubeconfig deleted', async () => !(await secretNames()).includes('db-user-alice-kubeconfig'));
    expect(await secretNames()).toEqual(expect.arrayContaining(['db-ca', 'db-kubeconfig']));
    const c = await until('observedGeneration caught up', async () => {
      const x = await read('db');
      return x.status?.observedGeneration === x.metadata?.generation ? x : undefined;
    });
    expect(condition(c, 'SpecApplied')?.status).toBe('True');
    await settle();
  });

  it('keeps two Clusters apart whose names are prefixes of each other', async () => {
    await create('db-a', spec({ users: [{ name: 'alice' }] }));
    await until('db-a has its objects', async () => (await secretNames()).includes('db-a-user-alice-kubeconfig'));
    await settle();
    const owners = async () => {
      const objects: KubernetesObject[] = [
        ...(await core.listNamespacedSecret({ namespace })).items,
        ...(await core.listNamespacedService({ namespace })).items,
      ];
      return new Map(objects.map((o) => [o.metadata?.name ?? '', o.metadata?.labels?.['kubeonkube.io/cluster']]));
    };
    const all = await owners();
    for (const [name, owner] of all) {
      if (owner === undefined) continue;
      // each object belongs to the Cluster whose name it starts with, the longest one
      expect(owner, name).toBe(name.startsWith('db-a-') ? 'db-a' : 'db');
    }
    // removing db-a's user removes db-a's Secret only; db keeps every object
    const dbObjects = [...all].filter(([, o]) => o === 'db').map(([n]) => n);
    await patchSpec('db-a', { users: [] });
    await until(
      "db-a's user kubeconfig deleted",
      async () => !(await secretNames()).includes('db-a-user-alice-kubeconfig'),
    );
    await settle();
    const after = await owners();
    for (const name of dbObjects) expect(after.get(name), name).toBe('db');
  });

  it('refuses a spec the policy forbids, building nothing from it', async () => {
    await create('forbidden', { ...spec(), etcd: { storage: { volumeSource: { hostPath: { path: '/var/lib/x' } } } } });
    const c = await until('a refusal', async () => {
      const x = await read('forbidden');
      return condition(x, 'Ready')?.reason === 'PolicyViolation' ? x : undefined;
    });
    expect(condition(c, 'Ready')?.message).toContain('hostPath');
    expect((await secretNames()).filter((n) => n.startsWith('forbidden-'))).toEqual([]);
    await settle();
  });

  it('leaves a paused Cluster alone', async () => {
    await patchSpec('db', { paused: true });
    await until('the pause seen', () =>
      Promise.resolve(
        clusters.caches.primary.get('db', namespace) &&
          (clusters.caches.primary.get('db', namespace) as ClusterObject).spec.paused,
      ),
    );
    await core.deleteNamespacedService({ namespace, name: 'db-etcd' });
    await new Promise((r) => setTimeout(r, 3000));
    await expect(core.readNamespacedService({ namespace, name: 'db-etcd' })).rejects.toMatchObject({ code: 404 });
    await patchSpec('db', { paused: false });
    await until(
      'the Service made again once unpaused',
      async () => (await core.readNamespacedService({ namespace, name: 'db-etcd' })).metadata?.uid,
    );
  });

  it('stops at an object of a wanted name that is not its own, naming it, and takes nothing over', async () => {
    // a tenant's Secret of a name the Cluster would use, made before it
    await core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'nc-sa' }, stringData: { 'tls.key': 'mine' } },
    });
    await create('nc', spec());
    const c = await until('a name conflict', async () => {
      const x = await read('nc');
      return condition(x, 'Ready')?.reason === 'NameConflict' ? x : undefined;
    });
    expect(condition(c, 'Ready')?.message).toContain('nc-sa');
    const secret = await core.readNamespacedSecret({ namespace, name: 'nc-sa' });
    expect(Buffer.from(secret.data?.['tls.key'] ?? '', 'base64').toString()).toBe('mine');
    expect(secret.metadata?.ownerReferences).toBeUndefined();
    await settle();
  });

  it("leaves a deleted Cluster's objects to the garbage collector, and the other Cluster's alone", async () => {
    const dbSecrets = (await secretNames()).filter((n) => n.startsWith('db-') && !n.startsWith('db-a-'));
    await custom.deleteNamespacedCustomObject({ ...group, name: 'db-a' });
    await until("db-a's objects gone", async () => (await secretNames()).every((n) => !n.startsWith('db-a-')), 90_000);
    expect(await secretNames()).toEqual(expect.arrayContaining(dbSecrets));
    await settle();
  });
});
