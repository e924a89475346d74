// The default StorageClass provisions real volumes on the node: a claim binds, and what a pod wrote
// is still there for the next pod after the first is deleted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxImage } from './images.ts';
import { apply, kubectl, namespaceObject, podFinished, uniqueNamespace } from './kubectl.ts';

const ns = uniqueNamespace('e2e-storage');

function podWithClaim(name: string, script: string): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns },
    spec: {
      restartPolicy: 'Never',
      containers: [
        {
          name: 'main',
          image: busyboxImage,
          imagePullPolicy: 'IfNotPresent',
          command: ['sh', '-c', script],
          volumeMounts: [{ name: 'data', mountPath: '/data' }],
        },
      ],
      volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }],
    },
  };
}

beforeAll(async () => {
  await apply(namespaceObject(ns));
});
afterAll(async () => {
  await kubectl(['delete', 'namespace', ns, '--wait=false']);
});

describe('persistent volumes', () => {
  it('binds a claim of the default StorageClass and keeps data across pods', async () => {
    await apply({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: 'data', namespace: ns },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '64Mi' } } },
    });
    const written = `written at ${Date.now()}`;
    await apply(podWithClaim('writer', `echo '${written}' > /data/proof && sync && echo done`));
    expect(await podFinished(ns, 'writer')).toContain('done');

    const claim = JSON.parse(await kubectl(['-n', ns, 'get', 'pvc', 'data', '-o', 'json'])) as {
      spec: { storageClassName: string; volumeName: string };
      status: { phase: string };
    };
    expect(claim.status.phase).toBe('Bound');
    expect(claim.spec.storageClassName).toBe('local-path');

    await kubectl(['-n', ns, 'delete', 'pod', 'writer', '--wait=true']);
    await apply(podWithClaim('reader', 'cat /data/proof'));
    expect((await podFinished(ns, 'reader')).trim()).toBe(written);
  });
});
