import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { conformanceImages } from './conformance-catalog.ts';

// stand-ins for the Go programs: the staging is under test, not the programs
const scratch = mkdtempSync(join(tmpdir(), 'kok-conformance-images-'));
const bins = join(scratch, 'bins');
const etcd = join(scratch, 'etcd');
const source = join(scratch, 'kubernetes');
mkdirSync(bins);
mkdirSync(etcd);
mkdirSync(join(source, 'test/images/agnhost/porter'), { recursive: true });
for (const f of ['agnhost', 'nonewprivs', 'sample-apiserver'])
  writeFileSync(join(bins, f), '#!/bin/true\n', { mode: 0o755 });
writeFileSync(join(etcd, 'etcd'), '#!/bin/true\n', { mode: 0o755 });
for (const f of ['localhost.crt', 'localhost.key']) writeFileSync(join(source, 'test/images/agnhost/porter', f), 'x');
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

// Debian's busybox stands in for upstream's: both list their applets the same way
const images = conformanceImages({ bins, etcd, kubernetesSource: source, busybox: '/bin/busybox' });
function staged(ref: string): string {
  const image = images.find((i) => i.ref === ref);
  if (!image) throw new Error(`no image ${ref}`);
  const rootfs = join(scratch, ref.replace(/[/:]/g, '_'));
  mkdirSync(rootfs);
  image.stage(rootfs);
  return rootfs;
}

describe("the conformance suite's images", () => {
  it('are each named once, under upstream names', () => {
    const refs = images.map((i) => i.ref);
    expect(new Set(refs).size).toBe(refs.length);
    expect(refs).toContain('registry.k8s.io/e2e-test-images/agnhost:2.56');
    for (const i of images) expect(i.config.labels?.['org.opencontainers.image.ref.name']).toBe(i.ref);
  });

  it("agnhost runs Debian's tools from a Debian shell, not busybox's applets of the same names", () => {
    const rootfs = staged('registry.k8s.io/e2e-test-images/agnhost:2.56');
    expect(readlinkSync(join(rootfs, 'bin/sh'))).toBe('/usr/bin/dash');
    expect(existsSync(join(rootfs, 'bin/nc'))).toBe(false); // busybox's would come first for busybox's shell
    expect(readFileSync(join(rootfs, 'usr/bin/nc'))).toEqual(readFileSync('/usr/bin/nc.openbsd'));
    expect(readlinkSync(join(rootfs, 'bin/cat'))).toBe('busybox');
    expect(readFileSync(join(rootfs, 'etc/passwd'), 'utf8')).toContain('user-defined-in-image:x:1000:1000');
  });

  it('the busybox image is the busybox it is given, its ash as /bin/sh', () => {
    const rootfs = staged('registry.k8s.io/e2e-test-images/busybox:1.37.0-1');
    expect(images.find((i) => i.ref.includes('/busybox:'))?.inputs).toEqual(['/bin/busybox']);
    expect(readlinkSync(join(rootfs, 'bin/sh'))).toBe('busybox');
    expect(readFileSync(join(rootfs, 'bin/busybox'))).toEqual(readFileSync('/bin/busybox'));
  });

  it('the web server stand-ins stop at SIGTERM, over the document root upstream serves', () => {
    const rootfs = staged('registry.k8s.io/e2e-test-images/httpd:2.4.38-4');
    const script = readFileSync(join(rootfs, 'usr/local/bin/httpd-foreground'), 'utf8');
    expect(script).toContain('-h /usr/local/apache2/htdocs');
    expect(script).toMatch(/trap '.*' TERM/);
    expect(existsSync(join(rootfs, 'usr/local/apache2/htdocs/index.html'))).toBe(true);
    expect(readlinkSync(join(rootfs, 'bin/mv'))).toBe('busybox');
  });
});
