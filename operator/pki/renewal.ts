// Decides whether a live certificate still matches what it should say, and when it must be
// renewed. A certificate is re-issued when its issuer, subject, groups, SANs, usage or lifetime
// differ from the desired spec, or when it enters its renew window; the operator requeues at the
// returned deadline.
import type { CertificateDescription, CertificateSpec } from './certificates.ts';

export interface RenewalVerdict {
  /** Why it must be re-issued now; undefined while it is fine. */
  reason?: string;
  /** When it must be looked at again (the start of its renew window). */
  renewAt: Date;
  /**
   * It is in its renew window, but its issuer ends before a new one would: re-issuing cannot
   * make it last longer, so it is left as it is (and the issuer's expiry is reported instead).
   */
  clippedByIssuer?: boolean;
}

const sameSet = (a: readonly string[] = [], b: readonly string[] = []) => {
  const x = [...new Set(a)].sort();
  const y = [...new Set(b)].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
};

/** Issue time is backdated by this much (see certificates.ts); lifetimes are compared net of it. */
const backdateMs = 5 * 60 * 1000;
const toleranceMs = 60 * 1000;

export function renewalVerdict(
  live: CertificateDescription,
  desired: CertificateSpec,
  issuer: { subject: string; notAfter: Date },
  renewBeforeMs: number,
  now: Date,
): RenewalVerdict {
  const renewAt = new Date(live.notAfter.getTime() - renewBeforeMs);
  const verdict = (reason: string) => ({ reason, renewAt });
  if (live.issuer !== issuer.subject) return verdict('issued by another CA');
  if (live.commonName !== desired.commonName) return verdict('common name changed');
  if (!sameSet(live.organizations, desired.organizations)) return verdict('groups changed');
  if (!sameSet(live.dnsNames, desired.dnsNames)) return verdict('DNS names changed');
  if (!sameSet(live.ipAddresses, desired.ipAddresses)) return verdict('IP addresses changed');
  if (live.usage !== desired.usage) return verdict('usage changed');
  const lifetime = live.notAfter.getTime() - live.notBefore.getTime() - backdateMs;
  // a certificate cut short by its CA's end cannot be longer; only compare unclipped ones
  const clipped = Math.abs(live.notAfter.getTime() - issuer.notAfter.getTime()) < toleranceMs;
  if (!clipped && Math.abs(lifetime - desired.validityMs) > toleranceMs) return verdict('validity changed');
  if (now.getTime() >= renewAt.getTime()) {
    // re-issuing must make progress, or every pass would issue the same clipped certificate again
    const freshNotAfter = Math.min(now.getTime() + desired.validityMs, issuer.notAfter.getTime());
    if (freshNotAfter <= live.notAfter.getTime() + toleranceMs) return { renewAt, clippedByIssuer: true };
    return verdict('in its renew window');
  }
  return { renewAt };
}
