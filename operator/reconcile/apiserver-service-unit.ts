// The apiserver Service comes first: its addresses are the cluster's endpoint, go into the
// apiserver's serving certificate, and are advertised to the business cluster.
import type { V1Service } from '@kubernetes/client-node';
import { ownedBy } from '../kube/apply.ts';
import { apiserverServiceContext, type ControlPlaneFacts } from '../model/control-plane.ts';
import { names } from '../model/names.ts';
import { cached, type ReconcileContext } from './context.ts';

export function modelFacts(ctx: ReconcileContext): ControlPlaneFacts {
  return {
    name: ctx.name,
    namespace: ctx.namespace,
    uid: ctx.owner.uid,
    metaDnsDomain: ctx.settings.metaDnsDomain,
    apiserverAddress: ctx.facts.apiserverAddresses[0],
    inputHashes: ctx.facts.inputHashes,
  };
}

export async function reconcileApiserverService(ctx: ReconcileContext): Promise<void> {
  let live = cached<V1Service>(ctx, 'Service', names.apiserver(ctx.name));
  for (const obj of ctx.renderer.render('apiserver-service.yaml.hbs', apiserverServiceContext(ctx.cluster.spec, modelFacts(ctx)))) {
    // the server's answer carries the ClusterIP at once, before the cache has seen the Service
    live = await ctx.writer.apply(ownedBy(obj, ctx.owner), live);
  }
  const addresses: string[] = [];
  const clusterIP = live?.spec?.clusterIP;
  if (clusterIP && clusterIP !== 'None') addresses.push(clusterIP);
  for (const ingress of live?.status?.loadBalancer?.ingress ?? []) if (ingress.ip) addresses.push(ingress.ip);
  ctx.facts.apiserverAddresses = addresses;
}
