import { Liquid, type Template } from 'liquidjs';

/**
 * Merge tags: a Liquid engine configured for templates written by people we do not trust with the
 * server. No file system, no partials, own properties only, escaped output, and limits on parse
 * size, render time and memory so a hostile template fails fast instead of hanging a worker.
 */

/** Values a template is personalised with. */
export type MergeVars = {
  contact?: Record<string, unknown> | null;
  brand?: Record<string, unknown> | null;
  event?: Record<string, unknown> | null;
  data?: Record<string, unknown> | null;
  unsubscribe_url?: string | null;
};

export const MERGE_LIMITS = {
  /** Characters of template source (a compiled newsletter is ~60 KB). */
  parse: 1_000_000,
  /** Milliseconds of render time per template. */
  render: 100,
  /** Roughly: characters/array items allocated by one render. */
  memory: 10_000_000,
} as const;

// A file system that refuses everything: no tag that could reach it is registered, this is the backstop.
const refusingFs = {
  exists: async () => false,
  existsSync: () => false,
  readFile: async () => {
    throw new Error('templates cannot read files');
  },
  readFileSync: () => {
    throw new Error('templates cannot read files');
  },
  resolve: (_dir: string, file: string) => file,
  contains: async () => false,
  dirname: () => '',
  sep: '/',
};

function createEngine(escapeOutput: boolean): Liquid {
  const engine = new Liquid({
    fs: refusingFs,
    relativeReference: false,
    dynamicPartials: false,
    ownPropertyOnly: true,
    outputEscape: escapeOutput ? 'escape' : undefined,
    strictFilters: false,
    strictVariables: false,
    parseLimit: MERGE_LIMITS.parse,
    renderLimit: MERGE_LIMITS.render,
    memoryLimit: MERGE_LIMITS.memory,
    cache: false,
  });
  // Tags that read other templates, or print unescaped, are parse errors.
  for (const name of ['include', 'render', 'layout', 'block', 'raw']) {
    engine.registerTag(name, {
      parse() {
        throw new Error(`the "${name}" tag is not allowed`);
      },
      render() {
        return '';
      },
    });
  }
  // `| raw` would switch output escaping off; a plain identity filter of that name does not.
  engine.registerFilter('raw', (v: unknown) => v);
  return engine;
}

/** Escapes values: for HTML. */
const htmlEngine = createEngine(true);
/** Leaves values as they are: for the plain-text part, subject and preheader. */
const textEngine = createEngine(false);

/** The reason a text's merge tags do not parse, or null when they do. */
export function mergeTagError(text: string): string | null {
  if (!text.includes('{')) return null;
  try {
    htmlEngine.parse(text);
    return null;
  } catch (error) {
    return error instanceof Error ? (error.message.split('\n')[0] ?? 'invalid syntax') : 'invalid syntax';
  }
}

type NativeFilter = { name: string; arg: string | number | undefined };

/**
 * One `{{ … }}` of a template: a variable path with common filters (evaluated natively: this is
 * the per-recipient hot path) or, for anything else, a parsed Liquid output.
 */
type Output = { source: string; path: string[] | null; filters: NativeFilter[]; liquid: Template[] | null };

/** Filters evaluated without Liquid; each matches the Liquid filter of the same name. */
const NATIVE_FILTERS: Record<string, (v: unknown, arg: string | number | undefined) => unknown> = {
  default: (v, arg) =>
    v === undefined || v === null || v === false || v === '' || (Array.isArray(v) && v.length === 0)
      ? arg
      : v,
  upcase: (v) => toText(v).toUpperCase(),
  downcase: (v) => toText(v).toLowerCase(),
  strip: (v) => toText(v).trim(),
  append: (v, arg) => toText(v) + toText(arg),
  prepend: (v, arg) => toText(arg) + toText(v),
};

/** A template parsed once, rendered per recipient with `renderParsed`. */
export type ParsedTemplate = {
  source: string;
  /**
   * Fast path, when the template has outputs (`{{ … }}`) but no tags (`{% … %}`): the literal text
   * around them. Outputs are then independent, so only they are evaluated per recipient.
   */
  pieces: string[] | null;
  outputs: Output[] | null;
  /** General path: the whole Liquid template, when it has tags. */
  liquid: Template[] | null;
  escape: boolean;
  /** The source failed to parse: it is left unrendered. */
  broken: boolean;
};

const OUTPUT = /\{\{[\s\S]*?\}\}/g;
const LITERAL_ARG = `(?:"[^"]*"|'[^']*'|-?\\d+(?:\\.\\d+)?)`;
const FILTER = `\\|\\s*([a-z_]+)(?:\\s*:\\s*(${LITERAL_ARG}))?\\s*`;
const SIMPLE_OUTPUT = new RegExp(
  `^\\{\\{\\s*([A-Za-z_]\\w*(?:-\\w+)*(?:\\.[A-Za-z_]\\w*(?:-\\w+)*)*)\\s*((?:${FILTER})*)\\}\\}$`,
);
const FILTER_G = new RegExp(FILTER, 'g');

