// Offline validation of Cluster objects (the operator's own reads, and any tool that imports it): the same
// answers as the apiserver gives for the CRD, so a spec that passes here is not refused on apply.
//
// The engine (schema, list invariants, CEL rules run through their twins) is schema-validator.ts,
// shared by every kind; this module holds the TypeScript twins of the Cluster CRD's CEL rules, each
// keyed by the rule's exact text. It refuses to load when a rule of the schema has no twin (or a
// twin no rule), so a CEL edit cannot silently go unchecked offline. A twin's message is the rule's
// `message` (or what its `messageExpression` yields), so both sides print the same sentence.
import { isDeepStrictEqual } from 'node:util';
import { clusterResource, clusterSchema } from './cluster.generated.ts';
import type { Cluster } from './cluster.generated.ts';
import { cidrContainsCidr, parseCidr, parseGoDuration } from './formats.ts';
import { createValidator, has, isObject, text, twinProblemsOf } from './schema-validator.ts';
import type { Schema, Twin } from './schema-validator.ts';

// validate.test.ts checks them along with the twins that read them; the operator imports formats.ts
export type ValidationResult = { ok: true; cluster: Cluster } | { ok: false; errors: string[] };

/** Validates a new Cluster (a create); `cluster` has the apiserver's defaults applied. */
export function validate(object: unknown): ValidationResult {
  const result = clusterValidator.validate(object);
  return result.ok ? { ok: true, cluster: result.object } : result;
}

/**
 * Validates a change of a Cluster (an update): everything validate() checks, plus the transition
 * rules (no version downgrade, one minor version at a time, no change of the etcd storage mode).
 */
export function validateUpdate(oldObject: unknown, newObject: unknown): ValidationResult {
  const result = clusterValidator.validateUpdate(oldObject, newObject);
  return result.ok ? { ok: true, cluster: result.object } : result;
}

/** Every way the schema's rules and the Cluster's twins disagree; empty when each rule has its twin. */
export function twinProblems(root: unknown): string[] {
  return twinProblemsOf(root as Schema, twins, twinsModule);
}

// ---- the twins of the Cluster's CEL rules ----------------------------------------------------

const celDuration = '^([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$';
const durationSyntax = new RegExp(celDuration, 'u');
/** One minute in nanoseconds, the unit parseGoDuration counts in: the shortest gap between a certificate's issue and its renewal. */
const minuteNs = 60_000_000_000n;
const versionSyntax = /^v1[.][0-9]+[.][0-9]+$/;
const minorPatch = (v: string) => v.split('.').slice(1).map(Number) as [number, number];

/** Durations as CEL's duration(): positive, parseable and (unlike Go) without a sign. */
function positiveDuration(s: unknown): boolean {
  if (typeof s !== 'string' || !durationSyntax.test(s)) return false;
  const ns = parseGoDuration(s);
  return ns !== undefined && ns > 0n;
}

const versionPair = (self: unknown, oldSelf: unknown) =>
  typeof self === 'string' && typeof oldSelf === 'string' && versionSyntax.test(self) && versionSyntax.test(oldSelf)
    ? { now: minorPatch(self), was: minorPatch(oldSelf) }
    : undefined;

/** Users whose names are the control plane's own identities (besides every kubeonkube-* name). */
const reservedUserNames = [
  'kube-apiserver',
  'kube-apiserver-etcd-client',
  'kube-apiserver-kubelet-client',
  'front-proxy-client',
];

