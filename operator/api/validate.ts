// Offline validation of Cluster objects (the operator's own reads, and any tool that imports it): the same
// answers as the apiserver gives for the CRD, so a spec that passes here is not refused on apply.
//
// Three layers, as in the apiserver: the OpenAPI schema (ajv, compiled from the generated
// clusterSchema, applying the same defaults), the list invariants (x-kubernetes-list-type map and
// set refuse duplicates), and the CEL rules (x-kubernetes-validations). There is no CEL interpreter
// here: each rule has a TypeScript twin keyed by the rule's exact text, and the module refuses to
// load when a rule of the schema has no twin, so a CEL edit cannot silently go unchecked offline.
// A twin's message is the rule's `message` (or what its `messageExpression` yields), so both sides
// print the same sentence.
import { isDeepStrictEqual } from 'node:util';
import { Ajv } from 'ajv';
import type { ErrorObject } from 'ajv';
import { clusterResource, clusterSchema } from './cluster.generated.ts';
import type { Cluster } from './cluster.generated.ts';

export type ValidationResult = { ok: true; cluster: Cluster } | { ok: false; errors: string[] };

/** Validates a new Cluster (a create); `cluster` has the apiserver's defaults applied. */
export function validate(object: unknown): ValidationResult {
  return check(object, undefined);
}

/**
 * Validates a change of a Cluster (an update): everything validate() checks, plus the transition
 * rules (no version downgrade, one minor version at a time, no change of the etcd storage mode).
 */
export function validateUpdate(oldObject: unknown, newObject: unknown): ValidationResult {
  const old = structuredClone(oldObject);
  // the stored object has its defaults; a file from git may not
  dropNulls(schema, old);
  validateSchema(old);
  return check(newObject, old);
}

// ---- schema ----------------------------------------------------------------------------------

interface CelRule {
  readonly rule: string;
  readonly message?: string;
  readonly messageExpression?: string;
  readonly fieldPath?: string;
  readonly reason?: string;
}

interface Schema {
  readonly type?: string;
  readonly format?: string;
  readonly properties?: Readonly<Record<string, Schema>>;
  readonly items?: Schema;
  readonly additionalProperties?: Schema | boolean;
  readonly pattern?: string;
  readonly 'x-kubernetes-int-or-string'?: boolean;
  readonly 'x-kubernetes-preserve-unknown-fields'?: boolean;
  readonly 'x-kubernetes-list-type'?: string;
  readonly 'x-kubernetes-list-map-keys'?: readonly string[];
  readonly 'x-kubernetes-validations'?: readonly CelRule[];
}

const schema: Schema = clusterSchema;

const kubernetesKeywords = [
  'x-kubernetes-validations',
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type',
  'x-kubernetes-int-or-string',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-embedded-resource',
];

const ajv = new Ajv({
  allErrors: true,
  useDefaults: true,
  verbose: true,
  // a quantity's pattern sits next to anyOf [integer, string], as the apiserver wants it
  strictTypes: false,
});
// checked below (lists, CEL) or meaningful to the apiserver only
ajv.addVocabulary(kubernetesKeywords);
ajv.addFormat('int32', {
  type: 'number',
  validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31,
});
ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
ajv.addFormat('date-time', {
  type: 'string',
  validate: (s: string) =>
    /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.test(s) && !Number.isNaN(Date.parse(s)),
});
const validateSchema = ajv.compile(withUnknownFieldsRefused(schema, true));

/**
 * A copy of the schema where objects with known properties refuse others: the apiserver drops
 * unknown fields (and kubectl's strict field validation refuses them), where JSON Schema would let
 * them through. Root metadata stays open: it is the ObjectMeta the apiserver validates itself.
 */
function withUnknownFieldsRefused(node: Schema, root: boolean): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...node };
  if (node.properties) {
    copy.properties = Object.fromEntries(
      Object.entries(node.properties).map(([k, v]) => [
        k,
        root && k === 'metadata' ? v : withUnknownFieldsRefused(v, false),
      ]),
    );
    if (node.additionalProperties === undefined && !node['x-kubernetes-preserve-unknown-fields'])
      copy.additionalProperties = false;
  }
  if (node.items) copy.items = withUnknownFieldsRefused(node.items, false);
  if (typeof node.additionalProperties === 'object')
    copy.additionalProperties = withUnknownFieldsRefused(node.additionalProperties, false);
  return copy;
}

