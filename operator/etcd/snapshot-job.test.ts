import { describe, expect, it } from 'vitest';
import { beyondRetention, snapshotFileName, snapshotsOf } from './snapshot-job.ts';

describe('snapshot files', () => {
  it('are named by Cluster and UTC time, so that they sort by time', () => {
    expect(snapshotFileName('prod-a', new Date('2026-11-23T10:15:00.123Z'))).toBe('prod-a-20261123T101500Z.db');
  });

  it('of one Cluster are never taken for another whose name starts alike', () => {
    const files = [
      'b-20261123T101500Z.db',
      'b-2-20261123T101400Z.db',
      'b-20261122T101500Z.db',
      'b-20261123T101600Z.db.part',
      'notes.txt',
    ];
    expect(snapshotsOf('b', files)).toEqual(['b-20261122T101500Z.db', 'b-20261123T101500Z.db']);
    expect(snapshotsOf('b-2', files)).toEqual(['b-2-20261123T101400Z.db']);
  });

  it('beyond the retention are the oldest', () => {
    const files = ['c-20261101T000000Z.db', 'c-20261103T000000Z.db', 'c-20261102T000000Z.db', 'cc-20261101T000000Z.db'];
    expect(beyondRetention('c', files, 2)).toEqual(['c-20261101T000000Z.db']);
    expect(beyondRetention('c', files, 5)).toEqual([]);
  });
});
