import { X509Certificate } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  advance,
  authorityData,
  nextRotationStep,
  phaseOf,
  stillValid,
  trustBundle,
  type AuthorityState,
} from './ca-rotation.ts';
import {
  createCertificateAuthority,
  crossSign,
  describeCertificate,
  issueCertificate,
  pemCertificates,
  type CertificateAndKey,
} from './certificates.ts';

const pair = (n: string) => ({
  certificate: `-----BEGIN CERTIFICATE-----\n${n}\n-----END CERTIFICATE-----\n`,
  privateKey: `key ${n}`,
});
const idle = (n: string, request = ''): AuthorityState => ({ signer: pair(n), request });
const trusting = (n: string, m: string, request: string): AuthorityState => ({
  signer: pair(n),
  next: pair(m),
  request,
});
const signing = (n: string, m: string, request: string): AuthorityState => ({
  signer: pair(m),
  previous: pair(n).certificate,
  request,
});

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
    expect(authorityData(advance(signing('a', 'b', 'r')))).toEqual({
      'tls.crt': pair('b').certificate,
      'tls.key': 'key b',
    });
  });

  it('trusts the CAs that signed its kind before it existed until the next rotation ends', () => {
    const legacy = pair('cluster-ca').certificate;
    const start: AuthorityState = { signer: pair('kubelet-serving'), request: '', legacy };
    expect(trustBundle(start)).toBe(`${pair('kubelet-serving').certificate}${legacy}`);
    expect(authorityData(start)['legacy.crt']).toBe(legacy);
    const signingPhase = advance({ ...start, next: pair('kubelet-serving-2'), request: 'r1' });
    expect(trustBundle(signingPhase)).toContain(legacy);
    const done = advance(signingPhase);
    expect(trustBundle(done)).toBe(pair('kubelet-serving-2').certificate);
    expect(Object.keys(authorityData(done))).toEqual(['tls.crt', 'tls.key']);
  });

  it('is a bundle X509 tools read as two certificates', async () => {
    const { createCertificateAuthority } = await import('./certificates.ts');
    const [a, b] = await Promise.all([
      createCertificateAuthority('kubernetes', 3600_000),
      createCertificateAuthority('kubernetes-2', 3600_000),
    ]);
    const bundle = trustBundle({ signer: a, next: b, request: 'r' });
    const certs = bundle
      .match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)!
      .map((p) => new X509Certificate(p).subject);
    expect(certs).toEqual(['CN=kubernetes', 'CN=kubernetes-2']);
  });
});

describe('nextRotationStep', () => {
  const three = (f: (n: string) => AuthorityState) => ({
    ca: f('ca'),
    'etcd-ca': f('etcd'),
    'front-proxy-ca': f('fp'),
  });

  it('does nothing without a request, or once a request was carried out', () => {
    expect(
      nextRotationStep(
        three((n) => idle(n)),
        '',
      ),
    ).toEqual({ kind: 'none' });
    expect(
      nextRotationStep(
        three((n) => idle(n, 'r1')),
        'r1',
      ),
    ).toEqual({ kind: 'none' });
  });

  it('starts every authority on a new request', () => {
    expect(
      nextRotationStep(
        three((n) => idle(n, 'r1')),
        'r2',
      ),
    ).toEqual({ kind: 'start', authorities: ['ca', 'etcd-ca', 'front-proxy-ca'] });
  });

  it('starts the authorities a crash left behind before any moves on', () => {
    const states = {
      ca: trusting('ca', 'ca2', 'r2'),
      'etcd-ca': idle('etcd', 'r1'),
      'front-proxy-ca': idle('fp', 'r1'),
    };
    expect(nextRotationStep(states, 'r2')).toEqual({ kind: 'start', authorities: ['etcd-ca', 'front-proxy-ca'] });
  });

  it('moves the authorities of the earliest phase, bringing the one left behind level first', () => {
    expect(
      nextRotationStep(
        three((n) => trusting(n, `${n}2`, 'r2')),
        'r2',
      ),
    ).toEqual({ kind: 'advance', authorities: ['ca', 'etcd-ca', 'front-proxy-ca'], from: 'trusting' });
    const mixed = {
      ca: signing('ca', 'ca2', 'r2'),
      'etcd-ca': trusting('etcd', 'etcd2', 'r2'),
      'front-proxy-ca': signing('fp', 'fp2', 'r2'),
    };
    expect(nextRotationStep(mixed, 'r2')).toEqual({ kind: 'advance', authorities: ['etcd-ca'], from: 'trusting' });
    const ending = {
      ca: signing('ca', 'ca2', 'r2'),
      'etcd-ca': idle('etcd2', 'r2'),
      'front-proxy-ca': signing('fp', 'fp2', 'r2'),
    };
    expect(nextRotationStep(ending, 'r2')).toEqual({
      kind: 'advance',
      authorities: ['ca', 'front-proxy-ca'],
      from: 'signing',
    });
  });

  it('finishes a rotation under way before it starts the next request', () => {
    expect(
      nextRotationStep(
        three((n) => signing(n, `${n}2`, 'r2')),
        'r3',
      ),
    ).toEqual({ kind: 'advance', authorities: ['ca', 'etcd-ca', 'front-proxy-ca'], from: 'signing' });
    // still trusting for r2 when r3 arrives: r2 goes on (its new CAs may be trusted already)
    expect(
      nextRotationStep(
        three((n) => trusting(n, `${n}2`, 'r2')),
        'r3',
      ).kind,
    ).toBe('advance');
  });
});

