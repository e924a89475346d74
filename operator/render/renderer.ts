// Renders the Handlebars templates in templates/ into Kubernetes objects, safely: an isolated
// Handlebars instance, strict mode (a missing value is an error, not an empty string), no HTML
// escaping, and every value through the `json` helper — JSON is valid YAML, so no value can
// break quoting or indentation (template-text.ts). The output is parsed at once and checked before
// anyone uses it. Users' own templates go through the same rules in a bounded worker thread
// (template-sandbox.ts).
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type Handlebars from 'handlebars';
import { compile, createInstance, renderDocuments, TemplateError } from './template-text.ts';
import { TemplateSandbox, type SandboxLimits } from './template-sandbox.ts';

export { TemplateError } from './template-text.ts';

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

function checkObject(template: string, doc: unknown, index: number): RenderedObject {
  const where = `template ${template}, document ${index + 1}`;
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new TemplateError(`${where}: not an object`);
  const obj = doc as Partial<RenderedObject>;
  if (typeof obj.apiVersion !== 'string' || obj.apiVersion === '')
    throw new TemplateError(`${where}: apiVersion missing`);
  if (typeof obj.kind !== 'string' || obj.kind === '') throw new TemplateError(`${where}: kind missing`);
  if (
    typeof obj.metadata !== 'object' ||
    obj.metadata === null ||
    typeof obj.metadata.name !== 'string' ||
    obj.metadata.name === ''
  ) {
    throw new TemplateError(`${where}: metadata.name missing`);
  }
  // RBAC objects are named by path segments, which may hold colons (system:node-proxier)
  const nameRule = obj.apiVersion.startsWith('rbac.authorization.k8s.io/')
    ? /^[a-z0-9]([-a-z0-9.:]*[a-z0-9])?$/
    : /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
  if (!nameRule.test(obj.metadata.name) || obj.metadata.name.length > 253) {
    throw new TemplateError(`${where}: metadata.name "${obj.metadata.name}" is not a valid object name`);
  }
  return obj as RenderedObject;
}

/** A set of compiled templates, by file name (e.g. "etcd-member.yaml.hbs"). */
export class Renderer {
  readonly #hb = createInstance();
  readonly #templates = new Map<string, Handlebars.TemplateDelegate>();
  /** Users' own templates (add-ons from ConfigMaps): rendered with bounds, off the event loop. */
  readonly #sandbox: TemplateSandbox;

  constructor(dir: string = templatesDir, sandboxLimits: Partial<SandboxLimits> = {}) {
    for (const file of readdirSync(dir)
      .filter((f) => f.endsWith('.yaml.hbs'))
      .sort()) {
      this.#templates.set(file, compile(this.#hb, readFileSync(join(dir, file), 'utf8')));
    }
    this.#sandbox = new TemplateSandbox(sandboxLimits);
  }

  names(): string[] {
    return [...this.#templates.keys()];
  }

  render(template: string, context: object): RenderedObject[] {
    const compiled = this.#templates.get(template);
    if (!compiled) throw new TemplateError(`no template named ${template}`);
    return renderDocuments(template, compiled, context).map((doc, i) => checkObject(template, doc, i));
  }

  /**
   * Renders a template given as text (`template` names it in errors) under the same rules as those
   * in templates/, in a worker thread with bounds on its time, memory and output (a TemplateError
   * names the bound it hit).
   */
  async renderSource(template: string, source: string, context: object): Promise<RenderedObject[]> {
    const docs = await this.#sandbox.render(template, source, context);
    return docs.map((doc, i) => checkObject(template, doc, i));
  }
}
