// client-node serializes every built-in kind through its generated models, which spell a few
// fields differently from the API: a NetworkPolicy rule's `from` is `_from` (a reserved word in
// the generator), and a plain `from` is dropped on the way out. Objects the operator renders use
// the API's spelling (templates are read by people); this turns them into what the client sends.
// Reads are mixed too: listed objects come back in the models' spelling, watched ones as JSON,
// which drift.ts accepts both of.
import type { KubernetesObject } from '@kubernetes/client-node';

/** Fields client-node's models rename, by the API's name. */
export const renamedFields: Record<string, string> = { from: '_from' };

/** `obj` as client-node must be given it to send it as the API spells it. */
export function toClientModel<T extends KubernetesObject>(obj: T): T {
  if (obj.kind !== 'NetworkPolicy') return obj;
  const spec = (obj as unknown as { spec?: { ingress?: Record<string, unknown>[] } }).spec;
  if (!spec?.ingress) return obj;
  const ingress = spec.ingress.map(({ from, ...rule }) => (from === undefined ? rule : { ...rule, _from: from }));
  return { ...obj, spec: { ...spec, ingress } };
}
