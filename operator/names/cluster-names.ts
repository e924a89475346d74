// Every name of what a Cluster becomes in the meta-cluster: its objects, its Secrets, their labels,
// and which component mounts which Secret. Names are public API: users and their tools refer to
// them, so they never change between releases. Every name starts with the Cluster's name and a
// dash; the CRD refuses Cluster names that would make two Clusters share one (see
// controllers/cluster/names.test.ts).

export const clusterLabel = 'kubeonkube.io/cluster';
export const componentLabel = 'app.kubernetes.io/component';
export const etcdMemberLabel = 'kubeonkube.io/etcd-member';
export const inputsHashAnnotation = 'kubeonkube.io/inputs-hash';

/** The certificate authorities of a Cluster, each in a Secret of its name. */
export const authorityNames = ['ca', 'etcd-ca', 'front-proxy-ca', 'kubelet-serving-ca'] as const;
export type Authority = (typeof authorityNames)[number];

/** Workloads, Services, claims, policies, jobs. */
export const names = {
  apiserver: (c: string) => `${c}-apiserver`,
  controllerManager: (c: string) => `${c}-controller-manager`,
  scheduler: (c: string) => `${c}-scheduler`,
  /** An etcd member's Pod, Service and claim. */
  etcdMember: (c: string, i: number) => `${c}-etcd-${i}`,
  etcdClient: (c: string) => `${c}-etcd`,
  etcdBackup: (c: string) => `${c}-etcd-backup`,
  etcdRestore: (c: string, i: number) => `${c}-etcd-${i}-restore`,
  tunnel: (c: string) => `${c}-tunnel`,
  egressPolicy: (c: string) => `${c}-egress`,
};

/** Secrets: CAs, key pairs, certificates, kubeconfigs, the join data. */
export const secrets = {
  authority: (c: string, authority: Authority) => `${c}-${authority}`,
  /** The service-account signing key pair. */
  serviceAccount: (c: string) => `${c}-sa`,
  adminKubeconfig: (c: string) => `${c}-kubeconfig`,
  userKubeconfig: (c: string, user: string) => `${c}-user-${user}-kubeconfig`,
  apiserverTls: (c: string) => `${c}-apiserver-tls`,
  apiserverEtcdClient: (c: string) => `${c}-apiserver-etcd-client`,
  apiserverKubeletClient: (c: string) => `${c}-apiserver-kubelet-client`,
  /** An immutable copy of the apiserver's kubelet client Secret, named by its content (what apiserver Pods mount). */
  apiserverKubeletClientCopy: (c: string, contentHash: string) => `${c}-apiserver-kubelet-client-${contentHash}`,
  frontProxyClient: (c: string) => `${c}-front-proxy-client`,
  /** The operator's own etcd client certificate (member management, snapshots). */
  etcdOperatorClient: (c: string) => `${c}-etcd-operator-client`,
  controllerManagerKubeconfig: (c: string) => `${c}-controller-manager-kubeconfig`,
  schedulerKubeconfig: (c: string) => `${c}-scheduler-kubeconfig`,
  tunnelServerTls: (c: string) => `${c}-tunnel-server-tls`,
  tunnelAgent: (c: string) => `${c}-tunnel-agent`,
  etcdMemberTls: (c: string, i: number) => `${c}-etcd-${i}-tls`,
  /** What a new worker needs: the endpoint, the CA bundle and a bootstrap token. */
  join: (c: string) => `${c}-join`,
};

/**
 * The Secrets each component's Pods mount. `kubeletClient` is the name of the Secret itself; the
 * apiserver mounts its current immutable copy (secrets.apiserverKubeletClientCopy) once made.
 */
export function mountedSecrets(c: string) {
  return {
    apiserver: {
      tls: secrets.apiserverTls(c),
      etcdClient: secrets.apiserverEtcdClient(c),
      kubeletClient: secrets.apiserverKubeletClient(c),
      frontProxyClient: secrets.frontProxyClient(c),
      serviceAccount: secrets.serviceAccount(c),
      tunnelServer: secrets.tunnelServerTls(c),
    },
    controllerManager: {
      kubeconfig: secrets.controllerManagerKubeconfig(c),
      ca: secrets.authority(c, 'ca'),
      kubeletServingCa: secrets.authority(c, 'kubelet-serving-ca'),
      serviceAccount: secrets.serviceAccount(c),
    },
    scheduler: { kubeconfig: secrets.schedulerKubeconfig(c) },
    etcdMember: (i: number) => ({ tls: secrets.etcdMemberTls(c, i) }),
    etcdBackup: { client: secrets.etcdOperatorClient(c) },
    tunnelAgent: { tls: secrets.tunnelAgent(c) },
  };
}

export type Component =
  | 'etcd'
  | 'etcd-backup'
  | 'etcd-restore'
  | 'kube-apiserver'
  | 'kube-controller-manager'
  | 'kube-scheduler'
  | 'pki'
  | 'kubeconfig';

/** The labels every object of a cluster carries; `kubeonkube.io/cluster` is what informers filter on. */
export function clusterLabels(cluster: string, component: Component): Record<string, string> {
  return {
    'app.kubernetes.io/name': component,
    'app.kubernetes.io/instance': cluster,
    [componentLabel]: component,
    'app.kubernetes.io/part-of': 'kubeonkube',
    'app.kubernetes.io/managed-by': 'kubeonkube',
    [clusterLabel]: cluster,
  };
}

/** The subset of labels that selects a component's pods (stable: selectors are immutable). */
export function selectorLabels(cluster: string, component: Component): Record<string, string> {
  return { [clusterLabel]: cluster, [componentLabel]: component };
}
