// The PKI of one business cluster, as a plan: which CAs exist, which leaf certificates each
// component needs (subject, SANs, usage, lifetime), and in which Secret each lives. Pure, so the
// operator can compare every live certificate against what it should say (see renewal.ts).
import { isIP } from 'node:net';
import { firstAddress } from './addresses.ts';
import type { CertificateSpec } from './certificates.ts';
import { names, secrets, type Authority } from '../names/cluster-names.ts';

/**
 * The CAs of a Cluster: `ca` signs the apiserver, its clients and the kubelets' client
 * certificates; `kubelet-serving-ca` signs only kubelets' serving certificates and is trusted only
 * by the apiserver, for kubelets, so no certificate a node obtains is valid for anything else.
 */
export type { Authority };

export interface ClusterPkiInput {
  name: string;
  namespace: string;
  /** DNS domain of the meta-cluster, where the control plane's Services live. */
  metaDnsDomain: string;
  /** Service range and DNS domain of the business cluster. */
  serviceCIDR: string;
  dnsDomain: string;
  /**
   * Where clients outside the meta-cluster reach the apiserver (endpoint.host, a node address, a
   * load balancer's ingress or the ClusterIP, with its port); undefined while not known yet.
   */
  endpoint?: { host: string; port: number } | undefined;
  /** Addresses of the apiserver Service in the meta-cluster (ClusterIP, load-balancer ingress), once known. */
  apiserverAddresses: string[];
  /** Addresses of the tunnel Service (ClusterIP, load-balancer ingress), once known. */
  tunnelAddresses?: string[];
  /** Where agents are told to dial the tunnel (a node's address with a NodePort, a load balancer's name or address). */
  tunnelEndpoint?: { host: string } | undefined;
  etcdMembers: number;
  users: { name: string; groups: string[]; validityMs: number }[];
  validityMs: number;
  /** The reverse tunnel runs: its server and agent get certificates. */
  tunnel?: boolean;
}

/** The user the apiserver is to kubelets (its client certificate's common name); bound to kubelet-api-admin in the business cluster. */
export const apiserverKubeletClientUser = 'kube-apiserver-kubelet-client';
/** The common name a tunnel agent's certificate carries; the tunnel server accepts no other. */
export const tunnelAgentName = 'kubeonkube-tunnel-agent';

export interface PlannedCertificate {
  /** Secret that holds it: tls.crt, tls.key and ca.crt, or a kubeconfig under `value`. */
  secretName: string;
  issuer: Authority;
  /** The CAs its holder trusts for its peers (its ca.crt), when not its issuer's. */
  trusts?: Authority;
  spec: CertificateSpec;
  /**
   * Kubeconfig Secrets carry a kubeconfig for `server` instead of a bare TLS pair; a server of
   * undefined means the endpoint is not known yet, and the kubeconfig waits for it.
   */
  kubeconfig?: { server: string | undefined };
}

export const authorities: { authority: Authority; commonName: string }[] = [
  { authority: 'ca', commonName: 'kubernetes' },
  { authority: 'etcd-ca', commonName: 'etcd-ca' },
  { authority: 'front-proxy-ca', commonName: 'front-proxy-ca' },
  { authority: 'kubelet-serving-ca', commonName: 'kubelet-serving-ca' },
];

/** Every DNS name a Service answers to, from the short name to the fully qualified one. */
export function serviceDnsNames(service: string, namespace: string, domain: string): string[] {
  return [service, `${service}.${namespace}`, `${service}.${namespace}.svc`, `${service}.${namespace}.svc.${domain}`];
}

/** Where the control plane's own clients (controller-manager, scheduler) reach the apiserver. */
export function inClusterServer(input: Pick<ClusterPkiInput, 'name' | 'namespace' | 'metaDnsDomain'>): string {
  return `https://${names.apiserver(input.name)}.${input.namespace}.svc.${input.metaDnsDomain}:6443`;
}

/** Where users reach the apiserver from outside the meta-cluster; undefined while not known. */
export function externalServer(input: Pick<ClusterPkiInput, 'endpoint'>): string | undefined {
  const e = input.endpoint;
  if (!e) return undefined;
  return `https://${isIP(e.host) === 6 ? `[${e.host}]` : e.host}:${e.port}`;
}

/**
 * The Secret of every certificate plannedCertificates() holds for a Cluster of this shape, whatever
 * its addresses and lifetimes: what the PKI wants to exist (a test holds the two together).
 */
export function plannedSecretNames(shape: {
  name: string;
  etcdMembers: number;
  tunnel: boolean;
  users: readonly string[];
}): string[] {
  const n = shape.name;
  return [
    secrets.apiserverTls(n),
    secrets.apiserverEtcdClient(n),
    secrets.apiserverKubeletClient(n),
    secrets.frontProxyClient(n),
    secrets.etcdOperatorClient(n),
    secrets.controllerManagerKubeconfig(n),
    secrets.schedulerKubeconfig(n),
    secrets.adminKubeconfig(n),
    ...(shape.tunnel ? [secrets.tunnelServerTls(n), secrets.tunnelAgent(n)] : []),
    ...Array.from({ length: shape.etcdMembers }, (_, i) => secrets.etcdMemberTls(n, i)),
    ...shape.users.map((u) => secrets.userKubeconfig(n, u)),
  ];
}

