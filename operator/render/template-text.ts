// The rules every template renders under, shared by the operator's own templates (rendered in
// place) and users' templates (rendered in a worker thread with hard bounds, template-sandbox.ts):
// an isolated Handlebars instance, strict mode (a missing value is an error, not an empty
// string), no HTML escaping, every value through the `json` helper, and the output read as YAML of
// the core schema with its size bounded after aliases are expanded.
import Handlebars from 'handlebars';
import { CORE_SCHEMA, loadAll } from 'js-yaml';

export class TemplateError extends Error {}

/** What one user's template may produce: its text, and its documents once YAML aliases are expanded. */
export interface OutputBounds {
  /** Characters of rendered text. */
  maxTextChars: number;
  /** Nodes and characters of the documents with every alias expanded (a few anchors can stand for gigabytes). */
  maxExpandedSize: number;
  /** Nesting depth of the documents. */
  maxDepth: number;
}

export const unbounded: OutputBounds = { maxTextChars: Infinity, maxExpandedSize: Infinity, maxDepth: Infinity };

export function createInstance(): typeof Handlebars {
  const hb = Handlebars.create();
  hb.registerHelper(
    'json',
    (value: unknown, options: Handlebars.HelperOptions & { loc?: { start: { line: number; column: number } } }) => {
      // strict mode does not reach helper arguments: a missing value must not render as nothing
      if (value === undefined)
        throw new TemplateError(`a value given to json is missing (line ${options.loc?.start.line ?? '?'})`);
      return JSON.stringify(value);
    },
  );
  return hb;
}

export function compile(hb: typeof Handlebars, source: string): Handlebars.TemplateDelegate {
  return hb.compile(source, { strict: true, noEscape: true });
}

/**
 * The size of `doc` as a reader that follows every alias sees it (each node counts one, each
 * string its length), stopping as soon as it passes `max`; throws past `maxDepth`.
 */
export function expandedSize(doc: unknown, max: number, maxDepth: number, template: string): number {
  let size = 0;
  const stack: { value: unknown; depth: number }[] = [{ value: doc, depth: 0 }];
  while (stack.length > 0) {
    const { value, depth } = stack.pop()!;
    if (depth > maxDepth)
      throw new TemplateError(
        `template ${template} rendered objects nested deeper than ${maxDepth} levels (the bound on a template's output)`,
      );
    size += 1 + (typeof value === 'string' ? value.length : 0);
    if (size > max)
      throw new TemplateError(
        `template ${template} rendered more than ${max} nodes and characters once its YAML aliases are expanded (the bound on a template's output)`,
      );
    if (value !== null && typeof value === 'object') {
      for (const [key, child] of Object.entries(value)) {
        size += key.length;
        stack.push({ value: child, depth: depth + 1 });
      }
    }
  }
  return size;
}

/** Renders `compiled` and reads the text as YAML documents, within `bounds`. */
export function renderDocuments(
  template: string,
  compiled: Handlebars.TemplateDelegate,
  context: object,
  bounds: OutputBounds = unbounded,
): unknown[] {
  let text: string;
  try {
    text = compiled(context);
  } catch (err) {
    throw new TemplateError(`template ${template}: ${(err as Error).message}`);
  }
  if (text.length > bounds.maxTextChars)
    throw new TemplateError(
      `template ${template} rendered ${text.length} characters, more than ${bounds.maxTextChars} (the bound on a template's output)`,
    );
  let docs: unknown[];
  try {
    // the core schema: an unquoted date stays a string, as the apiserver would store it
    docs = loadAll(text, null, { schema: CORE_SCHEMA }).filter((d) => d !== null && d !== undefined);
  } catch (err) {
    // the reason and the line, not js-yaml's excerpt of the rendered text (values may be in it)
    const e = err as { reason?: string; mark?: { line: number } };
    throw new TemplateError(
      `template ${template} rendered invalid YAML: ${e.reason ?? 'unreadable'} (rendered line ${(e.mark?.line ?? -1) + 1})`,
    );
  }
  if (bounds.maxExpandedSize !== Infinity) expandedSize(docs, bounds.maxExpandedSize, bounds.maxDepth, template);
  return docs;
}