/** The apiserver prunes nulls of non-nullable fields before defaulting; so do we. */
function dropNulls(node: Schema, value: unknown): void {
  if (Array.isArray(value)) {
    if (node.items) for (const item of value) dropNulls(node.items, item);
    return;
  }
  if (!isObject(value)) return;
  for (const [key, v] of Object.entries(value)) {
    const sub =
      node.properties?.[key] ?? (typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined);
    if (!sub) continue;
    if (v === null) delete value[key];
    else dropNulls(sub, v);
  }
}

function check(object: unknown, old: unknown): ValidationResult {
  if (!isObject(object)) return { ok: false, errors: ['must be an object (a Cluster)'] };
  const errors: string[] = [];
  if (object.apiVersion !== undefined && object.apiVersion !== clusterResource.apiVersion) {
    errors.push(`apiVersion: must be ${clusterResource.apiVersion}`);
  }
  if (object.kind !== undefined && object.kind !== clusterResource.kind)
    errors.push(`kind: must be ${clusterResource.kind}`);
  const cluster = structuredClone(object);
  dropNulls(schema, cluster);
  let blocked = false;
  if (!validateSchema(cluster)) {
    for (const e of relevantErrors(validateSchema.errors ?? [])) {
      errors.push(schemaMessage(e, cluster));
      // as in the apiserver: CEL rules are not run on values of the wrong shape
      if (blockingKeywords.has(e.keyword)) blocked = true;
    }
  }
  checkLists(schema, cluster, '', errors);
  if (!blocked) checkRules(schema, cluster, old, '', errors);
  const unique = [...new Set(errors)];
  return unique.length === 0 ? { ok: true, cluster: cluster as unknown as Cluster } : { ok: false, errors: unique };
}

const blockingKeywords = new Set(['required', 'type', 'enum', 'anyOf', 'additionalProperties']);

/**
 * The failing branches of an int-or-string's anyOf say nothing the anyOf error does not, and a
 * format says nothing more about a value of the wrong type.
 */
function relevantErrors(errors: readonly ErrorObject[]): ErrorObject[] {
  const wrongType = new Set(errors.filter((e) => e.keyword === 'type').map((e) => e.instancePath));
  return errors.filter(
    (e) => !e.schemaPath.includes('/anyOf/') && !(e.keyword === 'format' && wrongType.has(e.instancePath)),
  );
}

function schemaMessage(e: ErrorObject, root: unknown): string {
  const params = e.params as Record<string, unknown>;
  const parent = (e.parentSchema ?? {}) as Schema;
  const at = (path: string, message: string) => (path ? `${path}: ${message}` : message);
  const path = displayPath(root, e.instancePath);
  const list = (v: unknown) => (Array.isArray(v) ? v.map(String).join(', ') : String(v));
  switch (e.keyword) {
    case 'required':
      return at(join(path, String(params.missingProperty)), 'is required');
    case 'additionalProperties':
      return at(join(path, String(params.additionalProperty)), 'unknown field');
    case 'enum':
      return at(path, `must be one of ${list(params.allowedValues)}`);
    case 'type':
      return at(path, `must be ${article(String(params.type))}`);
    case 'anyOf':
      return at(
        path,
        parent['x-kubernetes-int-or-string']
          ? 'must be an integer or a string'
          : 'must match one of the allowed shapes',
      );
    case 'pattern':
      if (parent['x-kubernetes-int-or-string'])
        return at(path, `must be a quantity such as 500m, 1Gi or 2 (got ${JSON.stringify(e.data)})`);
      return at(path, `must match ${String(params.pattern)} (got ${JSON.stringify(e.data)})`);
    case 'minimum':
    case 'maximum':
      return at(path, `must be ${String(params.comparison)} ${String(params.limit)}`);
    case 'minLength':
      return at(path, `must be at least ${String(params.limit)} characters long`);
    case 'maxLength':
      return at(path, `must be at most ${String(params.limit)} characters long`);
    case 'maxItems':
      return at(path, `must have at most ${String(params.limit)} items`);
    case 'format':
      return at(path, `must be ${article(String(params.format))}`);
    default:
      return at(path, e.message ?? `fails ${e.keyword}`);
  }
}

