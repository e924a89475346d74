// /healthz, /readyz and /metrics (Prometheus text format) on one port; /metrics only for readers
// the probe's authorizer lets in, when it has one (metrics-auth.ts).
import { createServer, type Server } from 'node:http';

export interface Probe {
  healthy: () => boolean;
  ready: () => boolean;
  metrics: () => string;
  /** Decides who may read /metrics from the request's Authorization header; unset lets everyone. */
  authorizeMetrics?: (authorization: string | undefined) => Promise<{ status: number; message: string }>;
}

export function startHttpServer(port: number, host: string, probe: Probe): Promise<Server> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (status: number, body: string, type = 'text/plain; charset=utf-8') => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    if (path === '/healthz' || path === '/livez')
      reply(probe.healthy() ? 200 : 500, probe.healthy() ? 'ok' : 'unhealthy');
    else if (path === '/readyz') reply(probe.ready() ? 200 : 503, probe.ready() ? 'ok' : 'not ready');
    else if (path === '/metrics') {
      if (!probe.authorizeMetrics) return reply(200, probe.metrics(), 'text/plain; version=0.0.4; charset=utf-8');
      probe.authorizeMetrics(req.headers.authorization).then(
        (v) =>
          v.status === 200
            ? reply(200, probe.metrics(), 'text/plain; version=0.0.4; charset=utf-8')
            : reply(v.status, v.message),
        () => reply(503, 'authorization failed'),
      );
    } else reply(404, 'not found');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

type Labels = Record<string, string>;
const labelText = (labels: Labels) => {
  const entries = Object.entries(labels);
  return entries.length === 0
    ? ''
    : `{${entries.map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`))}"`).join(',')}}`;
};

/** One metric family and its samples. */
export interface MetricFamily {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  samples: { labels?: Labels; value: number }[];
}

/** Prometheus exposition text of a few metric families. */
export function formatMetrics(families: MetricFamily[]): string {
  return (
    families
      .map((f) =>
        [
          `# HELP ${f.name} ${f.help}`,
          `# TYPE ${f.name} ${f.type}`,
          ...f.samples.map((s) => `${f.name}${labelText(s.labels ?? {})} ${s.value}`),
        ].join('\n'),
      )
      .join('\n') + '\n'
  );
}
