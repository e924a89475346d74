// Users' own add-ons: a Handlebars template in a ConfigMap of the Cluster's namespace (key
// template.yaml.hbs), rendered under the rules of the built-in templates with the Cluster's facts
// and the add-on's values, applied into the business cluster like the built-in add-ons. What each
// one applied is listed in its inventory (business/inventory.ts): objects no wanted add-on renders
// any more are removed, and everything once the add-on leaves spec.addons. An object that moves to
// another add-on (or comes with a renamed one) is handed over in place, never deleted and made
// anew. A template that cannot be read or rendered changes nothing there: what it applied stays.
import type { V1ConfigMap } from '@kubernetes/client-node';
import { AddonConflict, describeObject, type BusinessApplier } from '../../../business/applier.ts';
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
import {
  addonTemplates,
  customAddonContext,
  customAddons,
  customTemplateKey,
  type AddonSpec,
} from '../../../model/addons.ts';
import { TemplateError, type RenderedObject } from '../../../render/renderer.ts';
import type { BusinessContext } from './context.ts';

type ProblemReason = 'AddonTemplateInvalid' | 'AddonConflict' | 'AddonApplyFailed';
interface Problem {
  reason: ProblemReason;
  message: string;
}

export interface CustomAddonsOutcome {
  /** Why an add-on is not applied as asked: its template or ConfigMap, an object that is someone else's or that was refused. */
  problems: Problem[];
  /** Workloads not available yet. */
  progressing: string[];
  /** A problem that may pass by itself (the business cluster failed a request): look again soon. */
  retrySoon: boolean;
}

/** The first line of an error, with the apiserver's own message when there is one (never its headers). */
function shortError(err: unknown): string {
  const e = err as { code?: number; body?: unknown; message?: string };
  let body = e.body;
  if (typeof body === 'string') {
    try {
      body = JSON.parse(body);
    } catch {
      /* plain text */
    }
  }
  const message = (body as { message?: unknown } | undefined)?.message;
  if (typeof e.code === 'number') return `HTTP ${e.code}${typeof message === 'string' ? `: ${message}` : ''}`;
  return (e.message ?? String(err)).split('\n')[0]!.slice(0, 300);
}

/**
 * What the business apiserver said when it refused an object for good (a namespace that is not
 * there, an invalid field): the template's fault. Undefined for anything else (a timeout, a 5xx,
 * a conflict): those are retried soon.
 */
function refusal(err: unknown): string | undefined {
  const e = err as { code?: number };
  if (typeof e.code !== 'number' || e.code < 400 || e.code >= 500 || e.code === 409 || e.code === 429) return undefined;
  return shortError(err).replace(/^HTTP \d+: /, '');
}

const describe = (r: ObjectRef) => describeObject(asObject(r));
const problem = (reason: ProblemReason, message: string): Problem => ({ reason, message });

/**
 * `ref` as the business cluster stores it (a namespaced object without a namespace goes to
 * "default", as the client applies it), or why it cannot be had there.
 */
async function scoped(
  client: BusinessClient,
  ref: ObjectRef,
): Promise<{ ref: ObjectRef } | { notServed: string } | { clusterScoped: string }> {
  let namespaced: boolean | undefined;
  try {
    namespaced = await client.objects.namespaced(ref.apiVersion, ref.kind);
  } catch (err) {
    // discovery of a group or version the cluster does not serve answers a bare 404
    if ((err as { code?: number }).code !== 404) throw err;
  }
  if (namespaced === undefined) return { notServed: `the business cluster serves no ${ref.kind} in ${ref.apiVersion}` };
  if (namespaced) return { ref: { ...ref, namespace: ref.namespace ?? 'default' } };
  if (ref.namespace)
    return { clusterScoped: `${ref.kind} is cluster-scoped: ${describe(ref)} must have no metadata.namespace` };
  return { ref };
}

/** The add-on's objects as they will be applied, or why they cannot be. */
async function prepare(
  ctx: BusinessContext,
  client: BusinessClient,
  addon: AddonSpec,
): Promise<RenderedObject[] | Problem> {
  const ref = addon.template?.configMapRef?.name;
  const invalid = (message: string) => problem('AddonTemplateInvalid', `add-on ${addon.name}: ${message}`);
  if (!ref) return invalid('no template.configMapRef');
  let cm: V1ConfigMap | undefined;
  try {
    cm = await ctx.configMap(ref);
  } catch (err) {
    return {
      ...invalid(`reading ConfigMap ${ctx.namespace}/${ref} failed: ${shortError(err)}`),
      reason: 'AddonApplyFailed',
    };
  }
  if (!cm) return invalid(`ConfigMap ${ctx.namespace}/${ref} not found`);
  const source = cm.data?.[customTemplateKey];
  if (source === undefined) {
    const keys = Object.keys(cm.data ?? {});
    return invalid(
      `ConfigMap ${ctx.namespace}/${ref} has no key ${customTemplateKey}${keys.length ? ` (it has ${keys.join(', ')})` : ''}`,
    );
  }
  let objects: RenderedObject[];
  try {
    objects = await ctx.renderer.renderSource(
      `${ctx.namespace}/${ref}`,
      source,
      customAddonContext({ name: ctx.name, namespace: ctx.namespace }, ctx.cluster.spec, addon, ctx.inputs.endpoint),
    );
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err;
    return invalid(err.message);
  }
  if (objects.length === 0) return invalid(`the template in ConfigMap ${ctx.namespace}/${ref} rendered no object`);
  const out: RenderedObject[] = [];
  for (const obj of objects) {
    // the apiserver keeps no status sent with an object: it would never match, and be sent again
    if ('status' in obj)
      return invalid(`${describe(refOf(obj))} has a status: that is the business cluster's to write`);
    let where;
    try {
      where = await scoped(client, refOf(obj));
    } catch (err) {
      return problem(
        'AddonApplyFailed',
        `add-on ${addon.name}: looking up ${obj.kind} in ${obj.apiVersion} failed: ${shortError(err)}`,
      );
    }
    if ('notServed' in where) return problem('AddonApplyFailed', `add-on ${addon.name}: ${where.notServed}`);
    if ('clusterScoped' in where) return invalid(where.clusterScoped);
    out.push({
      ...obj,
      metadata: { ...obj.metadata, ...(where.ref.namespace ? { namespace: where.ref.namespace } : {}) },
    });
  }
  return out;
}

