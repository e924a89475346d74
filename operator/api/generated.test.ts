import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { crdPath, generateApi, outputPath, readCrd, run } from '../../scripts/generate-api.ts';
import type { JsonSchema } from '../../scripts/generate-api.ts';
import { clusterResource, clusterSchema } from './cluster.generated.ts';

const root = resolve(import.meta.dirname, '../..');
const crdYaml = readFileSync(join(root, crdPath), 'utf8');
const generated = generateApi(crdYaml);

describe('cluster.generated.ts', () => {
  it('is what the generator makes of the CRD', () => {
    const committed = readFileSync(join(root, outputPath), 'utf8');
    expect(committed, `${outputPath} is out of date: run npm run generate:api`).toBe(generated);
  });

  it('holds the CRD schema as is', () => {
    expect(clusterSchema).toEqual(readCrd(crdYaml).schema);
    expect(clusterResource).toEqual({
      group: 'kubeonkube.io',
      version: 'v1alpha1',
      apiVersion: 'kubeonkube.io/v1alpha1',
      kind: 'Cluster',
      plural: 'clusters',
    });
  });

  it('types required, defaulted, open and int-or-string fields as the schema says', () => {
    // required
    expect(generated).toContain('export interface ClusterSpec {');
    expect(generated).toMatch(/\n {2}version: string;\n/);
    expect(generated).toMatch(/\n {2}etcd: ClusterSpecEtcd;\n/);
    // defaulted: always present once the apiserver (or validate) has filled it in
    expect(generated).toMatch(/\n {2}mode: 'minimal' \| 'standard';\n/);
    expect(generated).toMatch(/\n {2}addons: ClusterSpecAddon\[\];\n/);
    // optional
    expect(generated).toMatch(/\n {2}users\?: ClusterSpecUser\[\];\n/);
    // x-kubernetes-preserve-unknown-fields and int-or-string
    expect(generated).toMatch(/\n {2}volumeSource\?: Record<string, unknown>;\n/);
    expect(generated).toMatch(/\n {2}storage: number \| string;\n/);
    expect(generated).toMatch(/\n {2}requests\?: Record<string, number \| string>;\n/);
    // descriptions and defaults as JSDoc
    expect(generated).toContain(
      '   * IP range of Services (the kube-apiserver --service-cluster-ip-range).\n   *\n   * @defaultValue "10.96.0.0/12"\n   */\n  serviceCIDR: string;',
    );
    expect(generated).toContain("import type { V1ObjectMeta } from '@kubernetes/client-node';");
  });
});

describe('the CRD schema', () => {
  it('describes every field, so kubectl explain helps', () => {
    const undescribed: string[] = [];
    const visit = (node: JsonSchema, path: string) => {
      // the apiserver refuses a description on the root metadata (it has its own)
      if (!node.description && path !== '.metadata') undescribed.push(path || '<root>');
      for (const [k, v] of Object.entries(node.properties ?? {})) visit(v, `${path}.${k}`);
      if (node.items) visit(node.items, `${path}[]`);
      if (typeof node.additionalProperties === 'object' && node.additionalProperties.type === 'object')
        visit(node.additionalProperties, `${path}.*`);
    };
    visit(readCrd(crdYaml).schema, '');
    expect(undescribed).toEqual([]);
  });
});

describe('scripts/generate-api.ts', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'kok-generate-api-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  let n = 0;
  /** A copy of the repository's Cluster CRD, with the output as given (undefined: missing). */
  function repo(output: string | undefined): string {
    const dir = join(tmp, String(n++));
    mkdirSync(join(dir, 'operator/api'), { recursive: true });
    mkdirSync(join(dir, 'crds'));
    cpSync(join(root, crdPath), join(dir, crdPath));
    if (output !== undefined) writeFileSync(join(dir, outputPath), output);
    return dir;
  }

  it('--check passes on an up-to-date file and fails on a stale or missing one, writing nothing', () => {
    expect(run(['--check'], {}, repo(generated))).toEqual({ code: 0, message: `${outputPath} is up to date` });
    const stale = repo('// stale\n');
    expect(run(['--check'], {}, stale)).toEqual({
      code: 1,
      message: 'operator/api/cluster.generated.ts is out of date: run npm run generate:api',
    });
    expect(readFileSync(join(stale, outputPath), 'utf8')).toBe('// stale\n');
    expect(run(['--check'], {}, repo(undefined)).code).toBe(1);
  });

  it('writes the file, but never in CI', () => {
    const local = repo('// stale\n');
    expect(run([], {}, local)).toEqual({ code: 0, message: `wrote ${outputPath}` });
    expect(readFileSync(join(local, outputPath), 'utf8')).toBe(generated);
    const ci = repo('// stale\n');
    expect(run([], { CI: 'true' }, ci).code).toBe(1);
    expect(run([], { CI: 'true' }, ci).message).toMatch(
      /^operator\/api\/cluster\.generated\.ts is out of date: run npm run generate:api/,
    );
    expect(readFileSync(join(ci, outputPath), 'utf8')).toBe('// stale\n');
  });

  it('writes one file per kind', () => {
    const dir = repo(undefined);
    cpSync(join(root, 'crds/kubeonkube.io_machines.yaml'), join(dir, 'crds/kubeonkube.io_machines.yaml'));
    expect(run([], {}, dir).message).toBe(
      'wrote operator/api/cluster.generated.ts\nwrote operator/api/machine.generated.ts',
    );
    expect(readFileSync(join(dir, 'operator/api/machine.generated.ts'), 'utf8')).toBe(
      readFileSync(join(root, 'operator/api/machine.generated.ts'), 'utf8'),
    );
  });

  it('refuses unknown arguments', () => {
    expect(run(['--force'], {}, repo(generated)).code).toBe(2);
  });

  it('refuses a document that is not the CRD', () => {
    expect(() => generateApi('apiVersion: v1\nkind: ConfigMap\n')).toThrow(/not a CustomResourceDefinition/);
  });
});
