// Who owns an object: by owner reference, or (for what outlives its Cluster) by annotation.
import { describe, expect, it } from 'vitest';
import { describeOwner, isOwnedBy, keptBy, ownedBy, ownerUidAnnotation } from './apply.ts';

const owner = { apiVersion: 'kubeonkube.io/v1alpha1', kind: 'Cluster', name: 'dev', uid: 'uid-1' };
const claim = {
  apiVersion: 'v1',
  kind: 'PersistentVolumeClaim',
  metadata: { name: 'dev-etcd-0', annotations: { 'kubeonkube.io/etcd-data-dir': 'data' } },
};

describe('ownership', () => {
  it('by owner reference: what the garbage collector follows', () => {
    const owned = ownedBy(claim, owner);
    expect((owned.metadata as { ownerReferences?: unknown }).ownerReferences).toEqual([
      { ...owner, controller: true, blockOwnerDeletion: true },
    ]);
    expect(isOwnedBy(owned, 'uid-1')).toBe(true);
    expect(isOwnedBy(owned, 'uid-2')).toBe(false);
    expect(describeOwner(owned)).toBe('owned by Cluster dev');
  });

  it('by annotation: nothing for the garbage collector to follow, the other annotations kept', () => {
    const kept = keptBy(ownedBy(claim, owner), owner);
    expect(kept.metadata).toEqual({
      name: 'dev-etcd-0',
      annotations: { 'kubeonkube.io/etcd-data-dir': 'data', [ownerUidAnnotation]: 'uid-1' },
    });
    expect(isOwnedBy(kept, 'uid-1')).toBe(true);
    // a Cluster of the same name made again has another UID: the claim is not its own
    expect(isOwnedBy(kept, 'uid-2')).toBe(false);
    expect(describeOwner(kept)).toBe('kept from a Cluster deleted before (UID uid-1, deletionPolicy Retain)');
    expect(isOwnedBy(kept, '')).toBe(false);
    expect(describeOwner(claim)).toBe('owned by nobody');
  });
});