describe('the compat certificate: the new CA signed by the old', () => {
  /** Whether a TLS handshake succeeds: the server presents `serverChain`, the client trusts `clientTrusts`; mutual when the client has a chain. */
  async function handshake(o: {
    serverChain: CertificateAndKey;
    clientTrusts: string;
    clientChain?: CertificateAndKey;
    serverTrusts?: string;
  }): Promise<string> {
    const tls = await import('node:tls');
    const server = tls.createServer(
      {
        cert: o.serverChain.certificate,
        key: o.serverChain.privateKey,
        ...(o.clientChain ? { requestCert: true, rejectUnauthorized: true, ca: o.serverTrusts } : {}),
      },
      (socket) => socket.end('ok'),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      return await new Promise<string>((resolve) => {
        const socket = tls.connect(
          {
            host: '127.0.0.1',
            port,
            servername: 'localhost',
            ca: o.clientTrusts,
            ...(o.clientChain ? { cert: o.clientChain.certificate, key: o.clientChain.privateKey } : {}),
          },
          () => {
            /* wait for the server's answer */
          },
        );
        let text = '';
        socket.on('data', (d: Buffer) => {
          text += d.toString();
        });
        socket.on('end', () => resolve(text || 'closed'));
        socket.on('error', (err: Error) => resolve(err.message));
      });
    } finally {
      server.close();
    }
  }

  it('lets a peer that trusts only the old CA verify leaves of the new one, in both directions; without it the same peer refuses', async () => {
    const old = await createCertificateAuthority('kubernetes', 3600_000);
    const next = await createCertificateAuthority('kubernetes-2', 7200_000);
    const started = advance({ signer: old, next, request: 'r' }, await crossSign(next.certificate, old));
    expect(pemCertificates(started.compat!)).toHaveLength(1);
    expect(describeCertificate(started.compat!).notAfter.getTime()).toBeLessThanOrEqual(
      describeCertificate(old.certificate).notAfter.getTime(),
    );
    const serving = await issueCertificate(next, {
      commonName: 'kube-apiserver',
      usage: 'server',
      dnsNames: ['localhost'],
      validityMs: 3600_000,
    });
    const client = await issueCertificate(next, {
      commonName: 'kube-apiserver-kubelet-client',
      usage: 'client',
      validityMs: 3600_000,
    });
    const chained = (pair: CertificateAndKey) => ({ ...pair, certificate: pair.certificate + started.compat! });
    // a kubelet that joined before the rotation trusts the old CA alone
    expect(await handshake({ serverChain: chained(serving), clientTrusts: old.certificate })).toBe('ok');
    expect(await handshake({ serverChain: serving, clientTrusts: old.certificate })).toMatch(
      /unable to get local issuer|unable to verify/,
    );
    // and it accepts the apiserver's client certificate when the chain comes with it
    const kubelet = await issueCertificate(old, {
      commonName: 'far-0',
      usage: 'server',
      dnsNames: ['localhost'],
      validityMs: 3600_000,
    });
    expect(
      await handshake({
        serverChain: kubelet,
        serverTrusts: old.certificate,
        clientChain: chained(client),
        clientTrusts: old.certificate,
      }),
    ).toBe('ok');
    expect(
      await handshake({
        serverChain: kubelet,
        serverTrusts: old.certificate,
        clientChain: client,
        clientTrusts: old.certificate,
      }),
    ).not.toBe('ok');
    // whoever trusts only the new CA is not bothered by the extra certificate
    expect(await handshake({ serverChain: chained(serving), clientTrusts: next.certificate })).toBe('ok');
    // and the old CA's own leaves gain nothing with those who trust only the new one
    expect(
      await handshake({
        serverChain: { ...kubelet, certificate: kubelet.certificate + started.compat! },
        clientTrusts: next.certificate,
      }),
    ).not.toBe('ok');
  });

  it('keeps what earlier rotations left while it lasts, and drops it once ended', async () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const [a, b, c] = await Promise.all(
      ['a', 'b', 'c'].map((n) => createCertificateAuthority(n, 3600_000 * 24, new Date(now.getTime() - 3600_000))),
    );
    const first = advance(
      advance({ signer: a!, next: b!, request: 'r1' }, await crossSign(b!.certificate, a!, now), now),
      undefined,
      now,
    );
    expect(pemCertificates(first.compat!)).toHaveLength(1);
    const second = advance({ ...first, next: c!, request: 'r2' }, await crossSign(c!.certificate, b!, now), now);
    expect(pemCertificates(second.compat!).map((p) => describeCertificate(p).commonName)).toEqual(['c', 'b']);
    const later = new Date(now.getTime() + 3600_000 * 48);
    expect(stillValid(second.compat, later)).toEqual([]);
  });
});
