// A certificate authority as its Secret holds it, and the phased rotation that replaces it without
// a failed request. The phase is read from the Secret's own keys, so one write moves an authority
// from one phase to the next and an operator restarted at any point finds it where it was:
//
//   idle      tls.crt/tls.key                      signs; trusted alone
//   trusting  tls.crt/tls.key + next.crt/next.key  the old one signs; both trusted
//   signing   tls.crt/tls.key + previous.crt       the new one signs; both trusted
//   idle      tls.crt/tls.key                      the new one signs and is trusted alone
//
// From signing on, the cluster CA's Secret also keeps compat.crt: the new CA signed by the old one
// (and any such certificate of an earlier rotation that has not ended). Served after the leaves
// that kubelets, pods and users verify, it lets whoever still trusts only an old CA (a kubelet
// reads its CA once, when it joins) verify the new one, with nothing changed on their side. It
// widens no trust: it only lets the old CA vouch for the new one, never the other way round.
//
// Each step waits until every component runs with what the step before gave it (see the
// ca-rotation unit); the annotation records which request an authority was rotated for, so a
// request is carried out once.
import { describeCertificate, pemCertificates, type CertificateAndKey } from './certificates.ts';

export type RotationPhase = 'idle' | 'trusting' | 'signing';

/** On an authority's Secret: the kubeonkube.io/rotate-ca value it was (or is being) rotated for. */
export const caRotationRequestAnnotation = 'kubeonkube.io/ca-rotation-request';
/** On the Cluster: a new value starts a rotation of every CA. */
export const rotateCaAnnotation = 'kubeonkube.io/rotate-ca';
/**
 * On the Cluster, with the value of rotate-ca: the old cluster CA is dropped without waiting for
 * every kubelet to renew its certificates from the new one; a kubelet that has not must join again.
 */
export const rotateCaRejoinAnnotation = 'kubeonkube.io/rotate-ca-nodes-rejoin';

export interface AuthorityState {
  /** What signs leaves now. */
  signer: CertificateAndKey;
  /** The CA that will sign once trusted everywhere (trusting). */
  next?: CertificateAndKey | undefined;
  /** The CA that signed before, still trusted until every leaf moved off it (signing). */
  previous?: string | undefined;
  /** The rotation request this authority was last rotated for ('' if never). */
  request: string;
  /** The signer signed by the CAs it replaced (PEM, newest first); see compat.crt above. */
  compat?: string | undefined;
  /**
   * CAs that signed what this one signs before it existed (legacy.crt): the kubelet-serving CA of
   * a Cluster made by an earlier version, whose kubelets hold serving certificates of the cluster
   * CA. Trusted beside it until the next rotation, which waits for every kubelet to renew.
   */
  legacy?: string | undefined;
}

export const phaseOf = (a: AuthorityState): RotationPhase => (a.next ? 'trusting' : a.previous ? 'signing' : 'idle');

/**
 * Every CA a component must trust, the older first: the same text while trusting and while signing,
 * so the step between them (the new CA starts to sign) restarts no etcd member for its trust bundle,
 * where a restart of the leader is a hand-over that can cost a write in flight.
 */
export function trustBundle(a: AuthorityState): string {
  const cas = a.next
    ? [a.signer.certificate, a.next.certificate]
    : a.previous
      ? [a.previous, a.signer.certificate]
      : [a.signer.certificate];
  return [...cas, ...(a.legacy ? [a.legacy] : [])].map((pem) => pem.trimEnd()).join('\n') + '\n';
}

/** The Secret data of an authority in that state. */
export function authorityData(a: AuthorityState): Record<string, string> {
  return {
    'tls.crt': a.signer.certificate,
    'tls.key': a.signer.privateKey,
    ...(a.next ? { 'next.crt': a.next.certificate, 'next.key': a.next.privateKey } : {}),
    ...(a.previous ? { 'previous.crt': a.previous } : {}),
    ...(a.compat ? { 'compat.crt': a.compat } : {}),
    ...(a.legacy ? { 'legacy.crt': a.legacy } : {}),
  };
}

/**
 * The state after one step: trusting → signing (the new CA signs), signing → idle (the old one is
 * dropped). `crossSigned` (trusting → signing only): the new CA signed by the old, kept as compat
 * in front of what earlier rotations left that has not ended by `now`.
 */
export function advance(a: AuthorityState, crossSigned?: string, now = new Date()): AuthorityState {
  if (a.next) {
    const compat = [...(crossSigned ? [crossSigned] : []), ...stillValid(a.compat, now)].join('');
    return {
      signer: a.next,
      previous: a.signer.certificate,
      request: a.request,
      ...(compat ? { compat } : {}),
      ...(a.legacy ? { legacy: a.legacy } : {}),
    };
  }
  // what the old CA and the legacy ones signed has been renewed by now: both go
  return { signer: a.signer, request: a.request, ...(a.compat ? { compat: a.compat } : {}) };
}

/** The certificates of a PEM text that have not ended by `now`. */
export function stillValid(pem: string | undefined, now: Date): string[] {
  return pemCertificates(pem ?? '').filter((c) => describeCertificate(c).notAfter > now);
}

export type RotationStep =
  | { kind: 'none' }
  /** Start rotating these authorities: a new CA to be trusted beside each. */
  | { kind: 'start'; authorities: string[] }
  /** Move these authorities one step on, once every component runs what the last step gave it. */
  | { kind: 'advance'; authorities: string[]; from: Exclude<RotationPhase, 'idle'> };

/**
 * The next step of a rotation, from each authority's state and the request on the Cluster. A
 * request is started only when no rotation is half done beyond its first phase; authorities that
 * a crash left behind are brought to the others' phase before anyone moves further.
 */
export function nextRotationStep(states: Record<string, AuthorityState>, request: string): RotationStep {
  const entries = Object.entries(states);
  const inFlight = entries.filter(([, a]) => phaseOf(a) !== 'idle');
  const pending = entries.filter(([, a]) => phaseOf(a) === 'idle' && request !== '' && a.request !== request);
  // a request that arrived while another rotation is past trusting waits for it to end
  if (pending.length > 0 && inFlight.every(([, a]) => phaseOf(a) === 'trusting' && a.request === request)) {
    return { kind: 'start', authorities: pending.map(([name]) => name) };
  }
  if (inFlight.length === 0) return { kind: 'none' };
  const from = inFlight.some(([, a]) => phaseOf(a) === 'trusting') ? 'trusting' : 'signing';
  return { kind: 'advance', authorities: inFlight.filter(([, a]) => phaseOf(a) === from).map(([name]) => name), from };
}
