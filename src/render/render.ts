import { createHash } from 'node:crypto';
import { compile } from 'html-to-text';
import type { Design } from './components.ts';
import { type MergeVars, mergeScope, type ParsedTemplate, parseTemplate, renderParsed } from './merge.ts';
import { type BrandRenderContext, designToMjml, type RenderOptions } from './mjml.ts';

export type { BrandRenderContext, MergeVars, RenderOptions };

/**
 * A design compiled once: HTML and text with merge tags still in them, ready to personalise, and the
 * MIME transfer encoding that suits them (decided here once, not by the mailer for every recipient).
 */
export type CompiledEmail = {
  html: string;
  text: string;
  mjml: string;
  encoding: 'quoted-printable' | 'base64';
};

/** The brand columns the renderer reads (a `brands` row satisfies it). */
export type BrandRow = {
  company_name: string | null;
  physical_address: string | null;
  logo: string | null;
  brand_color: string | null;
  bg_color: string | null;
  text_color: string | null;
  font_heading: string | null;
  font_body: string | null;
  default_theme: unknown;
  links: unknown;
};

/** The render context of a brand row. */
export function brandRenderContext(brand: BrandRow): BrandRenderContext {
  const theme = brand.default_theme;
  return {
    company_name: brand.company_name,
    physical_address: brand.physical_address,
    logo: brand.logo,
    brand_color: brand.brand_color,
    bg_color: brand.bg_color,
    text_color: brand.text_color,
    font_heading: brand.font_heading,
    font_body: brand.font_body,
    default_theme:
      theme && typeof theme === 'object' && !Array.isArray(theme) ? (theme as Record<string, unknown>) : {},
    links: Array.isArray(brand.links) ? (brand.links as BrandRenderContext['links']) : [],
  };
}

// In-process compile cache: safe to lose (a miss recompiles), bounded so it cannot grow without end.
const CACHE_LIMIT = 500;
const compileCache = new Map<string, Promise<CompiledEmail>>();
// Parsed merge templates, attached to the compiled object (and by HTML for copies read back from storage).
const parsedByObject = new WeakMap<object, { html: ParsedTemplate; text: ParsedTemplate }>();
const parsedByHtml = new Map<string, { html: ParsedTemplate; text: ParsedTemplate }>();

/** The key of a compile: a hash of everything the output depends on. */
export function compileKey(design: Design, brand: BrandRenderContext, options: RenderOptions): string {
  return createHash('sha256')
    .update(JSON.stringify([design, brand, options]))
    .digest('hex');
}

const toText = compile({
  wordwrap: false,
  baseElements: { selectors: ['body'] },
  selectors: [
    { selector: 'img', format: 'skip' },
    { selector: 'a', options: { hideLinkHrefIfSameAsText: true } },
    // Uppercasing headings would also uppercase the merge tags in them.
    ...['h1', 'h2', 'h3', 'h4', 'h5', 'h6'].map((selector) => ({ selector, options: { uppercase: false } })),
    { selector: 'table', format: 'block' },
    { selector: 'tr', format: 'block' },
    { selector: 'td', format: 'block' },
  ],
});

// MJML's hidden preview text: it must not become the first line of the text part.
const HIDDEN_PREVIEW = /<div style="display:none;[^"]*">[\s\S]*?<\/div>/;

