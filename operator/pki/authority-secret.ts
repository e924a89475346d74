// A certificate authority's Secret as the operator reads it: its signing pair, checked to belong
// together, and the rotation's keys. A CA is never regenerated: a Secret that cannot be read stops
// whoever reads it, with a message saying what to restore. The Cluster controller reads its CAs
// here, and so does any controller that signs for a Cluster (the Node-Operator's business client).
import type { V1Secret } from '@kubernetes/client-node';
import { decode } from '../kube/secret-data.ts';
import { caRotationRequestAnnotation, type AuthorityState } from './ca-rotation.ts';
import { keyMatchesCertificate, type CertificateAndKey } from './certificates.ts';

export class PkiError extends Error {}

async function readPair(
  name: string,
  certificate: string | undefined,
  privateKey: string | undefined,
  which: string,
): Promise<CertificateAndKey> {
  if (!certificate || !privateKey)
    throw new PkiError(
      `Secret ${name} exists but lacks ${which}.crt or ${which}.key; a CA is never regenerated: restore it`,
    );
  let matches: boolean;
  try {
    matches = await keyMatchesCertificate({ certificate, privateKey });
  } catch {
    throw new PkiError(`Secret ${name} holds an unreadable CA (${which}.crt); a CA is never regenerated: restore it`);
  }
  if (!matches)
    throw new PkiError(`the key in Secret ${name} does not belong to its certificate (${which}.crt); restore it`);
  return { certificate, privateKey };
}

/** A CA's Secret as an AuthorityState (see ca-rotation.ts for its keys). */
export async function readAuthority(name: string, live: V1Secret): Promise<AuthorityState> {
  const signer = await readPair(name, decode(live, 'tls.crt'), decode(live, 'tls.key'), 'tls');
  const [nextCert, nextKey] = [decode(live, 'next.crt'), decode(live, 'next.key')];
  const next =
    nextCert !== undefined || nextKey !== undefined ? await readPair(name, nextCert, nextKey, 'next') : undefined;
  const previous = decode(live, 'previous.crt');
  const compat = decode(live, 'compat.crt');
  const legacy = decode(live, 'legacy.crt');
  return {
    signer,
    next,
    previous,
    compat,
    legacy,
    request: live.metadata?.annotations?.[caRotationRequestAnnotation] ?? '',
  };
}