function article(type: string): string {
  const names: Record<string, string> = {
    integer: 'an integer',
    object: 'an object',
    array: 'a list',
    int32: 'a 32-bit integer',
    int64: 'a 64-bit integer',
    'date-time': 'an RFC 3339 date-time',
  };
  return names[type] ?? `a ${type}`;
}

/** A JSON pointer into the object, written as the apiserver writes field paths: spec.users[1].name */
function displayPath(root: unknown, pointer: string): string {
  let path = '';
  let node = root;
  for (const raw of pointer.split('/').slice(1)) {
    const segment = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node)) {
      path = `${path}[${segment}]`;
      node = node[Number(segment)] as unknown;
    } else {
      path = join(path, segment);
      node = isObject(node) ? node[segment] : undefined;
    }
  }
  return path;
}

const join = (path: string, field: string) => (path ? `${path}.${field}` : field);

// ---- list invariants -------------------------------------------------------------------------

/** x-kubernetes-list-type map (unique keys) and set (unique items), worded as the apiserver does. */
function checkLists(node: Schema, value: unknown, path: string, errors: string[]): void {
  if (Array.isArray(value)) {
    const listType = node['x-kubernetes-list-type'];
    const keys = node['x-kubernetes-list-map-keys'] ?? [];
    const seen = new Set<string>();
    value.forEach((item: unknown, i) => {
      const identity = listType === 'map' && isObject(item) ? Object.fromEntries(keys.map((k) => [k, item[k]])) : item;
      const id = JSON.stringify(identity);
      if ((listType === 'map' || listType === 'set') && seen.has(id))
        errors.push(`${path}[${i}]: Duplicate value: ${id}`);
      seen.add(id);
      if (node.items) checkLists(node.items, item, `${path}[${i}]`, errors);
    });
    return;
  }
  if (!isObject(value)) return;
  for (const [key, v] of Object.entries(value)) {
    const sub =
      node.properties?.[key] ?? (typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined);
    if (sub) checkLists(sub, v, join(path, key), errors);
  }
}

// ---- CEL rules -------------------------------------------------------------------------------

interface Twin {
  /** Whether the rule holds; `oldSelf` is set for transition rules only. */
  holds(self: unknown, oldSelf: unknown): boolean;
  /** What the rule's messageExpression yields; rules with a plain message leave it out. */
  message?(self: unknown, oldSelf: unknown): string;
}

const celDuration = '^([0-9]+([.][0-9]+)?(ns|us|µs|μs|ms|s|m|h))+$';
const durationSyntax = new RegExp(celDuration, 'u');
/** One minute in nanoseconds, the unit parseGoDuration counts in: the shortest gap between a certificate's issue and its renewal. */
const minuteNs = 60_000_000_000n;
const versionSyntax = /^v1[.][0-9]+[.][0-9]+$/;
const minorPatch = (v: string) => v.split('.').slice(1).map(Number) as [number, number];
const has = (o: unknown, key: string) => isObject(o) && o[key] !== undefined;
const text = (o: unknown, key: string) => (isObject(o) && typeof o[key] === 'string' ? o[key] : undefined);

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

