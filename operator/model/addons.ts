// What the operator applies into a business cluster, as pure functions of the spec and a few facts:
// the control plane's own pieces there (RBAC for the apiserver's kubelet client, TLS bootstrapping of
// new nodes) and the built-in add-ons (tunnel agent, kube-proxy, CoreDNS). Each returns a template's
// context; the templates are in templates/addon-*.yaml.hbs.
import { createHash } from 'node:crypto';
import { nthAddress } from '../pki/addresses.ts';
import { apiserverKubeletClientUser } from '../pki/cluster-pki.ts';
import type { ControlPlaneSpec } from './control-plane.ts';
import { tunnelEnabled, tunnelPort } from './control-plane.ts';
import type { ClusterSpec, ClusterSpecAddon } from '../api/cluster.generated.ts';

/** The CoreDNS release the built-in add-on runs (the one kubeadm v1.34 deploys). */
export const corednsVersion = 'v1.12.1';

/** The group every bootstrap token the operator makes adds: only these may ask for node certificates. */
export const bootstrapGroup = 'system:bootstrappers:kubeonkube:nodes';

export type BuiltinAddon = 'control-plane' | 'tunnel-agent' | 'kube-proxy' | 'coredns';

/** Each built-in add-on's template. */
export const addonTemplates: Record<BuiltinAddon, string> = {
  'control-plane': 'addon-control-plane.yaml.hbs',
  'tunnel-agent': 'addon-tunnel-agent.yaml.hbs',
  'kube-proxy': 'addon-kube-proxy.yaml.hbs',
  coredns: 'addon-coredns.yaml.hbs',
};

export type AddonSpec = ClusterSpecAddon;
export type AddonsSpec = ControlPlaneSpec & Pick<ClusterSpec, 'addons'>;

/** The add-ons the spec asks for, in the order they are applied (control-plane first, always). */
export function wantedAddons(spec: AddonsSpec): BuiltinAddon[] {
  const listed = new Set(spec.addons.map((a) => a.name));
  return [
    'control-plane',
    ...(tunnelEnabled(spec) ? ['tunnel-agent' as const] : []),
    ...(['kube-proxy', 'coredns'] as const).filter((a) => listed.has(a)),
  ];
}

/** The add-ons the spec lists that are not built in (their own templates). */
export const customAddons = (spec: AddonsSpec): AddonSpec[] =>
  spec.addons.filter((a) => !Object.hasOwn(addonTemplates, a.name));

/** The key of a custom add-on's ConfigMap that holds its Handlebars template. */
export const customTemplateKey = 'template.yaml.hbs';

/**
 * What a custom add-on's template is given: facts of the Cluster (its name in the meta-cluster,
 * release, network) and the add-on's `values`. Documented in README ("Your own add-ons").
 */
export function customAddonContext(
  cluster: { name: string; namespace: string },
  spec: ControlPlaneSpec,
  addon: AddonSpec,
  endpoint: { host: string; port: number } | undefined,
) {
  return {
    cluster: {
      name: cluster.name,
      namespace: cluster.namespace,
      version: spec.version,
      mode: spec.mode,
      // null until the endpoint is known (a load balancer without ingress yet)
      server: endpoint
        ? `https://${endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}`
        : null,
      network: {
        podCIDR: spec.network.podCIDR,
        serviceCIDR: spec.network.serviceCIDR,
        dnsDomain: spec.network.dnsDomain,
        dnsAddress: clusterDnsAddress(spec),
      },
    },
    values: addon.values ?? {},
  };
}

export const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const hash = (...parts: string[]) => createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 16);

/** What the business cluster's DNS Service is given: the tenth address of the Service range, by custom. */
export const clusterDnsAddress = (spec: ControlPlaneSpec) => nthAddress(spec.network.serviceCIDR, 10);

export interface BootstrapToken {
  id: string;
  secret: string;
  /** When the business cluster stops accepting it (RFC 3339; its token cleaner then deletes it). */
  expires?: string | undefined;
}

