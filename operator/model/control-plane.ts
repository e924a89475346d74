// Pure builders of what the templates render for one Cluster: names, images, replicas, flags,
// volumes and the hashes that roll pods when their inputs change. A function of the spec and of
// a few facts read from the meta-cluster (the apiserver Service's address, Secret hashes).
import { createHash } from 'node:crypto';
import {
  clusterLabel,
  clusterLabels,
  etcdMemberLabel,
  inputsHashAnnotation,
  mountedSecrets,
  names,
  selectorLabels,
  type Component,
} from '../names/cluster-names.ts';
import type { ClusterSpec } from '../api/cluster.generated.ts';

/** What of a Cluster's spec the control plane is built from (the CRD's generated type: defaults applied). */
export type ControlPlaneSpec = Pick<
  ClusterSpec,
  'version' | 'mode' | 'controlPlane' | 'network' | 'tunnel' | 'certificates' | 'endpoint' | 'etcd'
>;
export type ComponentSpec = NonNullable<NonNullable<ClusterSpec['controlPlane']>['apiServer']>;

export interface ControlPlaneFacts {
  name: string;
  namespace: string;
  /** Cluster UID: makes the etcd cluster token unique to this Cluster object. */
  uid: string;
  metaDnsDomain: string;
  /** ClusterIP of the apiserver Service, advertised to the business cluster as its `kubernetes` endpoint. */
  apiserverAddress?: string;
  /** Content hashes of each component's mounted Secrets; a change rolls its pods. */
  inputHashes: { apiserver: string; controllerManager: string; scheduler: string; etcd: string[] };
  /**
   * The etcd cluster was formed once: members start with initial-cluster-state=existing, so one
   * whose data is gone fails instead of forming a new, empty cluster.
   */
  etcdInitialized?: boolean;
  /** Namespace of the operator's pods, which the etcd NetworkPolicy lets in; unset when it runs outside. */
  operatorNamespace?: string | undefined;
  /** Voting members the apiserver is pointed at (status.etcd.size); the mode's count when unset. */
  etcdVoters?: number | undefined;
  /** The operator's own image: the tunnel server beside each apiserver runs it. */
  operatorImage: string;
  /** The immutable copy of the apiserver's kubelet client Secret its Pods mount (see the PKI unit); the Secret itself until made. */
  kubeletClientSecret?: string | undefined;
}

const defaultReplicas = {
  minimal: { apiServer: 1, controllerManager: 1, scheduler: 1, etcd: 1 },
  standard: { apiServer: 3, controllerManager: 2, scheduler: 2, etcd: 3 },
} as const;

/** The most etcd members any mode runs. */
export const maxEtcdMembers = Math.max(...Object.values(defaultReplicas).map((r) => r.etcd));

export function etcdMembers(spec: ControlPlaneSpec): number {
  return defaultReplicas[spec.mode].etcd;
}

export function replicas(spec: ControlPlaneSpec, component: 'apiServer' | 'controllerManager' | 'scheduler'): number {
  return spec.controlPlane?.[component]?.replicas ?? defaultReplicas[spec.mode][component];
}

export function images(spec: ControlPlaneSpec) {
  const cp = spec.controlPlane ?? {};
  return {
    apiServer: cp.apiServer?.image ?? `registry.k8s.io/kube-apiserver:${spec.version}`,
    controllerManager: cp.controllerManager?.image ?? `registry.k8s.io/kube-controller-manager:${spec.version}`,
    scheduler: cp.scheduler?.image ?? `registry.k8s.io/kube-scheduler:${spec.version}`,
    // upstream tags etcd <version>-<build>
    etcd: `registry.k8s.io/etcd:${spec.etcd.version.replace(/^v/, '')}-0`,
  };
}

/** `--flag=value` list: the base flags in order, each replaced in place by a user's extraArgs entry. */
export function flags(binary: string, base: Record<string, string>, extra: Record<string, string> = {}): string[] {
  const merged = { ...base, ...extra };
  return [binary, ...Object.entries(merged).map(([k, v]) => `--${k}=${v}`)];
}

export function placement(spec: ControlPlaneSpec) {
  return { nodeSelector: spec.controlPlane?.nodeSelector ?? {}, tolerations: spec.controlPlane?.tolerations ?? [] };
}

export function metadata(
  facts: ControlPlaneFacts,
  component: Component,
  name: string,
  extraLabels: Record<string, string> = {},
) {
  return { name, namespace: facts.namespace, labels: { ...clusterLabels(facts.name, component), ...extraLabels } };
}

const pki = '/etc/kubernetes/pki';

