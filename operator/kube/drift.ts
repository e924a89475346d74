// Drift: does a live object still hold every field the operator sets? The operator's objects are
// compared field by field against what it would apply, as the apiserver stores them: it adds
// defaults (extra fields in live are fine), drops empty maps and lists (`nodeSelector: {}`), and
// writes quantities in canonical form (`0.5` becomes `500m`). Anything else that differs is a hand
// edit (`kubectl scale`, a removed label) that the next apply repairs.
import { renamedFields } from './client-model.ts';

/** Value of a Kubernetes quantity (`500m`, `1Gi`, `2`), or undefined when `v` is not one. */
export function quantityValue(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v !== 'string') return undefined;
  const m = /^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?$/.exec(v);
  if (!m) return undefined;
  const suffix = m[2] ?? '';
  const binary: Record<string, number> = {
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
    Pi: 2 ** 50,
    Ei: 2 ** 60,
  };
  const decimal: Record<string, number> = {
    n: 1e-9,
    u: 1e-6,
    m: 1e-3,
    '': 1,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    P: 1e15,
    E: 1e18,
  };
  const factor =
    binary[suffix] ?? decimal[suffix] ?? (/^[eE]/.test(suffix) ? 10 ** Number(suffix.slice(1)) : undefined);
  return factor === undefined ? undefined : Number(m[1]) * factor;
}

const isEmpty = (v: unknown) =>
  v === undefined ||
  v === null ||
  (Array.isArray(v) && v.length === 0) ||
  (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.keys(v).length === 0);

/** Whether `live` holds every field of `desired` with the same value (see above for what counts as same). */
export function containsDesired(live: unknown, desired: unknown): boolean {
  // listed objects come in client-node's spelling of a few fields (see client-model.ts)
  if (isEmpty(desired)) return isEmpty(live) || typeof live === typeof desired;
  if (Array.isArray(desired)) {
    return (
      Array.isArray(live) && live.length === desired.length && desired.every((d, i) => containsDesired(live[i], d))
    );
  }
  if (typeof desired === 'object' && desired !== null) {
    if (typeof live !== 'object' || live === null || Array.isArray(live)) return false;
    const l = live as Record<string, unknown>;
    return Object.entries(desired).every(([k, v]) =>
      containsDesired(l[k] ?? (renamedFields[k] ? l[renamedFields[k]] : undefined), v),
    );
  }
  if (live === desired) return true;
  // quantities the apiserver rewrote in canonical form
  const a = quantityValue(live);
  const b = quantityValue(desired);
  return a !== undefined && b !== undefined && typeof live === 'string' && Math.abs(a - b) <= Math.abs(b) * 1e-9;
}
