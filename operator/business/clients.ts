// Clients of the business clusters: one per Cluster, built from its admin kubeconfig Secret and
// pointed at the apiserver Service's ClusterIP (where the operator reaches it, inside or outside
// the meta-cluster, whatever the user-facing endpoint is). Rebuilt when the Secret or the address
// changes (a renewed certificate, a CA rotation), dropped when the Cluster goes.
import { createHash } from 'node:crypto';
import { CertificatesV1Api, CoreV1Api, KubeConfig, KubernetesObjectApi, type RequestContext } from '@kubernetes/client-node';

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

/** A kubeconfig's text with its (only) cluster's server replaced; throws on a kubeconfig without one. */
export function businessKubeConfig(kubeconfig: string, server: string): KubeConfig {
  const kc = new DeadlineKubeConfig();
  kc.loadFromString(kubeconfig);
  const current = kc.getCurrentCluster();
  if (!current) throw new Error('the admin kubeconfig names no cluster');
  // KubeConfig's clusters are read-only records: rebuild the list with the one server replaced
  kc.loadFromOptions({
    clusters: kc.getClusters().map((c) => (c.name === current.name ? { ...c, server } : c)),
    users: kc.getUsers(),
    contexts: kc.getContexts(),
    currentContext: kc.getCurrentContext(),
  });
  return kc;
}

export class BusinessClients {
  readonly #clients = new Map<string, { hash: string; client: BusinessClient }>();

  /** The client of Cluster `key` (namespace/name) for this admin kubeconfig and server. */
  get(key: string, kubeconfig: string, server: string): BusinessClient {
    const hash = createHash('sha256').update(kubeconfig).update('\0').update(server).digest('hex');
    const known = this.#clients.get(key);
    if (known?.hash === hash) return known.client;
    const kc = businessKubeConfig(kubeconfig, server);
    const client = {
      kc,
      server,
      // namespaced objects without a namespace go to "default", the admin kubeconfig's
      objects: kc.makeApiClient(BusinessObjectApi),
      core: kc.makeApiClient(CoreV1Api),
      certificates: kc.makeApiClient(CertificatesV1Api),
    };
    this.#clients.set(key, { hash, client });
    return client;
  }

  forget(key: string): void {
    this.#clients.delete(key);
  }
}