/** The DNS name of member `index`: its Service's, which never changes. */
export const etcdMemberHost = (
  facts: Pick<ControlPlaneFacts, 'name' | 'namespace' | 'metaDnsDomain'>,
  index: number,
): string => `${names.etcdMember(facts.name, index)}.${facts.namespace}.svc.${facts.metaDnsDomain}`;

export const etcdPeerURL = (
  facts: Pick<ControlPlaneFacts, 'name' | 'namespace' | 'metaDnsDomain'>,
  index: number,
): string => `https://${etcdMemberHost(facts, index)}:2380`;

/** The annotation on a member's claim naming the directory its current member keeps its data in. */
export const etcdDataDirAnnotation = 'kubeonkube.io/etcd-data-dir';
/** The annotation on a member's Pod naming the etcd member (hexadecimal ID) it was started for, once added by the operator. */
export const etcdMemberIdAnnotation = 'kubeonkube.io/etcd-member-id';
/**
 * The annotation on a member's Pod: a hash of what a restart would change (image, flags,
 * certificates, placement), not of what only matters to a first start (peers, data directory). A
 * Pod whose hash is not the wanted one is restarted, one member at a time.
 */
export const etcdTemplateHashAnnotation = 'kubeonkube.io/etcd-template-hash';
/** Flags etcd reads only when its data directory is empty, and the directory itself: they differ between members' incarnations. */
const firstStartFlags = ['--initial-cluster=', '--initial-cluster-state=', '--data-dir='];

/** How a member Pod joins a cluster that is already formed (otherwise it forms one with its peers). */
export interface EtcdJoin {
  /** `name=peerURL` of every started member, and of this one. */
  initialCluster: string[];
  /** Directory on the data volume: `data` for the members the cluster was formed with, `data-<id>` for one added later. */
  dataDir: string;
  /** Hexadecimal ID of the member the operator added for this Pod. */
  memberId?: string | undefined;
}

/**
 * How one member is started. `headless`: its Service was made headless by an earlier version and
 * stays so. `join`: the cluster is formed and this member joins it (state existing).
 */
export function etcdMemberContext(
  spec: ControlPlaneSpec,
  facts: ControlPlaneFacts,
  index: number,
  { headless = false, join }: { headless?: boolean; join?: EtcdJoin } = {},
) {
  const { name: cluster } = facts;
  const count = etcdMembers(spec);
  const member = names.etcdMember(cluster, index);
  const host = (i: number) => etcdMemberHost(facts, i);
  const peers =
    join?.initialCluster ??
    Array.from({ length: count }, (_, i) => `${names.etcdMember(cluster, i)}=${etcdPeerURL(facts, i)}`);
  const dataDir = join?.dataDir ?? 'data';
  const storage = spec.etcd.storage;
  const pod = {
    image: images(spec).etcd,
    placement: placement(spec),
    tlsSecret: mountedSecrets(cluster).etcdMember(index).tls,
    probeCommand: [
      'etcdctl',
      '--endpoints=https://127.0.0.1:2379',
      '--cacert=/etc/etcd/pki/ca.crt',
      '--cert=/etc/etcd/pki/tls.crt',
      '--key=/etc/etcd/pki/tls.key',
      '--dial-timeout=2s',
      '--command-timeout=3s',
      'endpoint',
      'health',
    ],
    dataVolume: storage.claimTemplate
      ? { name: 'data', persistentVolumeClaim: { claimName: member } }
      : { name: 'data', ...storage.volumeSource },
    command: flags('etcd', {
      name: member,
      'data-dir': `/var/lib/etcd/${dataDir}`,
      'listen-client-urls': 'https://0.0.0.0:2379',
      'advertise-client-urls': `https://${host(index)}:2379`,
      'listen-peer-urls': 'https://0.0.0.0:2380',
      'initial-advertise-peer-urls': `https://${host(index)}:2380`,
      'initial-cluster': peers.join(','),
      'initial-cluster-state': join || facts.etcdInitialized ? 'existing' : 'new',
      'initial-cluster-token': `${cluster}-${facts.uid}`,
      // not in the clear on the pod's address
      'listen-metrics-urls': 'http://127.0.0.1:2381',
      'cert-file': '/etc/etcd/pki/tls.crt',
      'key-file': '/etc/etcd/pki/tls.key',
      'trusted-ca-file': '/etc/etcd/pki/ca.crt',
      'client-cert-auth': 'true',
      'peer-cert-file': '/etc/etcd/pki/tls.crt',
      'peer-key-file': '/etc/etcd/pki/tls.key',
      'peer-trusted-ca-file': '/etc/etcd/pki/ca.crt',
      'peer-client-cert-auth': 'true',
      // a peer dials the member's Service IP, so a member sees the peer's Pod address, which no
      // certificate can name in advance; peers are still only those with a certificate of this
      // Cluster's etcd CA, and the NetworkPolicy lets only its members reach the peer port
      'peer-skip-client-san-verification': 'true',
      'auto-compaction-mode': 'periodic',
      'auto-compaction-retention': '1h',
      'snapshot-count': '10000',
    }),
  };
  const inputsHash = facts.inputHashes.etcd[index] ?? '';
  const templateHash = createHash('sha256')
    .update(
      JSON.stringify({
        ...pod,
        command: pod.command.filter((f) => !firstStartFlags.some((p) => f.startsWith(p))),
        inputsHash,
      }),
    )
    .digest('hex')
    .slice(0, 16);
  return {
    ...pod,
    member: metadata(facts, 'etcd', member, { [etcdMemberLabel]: member }),
    headless,
    selector: { ...selectorLabels(cluster, 'etcd'), [etcdMemberLabel]: member },
    annotations: {
      [inputsHashAnnotation]: inputsHash,
      [etcdTemplateHashAnnotation]: templateHash,
      ...(join?.memberId ? { [etcdMemberIdAnnotation]: join.memberId } : {}),
    },
    claim: storage.claimTemplate
      ? {
          name: member,
          annotations: { [etcdDataDirAnnotation]: dataDir },
          spec: {
            accessModes: ['ReadWriteOnce'],
            resources: storage.claimTemplate.resources,
            ...(storage.claimTemplate.storageClassName
              ? { storageClassName: storage.claimTemplate.storageClassName }
              : {}),
          },
        }
      : undefined,
  };
}

