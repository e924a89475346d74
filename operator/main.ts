// The kubeonkube operator: turns each Cluster of the meta-cluster into a running control plane,
// and each Machine into a node of its Cluster (the Node-Operator). Runs in the meta-cluster
// (in-cluster credentials) or outside it (KUBECONFIG).
//
// Environment: KUBECONFIG, KUBEONKUBE_METRICS_ADDRESS (default 0.0.0.0:8080), KUBEONKUBE_METRICS_AUTH
// (kubernetes: /metrics only with a token allowed to GET it; default none), KUBEONKUBE_WORKERS
// (default 4; the business wing has KUBEONKUBE_BUSINESS_WORKERS of its own, default 4),
// KUBEONKUBE_RESYNC_SECONDS (default 300), KUBEONKUBE_LEADER_ELECT (default true),
// POD_NAMESPACE / KUBEONKUBE_LEASE_NAMESPACE (where the Lease lives), KUBEONKUBE_META_DNS_DOMAIN
// (default cluster.local), KUBEONKUBE_PASS_DEADLINE_SECONDS (a Cluster's pass running longer gives
// its worker to the others; default 120), KUBEONKUBE_POLICY (JSON: which images and etcd volume
// sources a Cluster may use, see controllers/cluster/policy.ts), KUBEONKUBE_WATCH_NAMESPACE (only
// the Clusters of that namespace; default all), KUBEONKUBE_IMAGE (the operator's image, run by
// snapshot Jobs; default ghcr.io/kubeonkube/kubeonkube:<version>), KUBEONKUBE_PACKAGE_REPOSITORY
// (URL of the node software's repository; unset: Machines wait), KUBEONKUBE_META_JOIN_SECRET
// (namespace/name of the Secret hosts join the meta-cluster with; only Machines of that namespace
// may leave out spec.clusterName), KUBEONKUBE_MACHINE_WORKERS
// (default 4), KUBEONKUBE_SANDBOX_IMAGE (the nodes' pause image; default registry.k8s.io/pause:3.10.1),
// KUBEONKUBE_DRAIN_TIMEOUT (how long a Machine's removal waits for evictions; default 5m),
// LOG_LEVEL (default info).
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { Writer } from './kube/apply.ts';
import { LeaderElector } from './kube/leader-election.ts';
import { durationMs } from './api/formats.ts';
import { formatMetrics, startHttpServer } from './observability/http-server.ts';
import { MetricsAuthorizer } from './observability/metrics-auth.ts';
import { controllerMetrics } from './runtime/controller.ts';
import { clusterController } from './controllers/cluster/controller.ts';
import { machineController } from './controllers/machine/controller.ts';
import { parsePolicy } from './controllers/cluster/policy.ts';

const log = pino({
  level: process.env.LOG_LEVEL ?? 'info',
  base: { component: 'kubeonkube-operator' },
  // Secret payloads and keys never reach a log line, whatever object is logged
  redact: {
    paths: [
      'data',
      '*.data',
      '*.*.data',
      'stringData',
      '*.stringData',
      'privateKey',
      '*.privateKey',
      'clientKey',
      '*.clientKey',
      '*.body.data',
    ],
    censor: '[redacted]',
  },
});

const env = (name: string, fallback: string) => process.env[name] ?? fallback;
/** How long a stopping process waits for the reconciles under way (a pass writes nothing once the lease is gone). */
const shutdownGraceMs = 15_000;

