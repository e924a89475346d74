// What a new worker needs to join a business cluster, published as the meta-cluster Secret
// `<cluster>-join`: a bootstrap kubeconfig (the Cluster's endpoint, its CA bundle, a bootstrap
// token) that a kubelet takes as is, and the few values its configuration needs.
import { randomInt } from 'node:crypto';
import { dump } from 'js-yaml';
import type { ControlPlaneSpec } from './control-plane.ts';
import { clusterDnsAddress, type BootstrapToken } from './addons.ts';

const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
const randomText = (length: number) => Array.from({ length }, () => alphabet[randomInt(alphabet.length)]).join('');

/**
 * How long a bootstrap token is accepted, and how long before its end the join Secret gets the next
 * one: a token that leaks mints node identities for a day at most, and a worker that read the join
 * Secret has eight hours to use what it read.
 */
export const bootstrapTokenTtlMs = 24 * 3600_000;
export const bootstrapTokenRenewBeforeMs = 8 * 3600_000;

/** A new bootstrap token: 6 + 16 characters of [a-z0-9], as the bootstrap token authenticator wants. */
export const newBootstrapToken = (now: Date): BootstrapToken => ({
  id: randomText(6),
  secret: randomText(16),
  expires: new Date(now.getTime() + bootstrapTokenTtlMs).toISOString().replace(/\.\d{3}Z$/, 'Z'),
});

/** The token a join Secret holds (its `token` and `token-expires`), if it holds a well-formed one. */
export function parseBootstrapToken(text: string | undefined, expires?: string): BootstrapToken | undefined {
  const m = /^([a-z0-9]{6})\.([a-z0-9]{16})$/.exec(text?.trim() ?? '');
  if (!m?.[1] || !m[2]) return undefined;
  const end = expires !== undefined && !Number.isNaN(Date.parse(expires)) ? expires : undefined;
  return { id: m[1], secret: m[2], expires: end };
}

/** When the join Secret is to get its next token; at once for a token without an end (made before tokens expired). */
export function tokenRenewAt(token: BootstrapToken): Date {
  return token.expires ? new Date(Date.parse(token.expires) - bootstrapTokenRenewBeforeMs) : new Date(0);
}

export function bootstrapKubeconfig(cluster: string, server: string, caBundle: string, token: BootstrapToken): string {
  return dump({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: cluster,
        cluster: { server, 'certificate-authority-data': Buffer.from(caBundle, 'utf8').toString('base64') },
      },
    ],
    users: [{ name: 'kubelet-bootstrap', user: { token: `${token.id}.${token.secret}` } }],
    contexts: [{ name: 'bootstrap', context: { cluster, user: 'kubelet-bootstrap' } }],
    'current-context': 'bootstrap',
  });
}

/** The join Secret's data (text): the bootstrap kubeconfig and what a kubelet's configuration needs. */
export function joinData(
  cluster: string,
  spec: ControlPlaneSpec,
  server: string,
  caBundle: string,
  token: BootstrapToken,
): Record<string, string> {
  return {
    kubeconfig: bootstrapKubeconfig(cluster, server, caBundle, token),
    'ca.crt': caBundle,
    token: `${token.id}.${token.secret}`,
    ...(token.expires ? { 'token-expires': token.expires } : {}),
    'cluster-dns': clusterDnsAddress(spec),
    'cluster-domain': spec.network.dnsDomain,
    'pod-cidr': spec.network.podCIDR,
  };
}