/** Plain text of compiled HTML: headings keep their case, images are dropped, blank lines collapsed. */
export function htmlToText(html: string): string {
  return toText(html.replace(HIDDEN_PREVIEW, ''))
    .replace(/^[ \t\u00a0]+$/gm, '')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/**
 * Quoted-printable for mostly Latin text, base64 otherwise — Nodemailer's rule, which it would
 * otherwise apply by scanning every message's parts (a sixth of its CPU on a 35 KB newsletter).
 */
export function preferredEncoding(content: string): 'quoted-printable' | 'base64' {
  let latin = 0;
  let other = 0;
  for (let i = 0; i < content.length; i++) {
    const code = content.charCodeAt(i);
    if (code <= 0x08 || code === 0x0b || code === 0x0c || (code >= 0x0e && code <= 0x1f) || code >= 0x80)
      other++;
    else if ((code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a)) latin++;
  }
  return other < latin ? 'quoted-printable' : 'base64';
}

/** Compiles MJML without the cache (the benchmark measures this). */
export async function compileUncached(
  design: Design,
  brand: BrandRenderContext,
  options: RenderOptions,
): Promise<CompiledEmail> {
  const mjml = designToMjml(design, brand, options);
  // Loaded on first use: the MJML toolchain is ~100 MB resident, and a worker that sends stored
  // compiles (see `compiledTemplate`) never needs it.
  const { default: mjml2html } = await import('mjml');
  const result = await mjml2html(mjml, {
    validationLevel: 'soft',
    minify: false,
    keepComments: false,
    ignoreIncludes: true,
  });
  const html = result.html;
  const text = htmlToText(html);
  const compiled: CompiledEmail = { html, text, mjml, encoding: preferredEncoding(html + text) };
  prepare(compiled);
  return compiled;
}

/** Where compiles are shared between processes (the templates domain keeps them in the database). */
export type CompileStore = {
  load(key: string): Promise<CompiledEmail | undefined>;
  save(key: string, compiled: CompiledEmail): Promise<void>;
};

/**
 * Design → MJML → HTML (plus the text part), cached in memory by a hash of all inputs. With a
 * `store`, a compile another process made is read instead of compiling, and a fresh one is saved for
 * the others. Async because mjml 5's compiler is. Validate the design first (`validateDesign`).
 */
export function compileDesign(
  design: Design,
  brand: BrandRenderContext,
  options: RenderOptions,
  store?: CompileStore,
): Promise<CompiledEmail> {
  const key = compileKey(design, brand, options);
  const hit = compileCache.get(key);
  if (hit) return hit;
  const pending = store
    ? loadOrCompile(key, store, design, brand, options)
    : compileUncached(design, brand, options);
  pending.catch(() => compileCache.delete(key));
  if (compileCache.size >= CACHE_LIMIT) compileCache.delete(compileCache.keys().next().value!);
  compileCache.set(key, pending);
  return pending;
}

async function loadOrCompile(
  key: string,
  store: CompileStore,
  design: Design,
  brand: BrandRenderContext,
  options: RenderOptions,
): Promise<CompiledEmail> {
  const stored = await store.load(key);
  if (stored) {
    const compiled = { html: stored.html, text: stored.text, mjml: stored.mjml, encoding: stored.encoding };
    prepare(compiled);
    return compiled;
  }
  const compiled = await compileUncached(design, brand, options);
  await store.save(key, compiled);
  return compiled;
}

function prepare(compiled: Pick<CompiledEmail, 'html' | 'text'>): {
  html: ParsedTemplate;
  text: ParsedTemplate;
} {
  const known = parsedByObject.get(compiled) ?? parsedByHtml.get(compiled.html);
  if (known && known.html.source === compiled.html && known.text.source === compiled.text) {
    parsedByObject.set(compiled, known);
    return known;
  }
  const parsed = { html: parseTemplate(compiled.html, true), text: parseTemplate(compiled.text, false) };
  parsedByObject.set(compiled, parsed);
  if (parsedByHtml.size >= CACHE_LIMIT) parsedByHtml.delete(parsedByHtml.keys().next().value!);
  parsedByHtml.set(compiled.html, parsed);
  return parsed;
}

/**
 * One recipient's HTML and text: a render of the templates parsed once at compile time. Values are
 * HTML-escaped in the HTML part; a template that fails is left unrendered rather than throwing.
 */
export function personalize(
  compiled: Pick<CompiledEmail, 'html' | 'text'>,
  vars: MergeVars,
): { html: string; text: string } {
  const parsed = prepare(compiled);
  const scope = mergeScope(vars);
  return { html: renderParsed(parsed.html, scope), text: renderParsed(parsed.text, scope) };
}

const textCache = new Map<string, ParsedTemplate>();

/** Personalises a plain-text template (subject, preheader): values are not HTML-escaped. */
export function renderText(template: string, vars: MergeVars): string {
  let parsed = textCache.get(template);
  if (!parsed) {
    parsed = parseTemplate(template, false);
    if (textCache.size >= CACHE_LIMIT) textCache.delete(textCache.keys().next().value!);
    textCache.set(template, parsed);
  }
  return renderParsed(parsed, mergeScope(vars));
}
