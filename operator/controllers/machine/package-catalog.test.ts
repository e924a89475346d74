import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import { CatalogError, PackageCatalog, parseIndex, resolvePins } from './package-catalog.ts';

const sha = (c: string) => c.repeat(64);
const entry = (name: string, version: string, c = 'a') => ({
  name,
  version,
  path: `${name}/${version}/x.tar.gz`,
  sha256: sha(c),
  size: 1,
});
const index = {
  packages: [
    entry('kubelet', 'v1.33.13'),
    entry('kubelet', 'v1.34.4', 'b'),
    entry('containerd', '1.6.20'),
    entry('containerd', '1.7.30', 'c'),
    entry('runc', '1.1.5'),
    entry('cni-plugins', '1.1.1'),
  ],
};

describe('the package catalog', () => {
  it('pins the Machine’s versions, the Cluster’s kubelet and the newest of the rest', () => {
    const pins = resolvePins(parseIndex(JSON.stringify(index)), 'http://repo:8080/', {
      chosen: { runc: '1.1.5' },
      kubernetesVersion: 'v1.34.4',
    });
    expect(pins.map((p) => `${p.name} ${p.version}`)).toEqual([
      'runc 1.1.5',
      'cni-plugins 1.1.1',
      'containerd 1.7.30',
      'kubelet v1.34.4',
    ]);
    expect(pins[3]).toEqual({
      name: 'kubelet',
      version: 'v1.34.4',
      url: 'http://repo:8080/kubelet/v1.34.4/x.tar.gz',
      sha256: sha('b'),
    });
  });

  it('says which version is missing, and which there are', () => {
    expect(() =>
      resolvePins(parseIndex(JSON.stringify(index)), 'http://r', { chosen: {}, kubernetesVersion: 'v1.35.0' }),
    ).toThrow('the package repository has no kubelet v1.35.0 (it has v1.33.13, v1.34.4)');
    const noRunc = { packages: index.packages.filter((p) => p.name !== 'runc') };
    expect(() =>
      resolvePins(parseIndex(JSON.stringify(noRunc)), 'http://r', { chosen: {}, kubernetesVersion: 'v1.34.4' }),
    ).toThrow(/has no runc/);
  });

  it('refuses an index with an entry of the wrong shape', () => {
    for (const bad of [
      { ...entry('kubelet', 'v1.34.4'), path: '../../etc/shadow' },
      { ...entry('kubelet', 'v1.34.4'), sha256: 'abc' },
      { ...entry('kubelet', "v1.34.4'; reboot") },
      { ...entry('sshd', '9.2.0') },
    ])
      expect(() => parseIndex(JSON.stringify({ packages: [bad] }))).toThrow(CatalogError);
    expect(() => parseIndex('<html>')).toThrow(/not JSON/);
  });

  it('reads the index over HTTP once a minute, and refuses one that is too large', async () => {
    let reads = 0;
    let body = JSON.stringify(index);
    const server = createServer((_req, res) => {
      reads++;
      res.end(body);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as { port: number };
    try {
      const catalog = new PackageCatalog(`http://127.0.0.1:${port}`);
      expect((await catalog.entries(0)).length).toBe(6);
      await catalog.entries(30_000);
      expect(reads).toBe(1);
      body = `{"packages":[${'"x",'.repeat(300_000)}"x"]}`;
      await expect(catalog.entries(61_000)).rejects.toThrow(/larger than/);
    } finally {
      server.close();
    }
    expect(() => new PackageCatalog('file:///etc')).toThrow(/not an http/);
  });
});
