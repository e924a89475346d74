// Who may read /metrics: the operator's metrics name every tenant's namespace and Cluster, so with
// KUBEONKUBE_METRICS_AUTH=kubernetes (the chart's default) a reader presents a bearer token that
// the meta-cluster authenticates (TokenReview) and authorizes for GET on the non-resource URL
// /metrics (SubjectAccessReview), as kube-rbac-proxy does. Decisions are remembered for a minute
// per token (by its digest, never the token itself), so a scrape every few seconds costs no
// request to the apiserver.
import { createHash } from 'node:crypto';
import { AuthenticationV1Api, AuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';

export interface MetricsVerdict {
  status: 200 | 401 | 403 | 503;
  message: string;
}

export class MetricsAuthorizer {
  readonly #authn: AuthenticationV1Api;
  readonly #authz: AuthorizationV1Api;
  readonly #decided = new Map<string, { verdict: MetricsVerdict; until: number }>();
  readonly #ttlMs: number;

  constructor(kc: KubeConfig, ttlMs = 60_000) {
    this.#authn = kc.makeApiClient(AuthenticationV1Api);
    this.#authz = kc.makeApiClient(AuthorizationV1Api);
    this.#ttlMs = ttlMs;
  }

  /** The verdict on a request with this Authorization header. */
  async authorize(authorization: string | undefined, now = Date.now()): Promise<MetricsVerdict> {
    const token = /^Bearer\s+(\S{1,8192})$/i.exec(authorization ?? '')?.[1];
    if (!token) return { status: 401, message: 'a bearer token is required' };
    const key = createHash('sha256').update(token).digest('hex');
    const known = this.#decided.get(key);
    if (known && known.until > now) return known.verdict;
    const verdict = await this.#decide(token);
    // an apiserver that did not answer is asked again next time
    if (verdict.status !== 503) {
      if (this.#decided.size >= 1000) this.#decided.delete(this.#decided.keys().next().value!);
      this.#decided.set(key, { verdict, until: now + this.#ttlMs });
    }
    return verdict;
  }

  async #decide(token: string): Promise<MetricsVerdict> {
    try {
      const review = await this.#authn.createTokenReview({
        body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token } },
      });
      const user = review.status?.user;
      if (!review.status?.authenticated || !user?.username)
        return { status: 401, message: 'the token was not accepted' };
      const access = await this.#authz.createSubjectAccessReview({
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: {
            user: user.username,
            groups: user.groups ?? [],
            uid: user.uid ?? '',
            extra: user.extra ?? {},
            nonResourceAttributes: { path: '/metrics', verb: 'get' },
          },
        },
      });
      return access.status?.allowed
        ? { status: 200, message: 'ok' }
        : { status: 403, message: `${user.username} may not get /metrics` };
    } catch {
      return { status: 503, message: 'the meta-cluster could not be asked who this is' };
    }
  }
}
