// The kubeonkube operator: turns each Cluster of the meta-cluster into a running control plane.
// Runs in the meta-cluster (in-cluster credentials) or outside it (KUBECONFIG).
//
// Environment: KUBECONFIG, KUBEONKUBE_METRICS_ADDRESS (default 0.0.0.0:8080), KUBEONKUBE_METRICS_AUTH
// (kubernetes: /metrics only with a token allowed to GET it; default none), KUBEONKUBE_WORKERS
// (default 4), KUBEONKUBE_RESYNC_SECONDS (default 300), KUBEONKUBE_LEADER_ELECT (default true),
// POD_NAMESPACE / KUBEONKUBE_LEASE_NAMESPACE (where the Lease lives), KUBEONKUBE_META_DNS_DOMAIN
// (default cluster.local), KUBEONKUBE_PASS_DEADLINE_SECONDS (a Cluster's pass running longer gives
// its worker to the others; default 120), KUBEONKUBE_POLICY (JSON: which images and etcd volume sources a Cluster
// may use, see controllers/cluster/policy.ts), KUBEONKUBE_WATCH_NAMESPACE (only the Clusters of that
// namespace; default all), KUBEONKUBE_IMAGE (the operator's image, run by snapshot Jobs; default
// ghcr.io/kubeonkube/kubeonkube:<version>), LOG_LEVEL (default info).
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { Writer } from './kube/apply.ts';
import { eventRecorder } from './kube/events.ts';
import { startInformers } from './runtime/watches.ts';
import { LeaderElector } from './kube/leader-election.ts';
import { durationMs } from './api/validate.ts';
import { EtcdConnections } from './etcd/connections.ts';
import { formatMetrics, startHttpServer } from './observability/http-server.ts';
import { MetricsAuthorizer } from './observability/metrics-auth.ts';
import { WorkQueue } from './runtime/work-queue.ts';
import { ClusterReconciler } from './controllers/cluster/cluster-reconciler.ts';
import { parsePolicy } from './controllers/cluster/policy.ts';
import { validateCluster } from './controllers/cluster/validation.ts';
import { Renderer } from './render/renderer.ts';

const log = pino({
  level: process.env.LOG_LEVEL ?? 'info',
  base: { component: 'kubeonkube-operator' },
  // Secret payloads and keys never reach a log line, whatever object is logged
  redact: { paths: ['data', '*.data', '*.*.data', 'stringData', '*.stringData', 'privateKey', '*.privateKey', 'clientKey', '*.clientKey', '*.body.data'], censor: '[redacted]' },
});

const env = (name: string, fallback: string) => process.env[name] ?? fallback;
/** How long a stopping process waits for the reconciles under way (a pass writes nothing once the lease is gone). */
const shutdownGraceMs = 15_000;

/** The project's version (its image's tag), from package.json beside the sources or the built files. */
function packageVersion(): string {
  for (const path of ['../package.json', '../../package.json']) {
    try {
      return (JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as { version: string }).version;
    } catch { /* the next place */ }
  }
  return 'latest';
}

