// What the Node-Operator needs of a Machine's Cluster, read through the API (never through the
// Cluster controller's code): whether its control plane is Ready and which version it runs, what a
// host joins with (the join Secret, checked for its shape: it is in the tenant's namespace, and its
// content only ever goes to the tenant's own host), and a client of the business cluster as the
// operator's own user, signed in memory by the Cluster's CA, for the Nodes and their Leases.
import {
  CertificatesV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  VersionApi,
  type KubeConfig,
  type V1Lease,
  type V1Node,
  type V1Secret,
} from '@kubernetes/client-node';
import { isIP } from 'node:net';
import { clusterResource, type Cluster } from '../../api/cluster.generated.ts';
import { BusinessClients, BusinessObjectApi, type BusinessClient } from '../../business/clients.ts';
import { listBounded } from '../../business/bounded-list.ts';
import { decode } from '../../kube/secret-data.ts';
import { isReady } from '../../kube/ready.ts';
import { names, secrets } from '../../names/cluster-names.ts';
import { readAuthority } from '../../pki/authority-secret.ts';
import { trustBundle } from '../../pki/ca-rotation.ts';
import { pemCertificates } from '../../pki/certificates.ts';
import type { NodeHealth } from './repair-policy.ts';

/** What a host joins a business cluster with (the join Secret's data). */
export interface JoinSettings {
  bootstrapKubeconfig: string;
  caBundle: string;
  clusterDNS: string;
  clusterDomain: string;
}

export class JoinDataError extends Error {}

const maxKubeconfigBytes = 16 << 10;
const maxCaBytes = 64 << 10;

/** The join Secret's data, each value checked for its shape; throws JoinDataError naming what is wrong. */
export function parseJoinSecret(secret: V1Secret | undefined, name: string): JoinSettings {
  if (!secret) throw new JoinDataError(`Secret ${name} does not exist yet`);
  const kubeconfig = decode(secret, 'kubeconfig');
  const ca = decode(secret, 'ca.crt');
  const dns = decode(secret, 'cluster-dns')?.trim();
  const domain = decode(secret, 'cluster-domain')?.trim();
  if (!kubeconfig || kubeconfig.length > maxKubeconfigBytes || !/^apiVersion: v1$/m.test(kubeconfig))
    throw new JoinDataError(`Secret ${name}: kubeconfig is missing or not a kubeconfig`);
  if (!ca || ca.length > maxCaBytes || pemCertificates(ca).length === 0)
    throw new JoinDataError(`Secret ${name}: ca.crt is missing or holds no certificate`);
  if (!dns || isIP(dns) === 0) throw new JoinDataError(`Secret ${name}: cluster-dns is not an IP address`);
  if (!domain || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(domain))
    throw new JoinDataError(`Secret ${name}: cluster-domain is not a DNS name`);
  return { bootstrapKubeconfig: kubeconfig, caBundle: ca, clusterDNS: dns, clusterDomain: domain };
}

export interface ClusterView {
  cluster: Cluster;
  ready: boolean;
  /** The version the control plane runs (the spec's until it ran one). */
  kubernetesVersion: string;
}

const notFound = (err: unknown) => (err as { code?: number }).code === 404;

/**
 * What a Machine joins: a Cluster's business cluster, or the meta-cluster itself. The same four
 * questions either way: is it Ready and at which version, what a host joins it with, and a client
 * of it for the Nodes.
 */
export interface JoinTarget {
  /** namespace/cluster, or `meta`: one repair at a time and one list of Nodes per key. */
  key: string;
  /** For messages: "Cluster ns/dev", "the meta-cluster". */
  describe: string;
  view(): Promise<{ ready: boolean; kubernetesVersion: string } | undefined>;
  join(): Promise<JoinSettings>;
  client(now: Date): Promise<BusinessClient | undefined>;
}

/** Where the platform keeps what a host joins the meta-cluster with (a Secret of the join Secret's keys). */
export interface MetaJoin {
  namespace: string;
  secret: string;
}

export class ClusterAccess {
  readonly #kc: KubeConfig;
  readonly #meta: MetaJoin | undefined;
  #metaVersion: { at: number; version: string } | undefined;
  readonly #custom: CustomObjectsApi;
  readonly #core: CoreV1Api;
  readonly #business = new BusinessClients();
  /** Each Cluster's Nodes and Leases, read at most every few seconds for all its Machines. */
  readonly #health = new Map<string, { at: number; nodes: Map<string, NodeHealth> }>();

  constructor(kc: KubeConfig, meta?: MetaJoin) {
    this.#kc = kc;
    this.#meta = meta;
    this.#custom = kc.makeApiClient(CustomObjectsApi);
    this.#core = kc.makeApiClient(CoreV1Api);
  }

