// The operator's own add-ons in the business cluster: the control plane's RBAC and node
// bootstrapping there, the tunnel agent, kube-proxy and CoreDNS (each switchable in the spec).
// What the spec no longer asks for is removed; the bootstrap tokens applied are only the current
// one and the one before a renewal while it is accepted.
import type { V1Secret } from '@kubernetes/client-node';
import type { BusinessApplier } from '../../../business/applier.ts';
import { addonLabel, AddonConflict } from '../../../business/applier.ts';
import { listBounded } from '../../../business/bounded-list.ts';
import type { BusinessClient } from '../../../business/clients.ts';
import { workloadNotReady } from '../../../business/readiness.ts';
import { decode } from '../../../kube/secret-data.ts';
import {
  addonTemplates,
  controlPlaneAddonContext,
  corednsAddonContext,
  kubeProxyAddonContext,
  tunnelAgentAddonContext,
  wantedAddons,
  type BuiltinAddon,
} from '../../../model/addons.ts';
import { tunnelEnabled } from '../../../model/control-plane.ts';
import { externalServer } from '../../../pki/cluster-pki.ts';
import type { RenderedObject } from '../../../render/renderer.ts';
import { serverListConfigMap } from '../../../tunnel/protocol.ts';
import { cached } from '../context.ts';
import type { BusinessContext, BusinessSession } from './context.ts';
import { secrets } from '../../../names/cluster-names.ts';

const allAddons: BuiltinAddon[] = ['control-plane', 'tunnel-agent', 'kube-proxy', 'coredns'];

/** The objects of one built-in add-on for this Cluster (undefined: its inputs are not there yet). */
function render(ctx: BusinessContext, addon: BuiltinAddon): RenderedObject[] | undefined {
  const spec = ctx.cluster.spec;
  const template = addonTemplates[addon];
  const server = externalServer({ endpoint: ctx.inputs.endpoint });
  switch (addon) {
    case 'control-plane': {
      const token = ctx.inputs.bootstrapToken;
      return token ? ctx.renderer.render(template, controlPlaneAddonContext(token)) : undefined;
    }
    case 'tunnel-agent': {
      const secret = cached<V1Secret>(ctx, 'Secret', secrets.tunnelAgent(ctx.name));
      const [cert, key, ca] = [decode(secret, 'tls.crt'), decode(secret, 'tls.key'), decode(secret, 'ca.crt')];
      const endpoint = ctx.inputs.tunnelEndpoint;
      if (!cert || !key || !ca || !endpoint) return undefined;
      return ctx.renderer.render(
        template,
        tunnelAgentAddonContext(spec, {
          server: endpoint,
          tls: { cert, key, ca },
          image: ctx.settings.operatorImage,
          servers: serverNames(ctx),
        }),
      );
    }
    case 'kube-proxy':
      return server ? ctx.renderer.render(template, kubeProxyAddonContext(spec, server)) : undefined;
    case 'coredns':
      return ctx.renderer.render(template, corednsAddonContext(spec));
  }
}

/** The apiserver Pods there are, by name, in a stable order (as the control-plane pass reported them). */
const serverNames = (ctx: BusinessContext) => ctx.inputs.apiserverPods.map((p) => p.name);

/**
 * During an apiserver rollout (the add-ons wait for it to end), only the agents' list of servers is
 * kept current, through an apiserver that answers: the agents chase the new Pod's server.
 */
export async function updateServerList(
  ctx: BusinessContext,
  session: () => Promise<BusinessSession | undefined>,
): Promise<void> {
  const answering = ctx.inputs.apiserverPods.some((p) => p.ready);
  if (!answering || !tunnelEnabled(ctx.cluster.spec)) return;
  // a client only when there is an apiserver to ask
  const { applier } = (await session()) ?? {};
  if (!applier) return;
  const list = render(ctx, 'tunnel-agent')?.find(
    (o) => o.kind === 'ConfigMap' && o.metadata.name === serverListConfigMap.name,
  );
  if (list) await applier.apply('tunnel-agent', list);
}

/** The names an add-on's objects have whatever its inputs: for removing one no longer wanted. */
function shapes(ctx: BusinessContext, addon: BuiltinAddon): RenderedObject[] {
  const spec = ctx.cluster.spec;
  const template = addonTemplates[addon];
  switch (addon) {
    case 'control-plane':
      return ctx.renderer
        .render(template, controlPlaneAddonContext({ id: 'aaaaaa', secret: 'a'.repeat(16) }))
        .filter((o) => o.kind !== 'Secret');
    case 'tunnel-agent':
      return ctx.renderer.render(
        template,
        tunnelAgentAddonContext(spec, {
          server: { host: 'x', port: 1 },
          tls: { cert: '', key: '', ca: '' },
          image: 'x',
          servers: [],
        }),
      );
    case 'kube-proxy':
      return ctx.renderer.render(template, kubeProxyAddonContext(spec, 'https://x'));
    case 'coredns':
      return ctx.renderer.render(template, corednsAddonContext(spec));
  }
}

/**
 * Removes what was applied for bootstrap tokens other than the current one and the one before a
 * renewal while it is accepted (a join Secret re-made by hand leaves no old token behind).
 */
async function removeOldTokens(ctx: BusinessContext, client: BusinessClient, applier: BusinessApplier): Promise<void> {
  const token = ctx.inputs.bootstrapToken;
  if (!token) return;
  const keep = [token, ...(ctx.inputs.previousBootstrapToken ? [ctx.inputs.previousBootstrapToken] : [])].map(
    (t) => `bootstrap-token-${t.id}`,
  );
  const secrets = await listBounded((page) =>
    client.core.listNamespacedSecret({
      namespace: 'kube-system',
      labelSelector: `${addonLabel}=control-plane`,
      ...page,
    }),
  );
  for (const s of secrets) {
    if (s.type === 'bootstrap.kubernetes.io/token' && !keep.includes(s.metadata?.name ?? ''))
      await applier.remove('control-plane', { apiVersion: 'v1', kind: 'Secret', metadata: s.metadata });
  }
}

export interface BuiltinAddonsOutcome {
  /** Objects of someone else's in the way. */
  problems: string[];
  /** Workloads not available yet, and add-ons waiting for their inputs. */
  progressing: string[];
  /** The add-ons the spec asks for. */
  wanted: BuiltinAddon[];
}

export async function reconcileBuiltinAddons(
  ctx: BusinessContext,
  { client, applier }: BusinessSession,
): Promise<BuiltinAddonsOutcome> {
  const wanted = wantedAddons(ctx.cluster.spec);
  const outcome: BuiltinAddonsOutcome = { problems: [], progressing: [], wanted };
  for (const addon of allAddons) {
    if (!wanted.includes(addon)) {
      for (const obj of shapes(ctx, addon)) {
        if (await applier.remove(addon, obj))
          ctx.events.normal(
            'AddonRemoved',
            `removed ${obj.kind} ${obj.metadata.name} of add-on ${addon} from the business cluster: the spec no longer asks for it`,
          );
      }
      continue;
    }
    const objects = render(ctx, addon);
    if (!objects) {
      outcome.progressing.push(`${addon}: waiting for its inputs (endpoint, certificates)`);
      continue;
    }
    try {
      for (const obj of objects) {
        const why = workloadNotReady(await applier.apply(addon, obj));
        if (why) outcome.progressing.push(why);
      }
    } catch (err) {
      if (!(err instanceof AddonConflict)) throw err;
      outcome.problems.push(err.message);
    }
  }
  await removeOldTokens(ctx, client, applier);
  return outcome;
}