export function controlPlaneAddonContext(token: BootstrapToken) {
  return {
    kubeletClientUser: apiserverKubeletClientUser,
    bootstrapGroup,
    token: {
      name: `bootstrap-token-${token.id}`,
      data: {
        'token-id': b64(token.id),
        'token-secret': b64(token.secret),
        'usage-bootstrap-authentication': b64('true'),
        'auth-extra-groups': b64(bootstrapGroup),
        ...(token.expires ? { expiration: b64(token.expires) } : {}),
        description: b64('kubeonkube: joins new nodes (the <cluster>-join Secret in the meta-cluster)'),
      },
    },
  };
}

export interface TunnelAgentFacts {
  /** Where agents dial: the host of the Cluster's endpoint and the tunnel port there. */
  server: { host: string; port: number };
  /** The agent's certificate, key and the CA bundle the server's certificate is checked against (PEM). */
  tls: { cert: string; key: string; ca: string };
  image: string;
  /** The apiserver Pods' names: their tunnel servers' ids start with them. */
  servers: string[];
}

export function tunnelAgentAddonContext(spec: ControlPlaneSpec, facts: TunnelAgentFacts) {
  const host = facts.server.host.includes(':') ? `[${facts.server.host}]` : facts.server.host;
  return {
    namespace: 'kube-system',
    name: 'kubeonkube-tunnel-agent',
    image: facts.image,
    replicas: spec.mode === 'standard' ? 2 : 1,
    servers: facts.servers.map((s) => `${s}\n`).join(''),
    secret: { 'tls.crt': b64(facts.tls.cert), 'tls.key': b64(facts.tls.key), 'ca.crt': b64(facts.tls.ca) },
    env: [
      { name: 'KUBEONKUBE_TUNNEL_SERVER', value: `${host}:${facts.server.port}` },
      { name: 'KUBEONKUBE_TUNNEL_SERVER_NAME', value: facts.server.host },
      { name: 'KUBEONKUBE_TUNNEL_ALLOWED_CIDRS', value: `${spec.network.podCIDR},${spec.network.serviceCIDR}` },
      { name: 'KUBEONKUBE_METRICS_ADDRESS', value: '0.0.0.0:8133' },
    ],
  };
}

export { tunnelPort };

export function kubeProxyAddonContext(spec: ControlPlaneSpec, server: string) {
  return {
    namespace: 'kube-system',
    image: `registry.k8s.io/kube-proxy:${spec.version}`,
    // kube-proxy programs the `kubernetes` Service, so it cannot reach the apiserver through it: it
    // uses the Cluster's endpoint, with its ServiceAccount's token
    kubeconfig: JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'default',
          cluster: { server, 'certificate-authority': '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt' },
        },
      ],
      users: [{ name: 'default', user: { tokenFile: '/var/run/secrets/kubernetes.io/serviceaccount/token' } }],
      contexts: [{ name: 'default', context: { cluster: 'default', user: 'default' } }],
      'current-context': 'default',
    }),
    config: JSON.stringify({
      apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
      kind: 'KubeProxyConfiguration',
      clientConnection: { kubeconfig: '/var/lib/kube-proxy/kubeconfig' },
      mode: 'iptables',
      clusterCIDR: spec.network.podCIDR,
      // leave the node's conntrack table size as the node's owner set it
      conntrack: { maxPerCore: 0, min: 0 },
    }),
  };
}

export function corednsAddonContext(spec: AddonsSpec) {
  const values = spec.addons?.find((a) => a.name === 'coredns')?.values ?? {};
  const upstreams = Array.isArray(values.upstreams) ? values.upstreams.map(String) : ['/etc/resolv.conf'];
  const forward =
    upstreams.length > 0 ? `    forward . ${upstreams.join(' ')} {\n        max_concurrent 1000\n    }\n` : '';
  const corefile = `.:53 {
    errors
    health {
        lameduck 5s
    }
    ready
    kubernetes ${spec.network.dnsDomain} in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    prometheus :9153
${forward}    cache 30
    loop
    reload
    loadbalance
}
`;
  return {
    namespace: 'kube-system',
    image: `registry.k8s.io/coredns/coredns:${corednsVersion}`,
    replicas: spec.mode === 'standard' ? 2 : 1,
    clusterIP: clusterDnsAddress(spec),
    corefile,
    // a new Corefile rolls the pods (the reload plugin would too, a minute later)
    inputsHash: hash(corefile),
  };
}