/**
 * Applies `objects` of `addon` in order, noting workloads not available yet in `progressing`, and
 * stops at the first it cannot: why, and whether that may pass by itself.
 */
async function applyInOrder(
  applier: BusinessApplier,
  addon: string,
  objects: RenderedObject[],
  adoptable: (obj: RenderedObject) => (other: string) => boolean,
  progressing: string[],
): Promise<(Problem & { retrySoon: boolean }) | undefined> {
  for (const obj of objects) {
    try {
      const why = workloadNotReady(await applier.apply(addon, obj, adoptable(obj)));
      if (why) progressing.push(why);
    } catch (err) {
      if (err instanceof AddonConflict) return { ...problem('AddonConflict', err.message), retrySoon: false };
      const why = refusal(err);
      return {
        ...problem(
          'AddonApplyFailed',
          `add-on ${addon}: the business cluster refused ${describeObject(obj)}: ${why ?? shortError(err)}`,
        ),
        retrySoon: why === undefined,
      };
    }
  }
  return undefined;
}

/** What an inventory lists, as the business cluster stores it (a kind no longer served is kept as listed). */
async function listed(client: BusinessClient, inventory: V1ConfigMap | undefined): Promise<ObjectRef[]> {
  return Promise.all(
    listedObjects(inventory).map(async (r): Promise<ObjectRef> => {
      const s = await scoped(client, r);
      if ('ref' in s) return s.ref;
      return 'clusterScoped' in s ? { apiVersion: r.apiVersion, kind: r.kind, name: r.name } : r;
    }),
  );
}

export async function reconcileCustomAddons(
  ctx: BusinessContext,
  client: BusinessClient,
  applier: BusinessApplier,
  inventories: Map<string, V1ConfigMap>,
): Promise<CustomAddonsOutcome> {
  const outcome: CustomAddonsOutcome = { problems: [], progressing: [], retrySoon: false };
  const wanted = customAddons(ctx.cluster.spec);
  // the built-in add-ons keep theirs (builtin-addons.ts)
  const applied = new Map([...inventories].filter(([name]) => !Object.hasOwn(addonTemplates, name)));
  // every wanted add-on first: what any of them renders is never removed, and what one whose
  // template failed applied before is kept as it is
  const prepared = new Map<string, RenderedObject[] | Problem>();
  for (const addon of wanted) prepared.set(addon.name, await prepare(ctx, client, addon));
  const renders = (name: string, ref: ObjectRef) => {
    const p = prepared.get(name);
    return Array.isArray(p) && p.some((o) => sameObject(refOf(o), ref));
  };
  const kept: ObjectRef[] = [];
  for (const [name, p] of prepared) if (!Array.isArray(p)) kept.push(...(await listed(client, applied.get(name))));
  const stays = (ref: ObjectRef) => wanted.some((a) => renders(a.name, ref)) || kept.some((k) => sameObject(k, ref));
  const removeUnlessStays = async (name: string, ref: ObjectRef, why: string) => {
    if (stays(ref)) return;
    if (await applier.remove(name, asObject(ref)))
      ctx.events.normal('AddonRemoved', `removed ${describe(ref)} of add-on ${name} from the business cluster: ${why}`);
  };

  for (const addon of wanted) {
    const objects = prepared.get(addon.name)!;
    if (!Array.isArray(objects)) {
      outcome.problems.push({ ...objects, message: `${objects.message}; what it applied before is kept` });
      if (objects.reason === 'AddonApplyFailed') outcome.retrySoon = true;
      continue;
    }
    const refs = objects.map(refOf);
    const before = await listed(client, applied.get(addon.name));
    // an object another add-on applied and no longer renders (moved here, or the add-on renamed) is
    // handed over; not one of a built-in add-on, nor of an add-on whose template failed
    const adoptable = (obj: RenderedObject) => (other: string) =>
      !Object.hasOwn(addonTemplates, other) && Array.isArray(prepared.get(other) ?? []) && !renders(other, refOf(obj));
    // the inventory first: it holds the objects about to be applied before any of them exists
    const failure = await applyInOrder(
      applier,
      addon.name,
      [inventoryObject(addon.name, [...before, ...refs]), ...objects],
      adoptable,
      outcome.progressing,
    );
    // nothing is removed while the add-on is not applied whole
    if (failure) {
      outcome.problems.push(failure);
      if (failure.retrySoon) outcome.retrySoon = true;
      continue;
    }
    for (const ref of before.filter((b) => !refs.some((r) => sameObject(r, b))))
      await removeUnlessStays(addon.name, ref, 'its template no longer renders it');
    // the same text as the first when nothing went: no write
    await applier.apply(addon.name, inventoryObject(addon.name, refs));
  }
  // add-ons the spec no longer lists: everything their inventory names that no wanted add-on renders, then the inventory
  for (const [name, inventory] of applied) {
    if (wanted.some((a) => a.name === name)) continue;
    for (const ref of await listed(client, inventory))
      await removeUnlessStays(name, ref, 'the spec no longer asks for it');
    await applier.remove(name, inventoryRef(name));
  }
  return outcome;
}
