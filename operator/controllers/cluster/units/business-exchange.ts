// The control-plane pass's side of the business wing (business/business-reconciler.ts): it
// reports what it found out that the wing needs, and takes in what the wing last found in the
// business cluster (AddonsReady, TunnelConnected, the agents, the nodes, the kubelet renewals).
// Until the wing has reported once, those conditions stay as the status has them.
import type { V1Secret } from '@kubernetes/client-node';
import { cached, type ReconcileContext } from '../context.ts';
import { apiserverPods } from '../tunnel-facts.ts';
import { secrets } from '../../../names/cluster-names.ts';
import { isReady } from '../../../kube/ready.ts';

export function exchangeWithBusinessWing(ctx: ReconcileContext): Promise<void> {
  const key = `${ctx.namespace}/${ctx.name}`;
  const f = ctx.facts;
  ctx.reports.publishControlPlane(key, {
    generation: ctx.generation,
    spec: ctx.cluster.spec,
    etcdQuorum: f.etcd.quorum,
    apiserverReady: f.deployments.apiserverReady,
    apiserverAddresses: f.apiserverService.addresses,
    endpoint: f.apiserverService.endpoint,
    tunnelAddresses: f.apiserverService.tunnelAddresses ?? [],
    tunnelEndpoint: f.apiserverService.tunnelEndpoint,
    apiserverPods: apiserverPods(ctx)
      .map((p) => ({ name: p.metadata?.name ?? '', ready: isReady(p) }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    tunnelAgentSecret: cached<V1Secret>(ctx, 'Secret', secrets.tunnelAgent(ctx.name))?.metadata?.resourceVersion,
    bootstrapToken: f.join.bootstrapToken,
    previousBootstrapToken: f.join.previousBootstrapToken,
    ca: f.pki.authorities?.ca,
    kubeletServingCa: f.pki.authorities?.['kubelet-serving-ca'],
  });
  const report = ctx.reports.business(key);
  if (!report) return Promise.resolve();
  for (const [type, update] of Object.entries(report.conditions))
    ctx.setCondition(type as keyof typeof report.conditions, update);
  if (ctx.cluster.spec.tunnel?.enabled === false) delete ctx.status.tunnel;
  else if (report.tunnelAgents !== undefined) ctx.status.tunnel = { agents: report.tunnelAgents };
  f.business.nodes = report.nodes;
  // evidence about the CAs that sign now, not about those of an earlier rotation
  const renewals = report.kubeletRenewals;
  if (
    renewals &&
    renewals.clientCa === f.pki.authorities?.ca.signer.certificate &&
    renewals.servingCa === f.pki.authorities['kubelet-serving-ca'].signer.certificate
  ) {
    f.business.kubeletRenewals = { client: renewals.client, serving: renewals.serving };
  }
  return Promise.resolve();
}
