// Every add-on's inventory in the business cluster (business/inventory.ts), built-in and custom,
// read once per pass: what each add-on applied, so what it no longer renders (a template of a new
// operator version, a custom template edited) and everything of an add-on the spec dropped is
// removed, without rendering anything again.
import type { V1ConfigMap } from '@kubernetes/client-node';
import { addonLabel, managedByLabel } from '../../../business/applier.ts';
import { listBounded } from '../../../business/bounded-list.ts';
import type { BusinessClient } from '../../../business/clients.ts';
import { inventoryLabel, inventoryName, inventoryNamespace } from '../../../business/inventory.ts';

/** The inventories in the business cluster, by add-on name. */
export async function readInventories(client: BusinessClient): Promise<Map<string, V1ConfigMap>> {
  const list = await listBounded((page) =>
    client.core.listNamespacedConfigMap({
      namespace: inventoryNamespace,
      labelSelector: `${managedByLabel}=kubeonkube,${inventoryLabel}`,
      ...page,
    }),
  );
  return new Map(
    list.flatMap((cm): [string, V1ConfigMap][] => {
      const addon = cm.metadata?.labels?.[addonLabel];
      return addon && cm.metadata?.name === inventoryName(addon) ? [[addon, cm]] : [];
    }),
  );
}
