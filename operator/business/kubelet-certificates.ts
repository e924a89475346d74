// Which kubelets hold certificates of a given CA, read from the business cluster's issued CSRs.
// A CA rotation waits on it before the old CA is dropped: a kubelet renews its client and serving
// certificates by itself (at 70-90% of their lifetime) and the CSR it files is the only trace of
// what it got. The business cluster is the tenant's, so a CSR is hostile input: only a
// certificate that the CA really signed, for a node identity, counts; its size is bounded.
import { describeCertificate, isSignedBy, pemCertificates } from '../pki/certificates.ts';
import { kubeletServingSigner } from './serving-csr.ts';

export const kubeletClientSigner = 'kubernetes.io/kube-apiserver-client-kubelet';

/** A CSR as far as this needs it: its signer and the certificate issued for it (PEM), if any. */
export interface IssuedRequest {
  signerName: string;
  certificate?: string | undefined;
}

export interface KubeletCertificates {
  /** Nodes with a client certificate of the CA. */
  client: string[];
  /** Nodes with a serving certificate of the CA. */
  serving: string[];
}

/** An issued certificate is a few hundred bytes; anything far larger is not one. */
const maxCertificateBytes = 16 * 1024;
const nodePrefix = 'system:node:';

export async function kubeletsSignedBy(requests: IssuedRequest[], caCertificate: string): Promise<KubeletCertificates> {
  const found = { client: new Set<string>(), serving: new Set<string>() };
  for (const r of requests) {
    const kind = r.signerName === kubeletClientSigner ? 'client' : r.signerName === kubeletServingSigner ? 'serving' : undefined;
    if (!kind || !r.certificate || r.certificate.length > maxCertificateBytes) continue;
    const [leaf] = pemCertificates(r.certificate);
    if (!leaf) continue;
    let node: string;
    try {
      const d = describeCertificate(leaf);
      if (!d.commonName.startsWith(nodePrefix) || !d.organizations.includes('system:nodes')) continue;
      node = d.commonName.slice(nodePrefix.length);
      // the issuer's name, then the signature: a forged issuer name proves nothing
      if (!(await isSignedBy(leaf, caCertificate))) continue;
    } catch {
      continue;
    }
    if (node !== '' && node.length <= 253) found[kind].add(node);
  }
  return { client: [...found.client].sort(), serving: [...found.serving].sort() };
}