export function etcdNetworkPolicyContext(facts: ControlPlaneFacts) {
  return {
    policy: metadata(facts, 'etcd', names.etcdClient(facts.name)),
    etcdSelector: selectorLabels(facts.name, 'etcd'),
    apiserverSelector: selectorLabels(facts.name, 'kube-apiserver'),
    backupSelector: selectorLabels(facts.name, 'etcd-backup'),
    operatorNamespace: facts.operatorNamespace ?? '',
  };
}

/** The egress fence of every Pod of the Cluster; `openCidrs`: what the operator's policy opens besides. */
export function controlPlaneEgressPolicyContext(facts: ControlPlaneFacts, openCidrs: string[] = []) {
  return {
    policy: metadata(facts, 'kube-apiserver', names.egressPolicy(facts.name)),
    clusterSelector: { [clusterLabel]: facts.name },
    etcdSelector: selectorLabels(facts.name, 'etcd'),
    apiserverSelector: selectorLabels(facts.name, 'kube-apiserver'),
    openCidrs: openCidrs.map((cidr) => ({ ipBlock: { cidr } })),
  };
}

export function etcdClientServiceContext(facts: ControlPlaneFacts) {
  return {
    service: metadata(facts, 'etcd', names.etcdClient(facts.name)),
    selector: selectorLabels(facts.name, 'etcd'),
  };
}

export function apiserverServiceContext(spec: ControlPlaneSpec, facts: ControlPlaneFacts) {
  return {
    service: {
      ...metadata(facts, 'kube-apiserver', names.apiserver(facts.name)),
      annotations: spec.endpoint?.service?.annotations ?? {},
    },
    type: spec.endpoint?.service?.type ?? 'ClusterIP',
    selector: selectorLabels(facts.name, 'kube-apiserver'),
  };
}

/**
 * The tunnel Service: where agents dial in, of the endpoint's type. It lists apiserver Pods before
 * they are ready, so agents connect to a new server before it takes requests (its readiness waits
 * for that, see the tunnel-readiness unit).
 */
export function tunnelServiceContext(spec: ControlPlaneSpec, facts: ControlPlaneFacts) {
  return {
    service: {
      ...metadata(facts, 'kube-apiserver', names.tunnel(facts.name)),
      annotations: spec.endpoint?.service?.annotations ?? {},
    },
    type: spec.endpoint?.service?.type ?? 'ClusterIP',
    selector: selectorLabels(facts.name, 'kube-apiserver'),
    port: tunnelPort,
  };
}

/** The voting members the apiserver talks to: members 0 to etcdVoters-1 (all of the mode's once grown). */
export function etcdServers(spec: ControlPlaneSpec, facts: ControlPlaneFacts): string {
  return Array.from(
    { length: Math.min(facts.etcdVoters ?? etcdMembers(spec), etcdMembers(spec)) },
    (_, i) => `https://${etcdMemberHost(facts, i)}:2379`,
  ).join(',');
}

