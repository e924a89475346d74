// Taking a Node out of service in its business cluster: a cordon marked as the operator's (a cordon
// someone else put there is theirs, and never lifted here), evictions that respect
// PodDisruptionBudgets (an eviction a budget refuses is asked again next time), and the Node's
// deletion once its host is gone.
import { PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import type { BusinessClient } from '../../business/clients.ts';
import { listBounded } from '../../business/bounded-list.ts';

/** On a Node: who cordoned it (the Machine's namespace/name), when the operator did. */
export const cordonedByAnnotation = 'kubeonkube.io/cordoned-by';

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const status = (err: unknown) => (err as { code?: number }).code;

/** Cordons the Node for `by`, unless it is cordoned already (by anyone). Undefined: no such Node. */
export async function cordon(client: BusinessClient, node: string, by: string): Promise<boolean | undefined> {
  let live;
  try {
    live = await client.core.readNode({ name: node });
  } catch (err) {
    if (status(err) === 404) return undefined;
    throw err;
  }
  if (live.spec?.unschedulable) return false;
  await client.core.patchNode(
    { name: node, body: { metadata: { annotations: { [cordonedByAnnotation]: by } }, spec: { unschedulable: true } } },
    mergePatch,
  );
  return true;
}

/** Lifts the operator's own cordon of `by`; a cordon of anyone else stays. */
export async function uncordon(client: BusinessClient, node: string, by: string): Promise<void> {
  let live;
  try {
    live = await client.core.readNode({ name: node });
  } catch (err) {
    if (status(err) === 404) return;
    throw err;
  }
  if (live.metadata?.annotations?.[cordonedByAnnotation] !== by) return;
  await client.core.patchNode(
    {
      name: node,
      body: { metadata: { annotations: { [cordonedByAnnotation]: null } }, spec: { unschedulable: false } },
    },
    mergePatch,
  );
}

/** Pods a drain leaves: those of DaemonSets (they would come back) and static pods (the kubelet's own). */
function evictable(pod: V1Pod): boolean {
  if (pod.metadata?.annotations?.['kubernetes.io/config.mirror']) return false;
  if (pod.metadata?.ownerReferences?.some((o) => o.kind === 'DaemonSet')) return false;
  return pod.status?.phase !== 'Succeeded' && pod.status?.phase !== 'Failed';
}

/**
 * Asks each evictable pod of the Node to leave; resolves with how many are still there (0: drained).
 * A pod a PodDisruptionBudget holds (HTTP 429) counts as remaining, and is asked again next call.
 */
export async function evictPods(client: BusinessClient, node: string): Promise<number> {
  const pods = (
    await listBounded<V1Pod>((page) =>
      client.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}`, ...page }),
    )
  ).filter(evictable);
  let remaining = 0;
  for (const pod of pods) {
    const name = pod.metadata?.name ?? '';
    const namespace = pod.metadata?.namespace ?? '';
    remaining++;
    if (pod.metadata?.deletionTimestamp) continue;
    try {
      await client.core.createNamespacedPodEviction({
        name,
        namespace,
        body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace } },
      });
    } catch (err) {
      // 429: a disruption budget says not now; 404: gone meanwhile
      if (status(err) === 404) remaining--;
      else if (status(err) !== 429) throw err;
    }
  }
  return remaining;
}

export async function deleteNode(client: BusinessClient, node: string): Promise<void> {
  try {
    await client.core.deleteNode({ name: node });
  } catch (err) {
    if (status(err) !== 404) throw err;
  }
}
