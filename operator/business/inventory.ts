// What a custom add-on put into a business cluster, kept beside it: a ConfigMap
// kube-system/kubeonkube-addon-<name> lists each object by apiVersion, kind, namespace and name. With
// it the operator removes what a new version of the template no longer renders, and everything once
// the add-on leaves the spec, even when its template (the user's ConfigMap) is gone by then. It is
// written before the objects it lists, holding the old ones and the new, so an operator stopped in
// between leaves nothing in the business cluster it does not know of.
import type { KubernetesObject, V1ConfigMap } from '@kubernetes/client-node';
import type { RenderedObject } from '../render/renderer.ts';

/** On inventory ConfigMaps only (beside the add-on label every applied object has). */
export const inventoryLabel = 'kubeonkube.io/addon-inventory';
export const inventoryNamespace = 'kube-system';
export const inventoryName = (addon: string) => `kubeonkube-addon-${addon}`;

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name: string;
}

export const refOf = (obj: RenderedObject): ObjectRef => ({
  apiVersion: obj.apiVersion,
  kind: obj.kind,
  ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}),
  name: obj.metadata.name,
});

/** The same object (an apiVersion may move between versions of a group: the group and kind decide). */
export const sameObject = (a: ObjectRef, b: ObjectRef) =>
  a.apiVersion.split('/').slice(0, -1).join('/') === b.apiVersion.split('/').slice(0, -1).join('/') &&
  a.kind === b.kind &&
  (a.namespace ?? '') === (b.namespace ?? '') &&
  a.name === b.name;

/** `refs` once each, in a stable order (a steady inventory never changes its text). */
export function distinct(refs: ObjectRef[]): ObjectRef[] {
  const out: ObjectRef[] = [];
  for (const r of refs) if (!out.some((o) => sameObject(o, r))) out.push(r);
  const key = (r: ObjectRef) => `${r.kind}\0${r.namespace ?? ''}\0${r.name}\0${r.apiVersion}`;
  // by code units: the same order whatever the locale
  return out.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

export function inventoryObject(addon: string, refs: ObjectRef[]): RenderedObject {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: inventoryName(addon), namespace: inventoryNamespace, labels: { [inventoryLabel]: 'true' } },
    data: { objects: JSON.stringify(distinct(refs), null, 1) },
  };
}

/** The objects an inventory lists; entries that are not object references are passed over. */
export function listedObjects(inventory: Pick<V1ConfigMap, 'data'> | undefined): ObjectRef[] {
  const text = inventory?.data?.objects;
  if (!text) return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return [];
  }
  const str = (v: unknown): v is string => typeof v === 'string' && v !== '';
  return (Array.isArray(parsed) ? parsed : []).filter((r): r is ObjectRef => {
    const o = r as Partial<ObjectRef>;
    return (
      typeof r === 'object' &&
      r !== null &&
      str(o.apiVersion) &&
      str(o.kind) &&
      str(o.name) &&
      (o.namespace === undefined || str(o.namespace))
    );
  });
}

/** An object reference as the applier reads and deletes objects. */
export const asObject = (r: ObjectRef): KubernetesObject => ({
  apiVersion: r.apiVersion,
  kind: r.kind,
  metadata: { name: r.name, ...(r.namespace ? { namespace: r.namespace } : {}) },
});

/** An add-on's inventory ConfigMap, as the applier reads and deletes it. */
export const inventoryRef = (addon: string): KubernetesObject =>
  asObject({ apiVersion: 'v1', kind: 'ConfigMap', namespace: inventoryNamespace, name: inventoryName(addon) });
