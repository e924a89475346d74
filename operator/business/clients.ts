// Clients of the business clusters: one per Cluster, built from the operator's own certificate for
// it (identity.ts) and the Cluster's CA bundle, pointed at the apiserver Service's ClusterIP (where
// the operator reaches it, inside or outside the meta-cluster, whatever the user-facing endpoint
// is). Nothing else goes into it: no kubeconfig text, so no credential plugin, token file, proxy or
// skipped verification. Rebuilt when the certificate, the CAs or the address change (a CA
// rotation), dropped when the Cluster goes.
import { createHash } from 'node:crypto';
import type { CertificateAndKey } from '../pki/certificates.ts';
import { OperatorIdentities } from './identity.ts';
import {
  CertificatesV1Api,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  type RequestContext,
} from '@kubernetes/client-node';

/** The generic object client, which also says whether a kind is namespaced (discovery, cached per client). */
export class BusinessObjectApi extends KubernetesObjectApi {
  /** Undefined for a kind the group does not serve; a group or version not served throws (HTTP 404). */
  async namespaced(apiVersion: string, kind: string): Promise<boolean | undefined> {
    return (await this.resource(apiVersion, kind))?.namespaced;
  }
}

export interface BusinessClient {
  kc: KubeConfig;
  objects: BusinessObjectApi;
  core: CoreV1Api;
  certificates: CertificatesV1Api;
  /** The apiserver this client talks to. */
  server: string;
}

/** How long one request to a business cluster may take (its apiserver waits up to a minute on an etcd without quorum). */
export const businessRequestTimeoutMs = 10_000;

/**
 * A KubeConfig whose every request has a deadline: a business cluster that does not answer must
 * not hold up its Cluster's reconcile (the control plane it would repair, for one).
 */
class DeadlineKubeConfig extends KubeConfig {
  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    context.setSignal(AbortSignal.timeout(businessRequestTimeoutMs));
  }
}

/** What a business client is made of: all of it issued or verified by the operator. */
export interface BusinessCredentials {
  server: string;
  /** The CAs the apiserver's serving certificate must chain to (PEM). */
  caBundle: string;
  /** The operator's client certificate and key (PEM). */
  certificate: string;
  privateKey: string;
}

const b64 = (pem: string) => Buffer.from(pem, 'utf8').toString('base64');

/** A KubeConfig of these credentials alone: one cluster, one user with a client certificate. */
export function businessKubeConfig(credentials: BusinessCredentials): KubeConfig {
  const kc = new DeadlineKubeConfig();
  kc.loadFromOptions({
    clusters: [
      { name: 'business', server: credentials.server, caData: b64(credentials.caBundle), skipTLSVerify: false },
    ],
    users: [
      { name: 'kubeonkube-operator', certData: b64(credentials.certificate), keyData: b64(credentials.privateKey) },
    ],
    contexts: [{ name: 'business', cluster: 'business', user: 'kubeonkube-operator' }],
    currentContext: 'business',
  });
  return kc;
}

export class BusinessClients {
  readonly #clients = new Map<string, { hash: string; client: BusinessClient }>();
  readonly #identities = new OperatorIdentities();

  /**
   * The client of Cluster `key` (namespace/name) at `server`, as the operator's own user: a
   * certificate signed by `signer` (the Cluster's CA that signs now), the server verified against
   * `caBundle`.
   */
  async forCluster(
    key: string,
    server: string,
    signer: CertificateAndKey,
    caBundle: string,
    now: Date,
  ): Promise<BusinessClient> {
    const identity = await this.#identities.get(key, signer, now);
    return this.get(key, { server, caBundle, certificate: identity.certificate, privateKey: identity.privateKey });
  }

  /** The client of Cluster `key` (namespace/name) for these credentials. */
  get(key: string, credentials: BusinessCredentials): BusinessClient {
    const hash = createHash('sha256');
    for (const part of [credentials.server, credentials.caBundle, credentials.certificate, credentials.privateKey])
      hash.update(part).update('\0');
    const digest = hash.digest('hex');
    const known = this.#clients.get(key);
    if (known?.hash === digest) return known.client;
    const kc = businessKubeConfig(credentials);
    const client = {
      kc,
      server: credentials.server,
      // namespaced objects without a namespace go to "default", the admin kubeconfig's
      objects: kc.makeApiClient(BusinessObjectApi),
      core: kc.makeApiClient(CoreV1Api),
      certificates: kc.makeApiClient(CertificatesV1Api),
    };
    this.#clients.set(key, { hash: digest, client });
    return client;
  }

  forget(key: string): void {
    this.#clients.delete(key);
    this.#identities.forget(key);
  }
}
