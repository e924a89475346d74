// Which kubelets hold certificates of a given CA, read from the business cluster's issued CSRs.
// A CA rotation waits on it before the old CA is dropped: a kubelet renews its client and serving
// certificates by itself (at 70-90% of their lifetime) and the CSR it files is the only trace of
// what it got. The business cluster is the tenant's, so a CSR is hostile input: only a
// certificate that the CA really signed, for a node identity, counts; its size is bounded.
import { createHash } from 'node:crypto';
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

/** Nodes holding certificates of the CA given for each kind (client: the cluster CA; serving: the kubelet-serving CA). */
export async function kubeletsSignedBy(
  requests: IssuedRequest[],
  cas: { client: string; serving: string },
): Promise<KubeletCertificates> {
  const found = { client: new Set<string>(), serving: new Set<string>() };
  for (const r of requests) {
    const kind =
      r.signerName === kubeletClientSigner ? 'client' : r.signerName === kubeletServingSigner ? 'serving' : undefined;
    if (!kind || !r.certificate || r.certificate.length > maxCertificateBytes) continue;
    const node = await nodeSignedBy(r.certificate, cas[kind]);
    if (node) found[kind].add(node);
  }
  return { client: [...found.client].sort(), serving: [...found.serving].sort() };
}

/** Verdicts by certificate and CA: a pass every ten seconds checks each signature once. */
const verdicts = new Map<string, string | null>();

/** The node a certificate is for, when `ca` signed it for a node identity; undefined otherwise. */
async function nodeSignedBy(certificate: string, ca: string): Promise<string | undefined> {
  const key = createHash('sha256').update(ca).update('\0').update(certificate).digest('hex');
  const known = verdicts.get(key);
  if (known !== undefined) return known ?? undefined;
  let node: string | null = null;
  try {
    const [leaf] = pemCertificates(certificate);
    const d = leaf ? describeCertificate(leaf) : undefined;
    const name =
      d?.commonName.startsWith(nodePrefix) && d.organizations.includes('system:nodes')
        ? d.commonName.slice(nodePrefix.length)
        : '';
    // the issuer's name, then the signature: a forged issuer name proves nothing
    if (name !== '' && name.length <= 253 && (await isSignedBy(leaf!, ca))) node = name;
  } catch {
    node = null;
  }
  if (verdicts.size >= 20_000) verdicts.clear();
  verdicts.set(key, node);
  return node ?? undefined;
}

export interface DropCheck {
  /** The business cluster's nodes; undefined when it could not be listed this pass. */
  nodes: string[] | undefined;
  /** Nodes seen with each kind of certificate of the new CA, this pass and before. */
  seen: KubeletCertificates;
  /** The annotation that lets the rotation go on without the kubelets (its name and value). */
  skip: string;
  /** The old CA has ended: it vouches for nothing, nothing is lost by dropping it. */
  oldCaEnded: boolean;
  /** spec.certificates.kubeletValidity, for the message. */
  kubeletValidity: string;
  confirmed: boolean;
}

/**
 * Why the old cluster CA may not be dropped yet (a kubelet may still hold a certificate of it, or
 * the nodes are not known), or undefined when it may.
 */
export function dropBlocker(c: DropCheck): string | undefined {
  if (c.confirmed || c.oldCaEnded) return undefined;
  const go = `; or go on without them (a kubelet that has not renewed must join again) with ${c.skip}`;
  if (c.nodes === undefined)
    return `every certificate is issued by the new CAs; waiting for the business cluster to list its nodes, whose kubelets must renew their certificates from the new CA before the old one is dropped${go}`;
  const missing = (n: string) =>
    [c.seen.client.includes(n) ? '' : 'client', c.seen.serving.includes(n) ? '' : 'serving'].filter(Boolean);
  const behind = c.nodes.filter((n) => missing(n).length > 0);
  if (behind.length === 0) return undefined;
  const named = behind
    .slice(0, 5)
    .map((n) => `${n} (${missing(n).join(', ')})`)
    .join(', ');
  return (
    `every certificate is issued by the new CAs; waiting for ${behind.length} of ${c.nodes.length} kubelet(s) to renew their certificates from the new CA before the old one is dropped: ${named}${behind.length > 5 ? ', …' : ''}. ` +
    `Kubelets renew at 70-90% of their certificates' lifetime (spec.certificates.kubeletValidity: ${c.kubeletValidity})${go}`
  );
}
