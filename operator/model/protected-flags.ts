// Flags of the control plane that hold the boundary between a business cluster and the meta-cluster
// that hosts it: who is authenticated and authorized, which CAs are trusted, where the apiserver's
// dials into the cluster go (through the tunnel, never from the apiserver Pod into the meta-cluster
// network), which etcd it stores in and with which keys, and what the controller-manager signs. A
// Cluster's spec.controlPlane.*.extraArgs may tune a component but never set one of these: such a
// spec is refused, naming the flag, and nothing is built from it.
type Component = 'apiServer' | 'controllerManager' | 'scheduler';

interface Protection {
  /** Flags refused by name. */
  exact: string[];
  /** Flags refused by the start of their name (a whole family, e.g. every kubelet-* flag). */
  prefixes: string[];
}

const servingAndDelegation = {
  exact: ['bind-address', 'secure-port', 'client-ca-file', 'kubeconfig'],
  prefixes: ['tls-', 'authentication-', 'authorization-', 'requestheader-'],
};

export const protectedFlags: Record<Component, Protection> = {
  apiServer: {
    exact: [
      ...servingAndDelegation.exact,
      // the tunnel: dials to nodes, Services and webhooks of the business cluster
      'egress-selector-config-file',
      'advertise-address',
      'service-cluster-ip-range',
      'enable-bootstrap-token-auth',
      'token-auth-file',
      'admission-control-config-file',
      'admission-control',
      'encryption-provider-config',
      'enable-aggregator-routing',
    ],
    prefixes: [
      ...servingAndDelegation.prefixes,
      'etcd-',
      'kubelet-',
      'service-account-',
      'proxy-client-',
      'audit-webhook-',
    ],
  },
  controllerManager: {
    // master: a server in place of the kubeconfig's
    exact: [
      ...servingAndDelegation.exact,
      'master',
      'root-ca-file',
      'service-account-private-key-file',
      'use-service-account-credentials',
    ],
    prefixes: [...servingAndDelegation.prefixes, 'cluster-signing-'],
  },
  scheduler: { ...servingAndDelegation, exact: [...servingAndDelegation.exact, 'master'] },
};

/** The admission plugin that keeps a node's credentials to its own Node and Pods. */
const nodeRestriction = 'NodeRestriction';

/** Every extraArgs entry of `spec` that touches the boundary, as a message naming the flag. */
export function refusedExtraArgs(spec: {
  controlPlane?: Partial<Record<Component, { extraArgs?: Record<string, string> } | undefined>> | undefined;
}): string[] {
  const problems: string[] = [];
  for (const component of Object.keys(protectedFlags) as Component[]) {
    const { exact, prefixes } = protectedFlags[component];
    for (const [flag, value] of Object.entries(spec.controlPlane?.[component]?.extraArgs ?? {})) {
      const field = `spec.controlPlane.${component}.extraArgs.${flag}`;
      // the components' flag parser reads _ as - (cli.Run's word separator normalization)
      const name = flag.replace(/^-+/, '').replace(/_/g, '-');
      if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) {
        problems.push(`${field}: not a flag name (lower-case letters, digits and dashes)`);
      } else if (exact.includes(name) || prefixes.some((p) => name.startsWith(p))) {
        problems.push(
          `${field}: --${name} holds the boundary between the business cluster and the meta-cluster; the operator sets it and it cannot be overridden`,
        );
      } else if (
        component === 'apiServer' &&
        name === 'enable-admission-plugins' &&
        !value
          .split(',')
          .map((s) => s.trim())
          .includes(nodeRestriction)
      ) {
        problems.push(`${field}: must keep ${nodeRestriction} (it keeps each node to its own objects)`);
      } else if (
        component === 'apiServer' &&
        name === 'disable-admission-plugins' &&
        value
          .split(',')
          .map((s) => s.trim())
          .includes(nodeRestriction)
      ) {
        problems.push(`${field}: ${nodeRestriction} cannot be disabled (it keeps each node to its own objects)`);
      }
    }
  }
  return problems;
}
