// When an add-on's workload counts as available in the business cluster: a Deployment or DaemonSet
// whose controller saw its newest spec and has every replica updated and available.
import type { KubernetesObject, V1DaemonSet, V1Deployment } from '@kubernetes/client-node';

/** Why a workload of an add-on is not available yet, or undefined when it is. */
export function workloadNotReady(obj: KubernetesObject): string | undefined {
  const name = `${obj.kind} ${obj.metadata?.namespace}/${obj.metadata?.name}`;
  const stale = obj.metadata?.generation ?? 0;
  if (obj.kind === 'Deployment') {
    const d = obj as V1Deployment;
    const want = d.spec?.replicas ?? 1;
    if (
      (d.status?.observedGeneration ?? 0) < stale ||
      (d.status?.updatedReplicas ?? 0) < want ||
      (d.status?.availableReplicas ?? 0) < want ||
      (d.status?.replicas ?? 0) > want
    ) {
      return `${name}: ${d.status?.availableReplicas ?? 0}/${want} available`;
    }
  }
  if (obj.kind === 'DaemonSet') {
    const d = obj as V1DaemonSet;
    const s = d.status;
    const want = s?.desiredNumberScheduled ?? 0;
    if (
      (s?.observedGeneration ?? 0) < stale ||
      (s?.numberAvailable ?? 0) < want ||
      (s?.updatedNumberScheduled ?? 0) < want
    ) {
      return `${name}: ${s?.numberAvailable ?? 0}/${want} available`;
    }
  }
  return undefined;
}
