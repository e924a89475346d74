// Writes into a business cluster, under the same rules as into the meta-cluster (kube/apply.ts):
// server-side apply with the field manager `kubeonkube` and a hash of what was applied, nothing sent
// while the live object carries that hash and every field the operator sets (a steady state writes
// nothing, a hand edit is repaired). There are no owner references across clusters, so what the
// operator made there is marked by labels: it never takes over an object of a wanted name that
// lacks them (someone else's CoreDNS), and deletes only objects that carry them.
import { PatchStrategy, type KubernetesObject } from '@kubernetes/client-node';
import { appliedHashAnnotation, fieldManager, objectHash, type Writer } from '../kube/apply.ts';
import { toClientModel } from '../kube/client-model.ts';
import { containsDesired } from '../kube/drift.ts';
import type { BusinessClient } from './clients.ts';

/** On every object the operator applies into a business cluster: the add-on it belongs to. */
export const addonLabel = 'kubeonkube.io/addon';
export const managedByLabel = 'app.kubernetes.io/managed-by';

/** An object of a wanted name exists in the business cluster and is not the operator's (or another add-on's). */
export class AddonConflict extends Error {}

/** An object as messages name it: `Kind namespace/name`, or `Kind name` for a cluster-scoped one. */
export const describeObject = (obj: KubernetesObject) =>
  `${obj.kind} ${obj.metadata?.namespace ? `${obj.metadata.namespace}/` : ''}${obj.metadata?.name ?? ''}`;

/** Whether `live` was applied by the operator for `addon`. */
export const managedFor = (live: KubernetesObject, addon: string) =>
  live.metadata?.labels?.[managedByLabel] === 'kubeonkube' && live.metadata.labels[addonLabel] === addon;

export class BusinessApplier {
  readonly #client: BusinessClient;
  readonly #writer: Writer;

  /** `writer` counts each write and refuses them all when this process may not lead. */
  constructor(client: BusinessClient, writer: Writer) {
    this.#client = client;
    this.#writer = writer;
  }

  async read<T extends KubernetesObject>(obj: KubernetesObject): Promise<T | undefined> {
    try {
      return await this.#client.objects.read<T>(obj as T & { metadata: { name: string; namespace: string } });
    } catch (err) {
      if ((err as { code?: number }).code === 404) return undefined;
      // a kind the business cluster does not serve (a custom add-on's): no such object there
      if ((err as Error).message?.startsWith('Unrecognized API version and kind')) return undefined;
      throw err;
    }
  }

  /**
   * Applies `desired` of `addon` unless the live object already holds it; returns the live object
   * after. `adoptFrom` says whether an object the operator applied for another add-on may be taken
   * over (that add-on no longer renders it): handed over in place, never deleted and made anew.
   */
  async apply<T extends KubernetesObject>(
    addon: string,
    desired: KubernetesObject,
    adoptFrom?: (other: string) => boolean,
  ): Promise<T> {
    const labelled = {
      ...desired,
      metadata: {
        ...desired.metadata,
        labels: { ...desired.metadata?.labels, [managedByLabel]: 'kubeonkube', [addonLabel]: addon },
      },
    };
    const live = await this.read<T>(labelled);
    const other =
      live?.metadata?.labels?.[managedByLabel] === 'kubeonkube' ? live.metadata.labels[addonLabel] : undefined;
    const adopted = other !== undefined && other !== addon && adoptFrom?.(other) === true;
    if (live && !managedFor(live, addon) && !adopted) {
      throw new AddonConflict(
        `${describeObject(desired)} already exists in the business cluster and is not kubeonkube's ${addon} add-on; it is never taken over: delete it, or remove ${addon} from spec.addons`,
      );
    }
    const hash = objectHash(labelled);
    if (live && live.metadata?.annotations?.[appliedHashAnnotation] === hash && containsDesired(live, labelled))
      return live;
    const body = {
      ...labelled,
      metadata: {
        ...labelled.metadata,
        annotations: { ...labelled.metadata.annotations, [appliedHashAnnotation]: hash },
      },
    };
    this.#writer.count('business-apply', desired.kind ?? '');
    return this.#client.objects.patch<T>(
      toClientModel(body) as unknown as T,
      undefined,
      undefined,
      fieldManager,
      true,
      PatchStrategy.ServerSideApply,
    );
  }

  /** Deletes the object of that kind and name if it exists and was applied for `addon`; true when something was deleted. */
  async remove(addon: string, obj: KubernetesObject): Promise<boolean> {
    const live = await this.read(obj);
    if (!live || !managedFor(live, addon) || live.metadata?.deletionTimestamp) return false;
    this.#writer.count('business-delete', obj.kind ?? '');
    try {
      await this.#client.objects.delete(live, undefined, undefined, undefined, undefined, 'Background', {
        preconditions: { uid: live.metadata?.uid },
      });
    } catch (err) {
      if (![404, 409].includes((err as { code?: number }).code ?? 0)) throw err;
      return false;
    }
    return true;
  }
}
