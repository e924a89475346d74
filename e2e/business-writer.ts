// A client of a business cluster that writes every 100 ms and counts what failed: the measure of
// "the cluster served throughout" while etcd members are replaced or added. Each write is a new
// ConfigMap on a new connection (as a fresh client would open one), so a write fails only if the
// control plane could not take it, not because a kept-alive connection went to a Pod that left.
import { request } from 'node:https';
import { load } from 'js-yaml';

interface Kubeconfig {
  clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
  users: { user: { 'client-certificate-data': string; 'client-key-data': string } }[];
}

export interface WriterCounts {
  written: number;
  failed: number;
  errors: string[];
  /** Reads of the kubeconfig itself that failed (the meta-cluster's side: not a failed request of the business cluster). */
  unread: number;
}

/**
 * What etcd answers a write that was in flight while its leader changed, passed on by kube-apiserver
 * (which retries no write): raft drops a proposal that reaches the leader during the hand-over, or
 * one that reaches a member that knows no leader yet, and one a follower forwarded to the old leader
 * just then times out. No client can avoid it, and no operator can make it retried: a leader change
 * is needed whenever etcd's trust bundle changes, since etcd reads its trusted CA file only at start.
 */
// (the last seen from here: a write forwarded to the old leader as it stopped, whose timeout in
// etcd and then in kube-apiserver outlasts this client's 10 s)
const leaderChange =
  /raft proposal dropped|etcdserver: (request timed out|leader changed|no leader)|write \d+: no answer within 10 s/;

/**
 * The failed writes no etcd leader change explains: each of another kind, and those of that kind
 * beyond one per leader change (`leaderChanges`, e.g. the operator's LeaderMoved Events meanwhile).
 */
export function unexplainedFailures(counts: WriterCounts, leaderChanges: number): string[] {
  const explained = counts.errors.filter((e) => leaderChange.test(e));
  return [...counts.errors.filter((e) => !leaderChange.test(e)), ...explained.slice(leaderChanges)];
}

/** Where the server, CA and client certificate of a kubeconfig are. */
export function parseKubeconfig(yaml: string) {
  const kc = load(yaml) as Kubeconfig;
  const b64 = (s: string) => Buffer.from(s, 'base64');
  return {
    server: new URL(kc.clusters[0]!.cluster.server),
    tls: {
      ca: b64(kc.clusters[0]!.cluster['certificate-authority-data']),
      cert: b64(kc.users[0]!.user['client-certificate-data']),
      key: b64(kc.users[0]!.user['client-key-data']),
    },
  };
}

/**
 * Writes through `kubeconfig`: a fixed one, or a function that reads it anew before each write
 * (as a client that re-reads the kubeconfig Secret picks up renewed certificates and CA bundles).
 */
export function startBusinessWriter(
  kubeconfig: string | (() => Promise<string>),
  prefix: string,
  periodMs = 100,
): { stop(): Promise<WriterCounts> } {
  const fixed = typeof kubeconfig === 'string' ? parseKubeconfig(kubeconfig) : undefined;
  const counts: WriterCounts = { written: 0, failed: 0, errors: [], unread: 0 };
  let running = true;
  const write = async (n: number) => {
    let target = fixed;
    if (!target) {
      try {
        target = parseKubeconfig(await (kubeconfig as () => Promise<string>)());
      } catch {
        counts.unread++;
        return;
      }
    }
    await send(n, target);
  };
  const send = (n: number, { server, tls }: ReturnType<typeof parseKubeconfig>) =>
    new Promise<void>((resolve) => {
      const body = JSON.stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: `${prefix}-${n}` },
        data: { n: String(n) },
      });
      const req = request(
        {
          host: server.hostname,
          port: server.port || 443,
          path: '/api/v1/namespaces/default/configmaps',
          method: 'POST',
          agent: false,
          ...tls,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
          timeout: 10_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            if (res.statusCode === 201) counts.written++;
            else {
              // the Status message says which layer refused it (e.g. etcd's own error text)
              let message = '';
              try {
                message = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { message?: string }).message ?? '';
              } catch {
                /* not a Status */
              }
              counts.failed++;
              counts.errors.push(`${new Date().toISOString()} write ${n}: HTTP ${res.statusCode} ${message}`.trimEnd());
            }
            resolve();
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
      req.on('error', (err) => {
        counts.failed++;
        counts.errors.push(`${new Date().toISOString()} write ${n}: ${err.message}`);
        resolve();
      });
      req.end(body);
    });
  const loop = (async () => {
    for (let n = 0; running; n++) {
      const started = Date.now();
      await write(n);
      await new Promise((r) => setTimeout(r, Math.max(0, periodMs - (Date.now() - started))));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return counts;
    },
  };
}
