// The tunnel agent as a program, in the business cluster (a Deployment the operator applies there).
// It follows the business cluster's Nodes through its own ServiceAccount, so the servers let dials
// to the nodes' addresses through, and the list of servers the operator keeps there, so it reaches
// a new server (an apiserver rollout) before that server takes requests. Configured from the
// environment (the add-on template sets it).
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { KubeConfig, Watch, type V1ConfigMap, type V1Node } from '@kubernetes/client-node';
import pino, { type Logger } from 'pino';
import { startHttpServer } from '../observability/http-server.ts';
import { TunnelAgent } from './agent.ts';
import { serverListConfigMap } from './protocol.ts';
import { setting } from './settings.ts';

/** Watches `path` for ever: `reset` before each (re)start, `event` per change; watches again after an end or an error. */
function watchForever<T>(
  log: Logger,
  what: string,
  path: string,
  query: Record<string, string>,
  reset: () => void,
  event: (type: string, obj: T) => void,
): void {
  const kc = new KubeConfig();
  kc.loadFromCluster();
  const start = () => {
    reset();
    void new Watch(kc)
      .watch(path, query, event, (err: unknown) => {
        if (err) log.info({ err: (err as Error).message }, `${what} watch ended; watching again`);
        setTimeout(start, 2000);
      })
      .catch((err: unknown) => {
        log.info({ err: (err as Error).message }, `could not watch ${what}; trying again`);
        setTimeout(start, 5000);
      });
  };
  start();
}

/** Calls `changed` with every address of every Node, now and whenever the set changes. */
function watchNodeAddresses(log: Logger, changed: (addresses: string[]) => void): void {
  const nodes = new Map<string, string[]>();
  let last = '';
  watchForever<V1Node>(
    log,
    'node',
    '/api/v1/nodes',
    {},
    () => nodes.clear(),
    (type, node) => {
      const name = node.metadata?.name ?? '';
      if (type === 'DELETED') nodes.delete(name);
      else
        nodes.set(
          name,
          (node.status?.addresses ?? [])
            .filter((a) => a.type === 'InternalIP' || a.type === 'ExternalIP')
            .map((a) => a.address),
        );
      const all = [...new Set([...nodes.values()].flat())].sort();
      if (JSON.stringify(all) !== last) {
        last = JSON.stringify(all);
        changed(all);
      }
    },
  );
}

/** Calls `changed` with the servers the operator lists, now and whenever the list changes. */
function watchServerList(log: Logger, changed: (names: string[]) => void): void {
  const { namespace, name } = serverListConfigMap;
  watchForever<V1ConfigMap>(
    log,
    'server list',
    `/api/v1/namespaces/${namespace}/configmaps`,
    { fieldSelector: `metadata.name=${name}` },
    () => undefined,
    (type, cm) =>
      changed(
        type === 'DELETED'
          ? []
          : (cm.data?.servers ?? '')
              .split('\n')
              .map((s) => s.trim())
              .filter(Boolean),
      ),
  );
}

async function main(): Promise<void> {
  const env = setting;
  const log = pino({ level: process.env.LOG_LEVEL ?? 'info', base: { component: 'kubeonkube-tunnel-agent' } });
  const pki = env('KUBEONKUBE_TUNNEL_PKI', '/etc/kubeonkube-tunnel/pki');
  const [host = '', port = '8132'] = env('KUBEONKUBE_TUNNEL_SERVER').split(/:(?=\d+$)/);
  const agent = new TunnelAgent({
    agentId: env('POD_NAME', hostname()),
    server: {
      host: host.replace(/^\[|\]$/g, ''),
      port: Number(port),
      servername: env('KUBEONKUBE_TUNNEL_SERVER_NAME', host),
    },
    // read for every new connection: a renewed Secret reaches the files without a restart, so the
    // agent is not replaced (and its dials under way not cut) for a certificate
    tls: () => ({
      cert: readFileSync(join(pki, 'tls.crt'), 'utf8'),
      key: readFileSync(join(pki, 'tls.key'), 'utf8'),
      ca: readFileSync(join(pki, 'ca.crt'), 'utf8'),
    }),
    allowedCIDRs: env('KUBEONKUBE_TUNNEL_ALLOWED_CIDRS')
      .split(',')
      .map((c) => c.trim())
      .filter(Boolean),
    nodeAddresses: process.env.KUBERNETES_SERVICE_HOST ? (changed) => watchNodeAddresses(log, changed) : undefined,
    expectedServers: process.env.KUBERNETES_SERVICE_HOST ? (changed) => watchServerList(log, changed) : undefined,
    log,
  });
  agent.start();
  const [mHost = '0.0.0.0', mPort = '8133'] = env('KUBEONKUBE_METRICS_ADDRESS', '0.0.0.0:8133').split(':');
  await startHttpServer(Number(mPort), mHost, {
    healthy: () => true,
    // ready while it holds at least one server
    ready: () => agent.servers().length > 0,
    metrics: () => agent.stats.metrics('kubeonkube_tunnel_agent'),
  });
  // a rollout: leave without failing the requests under way (the pod's grace period is 30 s)
  process.once('SIGTERM', () => void agent.drain(20_000).then(() => process.exit(0)));
  process.once('SIGINT', () => {
    agent.stop();
    process.exit(0);
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(`tunnel agent failed: ${(err as Error).message}`);
    process.exit(1);
  });
}
