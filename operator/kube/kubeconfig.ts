// Kubeconfig documents, as every Kubernetes client reads them: one cluster, one user with a client
// certificate, one context. Certificates and keys are embedded (base64 "-data" fields) so the
// file is self-contained; it therefore must only ever be written to a Secret or a 0600 file.
import { CORE_SCHEMA, dump, load } from 'js-yaml';

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
    clusters: [
      { name: input.name, cluster: { server: input.server, 'certificate-authority-data': b64(input.caCertificate) } },
    ],
    users: [
      {
        name: input.name,
        user: { 'client-certificate-data': b64(input.clientCertificate), 'client-key-data': b64(input.clientKey) },
      },
    ],
    contexts: [
      {
        name: input.name,
        context: { cluster: input.name, user: input.name, ...(input.namespace ? { namespace: input.namespace } : {}) },
      },
    ],
    'current-context': input.name,
    preferences: {},
  };
  return dump(doc);
}

/**
 * The client key a kubeconfig of renderKubeconfig's form carries, read as data (YAML of the core
 * schema, one field taken); undefined when the text is not of that form. Used only to check that a
 * kubeconfig Secret still says what the operator wrote, never to build a client.
 */
export function kubeconfigClientKey(text: string): string | undefined {
  let doc: unknown;
  try {
    doc = load(text, { schema: CORE_SCHEMA });
  } catch {
    return undefined;
  }
  const users = (doc as { users?: unknown } | null)?.users;
  const data = Array.isArray(users)
    ? (users[0] as { user?: Record<string, unknown> } | undefined)?.user?.['client-key-data']
    : undefined;
  return typeof data === 'string' ? Buffer.from(data, 'base64').toString('utf8') : undefined;
}