  /**
   * What a Machine of `namespace` joins, or why it may not: a Machine without a Cluster joins the
   * meta-cluster, and only from the platform's namespace (the one of the meta join Secret): a node
   * of the meta-cluster runs every tenant's control planes, so no tenant may add one.
   */
  target(namespace: string, clusterName: string | undefined): JoinTarget | { refused: string } {
    if (clusterName !== undefined)
      return {
        key: `${namespace}/${clusterName}`,
        describe: `Cluster ${namespace}/${clusterName}`,
        view: () => this.cluster(namespace, clusterName),
        join: () => this.join(namespace, clusterName),
        client: (now) => this.business(namespace, clusterName, now),
      };
    const meta = this.#meta;
    if (!meta)
      return {
        refused:
          'the operator has no join data for the meta-cluster (KUBEONKUBE_META_JOIN_SECRET): set spec.clusterName',
      };
    if (namespace !== meta.namespace)
      return {
        refused: `a Machine of the meta-cluster itself (no spec.clusterName) is accepted only in namespace ${meta.namespace}`,
      };
    return {
      key: 'meta',
      describe: 'the meta-cluster',
      view: async () => ({ ready: true, kubernetesVersion: await this.#metaKubernetesVersion() }),
      join: async () =>
        parseJoinSecret(await this.#secret(meta.namespace, meta.secret), `${meta.namespace}/${meta.secret}`),
      client: () => Promise.resolve(this.#metaClient()),
    };
  }

  /** The meta-cluster as a business cluster: the operator's own credentials. */
  #metaClient(): BusinessClient {
    const kc = this.#kc;
    return {
      kc,
      server: kc.getCurrentCluster()?.server ?? '',
      objects: kc.makeApiClient(BusinessObjectApi),
      core: kc.makeApiClient(CoreV1Api),
      certificates: kc.makeApiClient(CertificatesV1Api),
    };
  }

  async #metaKubernetesVersion(): Promise<string> {
    if (this.#metaVersion && Date.now() - this.#metaVersion.at < 600_000) return this.#metaVersion.version;
    const version = (await this.#kc.makeApiClient(VersionApi).getCode()).gitVersion.replace(/[-+].*$/, '');
    this.#metaVersion = { at: Date.now(), version };
    return version;
  }

  async cluster(namespace: string, name: string): Promise<ClusterView | undefined> {
    const [group = '', version = ''] = clusterResource.apiVersion.split('/');
    let cluster: Cluster;
    try {
      cluster = (await this.#custom.getNamespacedCustomObject({
        group,
        version,
        namespace,
        plural: clusterResource.plural,
        name,
      })) as Cluster;
    } catch (err) {
      if (notFound(err)) return undefined;
      throw err;
    }
    return {
      cluster,
      ready: isReady(cluster),
      kubernetesVersion: cluster.status?.version ?? cluster.spec.version,
    };
  }

  async join(namespace: string, cluster: string): Promise<JoinSettings> {
    const name = secrets.join(cluster);
    return parseJoinSecret(await this.#secret(namespace, name), `${namespace}/${name}`);
  }

  /** The business client, once the Cluster's CA and its apiserver Service exist. */
  async business(namespace: string, cluster: string, now: Date): Promise<BusinessClient | undefined> {
    const caName = secrets.authority(cluster, 'ca');
    const caSecret = await this.#secret(namespace, caName);
    if (!caSecret) return undefined;
    let service;
    try {
      service = await this.#core.readNamespacedService({ namespace, name: names.apiserver(cluster) });
    } catch (err) {
      if (notFound(err)) return undefined;
      throw err;
    }
    const address = service.spec?.clusterIP;
    if (!address || address === 'None') return undefined;
    const ca = await readAuthority(caName, caSecret);
    const server = `https://${address.includes(':') ? `[${address}]` : address}:6443`;
    return this.#business.forCluster(`${namespace}/${cluster}`, server, ca.signer, trustBundle(ca), now);
  }

  /** Health of each Node of the business cluster by name, read at most every `maxAgeMs`. */
  async nodeHealth(
    key: string,
    client: BusinessClient,
    now: number,
    maxAgeMs = 5000,
  ): Promise<Map<string, NodeHealth>> {
    const known = this.#health.get(key);
    if (known && now - known.at < maxAgeMs) return known.nodes;
    const coordination = client.kc.makeApiClient(CoordinationV1Api);
    const [nodes, leases] = await Promise.all([
      listBounded<V1Node>((page) => client.core.listNode(page)),
      listBounded<V1Lease>((page) => coordination.listNamespacedLease({ namespace: 'kube-node-lease', ...page })),
    ]);
    const renewed = new Map(
      leases.map((l) => [l.metadata?.name ?? '', l.spec?.renewTime ? new Date(l.spec.renewTime).getTime() : undefined]),
    );
    const health = new Map<string, NodeHealth>();
    for (const node of nodes) {
      const name = node.metadata?.name ?? '';
      const at = renewed.get(name);
      health.set(name, { registered: true, ready: isReady(node), leaseAgeMs: at === undefined ? undefined : now - at });
    }
    this.#health.set(key, { at: now, nodes: health });
    return health;
  }

  forget(key: string): void {
    this.#business.forget(key);
    this.#health.delete(key);
  }

  async #secret(namespace: string, name: string): Promise<V1Secret | undefined> {
    try {
      return await this.#core.readNamespacedSecret({ namespace, name });
    } catch (err) {
      if (notFound(err)) return undefined;
      throw err;
    }
  }
}
