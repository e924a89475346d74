// The chart ships the same CRD as crds/ and the version of the project it installs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './testbed/config.ts';

const read = (path: string) => readFileSync(join(repoRoot, path), 'utf8');

describe('charts/kubeonkube', () => {
  it('carries crds/kubeonkube.io_clusters.yaml unchanged (cp it after editing the CRD)', () => {
    expect(read('charts/kubeonkube/crds/kubeonkube.io_clusters.yaml')).toBe(read('crds/kubeonkube.io_clusters.yaml'));
  });

  it('installs the version package.json names', () => {
    const version = (JSON.parse(read('package.json')) as { version: string }).version;
    expect(read('charts/kubeonkube/Chart.yaml')).toContain(`appVersion: "${version}"`);
  });
});