const twins = new Map<string, Twin>([
  [
    "size(self) <= 53 && self.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
    {
      holds: (self) => typeof self === 'string' && [...self].length <= 53 && /^[a-z]([-a-z0-9]*[a-z0-9])?$/.test(self),
    },
  ],
  [
    "!self.matches('^v1[.][0-9]+[.][0-9]+$') || !oldSelf.matches('^v1[.][0-9]+[.][0-9]+$') || int(self.split('.')[1]) > int(oldSelf.split('.')[1]) || (int(self.split('.')[1]) == int(oldSelf.split('.')[1]) && int(self.split('.')[2]) >= int(oldSelf.split('.')[2]))",
    {
      holds: (self, oldSelf) => {
        const v = versionPair(self, oldSelf);
        return !v || v.now[0] > v.was[0] || (v.now[0] === v.was[0] && v.now[1] >= v.was[1]);
      },
      message: (self, oldSelf) => `version must not be downgraded (from ${String(oldSelf)} to ${String(self)})`,
    },
  ],
  [
    "!self.matches('^v1[.][0-9]+[.][0-9]+$') || !oldSelf.matches('^v1[.][0-9]+[.][0-9]+$') || int(self.split('.')[1]) <= int(oldSelf.split('.')[1]) + 1",
    {
      holds: (self, oldSelf) => {
        const v = versionPair(self, oldSelf);
        return !v || v.now[0] <= v.was[0] + 1;
      },
      message: (self, oldSelf) =>
        `version may only move up one minor version at a time (from ${String(oldSelf)} to ${String(self)})`,
    },
  ],
  [
    "!has(self.operator) || self.operator != 'Exists' || !has(self.value) || self.value == ''",
    {
      holds: (self) =>
        !has(self, 'operator') ||
        text(self, 'operator') !== 'Exists' ||
        !has(self, 'value') ||
        text(self, 'value') === '',
    },
  ],
  [
    "has(self.key) && self.key != '' || has(self.operator) && self.operator == 'Exists'",
    {
      holds: (self) =>
        (has(self, 'key') && text(self, 'key') !== '') ||
        (has(self, 'operator') && text(self, 'operator') === 'Exists'),
    },
  ],
  [
    '!has(self.serviceCIDR) || !has(self.podCIDR) || !isCIDR(self.serviceCIDR) || !isCIDR(self.podCIDR) || (!cidr(self.serviceCIDR).containsCIDR(self.podCIDR) && !cidr(self.podCIDR).containsCIDR(self.serviceCIDR))',
    {
      holds: (self) => {
        const services = parseCidr(text(self, 'serviceCIDR') ?? '');
        const pods = parseCidr(text(self, 'podCIDR') ?? '');
        return !services || !pods || (!cidrContainsCidr(services, pods) && !cidrContainsCidr(pods, services));
      },
      message: (self) =>
        `serviceCIDR ${text(self, 'serviceCIDR')} and podCIDR ${text(self, 'podCIDR')} must not overlap`,
    },
  ],
  ['isCIDR(self)', { holds: (self) => typeof self === 'string' && parseCidr(self) !== undefined }],
  [
    "!self.matches('-(etcd|front-proxy|kubelet-serving|controller-manager|scheduler|user)$') && !self.contains('-user-')",
    {
      holds: (self) =>
        typeof self === 'string' &&
        !/-(etcd|front-proxy|kubelet-serving|controller-manager|scheduler|user)$/.test(self) &&
        !self.includes('-user-'),
    },
  ],
  [
    "!has(oldSelf.spec) || oldSelf.spec.mode != 'standard' || self.spec.mode != 'minimal' || (has(oldSelf.status) && has(oldSelf.status.etcd) && has(oldSelf.status.etcd.size) && oldSelf.status.etcd.size == 1 && (!has(oldSelf.status.etcd.members) || size(oldSelf.status.etcd.members) <= 1))",
    {
      holds: (self, oldSelf) => {
        const mode = (o: unknown) => (isObject(o) ? text(o.spec, 'mode') : undefined);
        const etcd =
          isObject(oldSelf) && isObject(oldSelf.status) && isObject(oldSelf.status.etcd)
            ? oldSelf.status.etcd
            : undefined;
        const members = etcd && Array.isArray(etcd.members) ? etcd.members.length : 0;
        return mode(oldSelf) !== 'standard' || mode(self) !== 'minimal' || (etcd?.size === 1 && members <= 1);
      },
    },
  ],
  [
    `!has(self.users) || !has(self.certificates) || !has(self.certificates.renewBefore) || !self.certificates.renewBefore.matches('${celDuration}') || self.users.all(u, !has(u.validity) || !u.validity.matches('${celDuration}') || duration(u.validity) - duration(self.certificates.renewBefore) >= duration('1m'))`,
    {
      holds: (self) => {
        const users = isObject(self) && Array.isArray(self.users) ? (self.users as unknown[]) : undefined;
        const renewBefore = isObject(self) ? text(self.certificates, 'renewBefore') : undefined;
        if (!users || renewBefore === undefined || !durationSyntax.test(renewBefore)) return true;
        const r = parseGoDuration(renewBefore);
        return users.every((u) => {
          const validity = text(u, 'validity');
          if (validity === undefined || !durationSyntax.test(validity)) return true;
          const v = parseGoDuration(validity);
          return v !== undefined && r !== undefined && v - r >= minuteNs;
        });
      },
    },
  ],
  [
    'has(self.claimTemplate) != has(self.volumeSource)',
    { holds: (self) => has(self, 'claimTemplate') !== has(self, 'volumeSource') },
  ],
  ['self == oldSelf', { holds: (self, oldSelf) => isDeepStrictEqual(self, oldSelf) }],
  [
    'has(self.claimTemplate) == has(oldSelf.claimTemplate) && has(self.volumeSource) == has(oldSelf.volumeSource) && (!has(self.claimTemplate) || self.claimTemplate == oldSelf.claimTemplate) && (!has(self.volumeSource) || self.volumeSource == oldSelf.volumeSource)',
    {
      holds: (self, oldSelf) =>
        ['claimTemplate', 'volumeSource'].every(
          (k) =>
            has(self, k) === has(oldSelf, k) &&
            (!has(self, k) ||
              isDeepStrictEqual((self as Record<string, unknown>)[k], (oldSelf as Record<string, unknown>)[k])),
        ),
    },
  ],
  [
    'has(self.restoreFrom) == has(oldSelf.restoreFrom)',
    { holds: (self, oldSelf) => has(self, 'restoreFrom') === has(oldSelf, 'restoreFrom') },
  ],
  [
    `!has(self.validity) || !has(self.renewBefore) || !self.validity.matches('${celDuration}') || !self.renewBefore.matches('${celDuration}') || duration(self.validity) - duration(self.renewBefore) >= duration('1m')`,
    {
      holds: (self) => {
        const validity = text(self, 'validity');
        const renewBefore = text(self, 'renewBefore');
        if (validity === undefined || renewBefore === undefined) return true;
        if (!durationSyntax.test(validity) || !durationSyntax.test(renewBefore)) return true;
        const v = parseGoDuration(validity);
        const r = parseGoDuration(renewBefore);
        // out of range: CEL's duration() fails, which refuses the object too
        return v !== undefined && r !== undefined && v - r >= minuteNs;
      },
    },
  ],
  [`self.matches('${celDuration}') && duration(self) > duration('0s')`, { holds: positiveDuration }],
  [
    `self.matches('${celDuration}') && duration(self) >= duration('2m')`,
    {
      holds: (self) =>
        typeof self === 'string' && durationSyntax.test(self) && (parseGoDuration(self) ?? 0n) >= 120_000_000_000n,
    },
  ],
  [
    "has(self.template) || self.name in ['kube-proxy', 'coredns']",
    { holds: (self) => has(self, 'template') || ['kube-proxy', 'coredns'].includes(text(self, 'name') ?? '') },
  ],
  [
    "!has(self.template) || !(self.name in ['kube-proxy', 'coredns'])",
    { holds: (self) => !has(self, 'template') || !['kube-proxy', 'coredns'].includes(text(self, 'name') ?? '') },
  ],
  [
    `!self.startsWith('kubeonkube-') && !(self in [${reservedUserNames.map((n) => `'${n}'`).join(', ')}])`,
    {
      holds: (self) => typeof self === 'string' && !self.startsWith('kubeonkube-') && !reservedUserNames.includes(self),
    },
  ],
  [
    "!(self.name in ['control-plane', 'tunnel-agent'])",
    { holds: (self) => !['control-plane', 'tunnel-agent'].includes(text(self, 'name') ?? '') },
  ],
]);

const twinsModule = 'operator/api/validate.ts';
// created at load time: twins out of step with the CRD stop the operator at start, not at the first Cluster
const clusterValidator = createValidator<Cluster>({
  resource: clusterResource,
  schema: clusterSchema,
  twins,
  twinsModule,
});
