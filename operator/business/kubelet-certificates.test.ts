import { describe, expect, it } from 'vitest';
import { createCertificateAuthority, issueCertificate } from '../pki/certificates.ts';
import { kubeletClientSigner, kubeletsSignedBy } from './kubelet-certificates.ts';
import { kubeletServingSigner } from './serving-csr.ts';

describe('kubelets holding certificates of a CA', () => {
  it('counts only node certificates the CA really signed, by kind', async () => {
    const [ca, other] = await Promise.all([createCertificateAuthority('kubernetes-2', 3600_000), createCertificateAuthority('kubernetes', 3600_000)]);
    const node = (name: string, by = ca, organizations = ['system:nodes']) => issueCertificate(by, { commonName: `system:node:${name}`, organizations, usage: 'client', validityMs: 600_000 }).then((c) => c.certificate);
    // a CA of the same name as the right one but another key: what a tenant could make
    const impostor = await createCertificateAuthority('kubernetes-2', 3600_000);
    const found = await kubeletsSignedBy([
      { signerName: kubeletClientSigner, certificate: await node('a') },
      { signerName: kubeletServingSigner, certificate: await node('a') },
      { signerName: kubeletClientSigner, certificate: await node('b') },
      { signerName: kubeletServingSigner, certificate: await node('b', other) },
      { signerName: kubeletServingSigner, certificate: await node('c', impostor) },
      { signerName: kubeletClientSigner, certificate: await node('d', ca, ['system:masters']) },
      { signerName: 'kubernetes.io/kube-apiserver-client', certificate: await node('e') },
      { signerName: kubeletClientSigner, certificate: 'not a certificate' },
      { signerName: kubeletClientSigner, certificate: `${await node('f')}${'x'.repeat(20_000)}` },
      { signerName: kubeletClientSigner },
    ], ca.certificate);
    expect(found).toEqual({ client: ['a', 'b'], serving: ['a'] });
  });
});
