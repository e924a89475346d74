// /metrics behind the meta-cluster's own authentication and authorization: ServiceAccount tokens
// of the real kube-apiserver, one bound to GET /metrics and one not.
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startHttpServer } from './http-server.ts';
import { MetricsAuthorizer } from './metrics-auth.ts';

const kc = new KubeConfig();
const namespace = `metrics-auth-${process.pid}`;
const role = `kubeonkube-test-metrics-reader-${process.pid}`;
let core: CoreV1Api;
let rbac: RbacAuthorizationV1Api;
let server: Server;
let url: string;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  kc.loadFromFile(inject('metaCluster').kubeconfig);
  core = kc.makeApiClient(CoreV1Api);
  rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  await core.createNamespace({ body: { metadata: { name: namespace } } });
  await rbac.createClusterRole({
    body: { metadata: { name: role }, rules: [{ nonResourceURLs: ['/metrics'], verbs: ['get'] }] },
  });
  await rbac.createClusterRoleBinding({
    body: {
      metadata: { name: role },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace }],
    },
  });
  for (const sa of ['reader', 'nobody']) {
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: sa } } });
    const request = await core.createNamespacedServiceAccountToken({
      namespace,
      name: sa,
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    tokens[sa] = request.status?.token ?? '';
  }
  const authorizer = new MetricsAuthorizer(kc);
  server = await startHttpServer(0, '127.0.0.1', {
    healthy: () => true,
    ready: () => true,
    metrics: () => 'kubeonkube_reconcile_total 1\n',
    authorizeMetrics: (header) => authorizer.authorize(header),
  });
  url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  server?.close();
  await rbac?.deleteClusterRoleBinding({ name: role }).catch(() => undefined);
  await rbac?.deleteClusterRole({ name: role }).catch(() => undefined);
  await core?.deleteNamespace({ name: namespace }).catch(() => undefined);
});

const scrape = async (token?: string) => {
  const res = await fetch(`${url}/metrics`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, body: await res.text() };
};

describe('/metrics with KUBEONKUBE_METRICS_AUTH=kubernetes', () => {
  it('answers only a token the meta-cluster allows to GET /metrics', async () => {
    expect(await scrape()).toEqual({ status: 401, body: 'a bearer token is required' });
    expect(await scrape('not-a-token')).toEqual({ status: 401, body: 'the token was not accepted' });
    expect(await scrape(tokens.nobody)).toEqual({
      status: 403,
      body: `system:serviceaccount:${namespace}:nobody may not get /metrics`,
    });
    expect(await scrape(tokens.reader)).toEqual({ status: 200, body: 'kubeonkube_reconcile_total 1\n' });
  });

  it('keeps the probes open: the kubelet presents no token', async () => {
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
  });

  it("remembers a decision for a while, by the token's digest", async () => {
    const authorizer = new MetricsAuthorizer(kc, 60_000);
    expect((await authorizer.authorize(`Bearer ${tokens.reader}`, 0)).status).toBe(200);
    // the binding goes; the remembered decision stands until it ends, then the new one is made
    await rbac.deleteClusterRoleBinding({ name: role });
    expect((await authorizer.authorize(`Bearer ${tokens.reader}`, 30_000)).status).toBe(200);
    expect((await authorizer.authorize(`Bearer ${tokens.reader}`, 61_000)).status).toBe(403);
  });
});
