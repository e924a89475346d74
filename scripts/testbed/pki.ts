// Certificates of the local meta-cluster, issued with the operator's own PKI module: a cluster CA,
// a front-proxy CA, the apiserver's serving certificate, client certificates for the admin, the
// controller-manager, the scheduler and the apiserver's kubelet client, and the service-account
// signing key. Files are written 0600 under <state>/pki.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import {
  createCertificateAuthority,
  issueCertificate,
  type CertificateAndKey,
} from '../../operator/pki/certificates.ts';
import { generateKeyPair, privateKeyToPem, publicKeyToPem } from '../../operator/pki/keys.ts';
import { renderKubeconfig } from '../../operator/kube/kubeconfig.ts';
import type { TestbedConfig } from './config.ts';
import { statePaths } from './config.ts';

const year = 365 * 24 * 3600_000;

/** The clients that get a kubeconfig, with the identity RBAC knows them by. */
export const clientIdentities = {
  admin: { commonName: 'kubeonkube-admin', organizations: ['system:masters'] },
  'kube-controller-manager': { commonName: 'system:kube-controller-manager', organizations: [] },
  'kube-scheduler': { commonName: 'system:kube-scheduler', organizations: [] },
} as const;

function hostAddresses(): string[] {
  const addresses = new Set<string>(['127.0.0.1']);
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4') addresses.add(a.address);
  }
  return [...addresses];
}

function writePair(dir: string, name: string, pair: CertificateAndKey): void {
  writeFileSync(join(dir, `${name}.crt`), pair.certificate, { mode: 0o644 });
  writeFileSync(join(dir, `${name}.key`), pair.privateKey, { mode: 0o600 });
}

function writeKubeconfig(config: TestbedConfig, file: string, ca: CertificateAndKey, client: CertificateAndKey): void {
  const kubeconfig = renderKubeconfig({
    name: 'kubeonkube-meta',
    server: `https://${config.apiserverAddress}:${config.ports.apiserver}`,
    caCertificate: ca.certificate,
    clientCertificate: client.certificate,
    clientKey: client.privateKey,
  });
  writeFileSync(file, kubeconfig, { mode: 0o600 });
}

function readPair(dir: string, name: string): CertificateAndKey {
  return {
    certificate: readFileSync(join(dir, `${name}.crt`), 'utf8'),
    privateKey: readFileSync(join(dir, `${name}.key`), 'utf8'),
  };
}

/** The node's credentials: kubelet serving certificate, kubelet and kube-proxy kubeconfigs. */
export async function writeNodePki(config: TestbedConfig): Promise<void> {
  const paths = statePaths(config.stateDir);
  const ca = readPair(paths.pki, 'ca');
  writePair(
    paths.pki,
    'kubelet',
    await issueCertificate(ca, {
      commonName: config.node.name,
      dnsNames: [config.node.name, 'localhost'],
      ipAddresses: [config.node.ip, '127.0.0.1'],
      usage: 'server',
      validityMs: year,
    }),
  );
  writeKubeconfig(
    config,
    paths.kubeconfig('kubelet'),
    ca,
    await issueCertificate(ca, {
      commonName: `system:node:${config.node.name}`,
      organizations: ['system:nodes'],
      usage: 'client',
      validityMs: year,
    }),
  );
  writeKubeconfig(
    config,
    paths.kubeconfig('kube-proxy'),
    ca,
    await issueCertificate(ca, {
      commonName: 'system:kube-proxy',
      usage: 'client',
      validityMs: year,
    }),
  );
}

export async function writeTestbedPki(config: TestbedConfig): Promise<void> {
  const paths = statePaths(config.stateDir);
  mkdirSync(paths.pki, { recursive: true, mode: 0o700 });
  const ca = await createCertificateAuthority('kubeonkube-meta-cluster-ca', 10 * year);
  const frontProxyCa = await createCertificateAuthority('kubeonkube-meta-cluster-front-proxy-ca', 10 * year);
  writePair(paths.pki, 'ca', ca);
  writePair(paths.pki, 'front-proxy-ca', frontProxyCa);

  const domain = config.dnsDomain;
  writePair(
    paths.pki,
    'apiserver',
    await issueCertificate(ca, {
      commonName: 'kube-apiserver',
      dnsNames: [
        'localhost',
        'kubernetes',
        'kubernetes.default',
        'kubernetes.default.svc',
        `kubernetes.default.svc.${domain}`,
      ],
      ipAddresses: [...new Set([...hostAddresses(), config.node.ip, config.kubernetesServiceIP])],
      usage: 'server',
      validityMs: year,
    }),
  );
  writePair(
    paths.pki,
    'apiserver-kubelet-client',
    await issueCertificate(ca, {
      commonName: 'kube-apiserver-kubelet-client',
      organizations: ['system:masters'],
      usage: 'client',
      validityMs: year,
    }),
  );
  writePair(
    paths.pki,
    'front-proxy-client',
    await issueCertificate(frontProxyCa, {
      commonName: 'front-proxy-client',
      usage: 'client',
      validityMs: year,
    }),
  );

  const sa = await generateKeyPair();
  writeFileSync(join(paths.pki, 'sa.key'), await privateKeyToPem(sa.privateKey), { mode: 0o600 });
  writeFileSync(join(paths.pki, 'sa.pub'), await publicKeyToPem(sa.publicKey), { mode: 0o644 });

  for (const [name, identity] of Object.entries(clientIdentities)) {
    const client = await issueCertificate(ca, {
      ...identity,
      organizations: [...identity.organizations],
      usage: 'client',
      validityMs: year,
    });
    writeKubeconfig(config, name === 'admin' ? paths.adminKubeconfig : paths.kubeconfig(name), ca, client);
  }
}