/** The project's version (its image's tag), from package.json beside the sources or the built files. */
function packageVersion(): string {
  for (const path of ['../package.json', '../../package.json']) {
    try {
      return (JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')) as { version: string }).version;
    } catch {
      /* the next place */
    }
  }
  return 'latest';
}

/** KUBEONKUBE_META_JOIN_SECRET: namespace/name of the Secret a host joins the meta-cluster with. */
function parseMetaJoin(text: string | undefined): { namespace: string; secret: string } | undefined {
  if (!text) return undefined;
  const [namespace, secret, ...rest] = text.split('/');
  if (!namespace || !secret || rest.length > 0)
    throw new Error(`KUBEONKUBE_META_JOIN_SECRET must be namespace/name, not ${JSON.stringify(text)}`);
  return { namespace, secret };
}

async function main(): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromDefault();
  const workers = Number(env('KUBEONKUBE_WORKERS', '4'));
  const resyncMs = Number(env('KUBEONKUBE_RESYNC_SECONDS', '300')) * 1000;
  const [metricsHost = '0.0.0.0', metricsPort = '8080'] = env('KUBEONKUBE_METRICS_ADDRESS', '0.0.0.0:8080').split(':');

  const elector =
    env('KUBEONKUBE_LEADER_ELECT', 'true') === 'true'
      ? new LeaderElector(
          kc,
          {
            namespace: process.env.KUBEONKUBE_LEASE_NAMESPACE ?? process.env.POD_NAMESPACE ?? 'kube-system',
            name: 'kubeonkube-operator',
            identity: `${hostname()}-${process.pid}`,
          },
          log,
        )
      : undefined;
  // every write asks first: a replica that may no longer lead sends nothing
  const writer = new Writer(kc, () => elector?.mayWrite() ?? true);
  const passDeadlineMs = Number(env('KUBEONKUBE_PASS_DEADLINE_SECONDS', '120')) * 1000;
  const namespace = process.env.KUBEONKUBE_WATCH_NAMESPACE || undefined;
  const policy = parsePolicy(process.env.KUBEONKUBE_POLICY);
  const clusters = clusterController({
    kc,
    writer,
    log,
    workers,
    passDeadlineMs,
    namespace,
    businessWorkers: Number(env('KUBEONKUBE_BUSINESS_WORKERS', '4')),
    settings: {
      metaDnsDomain: env('KUBEONKUBE_META_DNS_DOMAIN', 'cluster.local'),
      operatorNamespace: process.env.POD_NAMESPACE,
      policy,
      etcdReplaceUnhealthyAfterMs: durationMs(env('KUBEONKUBE_ETCD_REPLACE_UNHEALTHY_AFTER', '5m')),
      operatorImage: env('KUBEONKUBE_IMAGE', `ghcr.io/kubeonkube/kubeonkube:${packageVersion()}`),
    },
  });
  const machines = machineController({
    kc,
    writer,
    log,
    namespace,
    workers: Number(env('KUBEONKUBE_MACHINE_WORKERS', '4')),
    // an install over SSH takes minutes; a host that hangs is cut off by the operation's own deadline
    passDeadlineMs: Math.max(passDeadlineMs, 20 * 60_000),
    packageRepository: process.env.KUBEONKUBE_PACKAGE_REPOSITORY || undefined,
    machineNetworks: policy.allowedMachineNetworks,
    metaJoin: parseMetaJoin(process.env.KUBEONKUBE_META_JOIN_SECRET),
    settings: {
      sandboxImage: env('KUBEONKUBE_SANDBOX_IMAGE', 'registry.k8s.io/pause:3.10.1'),
      drainTimeoutMs: durationMs(env('KUBEONKUBE_DRAIN_TIMEOUT', '5m')),
      healthIntervalMs: 10_000,
    },
  });
  const controllers = [clusters.controller, clusters.business, machines.controller];

  let synced = false;
  const metricsAuth = env('KUBEONKUBE_METRICS_AUTH', 'none');
  if (metricsAuth !== 'none' && metricsAuth !== 'kubernetes')
    throw new Error(`KUBEONKUBE_METRICS_AUTH must be none or kubernetes, not ${metricsAuth}`);
  const authorizer = metricsAuth === 'kubernetes' ? new MetricsAuthorizer(kc) : undefined;
  const server = await startHttpServer(Number(metricsPort), metricsHost, {
    ...(authorizer ? { authorizeMetrics: (header: string | undefined) => authorizer.authorize(header) } : {}),
    // keys waiting ten deadlines with no pass starting or ending: the queue itself is stuck (a
    // slow Cluster is not that: past its deadline its worker moves on); let the kubelet restart it
    healthy: () => controllers.every((c) => c.stalledMs() < 10 * passDeadlineMs),
    ready: () => synced,
    metrics: () =>
      formatMetrics([
        ...controllerMetrics(controllers),
        {
          name: 'kubeonkube_write_requests_total',
          help: 'Write requests sent to the meta-cluster, by verb and kind of object.',
          type: 'counter',
          samples: writer.countsByKind().map(({ verb, kind, value }) => ({ labels: { verb, kind }, value })),
        },
        ...clusters.metrics(),
        ...machines.metrics(),
        {
          name: 'kubeonkube_leader',
          help: '1 while this process holds the lease.',
          type: 'gauge',
          samples: [{ value: elector ? Number(elector.isLeader) : 1 }],
        },
      ]),
  });
  log.info({ address: `${metricsHost}:${metricsPort}` }, 'serving health and metrics');

  let stopping = false;
  const shutdown = async (signal: string, code: number) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down: finishing the reconciles under way');
    // a pass stuck on a business cluster must not keep a replica that lost its lease alive
    const drained = await Promise.all(controllers.map((c) => c.shutdown(shutdownGraceMs)));
    if (!drained.every(Boolean))
      log.warn({ seconds: shutdownGraceMs / 1000 }, 'reconciles still running after the grace period; exiting anyway');
    await clusters.stop();
    await machines.stop();
    await elector?.release();
    server.close();
    server.closeAllConnections();
    log.info({ writes: writer.counts(), code }, 'stopped');
    // informer sockets and timers must not keep a stopping process alive
    process.exit(code);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM', 0));
  process.once('SIGINT', () => void shutdown('SIGINT', 0));

  await Promise.all([clusters.caches.synced, machines.caches.synced]);
  synced = true;
  // a leader that lost its lease stops at once, with a failure, so that it is restarted as a candidate
  const leading = elector ? await elector.acquire(() => void shutdown('lease lost', 1)) : true;
  if (!leading || stopping) return;
  for (const controller of controllers) controller.start(resyncMs);
  log.info({ workers, resyncSeconds: resyncMs / 1000 }, 'reconciling');
}

main().catch((err: unknown) => {
  log.fatal({ err: (err as Error).message }, 'operator failed to start');
  process.exit(1);
});
