// A Secret's data as text and back: the API carries values base64-encoded, the operator reads and
// writes PEM and kubeconfig text.
import type { V1Secret } from '@kubernetes/client-node';

/** A Secret's value as text (PEM), undefined when the key is absent. */
export const decode = (secret: V1Secret | undefined, key: string): string | undefined => {
  const value = secret?.data?.[key];
  return value === undefined ? undefined : Buffer.from(value, 'base64').toString('utf8');
};

/** Text values as a Secret's data. */
export const encode = (data: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]));
