// The operator's own identity in each business cluster: a client certificate it issues in memory
// from the Cluster's CA and never writes anywhere. The business client is built from nothing else
// (see clients.ts): no kubeconfig text from a Secret of the tenant's namespace is ever loaded, so
// an edited Secret cannot make the operator run a credential plugin, read a token file, follow a
// proxy or skip server verification. It is a user of its own (kubeonkube-operator), so the business
// cluster's audit log tells the operator's requests from the admin kubeconfig's.
import { createHash } from 'node:crypto';
import { issueCertificate, type CertificateAndKey } from '../pki/certificates.ts';

/** The operator's user name in every business cluster. */
export const operatorUser = 'kubeonkube-operator';
/** How long one in-memory certificate lives; a new one is issued once half of it has passed. */
export const identityValidityMs = 24 * 3600_000;

interface Held {
  signer: string;
  renewAt: number;
  pair: CertificateAndKey;
}

export class OperatorIdentities {
  readonly #held = new Map<string, Held>();

  /**
   * The operator's certificate and key for Cluster `key`, signed by `signer` (the CA that signs
   * now: a CA rotation moves it onto the new CA as soon as that one signs).
   */
  async get(key: string, signer: CertificateAndKey, now: Date): Promise<CertificateAndKey> {
    const signerHash = createHash('sha256').update(signer.certificate).digest('hex');
    const held = this.#held.get(key);
    if (held && held.signer === signerHash && now.getTime() < held.renewAt) return held.pair;
    // system:masters: the operator applies the control plane's own RBAC and users' add-ons of any kind
    const pair = await issueCertificate(
      signer,
      { commonName: operatorUser, organizations: ['system:masters'], usage: 'client', validityMs: identityValidityMs },
      now,
    );
    this.#held.set(key, { signer: signerHash, renewAt: now.getTime() + identityValidityMs / 2, pair });
    return pair;
  }

  forget(key: string): void {
    this.#held.delete(key);
  }
}
