// Kubeconfig documents, as every Kubernetes client reads them: one cluster, one user with a client
// certificate, one context. Certificates and keys are embedded (base64 "-data" fields) so the
// file is self-contained; it therefore must only ever be written to a Secret or a 0600 file.
import { dump } from 'js-yaml';

export interface KubeconfigInput {
  /** Name of the cluster, user and context entries. */
  name: string;
  server: string;
  caCertificate: string;
  clientCertificate: string;
  clientKey: string;
  /** Kubernetes namespace the context defaults to. */
  namespace?: string;
}

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');

export function renderKubeconfig(input: KubeconfigInput): string {
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: input.name, cluster: { server: input.server, 'certificate-authority-data': b64(input.caCertificate) } }],
    users: [{ name: input.name, user: { 'client-certificate-data': b64(input.clientCertificate), 'client-key-data': b64(input.clientKey) } }],
    contexts: [{ name: input.name, context: { cluster: input.name, user: input.name, ...(input.namespace ? { namespace: input.namespace } : {}) } }],
    'current-context': input.name,
    preferences: {},
  };
  return dump(doc);
}
