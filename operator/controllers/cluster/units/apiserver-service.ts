// The apiserver Service comes first: its addresses are the cluster's endpoint, go into the
// apiserver's serving certificate, and are advertised to the business cluster. The endpoint is
// what a client outside the meta-cluster uses, by Service type: ClusterIP → the ClusterIP:6443;
// NodePort → a node's address and the node port; LoadBalancer → the ingress address:6443 (unknown
// until the load balancer has one). spec.endpoint.host replaces the address in every case.
import type { V1Service } from '@kubernetes/client-node';
import { ownedBy } from '../../../kube/apply.ts';
import { tunnelEnabled, tunnelPort } from '../../../model/control-plane.ts';
import { names } from '../../../names/cluster-names.ts';
import { cached, type ClusterSpec, type ObjectRef, type ReconcileContext } from '../context.ts';
import { modelFacts } from '../model-facts.ts';
import { controlPlaneParts } from '../../../model/control-plane-parts.ts';

export const wantedApiserverService = (cluster: string, spec: ClusterSpec): ObjectRef[] => [
  { kind: 'Service', name: names.apiserver(cluster) },
  ...(tunnelEnabled(spec) ? [{ kind: 'Service' as const, name: names.tunnel(cluster) }] : []),
];

export interface NodeAddresses {
  name: string;
  addresses: { type: string; address: string }[];
}

/**
 * The node address a NodePort endpoint uses: the one in use while its node is still there (so the
 * kubeconfig does not change with every node that comes and goes), else the first node's by name,
 * an ExternalIP before an InternalIP.
 */
export function pickNodeAddress(nodes: NodeAddresses[], current: string | undefined): string | undefined {
  const usable = (n: NodeAddresses) =>
    ['ExternalIP', 'InternalIP'].flatMap((t) => n.addresses.filter((a) => a.type === t).map((a) => a.address));
  const all = nodes.flatMap(usable);
  if (current && all.includes(current)) return current;
  return [...nodes]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((n) => usable(n)[0])
    .find((a) => a !== undefined);
}

async function endpointOf(
  ctx: ReconcileContext,
  service: V1Service | undefined,
): Promise<{ host: string; port: number } | undefined> {
  const spec = ctx.cluster.spec;
  const host = spec.endpoint?.host;
  switch (spec.endpoint?.service?.type ?? 'ClusterIP') {
    case 'NodePort': {
      const port = service?.spec?.ports?.find((p) => p.name === 'https')?.nodePort;
      if (!port) return undefined;
      const current = ctx.cluster.status?.endpoint
        ? new URL(ctx.cluster.status.endpoint).hostname.replace(/^\[|\]$/g, '')
        : undefined;
      const address = host ?? pickNodeAddress(await ctx.nodes(), current);
      return address ? { host: address, port } : undefined;
    }
    case 'LoadBalancer': {
      const ingress = service?.status?.loadBalancer?.ingress?.[0];
      const address = host ?? ingress?.ip ?? ingress?.hostname;
      return address ? { host: address, port: 6443 } : undefined;
    }
    default: {
      const clusterIP = service?.spec?.clusterIP;
      const address = host ?? (clusterIP && clusterIP !== 'None' ? clusterIP : undefined);
      return address ? { host: address, port: 6443 } : undefined;
    }
  }
}

/** A Service's addresses: its ClusterIP, then its load-balancer ingress IPs. */
const addressesOf = (s: V1Service | undefined) => [
  ...(s?.spec?.clusterIP && s.spec.clusterIP !== 'None' ? [s.spec.clusterIP] : []),
  ...(s?.status?.loadBalancer?.ingress ?? []).flatMap((i) => (i.ip ? [i.ip] : [])),
];

export async function reconcileApiserverService(ctx: ReconcileContext): Promise<void> {
  let live = cached<V1Service>(ctx, 'Service', names.apiserver(ctx.name));
  const part = controlPlaneParts.apiserverService;
  for (const obj of ctx.renderer.render(part.template, part.context(ctx.cluster.spec, modelFacts(ctx)))) {
    // the server's answer carries the ClusterIP at once, before the cache has seen the Service
    live = await ctx.writer.apply(ownedBy(obj, ctx.owner), live);
  }
  ctx.facts.apiserverService.addresses = addressesOf(live);
  ctx.facts.apiserverService.endpoint = await endpointOf(ctx, live);
  if (tunnelEnabled(ctx.cluster.spec)) await reconcileTunnelService(ctx);
}

/**
 * The tunnel Service, and where agents reach it, by type like the endpoint (but never at
 * spec.endpoint.host, which names the apiserver's address): the ClusterIP:8132, the endpoint's node
 * address and the tunnel's node port, or the load balancer's own ingress:8132.
 */
async function reconcileTunnelService(ctx: ReconcileContext): Promise<void> {
  let live = cached<V1Service>(ctx, 'Service', names.tunnel(ctx.name));
  const part = controlPlaneParts.tunnelService;
  for (const obj of ctx.renderer.render(part.template, part.context(ctx.cluster.spec, modelFacts(ctx)))) {
    live = await ctx.writer.apply(ownedBy(obj, ctx.owner), live);
  }
  ctx.facts.apiserverService.tunnelAddresses = addressesOf(live);
  switch (ctx.cluster.spec.endpoint?.service?.type ?? 'ClusterIP') {
    case 'NodePort': {
      const port = live?.spec?.ports?.find((p) => p.name === 'tunnel')?.nodePort;
      const current = ctx.cluster.status?.endpoint
        ? new URL(ctx.cluster.status.endpoint).hostname.replace(/^\[|\]$/g, '')
        : undefined;
      const host = pickNodeAddress(await ctx.nodes(), current);
      ctx.facts.apiserverService.tunnelEndpoint = port && host ? { host, port } : undefined;
      break;
    }
    case 'LoadBalancer': {
      const ingress = live?.status?.loadBalancer?.ingress?.[0];
      const host = ingress?.ip ?? ingress?.hostname;
      ctx.facts.apiserverService.tunnelEndpoint = host ? { host, port: tunnelPort } : undefined;
      break;
    }
    default: {
      const [host] = addressesOf(live);
      ctx.facts.apiserverService.tunnelEndpoint = host ? { host, port: tunnelPort } : undefined;
    }
  }
}