type DeploymentKey = 'apiServer' | 'controllerManager' | 'scheduler';

const deploymentParts: Record<
  DeploymentKey,
  {
    component: Component;
    name: (c: string) => string;
    hash: keyof Omit<ControlPlaneFacts['inputHashes'], 'etcd'>;
    requests: Record<string, string>;
  }
> = {
  apiServer: {
    component: 'kube-apiserver',
    name: names.apiserver,
    hash: 'apiserver',
    requests: { cpu: '100m', memory: '256Mi' },
  },
  controllerManager: {
    component: 'kube-controller-manager',
    name: names.controllerManager,
    hash: 'controllerManager',
    requests: { cpu: '50m', memory: '128Mi' },
  },
  scheduler: {
    component: 'kube-scheduler',
    name: names.scheduler,
    hash: 'scheduler',
    requests: { cpu: '50m', memory: '64Mi' },
  },
};

/** What every control-plane Deployment's template needs, whichever component it runs. */
function deploymentBase(spec: ControlPlaneSpec, facts: ControlPlaneFacts, key: DeploymentKey) {
  const part = deploymentParts[key];
  return {
    deployment: metadata(facts, part.component, part.name(facts.name)),
    selector: selectorLabels(facts.name, part.component),
    podLabels: clusterLabels(facts.name, part.component),
    annotations: { [inputsHashAnnotation]: facts.inputHashes[part.hash] },
    replicas: replicas(spec, key),
    image: images(spec)[key],
    placement: placement(spec),
    resources: spec.controlPlane?.[key]?.resources ?? { requests: part.requests },
  };
}

/** Where the tunnel server listens for agents (the apiserver Service's port `tunnel`). */
export const tunnelPort = 8132;
const tunnelDir = '/run/kubeonkube-tunnel';

export const tunnelEnabled = (spec: ControlPlaneSpec) => spec.tunnel?.enabled !== false;

export function apiserverContext(spec: ControlPlaneSpec, facts: ControlPlaneFacts) {
  const c = facts.name;
  const tunnel = tunnelEnabled(spec);
  return {
    ...deploymentBase(spec, facts, 'apiServer'),
    secrets: {
      ...mountedSecrets(c).apiserver,
      ...(facts.kubeletClientSecret ? { kubeletClient: facts.kubeletClientSecret } : {}),
    },
    // the tunnel server: a native sidecar (an init container that keeps running), started before
    // the apiserver and stopped after it, so the dials of its last requests are still relayed
    tunnel: tunnel
      ? {
          readinessGate: 'kubeonkube.io/tunnel-ready',
          image: facts.operatorImage,
          port: tunnelPort,
          dir: tunnelDir,
          env: [
            { name: 'KUBEONKUBE_TUNNEL_EGRESS_SOCKET', value: `${tunnelDir}/egress.sock` },
            { name: 'KUBEONKUBE_TUNNEL_PORT', value: String(tunnelPort) },
            { name: 'KUBEONKUBE_TUNNEL_ALLOWED_CIDRS', value: `${spec.network.podCIDR},${spec.network.serviceCIDR}` },
            { name: 'KUBEONKUBE_METRICS_ADDRESS', value: '0.0.0.0:8133' },
          ],
        }
      : undefined,
    command: flags(
      'kube-apiserver',
      {
        // dials into the business cluster (kubelets, Services, webhooks by Service) go through the tunnel
        ...(tunnel ? { 'egress-selector-config-file': `${tunnelDir}/egress-selector.json` } : {}),
        ...(facts.apiserverAddress ? { 'advertise-address': facts.apiserverAddress } : {}),
        'bind-address': '0.0.0.0',
        'secure-port': '6443',
        // a Pod being replaced keeps serving while the Service stops sending it new connections
        // (its readiness fails at once): a rollout refuses no request
        'shutdown-delay-duration': '10s',
        'etcd-servers': etcdServers(spec, facts),
        'etcd-cafile': `${pki}/etcd-ca.crt`,
        'etcd-certfile': `${pki}/etcd-client.crt`,
        'etcd-keyfile': `${pki}/etcd-client.key`,
        'client-ca-file': `${pki}/ca.crt`,
        'tls-cert-file': `${pki}/apiserver.crt`,
        'tls-private-key-file': `${pki}/apiserver.key`,
        'kubelet-client-certificate': `${pki}/kubelet-client.crt`,
        'kubelet-client-key': `${pki}/kubelet-client.key`,
        // kubelets serve certificates of a CA of their own (approved by the operator), which nothing
        // but this flag trusts: verified, never skipped
        'kubelet-certificate-authority': `${pki}/kubelet-ca.crt`,
        'kubelet-preferred-address-types': 'InternalIP,ExternalIP,Hostname',
        // new nodes authenticate with the bootstrap token of the join Secret until they have a certificate
        'enable-bootstrap-token-auth': 'true',
        'proxy-client-cert-file': `${pki}/front-proxy-client.crt`,
        'proxy-client-key-file': `${pki}/front-proxy-client.key`,
        'requestheader-client-ca-file': `${pki}/front-proxy-ca.crt`,
        'requestheader-allowed-names': 'front-proxy-client',
        'requestheader-extra-headers-prefix': 'X-Remote-Extra-',
        'requestheader-group-headers': 'X-Remote-Group',
        'requestheader-username-headers': 'X-Remote-User',
        'service-account-issuer': `https://kubernetes.default.svc.${spec.network.dnsDomain}`,
        'service-account-key-file': `${pki}/sa.pub`,
        'service-account-signing-key-file': `${pki}/sa.key`,
        'service-cluster-ip-range': spec.network.serviceCIDR,
        'authorization-mode': 'Node,RBAC',
        'enable-admission-plugins': 'NodeRestriction',
        'allow-privileged': 'true',
        'profiling': 'false',
      },
      spec.controlPlane?.apiServer?.extraArgs,
    ),
  };
}

