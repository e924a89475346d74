// The built-in add-ons' inventories, with a real renderer and a fake applier that records what it
// was asked: what the inventory lists and the template no longer renders is removed, an add-on the
// spec dropped goes with its inventory, and a bootstrap token is never inventoried.
import type { KubernetesObject, V1ConfigMap } from '@kubernetes/client-node';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { withDefaults } from '../../../api/defaults.ts';
import type { BusinessApplier } from '../../../business/applier.ts';
import type { BusinessClient } from '../../../business/clients.ts';
import { inventoryName, inventoryObject, listedObjects, type ObjectRef } from '../../../business/inventory.ts';
import { Renderer } from '../../../render/renderer.ts';
import { reconcileBuiltinAddons } from './builtin-addons.ts';
import type { BusinessContext } from './context.ts';

const renderer = new Renderer();

function run(spec: object, inventories: Map<string, V1ConfigMap>) {
  const calls: string[] = [];
  const inventoryTexts: Record<string, ObjectRef[][]> = {};
  const events: string[] = [];
  const applier = {
    apply: (addon: string, obj: KubernetesObject) => {
      if (obj.kind === 'ConfigMap' && obj.metadata?.name === inventoryName(addon))
        (inventoryTexts[addon] ??= []).push(listedObjects(obj as V1ConfigMap));
      else calls.push(`apply ${addon} ${obj.kind}/${obj.metadata?.name}`);
      return Promise.resolve(obj);
    },
    remove: (addon: string, obj: KubernetesObject) => {
      calls.push(`remove ${addon} ${obj.kind}/${obj.metadata?.name}`);
      return Promise.resolve(true);
    },
  } as unknown as BusinessApplier;
  const client = { core: { listNamespacedSecret: () => Promise.resolve({ items: [] }) } } as unknown as BusinessClient;
  const ctx = {
    cluster: {
      spec: withDefaults({
        version: 'v1.34.4',
        etcd: { storage: { volumeSource: { emptyDir: {} } } },
        tunnel: { enabled: false },
        ...spec,
      }),
    },
    name: 'c',
    namespace: 't',
    renderer,
    inputs: {
      endpoint: { host: '10.0.0.1', port: 6443 },
      bootstrapToken: { id: 'abcdef', secret: '0123456789abcdef' },
      previousBootstrapToken: undefined,
    },
    events: { normal: (reason: string, message: string) => events.push(`${reason}: ${message}`), warning: () => {} },
    log: pino({ level: 'silent' }),
  } as unknown as BusinessContext;
  return reconcileBuiltinAddons(ctx, { client, applier }, inventories).then((outcome) => ({
    outcome,
    calls,
    inventoryTexts,
    events,
  }));
}

const inventory = (addon: string, refs: ObjectRef[]) => inventoryObject(addon, refs) as V1ConfigMap;
const gone: ObjectRef = { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'kube-system', name: 'coredns-old' };

describe('built-in add-ons', () => {
  it('list what they apply (never a bootstrap token), and keep the same list in steady state', async () => {
    const first = await run({ addons: [{ name: 'coredns' }] }, new Map());
    const listed = first.inventoryTexts['coredns']!;
    // the list before the objects, then the same list after them
    expect(listed).toHaveLength(2);
    expect(listed[0]).toEqual(listed[1]);
    expect(listed[0]!.map((r) => `${r.kind}/${r.name}`)).toContain('Deployment/coredns');
    const controlPlane = first.inventoryTexts['control-plane']![1]!;
    expect(controlPlane.some((r) => r.name.startsWith('bootstrap-token-'))).toBe(false);
    expect(first.calls).toContain('apply control-plane Secret/bootstrap-token-abcdef');
    expect(first.calls.filter((c) => c.startsWith('remove'))).toEqual([]);

    const again = await run(
      { addons: [{ name: 'coredns' }] },
      new Map([
        ['coredns', inventory('coredns', listed[1]!)],
        ['control-plane', inventory('control-plane', controlPlane)],
      ]),
    );
    expect(again.inventoryTexts['coredns']).toEqual([listed[1], listed[1]]);
    expect(again.calls.filter((c) => c.startsWith('remove'))).toEqual([]);
  });

  it('remove what the inventory lists and the template no longer renders, after applying what it does', async () => {
    const current = (await run({ addons: [{ name: 'coredns' }] }, new Map())).inventoryTexts['coredns']![1]!;
    const { calls, inventoryTexts, events } = await run(
      { addons: [{ name: 'coredns' }] },
      new Map([['coredns', inventory('coredns', [...current, gone])]]),
    );
    expect(calls.at(-1)).toBe('remove coredns ConfigMap/coredns-old');
    expect(calls.indexOf('apply coredns Deployment/coredns')).toBeLessThan(calls.length - 1);
    // the old object stays listed until it is gone
    expect(inventoryTexts['coredns']![0]).toContainEqual(gone);
    expect(inventoryTexts['coredns']![1]).not.toContainEqual(gone);
    expect(events).toEqual([
      'AddonRemoved: removed ConfigMap coredns-old of add-on coredns from the business cluster: its template no longer renders it',
    ]);
  });

  it('remove everything an add-on the spec dropped applied, then its inventory', async () => {
    const proxy: ObjectRef = { apiVersion: 'apps/v1', kind: 'DaemonSet', namespace: 'kube-system', name: 'kube-proxy' };
    const { calls, outcome } = await run({ addons: [] }, new Map([['kube-proxy', inventory('kube-proxy', [proxy])]]));
    expect(outcome.wanted).toEqual(['control-plane']);
    expect(calls.filter((c) => c.includes('kube-proxy'))).toEqual([
      'remove kube-proxy DaemonSet/kube-proxy',
      'remove kube-proxy ConfigMap/kubeonkube-addon-kube-proxy',
    ]);
    // nothing of an add-on that was never applied is asked for
    expect(calls.some((c) => c.includes('coredns'))).toBe(false);
  });
});