/** Every way the schema's rules and their twins disagree; empty when each rule has its twin. */
export function twinProblems(root: unknown): string[] {
  const problems: string[] = [];
  const used = new Set<string>();
  const visit = (node: Schema, path: string) => {
    for (const rule of node['x-kubernetes-validations'] ?? []) {
      const twin = twins.get(rule.rule);
      used.add(rule.rule);
      if (!twin)
        problems.push(
          `${path || '<root>'}: CEL rule without a TypeScript twin in operator/api/validate.ts: ${rule.rule}`,
        );
      else if (rule.messageExpression !== undefined && !twin.message)
        problems.push(`${path}: the twin of ${rule.rule} must yield its messageExpression`);
      else if (rule.messageExpression === undefined && rule.message === undefined)
        problems.push(`${path}: CEL rule without a message: ${rule.rule}`);
    }
    for (const [k, v] of Object.entries(node.properties ?? {})) visit(v, join(path, k));
    if (node.items) visit(node.items, `${path}[]`);
    if (typeof node.additionalProperties === 'object') visit(node.additionalProperties, `${path}.*`);
  };
  visit(root as Schema, '');
  for (const rule of twins.keys())
    if (!used.has(rule)) problems.push(`TypeScript twin of a CEL rule the schema no longer has: ${rule}`);
  return problems;
}

const problems = twinProblems(schema);
if (problems.length > 0)
  throw new Error(`operator/api/validate.ts is out of step with the CRD:\n${problems.join('\n')}`);

/**
 * Runs the twins over the object, as the apiserver runs the rules: a rule applies where its
 * value is present; a transition rule only where the old object has a value at the same place
 * (map entries and list-type=map items are matched by key, other list items never are).
 */
