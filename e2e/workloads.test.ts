// Pods really run on the meta-cluster's node: a Deployment of the project's own image becomes
// Ready, and another pod reaches it by its Service's DNS name, through CoreDNS and kube-proxy.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectImage } from './images.ts';
import { apply, eventually, kubectl, namespaceObject, podFinished, uniqueNamespace } from './kubectl.ts';

const ns = uniqueNamespace('e2e-workloads');
/** A script that GETs `url` until it answers (30 tries, 1 s apart) and prints the body; each failed try is logged. */
function client(url: string): string {
  return `const get = (n) => require('node:http').get(${JSON.stringify(url)}, { timeout: 2000 }, (r) => { let b = ''; r.on('data', (c) => b += c); r.on('end', () => { console.log(b); process.exit(0); }); })
    .on('timeout', function () { this.destroy(new Error('no answer within 2 s')); })
    .on('error', (e) => { console.error(new Date().toISOString(), e.message); if (n <= 1) process.exit(1); setTimeout(() => get(n - 1), 1000); });
  get(30);`;
}

/**
 * A run-once pod of the project's image running a Node.js script (Debian's static busybox cannot
 * resolve names: static glibc has no NSS).
 */
function nodeScriptPod(name: string, script: string): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: ns },
    spec: {
      restartPolicy: 'Never',
      containers: [
        { name: 'main', image: projectImage, imagePullPolicy: 'IfNotPresent', command: ['node', '-e', script] },
      ],
    },
  };
}

const server = `require('node:http').createServer((q, s) => s.end('hello from ' + require('node:os').hostname())).listen(8080)`;

beforeAll(async () => {
  await apply(namespaceObject(ns));
});
afterAll(async () => {
  await kubectl(['delete', 'namespace', ns, '--wait=false']);
});

describe('workloads on the node', () => {
  it('runs a Deployment of a locally built image and serves it through a Service DNS name', async () => {
    await apply(
      {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'web', namespace: ns },
        spec: {
          replicas: 1,
          selector: { matchLabels: { app: 'web' } },
          template: {
            metadata: { labels: { app: 'web' } },
            spec: {
              containers: [
                {
                  name: 'web',
                  image: projectImage,
                  imagePullPolicy: 'IfNotPresent',
                  command: ['node', '-e', server],
                  ports: [{ containerPort: 8080 }],
                  readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1 },
                },
              ],
            },
          },
        },
      },
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'web', namespace: ns },
        spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] },
      },
    );
    await kubectl(['-n', ns, 'rollout', 'status', 'deployment/web', '--timeout=120s']);
    const podName = (
      await kubectl(['-n', ns, 'get', 'pods', '-l', 'app=web', '-o', 'jsonpath={.items[0].metadata.name}'])
    ).trim();

    // retried: the Service's endpoints may reach kube-proxy a moment after the pod is Ready
    await apply(nodeScriptPod('client', client(`http://web.${ns}.svc.cluster.local/`)));
    const logs = await podFinished(ns, 'client');
    expect(logs).toContain(`hello from ${podName}`);
  });

  it('resolves the kubernetes Service and reaches the apiserver from a pod', async () => {
    // an unauthenticated request: reaching the apiserver's TLS port is what is tested
    await apply(
      nodeScriptPod(
        'apiserver-client',
        `require('node:https').get('https://kubernetes.default.svc.cluster.local/readyz', { rejectUnauthorized: false }, (r) => { console.log('status', r.statusCode); process.exit(0); }).on('error', (e) => { console.error(e.message); process.exit(1); })`,
      ),
    );
    const logs = await podFinished(ns, 'apiserver-client');
    expect(logs).toMatch(/^status (401|403)$/m);
  });

  it('reports the node Ready with the pinned kubelet version', async () => {
    const node = await eventually('a node', async () => {
      const out = await kubectl(['get', 'nodes', '-o', 'json']);
      const list = JSON.parse(out) as {
        items: { status: { nodeInfo: { kubeletVersion: string; containerRuntimeVersion: string } } }[];
      };
      return list.items[0];
    });
    expect(node.status.nodeInfo.kubeletVersion).toMatch(/^v1\.34\.\d+$/);
    expect(node.status.nodeInfo.containerRuntimeVersion).toMatch(/^containerd:\/\//);
  });
});
