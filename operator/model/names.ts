// Names and labels of what a Cluster becomes in the meta-cluster. Names are public API: users and
// their tools refer to them, so they never change between releases.

export const clusterLabel = 'kubeonkube.io/cluster';
export const componentLabel = 'app.kubernetes.io/component';
export const etcdMemberLabel = 'kubeonkube.io/etcd-member';
export const inputsHashAnnotation = 'kubeonkube.io/inputs-hash';

export const names = {
  apiserver: (c: string) => `${c}-apiserver`,
  controllerManager: (c: string) => `${c}-controller-manager`,
  scheduler: (c: string) => `${c}-scheduler`,
  etcdMember: (c: string, i: number) => `${c}-etcd-${i}`,
  etcdClient: (c: string) => `${c}-etcd`,
  etcdBackup: (c: string) => `${c}-etcd-backup`,
  etcdRestore: (c: string, i: number) => `${c}-etcd-${i}-restore`,
  tunnel: (c: string) => `${c}-tunnel`,
  egressPolicy: (c: string) => `${c}-egress`,
};

export type Component = 'etcd' | 'etcd-backup' | 'etcd-restore' | 'kube-apiserver' | 'kube-controller-manager' | 'kube-scheduler' | 'pki' | 'kubeconfig';

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
