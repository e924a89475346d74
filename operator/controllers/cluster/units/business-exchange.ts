// The control-plane pass's side of the business wing (business/business-reconciler.ts): it
// reports what it found out that the wing needs, and takes in what the wing last found in the
// business cluster (AddonsReady, TunnelConnected, the agents, the nodes, the kubelet renewals).
// Until the wing has reported once, those conditions stay as the status has them.
import type { V1Pod, V1Secret } from '@kubernetes/client-node';
import { cached, type ReconcileContext } from '../context.ts';
import { apiserverPods } from '../tunnel-facts.ts';
import { secrets } from '../../../names/cluster-names.ts';

export function exchangeWithBusinessWing(ctx: ReconcileContext): Promise<void> {
  const key = `${ctx.namespace}/${ctx.name}`;
  const f = ctx.facts;
  const podReady = (p: V1Pod) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
  ctx.reports.publishControlPlane(key, {
    generation: ctx.generation,
    etcdQuorum: f.etcdQuorum,
    apiserverReady: f.apiserverReady,
    apiserverAddresses: f.apiserverAddresses,
    endpoint: f.endpoint,
    tunnelAddresses: f.tunnelAddresses ?? [],
    tunnelEndpoint: f.tunnelEndpoint,
    apiserverPods: apiserverPods(ctx).map((p) => ({ name: p.metadata?.name ?? '', ready: podReady(p) })).sort((a, b) => a.name.localeCompare(b.name)),
    tunnelAgentSecret: cached<V1Secret>(ctx, 'Secret', secrets.tunnelAgent(ctx.name))?.metadata?.resourceVersion,
    bootstrapToken: f.bootstrapToken,
    previousBootstrapToken: f.previousBootstrapToken,
    ca: f.authorities?.ca,
    kubeletServingCa: f.authorities?.['kubelet-serving-ca'],
  });
  const report = ctx.reports.business(key);
  if (!report) return Promise.resolve();
  for (const [type, update] of Object.entries(report.conditions)) ctx.setCondition(type as keyof typeof report.conditions, update);
  if (ctx.cluster.spec.tunnel?.enabled === false) delete ctx.status.tunnel;
  else if (report.tunnelAgents !== undefined) ctx.status.tunnel = { agents: report.tunnelAgents };
  f.businessNodes = report.nodes;
  // evidence about the CAs that sign now, not about those of an earlier rotation
  const renewals = report.kubeletRenewals;
  if (renewals && renewals.clientCa === f.authorities?.ca.signer.certificate && renewals.servingCa === f.authorities['kubelet-serving-ca'].signer.certificate) {
    f.kubeletRenewals = { client: renewals.client, serving: renewals.serving };
  }
  return Promise.resolve();
}