function checkRules(node: Schema, value: unknown, old: unknown, path: string, errors: string[]): void {
  if (value === undefined) return;
  for (const rule of node['x-kubernetes-validations'] ?? []) {
    const transition = /\boldSelf\b/.test(rule.rule);
    if (transition && old === undefined) continue;
    const twin = twins.get(rule.rule);
    if (!twin || twin.holds(value, old)) continue;
    const message = twin.message?.(value, old) ?? rule.message ?? `failed rule: ${rule.rule}`;
    const at = rule.fieldPath ? join(path, rule.fieldPath.replace(/^\./, '')) : path;
    errors.push(at ? `${at}: ${message}` : message);
  }
  if (Array.isArray(value)) {
    if (!node.items) return;
    const keys = node['x-kubernetes-list-type'] === 'map' ? (node['x-kubernetes-list-map-keys'] ?? []) : undefined;
    const oldItems = Array.isArray(old) ? (old as unknown[]) : [];
    value.forEach((item: unknown, i) => {
      const oldItem =
        keys && isObject(item) ? oldItems.find((o) => isObject(o) && keys.every((k) => o[k] === item[k])) : undefined;
      checkRules(node.items as Schema, item, oldItem, `${path}[${i}]`, errors);
    });
    return;
  }
  if (!isObject(value)) return;
  for (const [key, v] of Object.entries(value)) {
    const sub =
      node.properties?.[key] ?? (typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined);
    if (sub) checkRules(sub, v, isObject(old) ? old[key] : undefined, join(path, key), errors);
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---- durations and CIDRs, as the apiserver's CEL reads them ----------------------------------

const nanosecondsPer: Record<string, bigint> = {
  ns: 1n,
  us: 1_000n,
  µs: 1_000n, // U+00B5 micro sign
  μs: 1_000n, // U+03BC Greek mu
  ms: 1_000_000n,
  s: 1_000_000_000n,
  m: 60_000_000_000n,
  h: 3_600_000_000_000n,
};
const maxDuration = 2n ** 63n - 1n;

/**
 * A Go duration string (time.ParseDuration: "8760h", "1h30m", "1.5s") in nanoseconds; undefined
 * when Go would refuse it, including when it overflows Go's int64 nanoseconds (about 292 years).
 */
export function parseGoDuration(s: string): bigint | undefined {
  let rest = s;
  let sign = 1n;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    if (rest.startsWith('-')) sign = -1n;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0n;
  if (rest === '') return undefined;
  let total = 0n;
  while (rest !== '') {
    const match = /^([0-9]*)(?:\.([0-9]*))?([^0-9.]*)/u.exec(rest);
    const [all = '', whole = '', fraction = '', unit = ''] = match ?? [];
    const perUnit = nanosecondsPer[unit];
    if ((whole === '' && fraction === '') || perUnit === undefined) return undefined;
    total += BigInt(whole || '0') * perUnit + (BigInt(fraction || '0') * perUnit) / 10n ** BigInt(fraction.length);
    if (total > maxDuration) return undefined;
    rest = rest.slice(all.length);
  }
  return sign * total;
}

/** A Go duration in milliseconds (for timers and certificate lifetimes); throws when invalid. */
export function durationMs(s: string): number {
  const ns = parseGoDuration(s);
  if (ns === undefined) throw new Error(`not a Go duration: ${JSON.stringify(s)}`);
  return Number(ns / 1_000_000n);
}

export interface Cidr {
  /** The address as written, 4 or 16 bytes. */
  readonly address: Uint8Array;
  readonly bits: number;
}

/**
 * A CIDR as the apiserver's CEL cidr() and isCIDR() read it (Go's netip.ParsePrefix: no leading
 * zeros, no zones; IPv4-mapped IPv6 refused); undefined when they would refuse it. Host bits may
 * be set, as there.
 */
export function parseCidr(s: string): Cidr | undefined {
  const slash = s.lastIndexOf('/');
  if (slash < 0) return undefined;
  const address = parseIp(s.slice(0, slash));
  const bitsText = s.slice(slash + 1);
  if (!address || !/^(0|[1-9][0-9]{0,2})$/.test(bitsText)) return undefined;
  const bits = Number(bitsText);
  if (bits > address.length * 8) return undefined;
  const mappedV4 =
    address.length === 16 && address.slice(0, 10).every((b) => b === 0) && address[10] === 0xff && address[11] === 0xff;
  return mappedV4 ? undefined : { address, bits };
}

/** CEL's cidr(a).containsCIDR(b): same family, a no longer than b and b inside a. */
export function cidrContainsCidr(outer: Cidr, inner: Cidr): boolean {
  if (outer.address.length !== inner.address.length || outer.bits > inner.bits) return false;
  for (let bit = 0; bit < outer.bits; bit++) {
    const byte = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    if (((outer.address[byte] ?? 0) & mask) !== ((inner.address[byte] ?? 0) & mask)) return false;
  }
  return true;
}

function parseIp(s: string): Uint8Array | undefined {
  for (const c of s) {
    if (c === '.') return parseIPv4(s);
    if (c === ':') return parseIPv6(s);
    if (c === '%') return undefined;
  }
  return undefined;
}

function parseIPv4(s: string): Uint8Array | undefined {
  const fields = s.split('.');
  if (fields.length !== 4) return undefined;
  const bytes = fields.map((f) => (/^(0|[1-9][0-9]{0,2})$/.test(f) ? Number(f) : 256));
  return bytes.every((b) => b <= 255) ? Uint8Array.from(bytes) : undefined;
}

/** IPv6 as Go's netip reads it: hex groups of 1-4 digits, one "::", an optional IPv4 tail, no zone. */
function parseIPv6(s: string): Uint8Array | undefined {
  if (s.includes('%')) return undefined;
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (half: string | undefined): number[] | undefined => {
    if (half === undefined || half === '') return [];
    const out: number[] = [];
    const parts = half.split(':');
    for (const [i, part] of parts.entries()) {
      if (i === parts.length - 1 && part.includes('.')) {
        const v4 = parseIPv4(part);
        if (!v4) return undefined;
        out.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
      } else if (/^[0-9a-fA-F]{1,4}$/.test(part)) {
        out.push(parseInt(part, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = groups(halves[0]);
  const tail = groups(halves[1]);
  if (!head || !tail) return undefined;
  const ellipsis = halves.length === 2;
  const count = head.length + tail.length;
  // "::" stands for at least one group of zeros; without it there must be exactly eight groups
  if (ellipsis ? count > 7 : count !== 8) return undefined;
  // an IPv4 tail is only allowed at the very end
  if (halves.length === 2 && halves[0]?.includes('.')) return undefined;
  const all = [...head, ...new Array<number>(8 - count).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  all.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return bytes;
}
