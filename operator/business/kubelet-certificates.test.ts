import { describe, expect, it } from 'vitest';
import { createCertificateAuthority, issueCertificate } from '../pki/certificates.ts';
import { dropBlocker, kubeletClientSigner, kubeletsSignedBy, type DropCheck } from './kubelet-certificates.ts';
import { kubeletServingSigner } from './serving-csr.ts';

describe('kubelets holding certificates of a CA', () => {
  it('counts only node certificates the CA of their kind really signed', async () => {
    const [ca, other, serving] = await Promise.all([
      createCertificateAuthority('kubernetes-2', 3600_000),
      createCertificateAuthority('kubernetes', 3600_000),
      createCertificateAuthority('kubelet-serving-ca', 3600_000),
    ]);
    const node = (name: string, by = ca, organizations = ['system:nodes']) =>
      issueCertificate(by, {
        commonName: `system:node:${name}`,
        organizations,
        usage: 'client',
        validityMs: 600_000,
      }).then((c) => c.certificate);
    // a CA of the same name as the right one but another key: what a tenant could make
    const impostor = await createCertificateAuthority('kubernetes-2', 3600_000);
    const found = await kubeletsSignedBy(
      [
        { signerName: kubeletClientSigner, certificate: await node('a') },
        { signerName: kubeletServingSigner, certificate: await node('a', serving) },
        { signerName: kubeletClientSigner, certificate: await node('b') },
        { signerName: kubeletServingSigner, certificate: await node('b', other) },
        // the right certificate under the other kind proves nothing
        { signerName: kubeletServingSigner, certificate: await node('b') },
        { signerName: kubeletClientSigner, certificate: await node('g', serving) },
        { signerName: kubeletServingSigner, certificate: await node('c', impostor) },
        { signerName: kubeletClientSigner, certificate: await node('d', ca, ['system:masters']) },
        { signerName: 'kubernetes.io/kube-apiserver-client', certificate: await node('e') },
        { signerName: kubeletClientSigner, certificate: 'not a certificate' },
        { signerName: kubeletClientSigner, certificate: `${await node('f')}${'x'.repeat(20_000)}` },
        { signerName: kubeletClientSigner },
      ],
      { client: ca.certificate, serving: serving.certificate },
    );
    expect(found).toEqual({ client: ['a', 'b'], serving: ['a'] });
  });
});

describe('when the old cluster CA may be dropped', () => {
  const check = (o: Partial<DropCheck>): DropCheck => ({
    nodes: ['a', 'b'],
    seen: { client: [], serving: [] },
    skip: 'kubeonkube.io/rotate-ca-nodes-rejoin=r1',
    oldCaEnded: false,
    kubeletValidity: '168h',
    confirmed: false,
    ...o,
  });

  it("waits for every node's client and serving certificates, naming what each lacks and how to go on without them", () => {
    const message = dropBlocker(check({ seen: { client: ['a', 'b'], serving: ['b'] } }));
    expect(message).toContain(
      'waiting for 1 of 2 kubelet(s) to renew their certificates from the new CA before the old one is dropped: a (serving)',
    );
    expect(message).toContain('spec.certificates.kubeletValidity: 168h');
    expect(message).toContain('kubeonkube.io/rotate-ca-nodes-rejoin=r1');
    expect(dropBlocker(check({}))).toContain('2 of 2 kubelet(s)');
    expect(dropBlocker(check({ nodes: Array.from({ length: 8 }, (_, i) => `n${i}`) }))).toContain(
      'n4 (client, serving), …',
    );
  });

  it('waits while the nodes are not known, and not at all for a business cluster without nodes', () => {
    expect(dropBlocker(check({ nodes: undefined }))).toContain('waiting for the business cluster to list its nodes');
    expect(dropBlocker(check({ nodes: [] }))).toBeUndefined();
  });

  it('lets go once every node renewed, when told to, or when the old CA has ended anyway', () => {
    expect(dropBlocker(check({ seen: { client: ['a', 'b', 'gone'], serving: ['a', 'b'] } }))).toBeUndefined();
    expect(dropBlocker(check({ confirmed: true }))).toBeUndefined();
    expect(dropBlocker(check({ oldCaEnded: true }))).toBeUndefined();
  });
});
