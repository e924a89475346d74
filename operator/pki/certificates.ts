// Issuing and reading X.509 certificates. A certificate is described by a CertificateSpec (what
// it should say); `describeCertificate` reads a live certificate back into the same terms, so the
// operator can decide whether a live one still matches what it wants (see compare.ts).
import { webcrypto } from 'node:crypto';
import { x509 } from './x509.ts';
import { generateKeyPair, keyPairFromPem, privateKeyToPem, signingAlgorithm } from './keys.ts';

export type CertificateUsage = 'server' | 'client' | 'server-client';

export interface CertificateSpec {
  commonName: string;
  /** Subject O entries: Kubernetes reads them as the user's groups. */
  organizations?: string[];
  dnsNames?: string[];
  ipAddresses?: string[];
  usage: CertificateUsage;
  /** Lifetime in milliseconds, counted from issue time. */
  validityMs: number;
}

/** A certificate and its private key, both PEM. The key must only ever be stored in a Secret. */
export interface CertificateAndKey {
  certificate: string;
  privateKey: string;
}

export interface CertificateDescription {
  commonName: string;
  organizations: string[];
  dnsNames: string[];
  ipAddresses: string[];
  usage: CertificateUsage | 'ca' | 'other';
  notBefore: Date;
  notAfter: Date;
  issuer: string;
  serialNumber: string;
}

/** Backdating absorbs clock skew between the machine that issues and the ones that verify. */
const backdateMs = 5 * 60 * 1000;

function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = bytes[0]! & 0x7f; // a positive serial, as RFC 5280 asks
  return Buffer.from(bytes).toString('hex');
}

function subjectName(commonName: string, organizations: string[] = []): x509.JsonName {
  // JSON names need no escaping of ',' '=' or '+' in user-supplied names
  const name: x509.JsonName = [];
  for (const o of organizations) name.push({ O: [o] });
  name.push({ CN: [commonName] });
  return name;
}

export async function createCertificateAuthority(
  commonName: string,
  validityMs: number,
  now = new Date(),
): Promise<CertificateAndKey> {
  const keys = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: subjectName(commonName),
    notBefore: new Date(now.getTime() - backdateMs),
    notAfter: new Date(now.getTime() + validityMs),
    signingAlgorithm,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certificate: cert.toString('pem') + '\n', privateKey: await privateKeyToPem(keys.privateKey) };
}

/**
 * The CA `subject` (its name, key and key identifier) signed by the CA `signer`: an intermediate
 * that lets whoever trusts only `signer` verify what `subject` signs. Served after a leaf, it
 * carries holders of an old CA (a kubelet, a pod, a downloaded kubeconfig) across a rotation
 * without a change on their side. It ends with the earlier of the two CAs.
 */
export async function crossSign(subject: string, signer: CertificateAndKey, now = new Date()): Promise<string> {
  const subjectCert = new x509.X509Certificate(subject);
  const signerCert = new x509.X509Certificate(signer.certificate);
  const signerKeys = await keyPairFromPem(signer.privateKey);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: subjectCert.subjectName,
    issuer: signerCert.subjectName,
    notBefore: new Date(now.getTime() - backdateMs),
    notAfter: new Date(Math.min(subjectCert.notAfter.getTime(), signerCert.notAfter.getTime())),
    signingAlgorithm,
    publicKey: subjectCert.publicKey,
    signingKey: signerKeys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(subjectCert.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(signerCert),
    ],
  });
  return cert.toString('pem') + '\n';
}

/** Each certificate of a PEM text, in order, each ending with a newline. */
export function pemCertificates(pem: string): string[] {
  return [...pem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)].map((m) => `${m[0]}\n`);
}

export async function issueCertificate(
  ca: CertificateAndKey,
  spec: CertificateSpec,
  now = new Date(),
): Promise<CertificateAndKey> {
  const caCert = new x509.X509Certificate(ca.certificate);
  const caKeys = await keyPairFromPem(ca.privateKey);
  const keys = await generateKeyPair();
  const extendedUsages: string[] = [];
  if (spec.usage !== 'client') extendedUsages.push(x509.ExtendedKeyUsage.serverAuth);
  if (spec.usage !== 'server') extendedUsages.push(x509.ExtendedKeyUsage.clientAuth);
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
    new x509.ExtendedKeyUsageExtension(extendedUsages),
    await x509.AuthorityKeyIdentifierExtension.create(caCert),
  ];
  const altNames: x509.JsonGeneralName[] = [
    ...(spec.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(spec.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  if (altNames.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(altNames));
  const notAfter = Math.min(now.getTime() + spec.validityMs, caCert.notAfter.getTime());
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: subjectName(spec.commonName, spec.organizations),
    issuer: caCert.subjectName,
    notBefore: new Date(now.getTime() - backdateMs),
    notAfter: new Date(notAfter),
    signingAlgorithm,
    publicKey: keys.publicKey,
    signingKey: caKeys.privateKey,
    extensions,
  });
  return { certificate: cert.toString('pem') + '\n', privateKey: await privateKeyToPem(keys.privateKey) };
}

export function describeCertificate(pem: string): CertificateDescription {
  const cert = new x509.X509Certificate(pem);
  const cn = cert.subjectName.getField('CN');
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const names = san?.names.toJSON() ?? [];
  const basic = cert.getExtension(x509.BasicConstraintsExtension);
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  const usages = new Set((eku?.usages ?? []).map(String));
  const server = usages.has(x509.ExtendedKeyUsage.serverAuth);
  const client = usages.has(x509.ExtendedKeyUsage.clientAuth);
  return {
    commonName: cn[0] ?? '',
    organizations: cert.subjectName.getField('O'),
    dnsNames: names.filter((n) => n.type === 'dns').map((n) => n.value),
    ipAddresses: names.filter((n) => n.type === 'ip').map((n) => n.value),
    usage: basic?.ca ? 'ca' : server && client ? 'server-client' : server ? 'server' : client ? 'client' : 'other',
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    issuer: cert.issuer,
    serialNumber: cert.serialNumber,
  };
}

/** True when `certificatePem` was signed by the CA in `caPem`. */
export async function isSignedBy(certificatePem: string, caPem: string): Promise<boolean> {
  const cert = new x509.X509Certificate(certificatePem);
  const ca = new x509.X509Certificate(caPem);
  if (cert.issuer !== ca.subject) return false;
  return cert.verify({ publicKey: ca.publicKey, signatureOnly: true });
}

/** True when the private key belongs to the certificate (the pair would load in a TLS server). */
export async function keyMatchesCertificate(pair: CertificateAndKey): Promise<boolean> {
  const cert = new x509.X509Certificate(pair.certificate);
  const keys = await keyPairFromPem(pair.privateKey);
  const spki = await webcrypto.subtle.exportKey('spki', keys.publicKey);
  return Buffer.from(spki).equals(Buffer.from(cert.publicKey.rawData));
}
