import { describe, expect, it } from 'vitest';
import { inventoryObject, listedObjects, refOf, sameObject } from './inventory.ts';

const cm = (name: string, namespace?: string) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name, ...(namespace ? { namespace } : {}) },
});

describe('an add-on inventory', () => {
  it("lists each object once, in an order that does not depend on the template's", () => {
    const a = inventoryObject('mine', [refOf(cm('b', 'x')), refOf(cm('a', 'x')), refOf(cm('b', 'x'))]);
    const b = inventoryObject('mine', [refOf(cm('a', 'x')), refOf(cm('b', 'x'))]);
    expect(a).toEqual(b);
    expect(a.metadata).toMatchObject({
      name: 'kubeonkube-addon-mine',
      namespace: 'kube-system',
      labels: { 'kubeonkube.io/addon-inventory': 'true' },
    });
    expect(listedObjects(a as { data?: Record<string, string> })).toEqual([
      { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'x', name: 'a' },
      { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'x', name: 'b' },
    ]);
  });

  it('orders by code units, not by the locale (which would pass over the separators)', () => {
    const refs = [refOf(cm('bc', 'a')), refOf(cm('c', 'ab'))];
    expect(JSON.parse((inventoryObject('x', refs).data as { objects: string }).objects)).toEqual([
      { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'a', name: 'bc' },
      { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'ab', name: 'c' },
    ]);
    expect(inventoryObject('x', refs)).toEqual(inventoryObject('x', [...refs].reverse()));
  });

  it('takes an object whose group moved to another version for the same object', () => {
    const v1 = { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'x', name: 'd' };
    expect(sameObject(v1, { ...v1, apiVersion: 'apps/v1beta2' })).toBe(true);
    expect(sameObject(v1, { ...v1, apiVersion: 'extensions/v1beta1' })).toBe(false);
    expect(
      sameObject(
        { apiVersion: 'v1', kind: 'ConfigMap', name: 'a' },
        { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'default', name: 'a' },
      ),
    ).toBe(false);
  });

  it('passes over what is not an object reference in an inventory edited by hand', () => {
    const inventory = {
      data: {
        objects: JSON.stringify([
          { apiVersion: 'v1', kind: 'ConfigMap', name: 'ok' },
          { kind: 'Secret' },
          'x',
          null,
          { apiVersion: 'v1', kind: 'ConfigMap', name: '', namespace: 'a' },
        ]),
      },
    };
    expect(listedObjects(inventory)).toEqual([{ apiVersion: 'v1', kind: 'ConfigMap', name: 'ok' }]);
    expect(listedObjects({ data: { objects: '{not json' } })).toEqual([]);
    expect(listedObjects(undefined)).toEqual([]);
  });
});