function componentKubeconfigFlags(): Record<string, string> {
  const kubeconfig = '/etc/kubernetes/kubeconfig/value';
  return { kubeconfig, 'authentication-kubeconfig': kubeconfig, 'authorization-kubeconfig': kubeconfig };
}

export function controllerManagerContext(spec: ControlPlaneSpec, facts: ControlPlaneFacts) {
  const c = facts.name;
  return {
    ...deploymentBase(spec, facts, 'controllerManager'),
    secrets: mountedSecrets(c).controllerManager,
    command: flags(
      'kube-controller-manager',
      {
        ...componentKubeconfigFlags(),
        'bind-address': '0.0.0.0',
        'secure-port': '10257',
        'leader-elect': 'true',
        'cluster-name': c,
        'service-account-private-key-file': `${pki}/sa.key`,
        // every CA the business cluster's pods are to trust (two during a CA rotation), beside the kubeconfig
        'root-ca-file': '/etc/kubernetes/kubeconfig/ca.crt',
        // each signer named (the default pair may not be given beside them): kubelets' serving
        // certificates from their own CA, every client certificate from the cluster CA
        'cluster-signing-kubelet-serving-cert-file': `${pki}/kubelet-serving-ca.crt`,
        'cluster-signing-kubelet-serving-key-file': `${pki}/kubelet-serving-ca.key`,
        'cluster-signing-kubelet-client-cert-file': `${pki}/ca.crt`,
        'cluster-signing-kubelet-client-key-file': `${pki}/ca.key`,
        'cluster-signing-kube-apiserver-client-cert-file': `${pki}/ca.crt`,
        'cluster-signing-kube-apiserver-client-key-file': `${pki}/ca.key`,
        'cluster-signing-legacy-unknown-cert-file': `${pki}/ca.crt`,
        'cluster-signing-legacy-unknown-key-file': `${pki}/ca.key`,
        // kubelets renew at 70-90% of it: how soon each moves to a new CA after a rotation
        'cluster-signing-duration': spec.certificates.kubeletValidity,
        'use-service-account-credentials': 'true',
        'controllers': '*,bootstrapsigner,tokencleaner',
        'service-cluster-ip-range': spec.network.serviceCIDR,
        'cluster-cidr': spec.network.podCIDR,
        'allocate-node-cidrs': 'true',
        'profiling': 'false',
      },
      spec.controlPlane?.controllerManager?.extraArgs,
    ),
  };
}

export function schedulerContext(spec: ControlPlaneSpec, facts: ControlPlaneFacts) {
  const c = facts.name;
  return {
    ...deploymentBase(spec, facts, 'scheduler'),
    secrets: mountedSecrets(c).scheduler,
    command: flags(
      'kube-scheduler',
      {
        ...componentKubeconfigFlags(),
        'bind-address': '0.0.0.0',
        'secure-port': '10259',
        'leader-elect': 'true',
        'profiling': 'false',
      },
      spec.controlPlane?.scheduler?.extraArgs,
    ),
  };
}