export function plannedCertificates(input: ClusterPkiInput): PlannedCertificate[] {
  const { name, namespace, metaDnsDomain, validityMs } = input;
  const apiserverService = names.apiserver(name);
  const leaf = (
    secretName: string,
    issuer: Authority,
    spec: Omit<CertificateSpec, 'validityMs'>,
    kubeconfigServer?: string,
  ): PlannedCertificate => ({
    secretName,
    issuer,
    spec: { validityMs, ...spec },
    ...(kubeconfigServer ? { kubeconfig: { server: kubeconfigServer } } : {}),
  });
  const endpointHost = input.endpoint?.host;
  const endpointIsIP = endpointHost !== undefined && isIP(endpointHost) !== 0;

  // every name the apiserver Service is reached by, from the meta-cluster, the business cluster and outside
  const serviceNames = {
    dnsNames: [
      ...serviceDnsNames(apiserverService, namespace, metaDnsDomain),
      ...serviceDnsNames('kubernetes', 'default', input.dnsDomain),
      ...(endpointHost && !endpointIsIP ? [endpointHost] : []),
      'localhost',
    ],
    ipAddresses: [
      ...new Set([
        firstAddress(input.serviceCIDR),
        ...input.apiserverAddresses,
        ...(endpointHost && endpointIsIP ? [endpointHost] : []),
        '127.0.0.1',
      ]),
    ],
  };
  const plan: PlannedCertificate[] = [
    leaf(secrets.apiserverTls(name), 'ca', { commonName: 'kube-apiserver', usage: 'server', ...serviceNames }),
    leaf(secrets.apiserverEtcdClient(name), 'etcd-ca', { commonName: 'kube-apiserver-etcd-client', usage: 'client' }),
    // kubelets authorize the apiserver's calls (logs, exec) through the business cluster's RBAC:
    // the business wing's built-in add-ons bind this user to system:kubelet-api-admin there, and to nothing more
    // its ca.crt is what the apiserver trusts kubelets' serving certificates by, and nothing else does
    {
      ...leaf(secrets.apiserverKubeletClient(name), 'ca', { commonName: apiserverKubeletClientUser, usage: 'client' }),
      trusts: 'kubelet-serving-ca',
    },
    leaf(secrets.frontProxyClient(name), 'front-proxy-ca', { commonName: 'front-proxy-client', usage: 'client' }),
    // the operator's own identity towards etcd, for member management
    leaf(secrets.etcdOperatorClient(name), 'etcd-ca', { commonName: 'kubeonkube-operator', usage: 'client' }),
    leaf(
      secrets.controllerManagerKubeconfig(name),
      'ca',
      { commonName: 'system:kube-controller-manager', usage: 'client' },
      inClusterServer(input),
    ),
    leaf(
      secrets.schedulerKubeconfig(name),
      'ca',
      { commonName: 'system:kube-scheduler', usage: 'client' },
      inClusterServer(input),
    ),
    {
      secretName: secrets.adminKubeconfig(name),
      issuer: 'ca',
      spec: { commonName: 'kubeonkube-admin', organizations: ['system:masters'], usage: 'client', validityMs },
      kubeconfig: { server: externalServer(input) },
    },
  ];
  if (input.tunnel) {
    // the agents dial the tunnel Service (its own, which also lists apiserver Pods not ready yet)
    const tunnelService = names.tunnel(name);
    // and every address agents are told to dial, or an agent outside the meta-cluster could not verify it
    const dialed = input.tunnelEndpoint?.host;
    const dialedIsIP = dialed !== undefined && isIP(dialed) !== 0;
    plan.push(
      leaf(secrets.tunnelServerTls(name), 'ca', {
        commonName: 'kubeonkube-tunnel-server',
        usage: 'server',
        dnsNames: [
          ...new Set([
            ...serviceDnsNames(tunnelService, namespace, metaDnsDomain),
            'localhost',
            ...(dialed && !dialedIsIP ? [dialed] : []),
          ]),
        ],
        ipAddresses: [
          ...new Set([...(input.tunnelAddresses ?? []), '127.0.0.1', ...(dialed && dialedIsIP ? [dialed] : [])]),
        ],
      }),
    );
    plan.push(leaf(secrets.tunnelAgent(name), 'ca', { commonName: tunnelAgentName, usage: 'client' }));
  }
  for (let i = 0; i < input.etcdMembers; i++) {
    const member = names.etcdMember(name, i);
    // one certificate serves clients and peers, and authenticates the member to its peers
    plan.push(
      leaf(secrets.etcdMemberTls(name, i), 'etcd-ca', {
        commonName: member,
        usage: 'server-client',
        dnsNames: [
          ...serviceDnsNames(member, namespace, metaDnsDomain),
          ...serviceDnsNames(names.etcdClient(name), namespace, metaDnsDomain),
          'localhost',
        ],
        ipAddresses: ['127.0.0.1'],
      }),
    );
  }
  for (const user of input.users) {
    plan.push({
      secretName: secrets.userKubeconfig(name, user.name),
      issuer: 'ca',
      spec: { commonName: user.name, organizations: user.groups, usage: 'client', validityMs: user.validityMs },
      kubeconfig: { server: externalServer(input) },
    });
  }
  return plan;
}
