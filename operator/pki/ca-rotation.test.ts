import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { advance, authorityData, nextRotationStep, phaseOf, trustBundle, type AuthorityState } from './ca-rotation.ts';

const pair = (n: string) => ({ certificate: `-----BEGIN CERTIFICATE-----\n${n}\n-----END CERTIFICATE-----\n`, privateKey: `key ${n}` });
const idle = (n: string, request = ''): AuthorityState => ({ signer: pair(n), request });
const trusting = (n: string, m: string, request: string): AuthorityState => ({ signer: pair(n), next: pair(m), request });
const signing = (n: string, m: string, request: string): AuthorityState => ({ signer: pair(m), previous: pair(n).certificate, request });

describe('one authority through a rotation', () => {
  it('trusts both CAs until the old one is dropped, and signs with the new one from the second step', () => {
    const start = trusting('old', 'new', 'r1');
    expect(phaseOf(start)).toBe('trusting');
    expect(trustBundle(start)).toBe(`${pair('old').certificate}${pair('new').certificate}`);
    const second = advance(start);
    expect(phaseOf(second)).toBe('signing');
    expect(second.signer).toEqual(pair('new'));
    // the same text as before the step: nothing that reads only the bundle restarts for it
    expect(trustBundle(second)).toBe(trustBundle(start));
    const done = advance(second);
    expect(phaseOf(done)).toBe('idle');
    expect(trustBundle(done)).toBe(pair('new').certificate);
    expect(done.request).toBe('r1');
  });

  it('keeps the phase in the Secret keys alone: one write moves it, no key of the old CA stays after the end', () => {
    expect(Object.keys(authorityData(trusting('a', 'b', 'r')))).toEqual(['tls.crt', 'tls.key', 'next.crt', 'next.key']);
    expect(Object.keys(authorityData(signing('a', 'b', 'r')))).toEqual(['tls.crt', 'tls.key', 'previous.crt']);
    expect(authorityData(advance(signing('a', 'b', 'r')))).toEqual({ 'tls.crt': pair('b').certificate, 'tls.key': 'key b' });
  });

  it('is a bundle X509 tools read as two certificates', async () => {
    const { createCertificateAuthority } = await import('./certificates.ts');
    const [a, b] = await Promise.all([createCertificateAuthority('kubernetes', 3600_000), createCertificateAuthority('kubernetes-2', 3600_000)]);
    const bundle = trustBundle({ signer: a, next: b, request: 'r' });
    const certs = bundle.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)!.map((p) => new X509Certificate(p).subject);
    expect(certs).toEqual(['CN=kubernetes', 'CN=kubernetes-2']);
  });
});

describe('nextRotationStep', () => {
  const three = (f: (n: string) => AuthorityState) => ({ ca: f('ca'), 'etcd-ca': f('etcd'), 'front-proxy-ca': f('fp') });

  it('does nothing without a request, or once a request was carried out', () => {
    expect(nextRotationStep(three((n) => idle(n)), '')).toEqual({ kind: 'none' });
    expect(nextRotationStep(three((n) => idle(n, 'r1')), 'r1')).toEqual({ kind: 'none' });
  });

  it('starts every authority on a new request', () => {
    expect(nextRotationStep(three((n) => idle(n, 'r1')), 'r2')).toEqual({ kind: 'start', authorities: ['ca', 'etcd-ca', 'front-proxy-ca'] });
  });

  it('starts the authorities a crash left behind before any moves on', () => {
    const states = { ca: trusting('ca', 'ca2', 'r2'), 'etcd-ca': idle('etcd', 'r1'), 'front-proxy-ca': idle('fp', 'r1') };
    expect(nextRotationStep(states, 'r2')).toEqual({ kind: 'start', authorities: ['etcd-ca', 'front-proxy-ca'] });
  });

  it('moves the authorities of the earliest phase, bringing the one left behind level first', () => {
    expect(nextRotationStep(three((n) => trusting(n, `${n}2`, 'r2')), 'r2')).toEqual({ kind: 'advance', authorities: ['ca', 'etcd-ca', 'front-proxy-ca'], from: 'trusting' });
    const mixed = { ca: signing('ca', 'ca2', 'r2'), 'etcd-ca': trusting('etcd', 'etcd2', 'r2'), 'front-proxy-ca': signing('fp', 'fp2', 'r2') };
    expect(nextRotationStep(mixed, 'r2')).toEqual({ kind: 'advance', authorities: ['etcd-ca'], from: 'trusting' });
    const ending = { ca: signing('ca', 'ca2', 'r2'), 'etcd-ca': idle('etcd2', 'r2'), 'front-proxy-ca': signing('fp', 'fp2', 'r2') };
    expect(nextRotationStep(ending, 'r2')).toEqual({ kind: 'advance', authorities: ['ca', 'front-proxy-ca'], from: 'signing' });
  });

  it('finishes a rotation under way before it starts the next request', () => {
    expect(nextRotationStep(three((n) => signing(n, `${n}2`, 'r2')), 'r3')).toEqual({ kind: 'advance', authorities: ['ca', 'etcd-ca', 'front-proxy-ca'], from: 'signing' });
    // still trusting for r2 when r3 arrives: r2 goes on (its new CAs may be trusted already)
    expect(nextRotationStep(three((n) => trusting(n, `${n}2`, 'r2')), 'r3').kind).toBe('advance');
  });
});
