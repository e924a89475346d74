// Renders the Handlebars templates in templates/ into Kubernetes objects, safely: an isolated
// Handlebars instance, strict mode (a missing value is an error, not an empty string), no HTML
// escaping, and every value through the `json` helper — JSON is valid YAML, so no value can
// break quoting or indentation. The output is parsed at once and checked before anyone uses it.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Handlebars from 'handlebars';
import { CORE_SCHEMA, loadAll } from 'js-yaml';

/** templates/ of the package this module belongs to, from the sources or from the built dist/. */
function findTemplatesDir(): string {
  for (let dir = import.meta.dirname; dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'templates'))) return join(dir, 'templates');
  }
  throw new Error(`no templates folder above ${import.meta.dirname}`);
}

export const templatesDir = process.env.KUBEONKUBE_TEMPLATES ?? findTemplatesDir();

export interface RenderedObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

export class TemplateError extends Error {}

function createInstance(): typeof Handlebars {
  const hb = Handlebars.create();
  hb.registerHelper('json', (value: unknown, options: Handlebars.HelperOptions & { loc?: { start: { line: number; column: number } } }) => {
    // strict mode does not reach helper arguments: a missing value must not render as nothing
    if (value === undefined) throw new TemplateError(`a value given to json is missing (line ${options.loc?.start.line ?? '?'})`);
    return JSON.stringify(value);
  });
  return hb;
}

function checkObject(template: string, doc: unknown, index: number): RenderedObject {
  const where = `template ${template}, document ${index + 1}`;
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new TemplateError(`${where}: not an object`);
  const obj = doc as Partial<RenderedObject>;
  if (typeof obj.apiVersion !== 'string' || obj.apiVersion === '') throw new TemplateError(`${where}: apiVersion missing`);
  if (typeof obj.kind !== 'string' || obj.kind === '') throw new TemplateError(`${where}: kind missing`);
  if (typeof obj.metadata !== 'object' || obj.metadata === null || typeof obj.metadata.name !== 'string' || obj.metadata.name === '') {
    throw new TemplateError(`${where}: metadata.name missing`);
  }
  // RBAC objects are named by path segments, which may hold colons (system:node-proxier)
  const nameRule = obj.apiVersion.startsWith('rbac.authorization.k8s.io/') ? /^[a-z0-9]([-a-z0-9.:]*[a-z0-9])?$/ : /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
  if (!nameRule.test(obj.metadata.name) || obj.metadata.name.length > 253) {
    throw new TemplateError(`${where}: metadata.name "${obj.metadata.name}" is not a valid object name`);
  }
  return obj as RenderedObject;
}

/** A set of compiled templates, by file name (e.g. "etcd-member.yaml.hbs"). */
export class Renderer {
  readonly #hb = createInstance();
  readonly #templates = new Map<string, Handlebars.TemplateDelegate>();
  /** Users' own templates (add-ons from ConfigMaps), compiled once per text. */
  readonly #sources = new Map<string, Handlebars.TemplateDelegate>();

  constructor(dir: string = templatesDir) {
    for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml.hbs')).sort()) {
      this.#templates.set(file, this.#compile(readFileSync(join(dir, file), 'utf8')));
    }
  }

  #compile(source: string): Handlebars.TemplateDelegate {
    return this.#hb.compile(source, { strict: true, noEscape: true });
  }

  names(): string[] {
    return [...this.#templates.keys()];
  }

  render(template: string, context: object): RenderedObject[] {
    const compiled = this.#templates.get(template);
    if (!compiled) throw new TemplateError(`no template named ${template}`);
    return this.#run(template, compiled, context);
  }

  /**
   * Renders a template given as text (`template` names it in errors) under the same rules as those
   * in templates/. Compiled once per text; the texts of the latest few are kept.
   */
  renderSource(template: string, source: string, context: object): RenderedObject[] {
    let compiled = this.#sources.get(source);
    if (!compiled) {
      compiled = this.#compile(source);
      if (this.#sources.size >= 64) this.#sources.delete(this.#sources.keys().next().value!);
      this.#sources.set(source, compiled);
    }
    return this.#run(template, compiled, context);
  }

  #run(template: string, compiled: Handlebars.TemplateDelegate, context: object): RenderedObject[] {
    let text: string;
    try {
      text = compiled(context);
    } catch (err) {
      throw new TemplateError(`template ${template}: ${(err as Error).message}`);
    }
    let docs: unknown[];
    try {
      // the core schema: an unquoted date stays a string, as the apiserver would store it
      docs = loadAll(text, null, { schema: CORE_SCHEMA }).filter((d) => d !== null && d !== undefined);
    } catch (err) {
      // the reason and the line, not js-yaml's excerpt of the rendered text (values may be in it)
      const e = err as { reason?: string; mark?: { line: number } };
      throw new TemplateError(`template ${template} rendered invalid YAML: ${e.reason ?? 'unreadable'} (rendered line ${(e.mark?.line ?? -1) + 1})`);
    }
    return docs.map((doc, i) => checkObject(template, doc, i));
  }
}
