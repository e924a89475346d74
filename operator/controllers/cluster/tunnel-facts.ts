// What the tunnel servers beside a Cluster's apiserver Pods say: the Pods themselves, and how many
// agents each server holds. The tunnel-readiness unit and the business wing's tunnel check both ask.
import type { V1Pod } from '@kubernetes/client-node';
import { selectorLabels } from '../../names/cluster-names.ts';
import { boundedText } from '../../net/bounded-body.ts';
import type { ReconcileContext } from './context.ts';

/** The apiserver Pods of this Cluster that are not on their way out. */
export function apiserverPods(ctx: Pick<ReconcileContext, 'caches' | 'name' | 'namespace'>): V1Pod[] {
  const selector = selectorLabels(ctx.name, 'kube-apiserver');
  return (ctx.caches.owned.Pod.list(ctx.namespace) as V1Pod[]).filter(
    (p) => Object.entries(selector).every(([k, v]) => p.metadata?.labels?.[k] === v) && !p.metadata?.deletionTimestamp,
  );
}

/** The agents a Pod's tunnel server counts (its metrics), undefined when it does not answer. */
export async function serverAgents(pod: V1Pod): Promise<number | undefined> {
  if (!pod.status?.podIP) return undefined;
  try {
    // the Pod is in the tenant's namespace: its answer is read as data, at most 64 KiB of it
    const res = await fetch(`http://${pod.status.podIP}:8133/metrics`, {
      signal: AbortSignal.timeout(2000),
      redirect: 'error',
    });
    const m = /^kubeonkube_tunnel_server_connections (\d+)/m.exec((await boundedText(res, 64 << 10)).text);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}
