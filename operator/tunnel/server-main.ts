// The tunnel server as a program: the native sidecar of each hosted apiserver Pod. It writes the
// apiserver's EgressSelectorConfiguration into the volume they share, then serves the egress
// socket beside it and the agents' TLS port; /readyz answers once both listen (the apiserver
// container starts only then). Configured from the environment (the apiserver template sets it).
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { startHttpServer } from '../observability/http-server.ts';
import { setting } from './settings.ts';
import { TunnelServer } from './server.ts';

/** The EgressSelectorConfiguration that sends the `cluster` selection (nodes, pods, Services of the business cluster) to `socket`. */
export function egressSelectorConfiguration(socket: string): string {
  return JSON.stringify(
    {
      apiVersion: 'apiserver.k8s.io/v1beta1',
      kind: 'EgressSelectorConfiguration',
      egressSelections: [
        { name: 'cluster', connection: { proxyProtocol: 'HTTPConnect', transport: { uds: { udsName: socket } } } },
      ],
    },
    null,
    2,
  );
}

async function main(): Promise<void> {
  const env = setting;
  const log = pino({ level: process.env.LOG_LEVEL ?? 'info', base: { component: 'kubeonkube-tunnel-server' } });
  const socket = env('KUBEONKUBE_TUNNEL_EGRESS_SOCKET', '/run/kubeonkube-tunnel/egress.sock');
  const pki = env('KUBEONKUBE_TUNNEL_PKI', '/etc/kubeonkube-tunnel/pki');
  const read = (f: string) => readFile(join(pki, f), 'utf8');
  await mkdir(dirname(socket), { recursive: true });
  await writeFile(
    env('KUBEONKUBE_TUNNEL_EGRESS_CONFIG', join(dirname(socket), 'egress-selector.json')),
    egressSelectorConfiguration(socket),
  );
  const server = new TunnelServer({
    // the Pod's name first: the operator lists the servers to the agents by it
    ...(process.env.POD_NAME ? { id: `${process.env.POD_NAME}.${randomUUID().slice(0, 8)}` } : {}),
    egressSocket: socket,
    agentPort: Number(env('KUBEONKUBE_TUNNEL_PORT', '8132')),
    tls: { cert: await read('tls.crt'), key: await read('tls.key'), ca: await read('ca.crt') },
    agentName: env('KUBEONKUBE_TUNNEL_AGENT_NAME', 'kubeonkube-tunnel-agent'),
    allowedCIDRs: env('KUBEONKUBE_TUNNEL_ALLOWED_CIDRS')
      .split(',')
      .map((c) => c.trim())
      .filter(Boolean),
    log,
  });
  await server.start();
  const [host = '0.0.0.0', port = '8133'] = env('KUBEONKUBE_METRICS_ADDRESS', '0.0.0.0:8133').split(':');
  const probes = await startHttpServer(Number(port), host, {
    healthy: () => true,
    ready: () => true,
    metrics: () => server.stats.metrics('kubeonkube_tunnel_server'),
  });
  log.info({ id: server.id, port: server.agentPort, socket }, 'tunnel server serving');
  // after the apiserver container: dials of its last requests are still relayed while it drains
  const stop = () => {
    log.info('stopping');
    probes.close();
    void server.stop().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    console.error(`tunnel server failed: ${(err as Error).message}`);
    process.exit(1);
  });
}
