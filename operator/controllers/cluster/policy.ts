// What a Cluster may ask the operator for, set by the platform team (chart values `policy`, passed
// as KUBEONKUBE_POLICY). Whoever may create a Cluster must get no more than a control plane through
// the operator: not an arbitrary image running in the meta-cluster, not a host path as etcd's data
// volume (hostPath is off unless the platform team allows it). A Cluster that asks for more gets
// Ready=False with reason PolicyViolation, and nothing is built from it.
import { parseCidr } from '../../api/formats.ts';
import type { ControlPlaneSpec } from '../../model/control-plane.ts';

export interface Policy {
  /** Images given in spec.controlPlane.*.image must start with one of these. */
  allowedImagePrefixes: string[];
  /** Kinds of core/v1 VolumeSource allowed in spec.etcd.storage.volumeSource (e.g. emptyDir, hostPath). */
  allowedVolumeSources: string[];
  /**
   * Whether a Cluster may switch the reverse tunnel off (spec.tunnel.enabled: false). Without it
   * the apiserver dials nodes, webhooks and aggregated APIs straight from its Pod, inside the
   * meta-cluster's network, at whatever address the business cluster names: only for a platform
   * whose control-plane Pods are fenced in by other means.
   */
  allowTunnelDisabled: boolean;
  /** Types spec.endpoint.service.type may have (the apiserver Service in the meta-cluster). */
  allowedServiceTypes: string[];
  /**
   * Annotation keys spec.endpoint.service.annotations may carry, by prefix (e.g.
   * service.beta.kubernetes.io/): annotations steer controllers of the meta-cluster (load
   * balancers, external DNS), so none pass unless the platform team names them.
   */
  allowedServiceAnnotations: string[];
  /**
   * Address ranges every control-plane Pod may connect to besides its own etcd, its own apiservers
   * and DNS (an OIDC issuer, a KMS; the nodes, for Clusters without the tunnel).
   */
  allowedEgressCIDRs: string[];
  /**
   * Address ranges a Machine's host may be in: the Node-Operator logs in over SSH from inside the
   * meta-cluster, so a Machine's author must not be able to point it anywhere else (a Service of
   * the meta-cluster, another tenant's Pod). None by default: Machines wait until the platform
   * team names its data centres' ranges.
   */
  allowedMachineNetworks: string[];
}

export const defaultPolicy: Policy = {
  allowedImagePrefixes: ['registry.k8s.io/'],
  allowedVolumeSources: ['emptyDir', 'ephemeral'],
  allowTunnelDisabled: false,
  allowedServiceTypes: ['ClusterIP', 'NodePort', 'LoadBalancer'],
  allowedServiceAnnotations: [],
  allowedEgressCIDRs: [],
  allowedMachineNetworks: [],
};

const isStringList = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');

/** The policy from its JSON text (fields left out keep their defaults); throws a clear error on bad input. */
export function parsePolicy(text: string | undefined): Policy {
  if (text === undefined || text.trim() === '') return defaultPolicy;
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new Error(`KUBEONKUBE_POLICY is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new Error('KUBEONKUBE_POLICY must be a JSON object');
  const policy = { ...defaultPolicy, ...raw } as Record<string, unknown>;
  for (const key of Object.keys(policy)) {
    if (!(key in defaultPolicy))
      throw new Error(`KUBEONKUBE_POLICY: unknown field ${key} (known: ${Object.keys(defaultPolicy).join(', ')})`);
    const kind = typeof defaultPolicy[key as keyof Policy] === 'boolean' ? 'boolean' : 'list';
    if (kind === 'boolean' && typeof policy[key] !== 'boolean')
      throw new Error(`KUBEONKUBE_POLICY.${key} must be true or false`);
    if (kind === 'list' && !isStringList(policy[key]))
      throw new Error(`KUBEONKUBE_POLICY.${key} must be a list of strings`);
  }
  for (const key of ['allowedEgressCIDRs', 'allowedMachineNetworks'] as const)
    for (const cidr of policy[key] as string[])
      if (!parseCidr(cidr)) throw new Error(`KUBEONKUBE_POLICY.${key}: ${cidr} is not a CIDR`);
  return policy as unknown as Policy;
}

/** What in `spec` the policy does not allow; empty when it may be built. */
export function policyViolations(spec: ControlPlaneSpec, policy: Policy): string[] {
  const problems: string[] = [];
  for (const component of ['apiServer', 'controllerManager', 'scheduler'] as const) {
    const image = spec.controlPlane?.[component]?.image;
    if (image !== undefined && !policy.allowedImagePrefixes.some((p) => image.startsWith(p))) {
      problems.push(
        `spec.controlPlane.${component}.image: ${image} is not allowed by the operator's policy (allowed prefixes: ${policy.allowedImagePrefixes.join(', ') || 'none'})`,
      );
    }
  }
  for (const kind of Object.keys(spec.etcd.storage.volumeSource ?? {})) {
    if (!policy.allowedVolumeSources.includes(kind)) {
      problems.push(
        `spec.etcd.storage.volumeSource.${kind}: not allowed by the operator's policy (allowed: ${policy.allowedVolumeSources.join(', ') || 'none'})`,
      );
    }
  }
  if (spec.tunnel?.enabled === false && !policy.allowTunnelDisabled) {
    problems.push(
      "spec.tunnel.enabled: false is not allowed by the operator's policy (allowTunnelDisabled): without the tunnel the apiserver would dial whatever the business cluster names from inside the meta-cluster",
    );
  }
  const service = spec.endpoint?.service;
  if (service?.type !== undefined && !policy.allowedServiceTypes.includes(service.type)) {
    problems.push(
      `spec.endpoint.service.type: ${service.type} is not allowed by the operator's policy (allowed: ${policy.allowedServiceTypes.join(', ') || 'none'})`,
    );
  }
  for (const key of Object.keys(service?.annotations ?? {})) {
    if (!policy.allowedServiceAnnotations.some((prefix) => key.startsWith(prefix))) {
      problems.push(
        `spec.endpoint.service.annotations.${key}: not allowed by the operator's policy (allowed prefixes: ${policy.allowedServiceAnnotations.join(', ') || 'none'})`,
      );
    }
  }
  // snapshots go to and come from a claim of the Cluster's namespace, or what the policy allows
  for (const [field, volume] of [
    ['backup.volume', spec.etcd.backup?.volume],
    ['restoreFrom.volume', spec.etcd.restoreFrom?.volume],
  ] as const) {
    for (const kind of Object.keys(volume ?? {})) {
      if (kind !== 'persistentVolumeClaim' && !policy.allowedVolumeSources.includes(kind)) {
        problems.push(
          `spec.etcd.${field}.${kind}: not allowed by the operator's policy (allowed: persistentVolumeClaim, ${policy.allowedVolumeSources.join(', ') || 'nothing else'})`,
        );
      }
    }
  }
  return problems;
}
