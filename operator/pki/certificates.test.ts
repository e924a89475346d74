import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createCertificateAuthority,
  describeCertificate,
  isSignedBy,
  issueCertificate,
  keyMatchesCertificate,
} from './certificates.ts';

const hour = 3600_000;
const dir = mkdtempSync(join(tmpdir(), 'kok-pki-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('certificate authority', () => {
  it('is a self-signed CA with the given name and lifetime', async () => {
    const now = new Date('2026-01-01T00:00:00Z');
    const ca = await createCertificateAuthority('kubernetes-ca', 10 * hour, now);
    const d = describeCertificate(ca.certificate);
    expect(d.commonName).toBe('kubernetes-ca');
    expect(d.usage).toBe('ca');
    expect(d.notAfter.getTime()).toBe(now.getTime() + 10 * hour);
    expect(d.notBefore.getTime()).toBeLessThan(now.getTime());
    expect(await isSignedBy(ca.certificate, ca.certificate)).toBe(true);
    expect(ca.privateKey).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });
});

describe('leaf certificates', () => {
  it('carry subject, groups, SANs and usages, and are signed by their CA', async () => {
    const ca = await createCertificateAuthority('ca', 100 * hour);
    const leaf = await issueCertificate(ca, {
      commonName: 'kube-apiserver',
      organizations: ['system:masters', 'a,b=c'],
      dnsNames: ['kubernetes', 'kubernetes.default.svc'],
      ipAddresses: ['10.96.0.1', '127.0.0.1', '::1'],
      usage: 'server',
      validityMs: hour,
    });
    const d = describeCertificate(leaf.certificate);
    expect(d.commonName).toBe('kube-apiserver');
    expect(d.organizations.sort()).toEqual(['a,b=c', 'system:masters']);
    expect(d.dnsNames).toEqual(['kubernetes', 'kubernetes.default.svc']);
    expect(d.ipAddresses).toEqual(['10.96.0.1', '127.0.0.1', '::1']);
    expect(d.usage).toBe('server');
    expect(await isSignedBy(leaf.certificate, ca.certificate)).toBe(true);
    expect(await keyMatchesCertificate(leaf)).toBe(true);
    const other = await createCertificateAuthority('ca', hour);
    expect(await isSignedBy(leaf.certificate, other.certificate)).toBe(false);
    expect(await keyMatchesCertificate({ certificate: leaf.certificate, privateKey: other.privateKey })).toBe(false);
  });

  it('never outlive their CA', async () => {
    const ca = await createCertificateAuthority('ca', hour);
    const leaf = await issueCertificate(ca, { commonName: 'x', usage: 'client', validityMs: 1000 * hour });
    expect(describeCertificate(leaf.certificate).notAfter.getTime()).toBe(
      describeCertificate(ca.certificate).notAfter.getTime(),
    );
    expect(describeCertificate(leaf.certificate).usage).toBe('client');
  });

  it('verify with OpenSSL for their purpose', async () => {
    const ca = await createCertificateAuthority('ca', 10 * hour);
    const server = await issueCertificate(ca, {
      commonName: 'srv',
      dnsNames: ['etcd-0.etcd'],
      usage: 'server-client',
      validityMs: hour,
    });
    writeFileSync(join(dir, 'ca.crt'), ca.certificate);
    writeFileSync(join(dir, 'srv.crt'), server.certificate);
    for (const purpose of ['sslserver', 'sslclient']) {
      const out = execFileSync('openssl', [
        'verify',
        '-purpose',
        purpose,
        '-CAfile',
        join(dir, 'ca.crt'),
        join(dir, 'srv.crt'),
      ]).toString();
      expect(out).toContain(': OK');
    }
  });
});
