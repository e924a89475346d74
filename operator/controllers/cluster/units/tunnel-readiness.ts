// A new apiserver Pod takes requests only once a tunnel agent holds a connection to its tunnel
// server: otherwise every dial it makes into the business cluster (logs, exec, webhooks) fails
// with "no tunnel agent" until the agents find it. The apiserver Pods carry a readiness gate
// (kubeonkube.io/tunnel-ready) that this unit sets once the Pod's own server counts an agent, at
// once when no other server holds one (nothing to wait for: a cluster without nodes yet), and at
// the latest a minute after its containers are ready (a rollout never waits for ever). Agents find
// a Pod that is not ready yet through the tunnel Service, which lists those too.
import type { V1Pod } from '@kubernetes/client-node';
import { tunnelEnabled } from '../../../model/control-plane.ts';
import type { ReconcileContext } from '../context.ts';
import { apiserverPods, serverAgents } from '../tunnel-facts.ts';

/** The apiserver Pods' readiness gate (templates/apiserver-deployment.yaml.hbs). */
export const tunnelReadyCondition = 'kubeonkube.io/tunnel-ready';
/** The longest a new apiserver Pod waits for an agent while other servers hold one. */
export const agentWaitMs = 60_000;

const conditionOf = (pod: V1Pod, type: string) => pod.status?.conditions?.find((c) => c.type === type);

export async function reconcileTunnelReadiness(ctx: ReconcileContext): Promise<void> {
  if (!tunnelEnabled(ctx.cluster.spec)) return;
  const pods = apiserverPods(ctx);
  const waiting = pods.filter(
    (p) =>
      p.spec?.readinessGates?.some((g) => g.conditionType === tunnelReadyCondition) &&
      conditionOf(p, tunnelReadyCondition)?.status !== 'True',
  );
  if (waiting.length === 0) return;
  const agents = new Map(
    await Promise.all(pods.map(async (p) => [p.metadata?.name ?? '', await serverAgents(p)] as const)),
  );
  const othersHold = pods.some((p) => !waiting.includes(p) && (agents.get(p.metadata?.name ?? '') ?? 0) > 0);
  for (const pod of waiting) {
    const containers = conditionOf(pod, 'ContainersReady');
    if (containers?.status !== 'True') {
      ctx.requeueAfter(2000);
      continue;
    }
    const name = pod.metadata?.name ?? '';
    const since = containers.lastTransitionTime ? new Date(containers.lastTransitionTime).getTime() : ctx.now.getTime();
    let verdict: { reason: string; message: string } | undefined;
    if ((agents.get(name) ?? 0) > 0)
      verdict = { reason: 'AgentConnected', message: 'a tunnel agent holds a connection to this server' };
    else if (!othersHold)
      verdict = { reason: 'NoAgentExpected', message: 'no other tunnel server holds an agent: nothing to wait for' };
    else if (ctx.now.getTime() - since >= agentWaitMs) {
      verdict = {
        reason: 'AgentWaitTimedOut',
        message: `no agent connected within ${agentWaitMs / 1000} s; taking requests anyway`,
      };
      ctx.events.warning(
        'TunnelAgentMissing',
        `apiserver Pod ${name} takes requests without a tunnel agent: none connected within ${agentWaitMs / 1000} s`,
      );
    }
    if (!verdict) {
      ctx.requeueAfter(1000);
      continue;
    }
    await ctx.writer.setPodCondition(pod, {
      type: tunnelReadyCondition,
      status: 'True',
      lastTransitionTime: ctx.now,
      ...verdict,
    });
    ctx.log.info({ pod: name, reason: verdict.reason }, 'apiserver Pod ready for the tunnel');
  }
}
