// The meta-cluster's kube-apiserver, through @kubernetes/client-node: a CRD is established, and an
// object of it is created, read, watched and deleted. Nothing here is faked.
import {
  ApiextensionsV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  Watch,
  type V1CustomResourceDefinition,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';

const group = 'roundtrip.test.kubeonkube.io';
const crd: V1CustomResourceDefinition = {
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: `widgets.${group}` },
  spec: {
    group,
    scope: 'Namespaced',
    names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
    versions: [
      {
        name: 'v1',
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: {
            type: 'object',
            properties: { spec: { type: 'object', properties: { size: { type: 'integer', minimum: 1 } } } },
          },
        },
      },
    ],
  },
};

interface Widget {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; resourceVersion?: string };
  spec: { size: number };
}

const kc = new KubeConfig();
const namespace = `roundtrip-${process.pid}`;

/**
 * Opens a watch and resolves once the server accepted it. A new resource's watch cache answers 429
 * until it is initialized, and client-node reports a refused watch through `done` rather than by
 * rejecting; like client-go, retry then.
 */
async function openWatch(
  path: string,
  onEvent: (type: string, obj: Widget) => void,
  onError: (err: Error) => void,
): Promise<AbortController> {
  for (let attempt = 0; ; attempt++) {
    let refused: (Error & { statusCode?: number }) | undefined;
    let opened = false;
    const controller = await new Watch(kc).watch(path, {}, onEvent, (err) => {
      if (!err) return;
      if (opened) onError(err as Error);
      else refused = err as Error;
    });
    if (!refused) {
      opened = true;
      return controller;
    }
    if (refused.statusCode !== 429 || attempt >= 50) throw refused;
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  kc.loadFromFile(inject('metaCluster').kubeconfig);
  const ext = kc.makeApiClient(ApiextensionsV1Api);
  await ext.createCustomResourceDefinition({ body: crd }).catch((err: { code?: number }) => {
    if (err.code !== 409) throw err;
  });
  // wait until the CRD is served, as a client of a freshly installed operator would
  for (let i = 0; ; i++) {
    const live = await ext.readCustomResourceDefinition({ name: crd.metadata!.name! });
    if (live.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
    if (i > 100) throw new Error('CRD not established');
    await new Promise((r) => setTimeout(r, 100));
  }
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });
});

afterAll(async () => {
  await kc
    .makeApiClient(CoreV1Api)
    .deleteNamespace({ name: namespace })
    .catch(() => undefined);
  await kc
    .makeApiClient(ApiextensionsV1Api)
    .deleteCustomResourceDefinition({ name: crd.metadata!.name! })
    .catch(() => undefined);
});

describe('kube-apiserver of the meta-cluster', () => {
  it('reports the pinned Kubernetes minor version', async () => {
    const { VersionApi } = await import('@kubernetes/client-node');
    const version = await kc.makeApiClient(VersionApi).getCode();
    expect(version.gitVersion).toMatch(/^v1\.34\.\d+$/);
  });

  it('creates, reads, watches and deletes a custom object', async () => {
    const objects = kc.makeApiClient(CustomObjectsApi);
    const ref = { group, version: 'v1', namespace, plural: 'widgets' };
    const events: string[] = [];
    let resolveDeleted!: () => void;
    let rejectWatch!: (err: Error) => void;
    const deleted = new Promise<void>((resolve, reject) => {
      resolveDeleted = resolve;
      rejectWatch = reject;
    });
    // resolves once the watch is established, so no event of the steps below can be missed
    const watch = await openWatch(
      `/apis/${group}/v1/namespaces/${namespace}/widgets`,
      (type, obj) => {
        events.push(`${type} ${obj.metadata.name} ${obj.spec.size}`);
        if (type === 'DELETED') resolveDeleted();
      },
      rejectWatch,
    );

    const created = (await objects.createNamespacedCustomObject({
      ...ref,
      body: { apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name: 'w1' }, spec: { size: 3 } },
    })) as Widget;
    expect(created.metadata.resourceVersion).toBeTruthy();

    const read = (await objects.getNamespacedCustomObject({ ...ref, name: 'w1' })) as Widget;
    expect(read.spec.size).toBe(3);

    await objects.patchNamespacedCustomObject({
      ...ref,
      name: 'w1',
      body: [{ op: 'replace', path: '/spec/size', value: 5 }],
    });
    await objects.deleteNamespacedCustomObject({ ...ref, name: 'w1' });
    await deleted;
    watch.abort();
    expect(events).toEqual(['ADDED w1 3', 'MODIFIED w1 5', 'DELETED w1 5']);
    await expect(objects.getNamespacedCustomObject({ ...ref, name: 'w1' })).rejects.toMatchObject({ code: 404 });
  });

  it('refuses an object that breaks the CRD schema, naming the field', async () => {
    const objects = kc.makeApiClient(CustomObjectsApi);
    const error = await objects
      .createNamespacedCustomObject({
        group,
        version: 'v1',
        namespace,
        plural: 'widgets',
        body: { apiVersion: `${group}/v1`, kind: 'Widget', metadata: { name: 'bad' }, spec: { size: 0 } },
      })
      .then(
        () => undefined,
        (err: { code?: number; body?: string }) => err,
      );
    expect(error?.code).toBe(422);
    expect(error?.body).toContain('spec.size');
  });
});
