// The operator's own add-ons in the business cluster: the control plane's RBAC and node
// bootstrapping there, the tunnel agent, kube-proxy and CoreDNS (each switchable in the spec).
// Each keeps an inventory, as custom add-ons do (business/inventory.ts): what the spec no longer
// asks for, and what a newer template no longer renders, is removed by what was applied, not by
// rendering again. The bootstrap tokens applied are only the current one and the one before a
// renewal while it is accepted.
import type { V1ConfigMap, V1Secret } from '@kubernetes/client-node';
import type { BusinessApplier } from '../../../business/applier.ts';
import { addonLabel, AddonConflict } from '../../../business/applier.ts';
import { listBounded } from '../../../business/bounded-list.ts';
import type { BusinessClient } from '../../../business/clients.ts';
import {
  asObject,
  inventoryObject,
  inventoryRef,
  listedObjects,
  refOf,
  sameObject,
  type ObjectRef,
} from '../../../business/inventory.ts';
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

/** A bootstrap token's Secret: not inventoried, it has a life cycle of its own (removeOldTokens). */
const isBootstrapToken = (o: RenderedObject) =>
  o.kind === 'Secret' && o.metadata.namespace === 'kube-system' && o.metadata.name.startsWith('bootstrap-token-');

export async function reconcileBuiltinAddons(
  ctx: BusinessContext,
  { client, applier }: BusinessSession,
  inventories: Map<string, V1ConfigMap>,
): Promise<BuiltinAddonsOutcome> {
  const wanted = wantedAddons(ctx.cluster.spec);
  const outcome: BuiltinAddonsOutcome = { problems: [], progressing: [], wanted };
  const remove = async (addon: BuiltinAddon, ref: ObjectRef, why: string) => {
    if (await applier.remove(addon, asObject(ref)))
      ctx.events.normal(
        'AddonRemoved',
        `removed ${ref.kind} ${ref.name} of add-on ${addon} from the business cluster: ${why}`,
      );
  };
  for (const addon of allAddons) {
    const inventory = inventories.get(addon);
    const before = listedObjects(inventory);
    if (!wanted.includes(addon)) {
      for (const ref of before) await remove(addon, ref, 'the spec no longer asks for it');
      if (inventory) await applier.remove(addon, inventoryRef(addon));
      continue;
    }
    const objects = render(ctx, addon);
    if (!objects) {
      outcome.progressing.push(`${addon}: waiting for its inputs (endpoint, certificates)`);
      continue;
    }
    const refs = objects.filter((o) => !isBootstrapToken(o)).map(refOf);
    try {
      // the inventory first: it holds the objects about to be applied before any of them exists
      // (the same text as the last one in steady state: no write)
      await applier.apply(addon, inventoryObject(addon, [...before, ...refs]));
      for (const obj of objects) {
        const why = workloadNotReady(await applier.apply(addon, obj));
        if (why) outcome.progressing.push(why);
      }
      // what this version of the template no longer renders (an operator upgrade)
      for (const ref of before.filter((b) => !refs.some((r) => sameObject(r, b))))
        await remove(addon, ref, 'its template no longer renders it');
      await applier.apply(addon, inventoryObject(addon, refs));
    } catch (err) {
      if (!(err instanceof AddonConflict)) throw err;
      outcome.problems.push(err.message);
    }
  }
  await removeOldTokens(ctx, client, applier);
  return outcome;
}
