// A small client of the meta-cluster's API for what kubectl is too slow for: reading a Secret ten
// times a second. It authenticates as the test bed's admin, over one kept-alive connection.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { load } from 'js-yaml';
import { inject } from 'vitest';

interface Kubeconfig {
  clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
  users: { user: { 'client-certificate-data': string; 'client-key-data': string } }[];
}

/** Returns a function that reads key `key` of Secret `namespace/name` from the meta-cluster, decoded. */
export function secretReader(namespace: string, name: string, key: string): () => Promise<string> {
  const kc = load(readFileSync(inject('metaCluster').kubeconfig, 'utf8')) as Kubeconfig;
  const server = new URL(kc.clusters[0]!.cluster.server);
  const b64 = (s: string) => Buffer.from(s, 'base64');
  const agent = new Agent({
    keepAlive: true,
    ca: b64(kc.clusters[0]!.cluster['certificate-authority-data']),
    cert: b64(kc.users[0]!.user['client-certificate-data']),
    key: b64(kc.users[0]!.user['client-key-data']),
  });
  return () =>
    new Promise((resolve, reject) => {
      const req = request(
        {
          host: server.hostname,
          port: server.port || 443,
          path: `/api/v1/namespaces/${namespace}/secrets/${name}`,
          agent,
          timeout: 5000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            if (res.statusCode !== 200)
              return reject(new Error(`reading Secret ${namespace}/${name}: HTTP ${res.statusCode}`));
            const value = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data?: Record<string, string> })
              .data?.[key];
            if (value === undefined) return reject(new Error(`Secret ${namespace}/${name} has no ${key}`));
            resolve(Buffer.from(value, 'base64').toString('utf8'));
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
      req.on('error', reject);
      req.end();
    });
}
