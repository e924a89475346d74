// The offline validation engine for the operator's custom resources: given a CRD's generated schema
// and the TypeScript twins of its CEL rules, it gives the same answers as the apiserver, so a spec
// that passes here is not refused on apply. Each kind keeps its twins next to its own validate()
// (operator/api/validate.ts for the Cluster); what is generic to every CRD lives here.
//
// Three layers, as in the apiserver: the OpenAPI schema (ajv, compiled from the generated schema,
// applying the same defaults), the list invariants (x-kubernetes-list-type map and set refuse
// duplicates), and the CEL rules (x-kubernetes-validations). There is no CEL interpreter here: each
// rule has a TypeScript twin keyed by the rule's exact text, and a validator refuses to be created
// when a rule of its schema has no twin, so a CEL edit cannot silently go unchecked offline. A
// twin's message is the rule's `message` (or what its `messageExpression` yields), so both sides
// print the same sentence.
import { Ajv } from 'ajv';
import type { ErrorObject } from 'ajv';

export type ValidationResult<T> = { ok: true; object: T } | { ok: false; errors: string[] };

export interface Validator<T> {
  /** Validates a new object (a create); `object` has the apiserver's defaults applied. */
  validate(object: unknown): ValidationResult<T>;
  /** Validates a change (an update): everything validate() checks, plus the transition rules (oldSelf). */
  validateUpdate(oldObject: unknown, newObject: unknown): ValidationResult<T>;
}

export interface ValidatorOptions {
  /** The kind the objects must be; named in the messages. */
  readonly resource: { readonly apiVersion: string; readonly kind: string };
  /** The CRD's openAPIV3Schema, as generated. */
  readonly schema: Schema;
  /** The twin of each CEL rule of the schema, keyed by the rule's exact text. */
  readonly twins: ReadonlyMap<string, Twin>;
  /** The file that holds the twins: where a problem of twinProblemsOf() sends the reader. */
  readonly twinsModule: string;
}

/**
 * A validator for one kind; throws when the twins and the schema's rules disagree, which a module
 * that creates its validator at load time turns into a refusal to load.
 */
export function createValidator<T>(options: ValidatorOptions): Validator<T> {
  const { resource, schema, twins, twinsModule } = options;
  const problems = twinProblemsOf(schema, twins, twinsModule);
  if (problems.length > 0) throw new Error(`${twinsModule} is out of step with the CRD:\n${problems.join('\n')}`);
  const validateSchema = ajv.compile(withUnknownFieldsRefused(schema, true));

  const check = (object: unknown, old: unknown): ValidationResult<T> => {
    if (!isObject(object)) return { ok: false, errors: [`must be an object (a ${resource.kind})`] };
    const errors: string[] = [];
    if (object.apiVersion !== undefined && object.apiVersion !== resource.apiVersion) {
      errors.push(`apiVersion: must be ${resource.apiVersion}`);
    }
    if (object.kind !== undefined && object.kind !== resource.kind) errors.push(`kind: must be ${resource.kind}`);
    const copy = structuredClone(object);
    dropNulls(schema, copy);
    let blocked = false;
    if (!validateSchema(copy)) {
      for (const e of relevantErrors(validateSchema.errors ?? [])) {
        errors.push(schemaMessage(e, copy));
        // as in the apiserver: CEL rules are not run on values of the wrong shape
        if (blockingKeywords.has(e.keyword)) blocked = true;
      }
    }
    checkLists(schema, copy, '', errors);
    if (!blocked) checkRules(schema, twins, copy, old, '', errors);
    const unique = [...new Set(errors)];
    return unique.length === 0 ? { ok: true, object: copy as unknown as T } : { ok: false, errors: unique };
  };

  return {
    validate: (object) => check(object, undefined),
    validateUpdate: (oldObject, newObject) => {
      const old = structuredClone(oldObject);
      // the stored object has its defaults; a file from git may not
      dropNulls(schema, old);
      validateSchema(old);
      return check(newObject, old);
    },
  };
}

// ---- schema ----------------------------------------------------------------------------------

export interface CelRule {
  readonly rule: string;
  readonly message?: string;
  readonly messageExpression?: string;
  readonly fieldPath?: string;
  readonly reason?: string;
}

export interface Schema {
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

export interface Twin {
  /** Whether the rule holds; `oldSelf` is set for transition rules only. */
  holds(self: unknown, oldSelf: unknown): boolean;
  /** What the rule's messageExpression yields; rules with a plain message leave it out. */
  message?(self: unknown, oldSelf: unknown): string;
}

/**
 * Every way the schema's rules and their twins disagree; empty when each rule has its twin.
 * `twinsModule` is the file that holds the twins, named in the problems.
 */
export function twinProblemsOf(root: Schema, twins: ReadonlyMap<string, Twin>, twinsModule: string): string[] {
  const problems: string[] = [];
  const used = new Set<string>();
  const visit = (node: Schema, path: string) => {
    for (const rule of node['x-kubernetes-validations'] ?? []) {
      const twin = twins.get(rule.rule);
      used.add(rule.rule);
      if (!twin)
        problems.push(`${path || '<root>'}: CEL rule without a TypeScript twin in ${twinsModule}: ${rule.rule}`);
      else if (rule.messageExpression !== undefined && !twin.message)
        problems.push(`${path}: the twin of ${rule.rule} must yield its messageExpression`);
      else if (rule.messageExpression === undefined && rule.message === undefined)
        problems.push(`${path}: CEL rule without a message: ${rule.rule}`);
    }
    for (const [k, v] of Object.entries(node.properties ?? {})) visit(v, join(path, k));
    if (node.items) visit(node.items, `${path}[]`);
    if (typeof node.additionalProperties === 'object') visit(node.additionalProperties, `${path}.*`);
  };
  visit(root, '');
  for (const rule of twins.keys())
    if (!used.has(rule)) problems.push(`TypeScript twin of a CEL rule the schema no longer has: ${rule}`);
  return problems;
}

/**
 * Runs the twins over the object, as the apiserver runs the rules: a rule applies where its
 * value is present; a transition rule only where the old object has a value at the same place
 * (map entries and list-type=map items are matched by key, other list items never are).
 */
function checkRules(
  node: Schema,
  twins: ReadonlyMap<string, Twin>,
  value: unknown,
  old: unknown,
  path: string,
  errors: string[],
): void {
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
      checkRules(node.items as Schema, twins, item, oldItem, `${path}[${i}]`, errors);
    });
    return;
  }
  if (!isObject(value)) return;
  for (const [key, v] of Object.entries(value)) {
    const sub =
      node.properties?.[key] ?? (typeof node.additionalProperties === 'object' ? node.additionalProperties : undefined);
    if (sub) checkRules(sub, twins, v, isObject(old) ? old[key] : undefined, join(path, key), errors);
  }
}

// ---- for the twins: CEL reads fields of objects of any shape -----------------------------------

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** CEL's has(o.key): absent and undefined are one, as in the apiserver's unstructured objects. */
export const has = (o: unknown, key: string): boolean => isObject(o) && o[key] !== undefined;

/** o.key where it is a string; undefined where CEL's string functions would fail. */
export const text = (o: unknown, key: string): string | undefined =>
  isObject(o) && typeof o[key] === 'string' ? o[key] : undefined;