async function main(): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const workers = Number(env('KUBEONKUBE_WORKERS', '4'));
  const resyncMs = Number(env('KUBEONKUBE_RESYNC_SECONDS', '300')) * 1000;
  const [metricsHost = '0.0.0.0', metricsPort = '8080'] = env('KUBEONKUBE_METRICS_ADDRESS', '0.0.0.0:8080').split(':');

  const elector = env('KUBEONKUBE_LEADER_ELECT', 'true') === 'true'
    ? new LeaderElector(kc, {
      namespace: process.env.KUBEONKUBE_LEASE_NAMESPACE ?? process.env.POD_NAMESPACE ?? 'kube-system',
      name: 'kubeonkube-operator',
      identity: `${hostname()}-${process.pid}`,
    }, log)
    : undefined;
  // every write asks first: a replica that may no longer lead sends nothing
  const writer = new Writer(kc, () => elector?.mayWrite() ?? true);
  const passDeadlineMs = Number(env('KUBEONKUBE_PASS_DEADLINE_SECONDS', '120')) * 1000;
  const queue = new WorkQueue({
    onError: (key, err) => log.warn({ key, err: (err as Error).message }, 'reconcile failed; retrying with backoff'),
    passDeadlineMs,
    onOverdue: (key, ms) => log.warn({ key, seconds: ms / 1000 }, 'reconcile still running past its deadline; its worker moves on to other Clusters'),
  });
  const informers = startInformers(kc, log, (key) => queue.add(key), process.env.KUBEONKUBE_WATCH_NAMESPACE || undefined);
  const etcd = new EtcdConnections();
  // reads of the meta-cluster beside the informers: nodes (NodePort endpoints) and add-on templates
  const core = kc.makeApiClient(CoreV1Api);
  const reconciler = new ClusterReconciler({
    caches: informers,
    writer,
    renderer: new Renderer(),
    settings: {
      metaDnsDomain: env('KUBEONKUBE_META_DNS_DOMAIN', 'cluster.local'),
      operatorNamespace: process.env.POD_NAMESPACE,
      policy: parsePolicy(process.env.KUBEONKUBE_POLICY),
      etcdReplaceUnhealthyAfterMs: durationMs(env('KUBEONKUBE_ETCD_REPLACE_UNHEALTHY_AFTER', '5m')),
      operatorImage: env('KUBEONKUBE_IMAGE', `ghcr.io/kubeonkube/kubeonkube:${packageVersion()}`),
    },
    etcd,
    log,
    events: eventRecorder(kc, writer, log),
    validate: validateCluster,
    custom: kc.makeApiClient(CustomObjectsApi),
    nodes: async () => (await core.listNode()).items.map((n) => ({
      name: n.metadata?.name ?? '',
      addresses: (n.status?.addresses ?? []).map((a) => ({ type: a.type, address: a.address })),
      ready: n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
    })),
    configMap: async (namespace, name) => {
      try {
        return await core.readNamespacedConfigMap({ namespace, name });
      } catch (err) {
        if ((err as { code?: number }).code === 404) return undefined;
        throw err;
      }
    },
  });

  let synced = false;
  const metricsAuth = env('KUBEONKUBE_METRICS_AUTH', 'none');
  if (metricsAuth !== 'none' && metricsAuth !== 'kubernetes') throw new Error(`KUBEONKUBE_METRICS_AUTH must be none or kubernetes, not ${metricsAuth}`);
  const authorizer = metricsAuth === 'kubernetes' ? new MetricsAuthorizer(kc) : undefined;
  const server = await startHttpServer(Number(metricsPort), metricsHost, {
    ...(authorizer ? { authorizeMetrics: (header: string | undefined) => authorizer.authorize(header) } : {}),
    // keys waiting ten deadlines with no pass starting or ending: the queue itself is stuck (a
    // slow Cluster is not that: past its deadline its worker moves on); let the kubelet restart it
    healthy: () => queue.stalledMs() < 10 * passDeadlineMs,
    ready: () => synced,
    metrics: () => formatMetrics([
      { name: 'kubeonkube_reconcile_total', help: 'Reconciles run.', type: 'counter', samples: [{ value: reconciler.stats.reconciles }] },
      { name: 'kubeonkube_reconcile_errors_total', help: 'Reconciles that failed.', type: 'counter', samples: [{ value: reconciler.stats.errors }] },
      { name: 'kubeonkube_reconcile_duration_seconds_total', help: 'Time spent reconciling.', type: 'counter', samples: [{ value: reconciler.stats.durationSeconds }] },
      { name: 'kubeonkube_cluster_last_pass_seconds', help: 'How long the last pass over a cluster took.', type: 'gauge',
        samples: [...reconciler.stats.lastPassSeconds].map(([cluster, value]) => ({ labels: { cluster }, value })) },
      { name: 'kubeonkube_queue_depth', help: 'Keys waiting in the work queue.', type: 'gauge', samples: [{ value: queue.len() }] },
      { name: 'kubeonkube_write_requests_total', help: 'Write requests sent to the meta-cluster, by verb and kind of object.', type: 'counter',
        samples: writer.countsByKind().map(({ verb, kind, value }) => ({ labels: { verb, kind }, value })) },
      { name: 'kubeonkube_certificate_expires_in_seconds', help: 'Seconds until a certificate (a leaf or a CA, by its Secret) of a cluster expires.', type: 'gauge',
        samples: [...reconciler.stats.certificateExpiry].flatMap(([cluster, ends]) => [...ends].map(([certificate, at]) => ({ labels: { cluster, certificate }, value: Math.round((at - Date.now()) / 1000) }))) },
      { name: 'kubeonkube_etcd_membership_calls_total', help: 'Membership calls made to etcd (add, promote, remove), by result (ok, refused).', type: 'counter',
        samples: [...etcd.calls].map(([key, value]) => { const [call = '', result = ''] = key.split('/'); return { labels: { call, result }, value }; }) },
      { name: 'kubeonkube_etcd_members', help: 'Members etcd lists, per cluster.', type: 'gauge',
        samples: [...etcd.clusters].map(([cluster, m]) => ({ labels: { cluster }, value: m.members })) },
      { name: 'kubeonkube_etcd_healthy_members', help: 'Members that answered their last status request healthy, per cluster.', type: 'gauge',
        samples: [...etcd.clusters].map(([cluster, m]) => ({ labels: { cluster }, value: m.healthyMembers })) },
      { name: 'kubeonkube_etcd_learners', help: 'Learners (members not voting yet), per cluster.', type: 'gauge',
        samples: [...etcd.clusters].map(([cluster, m]) => ({ labels: { cluster }, value: m.learners })) },
      { name: 'kubeonkube_etcd_db_size_bytes', help: 'Largest database size a member reports, per cluster.', type: 'gauge',
        samples: [...etcd.clusters].map(([cluster, m]) => ({ labels: { cluster }, value: m.dbSizeBytes })) },
      { name: 'kubeonkube_etcd_has_leader', help: '1 when a member reports a leader, per cluster.', type: 'gauge',
        samples: [...etcd.clusters].map(([cluster, m]) => ({ labels: { cluster }, value: Number(m.hasLeader) })) },
      { name: 'kubeonkube_etcd_snapshot_age_seconds', help: 'Age of the newest snapshot spec.etcd.backup took, per cluster.', type: 'gauge',
        samples: [...etcd.snapshots].map(([cluster, at]) => ({ labels: { cluster }, value: Math.max(0, Math.round((Date.now() - at) / 1000)) })) },
      { name: 'kubeonkube_leader', help: '1 while this process holds the lease.', type: 'gauge', samples: [{ value: elector ? Number(elector.isLeader) : 1 }] },
    ]),
  });
  log.info({ address: `${metricsHost}:${metricsPort}` }, 'serving health and metrics');

  let stopping = false;
  const shutdown = async (signal: string, code: number) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: finishing the reconciles under way');
    // a pass stuck on a business cluster must not keep a replica that lost its lease alive
    if (!(await queue.shutdown(shutdownGraceMs))) log.warn({ seconds: shutdownGraceMs / 1000 }, 'reconciles still running after the grace period; exiting anyway');
    await informers.stop();
    etcd.close();
    await elector?.release();
    server.close();
    server.closeAllConnections();
    log.info({ writes: writer.counts(), code }, 'stopped');
    // informer sockets and timers must not keep a stopping process alive
    process.exit(code);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM', 0));
  process.once('SIGINT', () => void shutdown('SIGINT', 0));

  await informers.synced;
  synced = true;
  // a leader that lost its lease stops at once, with a failure, so that it is restarted as a candidate
  const leading = elector ? await elector.acquire(() => void shutdown('lease lost', 1)) : true;
  if (!leading || stopping) return;
  queue.start(workers, (key) => reconciler.reconcile(key));
  for (const c of informers.clusters.list()) queue.add(`${c.metadata?.namespace}/${c.metadata?.name}`);
  // a periodic pass over everything catches whatever a watch missed
  setInterval(() => {
    for (const c of informers.clusters.list()) queue.add(`${c.metadata?.namespace}/${c.metadata?.name}`);
  }, resyncMs).unref();
  log.info({ workers, resyncSeconds: resyncMs / 1000 }, 'reconciling');
}

main().catch((err: unknown) => {
  log.fatal({ err: (err as Error).message }, 'operator failed to start');
  process.exit(1);
});
