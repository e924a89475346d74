// Users' own add-ons: a Handlebars template in a ConfigMap of the Cluster's namespace (key
// template.yaml.hbs), rendered under the rules of the built-in templates with the Cluster's facts
// and the add-on's values, applied into the business cluster like the built-in add-ons. What each
// one applied is listed in its inventory (business/inventory.ts): objects the template no longer
// renders are removed, and everything once the add-on leaves spec.addons. A template that cannot be
// read or rendered changes nothing there: what was applied stays until the template is fixed.
import type { V1ConfigMap } from '@kubernetes/client-node';
import { AddonConflict, addonLabel, managedByLabel, type BusinessApplier } from '../business/applier.ts';
import type { BusinessClient } from '../business/clients.ts';
import { asObject, inventoryLabel, inventoryName, inventoryNamespace, inventoryObject, listedObjects, refOf, sameObject } from '../business/inventory.ts';
import { workloadNotReady } from '../business/readiness.ts';
import { customAddonContext, customAddons, customTemplateKey, type AddonSpec } from '../model/addons.ts';
import { TemplateError, type RenderedObject } from '../render/renderer.ts';
import type { ReconcileContext } from './context.ts';

export interface CustomAddonsOutcome {
  /** Why an add-on is not applied as asked: its template or ConfigMap, or an object that is someone else's. */
  problems: { reason: 'AddonTemplateInvalid' | 'AddonConflict' | 'AddonApplyFailed'; message: string }[];
  /** Workloads not available yet. */
  progressing: string[];
}

/** The add-on's objects, or why they cannot be had. */
async function renderAddon(ctx: ReconcileContext, addon: AddonSpec): Promise<RenderedObject[] | string> {
  const ref = addon.template?.configMapRef?.name;
  if (!ref) return `add-on ${addon.name}: no template.configMapRef`;
  let cm: V1ConfigMap | undefined;
  try {
    cm = await ctx.configMap(ref);
  } catch (err) {
    return `add-on ${addon.name}: reading ConfigMap ${ctx.namespace}/${ref} failed: ${(err as Error).message}`;
  }
  if (!cm) return `add-on ${addon.name}: ConfigMap ${ctx.namespace}/${ref} not found`;
  const source = cm.data?.[customTemplateKey];
  if (source === undefined) {
    const keys = Object.keys(cm.data ?? {});
    return `add-on ${addon.name}: ConfigMap ${ctx.namespace}/${ref} has no key ${customTemplateKey}${keys.length ? ` (it has ${keys.join(', ')})` : ''}`;
  }
  try {
    const context = customAddonContext({ name: ctx.name, namespace: ctx.namespace }, ctx.cluster.spec, addon, ctx.facts.endpoint);
    const objects = ctx.renderer.renderSource(`${ctx.namespace}/${ref}`, source, context);
    return objects.length > 0 ? objects : `add-on ${addon.name}: the template in ConfigMap ${ctx.namespace}/${ref} rendered no object`;
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err;
    return `add-on ${addon.name}: ${err.message}`;
  }
}

/**
 * What the business apiserver said when it refused an object for good (a kind it does not serve, a
 * namespace that is not there, an invalid field): the template's fault, not worth a retry before
 * it changes. Undefined for anything else (a timeout, a 5xx): those are retried.
 */
function refusal(err: unknown, obj: RenderedObject): string | undefined {
  const e = err as { code?: number; body?: unknown; message?: string };
  const notServed = `it serves no ${obj.kind} in ${obj.apiVersion}`;
  if (typeof e.message === 'string' && e.message.startsWith('Unrecognized API version and kind')) return notServed;
  if (typeof e.code !== 'number' || e.code < 400 || e.code >= 500 || e.code === 409 || e.code === 429) return undefined;
  let body = e.body;
  if (typeof body === 'string') {
    try { body = JSON.parse(body); } catch { /* plain text */ }
  }
  const message = (body as { message?: unknown } | undefined)?.message;
  if (typeof message === 'string') return message;
  // discovery of an API group the cluster does not have answers a bare 404
  return e.code === 404 ? notServed : `HTTP ${e.code}`;
}

/** An object the business cluster refused for good; the message names it and says why. */
class AddonRefused extends Error {}

/** The inventories in the business cluster, by add-on name. */
async function inventories(client: BusinessClient): Promise<Map<string, V1ConfigMap>> {
  const list = await client.core.listNamespacedConfigMap({ namespace: inventoryNamespace, labelSelector: `${managedByLabel}=kubeonkube,${inventoryLabel}` });
  return new Map(list.items.flatMap((cm): [string, V1ConfigMap][] => {
    const addon = cm.metadata?.labels?.[addonLabel];
    return addon && cm.metadata?.name === inventoryName(addon) ? [[addon, cm]] : [];
  }));
}

export async function reconcileCustomAddons(ctx: ReconcileContext, client: BusinessClient, applier: BusinessApplier): Promise<CustomAddonsOutcome> {
  const outcome: CustomAddonsOutcome = { problems: [], progressing: [] };
  const wanted = customAddons(ctx.cluster.spec);
  const applied = await inventories(client);
  for (const addon of wanted) {
    const objects = await renderAddon(ctx, addon);
    if (typeof objects === 'string') {
      outcome.problems.push({ reason: 'AddonTemplateInvalid', message: `${objects}; what it applied before is kept` });
      continue;
    }
    const refs = objects.map(refOf);
    const before = listedObjects(applied.get(addon.name));
    try {
      // the inventory first: it holds the objects about to be applied before any of them exists
      await applier.apply(addon.name, inventoryObject(addon.name, [...before, ...refs]));
      for (const obj of objects) {
        let live;
        try {
          live = await applier.apply(addon.name, obj);
        } catch (err) {
          const why = refusal(err, obj);
          if (why === undefined) throw err;
          throw new AddonRefused(`add-on ${addon.name}: the business cluster refused ${obj.kind} ${obj.metadata.namespace ? `${obj.metadata.namespace}/` : ''}${obj.metadata.name}: ${why}`);
        }
        const why = workloadNotReady(live);
        if (why) outcome.progressing.push(why);
      }
    } catch (err) {
      if (err instanceof AddonConflict) outcome.problems.push({ reason: 'AddonConflict', message: err.message });
      else if (err instanceof AddonRefused) outcome.problems.push({ reason: 'AddonApplyFailed', message: err.message });
      else throw err;
      continue;
    }
    const gone = before.filter((b) => !refs.some((r) => sameObject(r, b)));
    for (const ref of gone) {
      if (await applier.remove(addon.name, asObject(ref))) {
        ctx.events.normal('AddonRemoved', `removed ${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ''}${ref.name} of add-on ${addon.name} from the business cluster: its template no longer renders it`);
      }
    }
    // the same text as the first when nothing went: no write
    await applier.apply(addon.name, inventoryObject(addon.name, refs));
  }
  // add-ons the spec no longer lists: everything their inventory names, then the inventory
  for (const [name, inventory] of applied) {
    if (wanted.some((a) => a.name === name)) continue;
    for (const ref of listedObjects(inventory)) {
      if (await applier.remove(name, asObject(ref))) {
        ctx.events.normal('AddonRemoved', `removed ${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ''}${ref.name} of add-on ${name} from the business cluster: the spec no longer asks for it`);
      }
    }
    await applier.remove(name, asObject({ apiVersion: 'v1', kind: 'ConfigMap', namespace: inventoryNamespace, name: inventoryName(name) }));
  }
  return outcome;
}
