// Key pairs of the project's PKI: ECDSA P-256 throughout. Every Kubernetes component and etcd
// accepts it for serving, client and service-account signing keys, and it is generated in
// milliseconds, where RSA takes a tenth of a second per key.
import { webcrypto } from 'node:crypto';

export const keyAlgorithm = { name: 'ECDSA', namedCurve: 'P-256' } as const;
export const signingAlgorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export type KeyPair = webcrypto.CryptoKeyPair;

export async function generateKeyPair(): Promise<KeyPair> {
  return webcrypto.subtle.generateKey(keyAlgorithm, true, ['sign', 'verify']);
}

/** PKCS#8 PEM ("PRIVATE KEY"), the form Go's crypto/tls and keyutil read. */
export async function privateKeyToPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return toPem('PRIVATE KEY', der);
}

/** SubjectPublicKeyInfo PEM ("PUBLIC KEY"), as kube-apiserver's --service-account-key-file wants. */
export async function publicKeyToPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('spki', key);
  return toPem('PUBLIC KEY', der);
}

/** Reads a PKCS#8 P-256 private key and derives its public half (WebCrypto has no direct way). */
export async function keyPairFromPem(privateKeyPem: string): Promise<KeyPair> {
  const der = fromPem('PRIVATE KEY', privateKeyPem);
  const privateKey = await webcrypto.subtle.importKey('pkcs8', der, keyAlgorithm, true, ['sign']);
  const jwk = await webcrypto.subtle.exportKey('jwk', privateKey);
  const { d: _d, key_ops: _ops, ...publicJwk } = jwk;
  const publicKey = await webcrypto.subtle.importKey('jwk', publicJwk, keyAlgorithm, true, ['verify']);
  return { privateKey, publicKey };
}

export function toPem(label: string, der: ArrayBuffer | Uint8Array): string {
  const b64 = Buffer.from(der instanceof ArrayBuffer ? new Uint8Array(der) : der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

export function fromPem(label: string, pem: string): Uint8Array {
  const match = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]+)-----END ${label}-----`).exec(pem);
  if (!match?.[1]) throw new Error(`not a PEM block of type ${label}`);
  return new Uint8Array(Buffer.from(match[1].replace(/\s+/g, ''), 'base64'));
}