/** The native form of a simple output (`{{ a.b | default: "x" | upcase }}`), or null. */
function nativeOutput(text: string): { path: string[]; filters: NativeFilter[] } | null {
  const m = SIMPLE_OUTPUT.exec(text);
  if (!m) return null;
  const path = m[1]!.split('.');
  if (LITERALS.has(path[0]!)) return null;
  const filters: NativeFilter[] = [];
  for (const f of (m[2] ?? '').matchAll(FILTER_G)) {
    if (!(f[1]! in NATIVE_FILTERS)) return null;
    const raw = f[2];
    const arg = raw === undefined ? undefined : /^["']/.test(raw) ? raw.slice(1, -1) : Number(raw);
    filters.push({ name: f[1]!, arg });
  }
  return { path, filters };
}
const LITERALS = new Set(['true', 'false', 'nil', 'null', 'empty', 'blank']);

function splitOutputs(source: string, engine: Liquid): { pieces: string[]; outputs: Output[] } | null {
  // Tags span outputs and whitespace control trims the text around them: those need the whole template.
  if (source.includes('{%') || /\{\{-|-\}\}/.test(source)) return null;
  const pieces: string[] = [];
  const outputs: Output[] = [];
  let last = 0;
  for (const m of source.matchAll(OUTPUT)) {
    const text = m[0];
    // A quote inside may hide a `}}` that the simple split would cut at.
    if (/["']/.test(text) && !/^\{\{[^}]*\}\}$/.test(text)) return null;
    const native = nativeOutput(text);
    let liquid: Template[] | null = null;
    if (!native) {
      try {
        liquid = engine.parse(text);
      } catch {
        return null;
      }
    }
    pieces.push(source.slice(last, m.index));
    outputs.push({ source: text, path: native?.path ?? null, filters: native?.filters ?? [], liquid });
    last = m.index + text.length;
  }
  pieces.push(source.slice(last));
  if (pieces.some((p) => p.includes('{{'))) return null;
  return { pieces, outputs };
}

/** Parses once (splitting out the outputs when it can); render with `renderParsed` per recipient. */
export function parseTemplate(source: string, escapeOutput: boolean): ParsedTemplate {
  const engine = escapeOutput ? htmlEngine : textEngine;
  const parsed: ParsedTemplate = {
    source,
    pieces: null,
    outputs: null,
    liquid: null,
    escape: escapeOutput,
    broken: false,
  };
  const split = splitOutputs(source, engine);
  if (split) {
    parsed.pieces = split.pieces;
    parsed.outputs = split.outputs;
    return parsed;
  }
  try {
    parsed.liquid = engine.parse(source);
  } catch {
    parsed.broken = true;
  }
  return parsed;
}

/** The Liquid scope: namespaces plus the short forms (`first_name`, every contact data key, …). */
export function mergeScope(vars: MergeVars): Record<string, unknown> {
  const contact = (vars.contact ?? {}) as Record<string, unknown>;
  const data = contact['data'];
  const scope: Record<string, unknown> =
    data && typeof data === 'object' && !Array.isArray(data) ? { ...(data as Record<string, unknown>) } : {};
  scope['first_name'] = contact['first_name'];
  scope['last_name'] = contact['last_name'];
  scope['email'] = contact['email'];
  scope['phone'] = contact['phone'];
  scope['contact'] = contact;
  scope['brand'] = vars.brand ?? {};
  scope['event'] = vars.event ?? {};
  scope['data'] = vars.data ?? {};
  scope['unsubscribe_url'] = vars.unsubscribe_url ?? '';
  return scope;
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&#34;',
  "'": '&#39;',
};

/** HTML-escapes like Liquid's `escape` filter. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

const hasOwn = Object.prototype.hasOwnProperty;

function lookup(scope: Record<string, unknown>, path: string[]): unknown {
  let value: unknown = scope;
  for (const key of path) {
    // Own properties only, as the Liquid engine: `contact.constructor` is empty.
    if (value === null || typeof value !== 'object' || !hasOwn.call(value, key)) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

/** A value as Liquid prints it. */
function toText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (Array.isArray(value)) return value.map(toText).join('');
  return String(value);
}

/** Renders a parsed template for one recipient; never throws (a failing template is left unrendered). */
export function renderParsed(parsed: ParsedTemplate, scope: Record<string, unknown>): string {
  const engine = parsed.escape ? htmlEngine : textEngine;
  if (parsed.pieces && parsed.outputs) {
    const { pieces, outputs } = parsed;
    let out = pieces[0]!;
    for (let i = 0; i < outputs.length; i++) {
      const output = outputs[i]!;
      let value: string;
      if (output.path) {
        let raw = lookup(scope, output.path);
        for (const f of output.filters) raw = NATIVE_FILTERS[f.name]!(raw, f.arg);
        value = parsed.escape ? escapeHtml(toText(raw)) : toText(raw);
      } else {
        try {
          value = engine.renderSync(output.liquid!, scope) as string;
        } catch {
          value = output.source;
        }
      }
      out += value + pieces[i + 1]!;
    }
    return out;
  }
  if (parsed.broken || !parsed.liquid) return parsed.source;
  try {
    return engine.renderSync(parsed.liquid, scope) as string;
  } catch {
    return parsed.source;
  }
}
