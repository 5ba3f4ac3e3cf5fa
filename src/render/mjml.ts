import * as cheerio from 'cheerio';
import {
  COMPONENTS,
  type Design,
  isColor,
  isLength,
  isSafeUrl,
  type Section,
  type Theme,
} from './components.ts';
import { mergeTagError } from './merge.ts';

/**
 * Design → MJML. Every value is resolved in one order — section props → section styles → design
 * theme → brand default_theme → brand colours/fonts/logo → built-in defaults — and every text is
 * escaped, except the `text` section's HTML, which goes through an allow-list sanitizer.
 */

/** What the renderer needs from a brand (see `brandRenderContext` in render.ts). */
export type BrandRenderContext = {
  company_name: string | null;
  physical_address: string | null;
  logo: string | null;
  brand_color: string | null;
  bg_color: string | null;
  text_color: string | null;
  font_heading: string | null;
  font_body: string | null;
  default_theme: Record<string, unknown>;
  links: { url: string; icon?: string | null; title?: string | null }[];
  /** What the unsubscribe link points at; the merge tag `{{ unsubscribe_url }}` by default. */
  unsubscribe_url_placeholder?: string;
};

export type RenderOptions = {
  /** Marketing email: always ends with a footer carrying the company, address and unsubscribe link. */
  marketing: boolean;
  /** Hidden preview text shown by inboxes next to the subject. */
  preheader?: string | null;
  /** The document title (the subject). */
  subject?: string | null;
};

export const BUILT_IN_THEME = {
  brand_color: '#2563eb',
  bg_color: '#ffffff',
  text_color: '#1f2937',
  font_body: 'Helvetica, Arial, sans-serif',
  font_heading: 'Helvetica, Arial, sans-serif',
  logo_url: '',
} as const;

const MUTED = '#6b7280';

/** Google Fonts we load as web fonts when a theme names one (clients without web fonts fall back). */
const GOOGLE_FONTS = new Set([
  'Roboto',
  'Open Sans',
  'Lato',
  'Montserrat',
  'Poppins',
  'Inter',
  'Source Sans Pro',
  'Source Sans 3',
  'Raleway',
  'Merriweather',
  'Playfair Display',
  'Nunito',
  'Nunito Sans',
  'Oswald',
  'Work Sans',
  'DM Sans',
  'Noto Sans',
  'PT Sans',
  'Rubik',
  'Karla',
  'Lora',
  'Fira Sans',
  'Manrope',
  'Mulish',
  'Outfit',
  'Plus Jakarta Sans',
  'Libre Baskerville',
  'Barlow',
  'Quicksand',
  'IBM Plex Sans',
  'Space Grotesk',
]);

// ---------------------------------------------------------------------------------------------
// Escaping. Merge tags stay intact (they are personalised later and escape their own output);
// text that does not parse as Liquid has its braces broken with a zero-width space so it prints.

const MERGE_TAG = /(\{\{[\s\S]*?\}\}|\{%[\s\S]*?%\})/;
const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' };

function escapeLiteral(s: string): string {
  return s.replace(/[&<>"]/g, (c) => HTML_ESCAPES[c]!);
}

/** Breaks `{{`/`{%` so Liquid leaves the text alone (for brand values and unparseable text). */
export function neutralizeTags(s: string): string {
  return s.replace(/\{(?=[{%])/g, '{&#8203;');
}

/** Escapes text for HTML/MJML content, keeping valid merge tags. */
export function escapeText(text: string): string {
  if (mergeTagError(text)) return neutralizeTags(escapeLiteral(text));
  return text
    .split(MERGE_TAG)
    .map((part, i) => (i % 2 === 1 ? part : escapeLiteral(part)))
    .join('');
}

/** Escapes a value for a double-quoted attribute, keeping valid merge tags (their quotes made single). */
export function escapeAttr(text: string): string {
  if (mergeTagError(text)) return neutralizeTags(escapeLiteral(text));
  return text
    .split(MERGE_TAG)
    .map((part, i) => (i % 2 === 1 ? part.replaceAll('"', "'") : escapeLiteral(part)))
    .join('');
}

/** Escapes a value that must never be a merge tag (brand data). */
function escapePlain(text: string): string {
  return neutralizeTags(escapeLiteral(text));
}

// ---------------------------------------------------------------------------------------------
// Sanitizer for the `text` section: an allow-list of tags and attributes.

const DROP_WITH_CONTENT = new Set([
  'script',
  'style',
  'iframe',
  'frame',
  'frameset',
  'object',
  'embed',
  'applet',
  'noscript',
  'template',
  'svg',
  'math',
  'form',
  'input',
  'button',
  'select',
  'textarea',
  'link',
  'meta',
  'base',
  'title',
  'head',
]);
const ALLOWED_TAGS = new Set([
  'p',
  'br',
  'strong',
  'b',
  'em',
  'i',
  'u',
  's',
  'strike',
  'del',
  'a',
  'ul',
  'ol',
  'li',
  'h1',
  'h2',
  'h3',
  'h4',
  'h5',
  'h6',
  'blockquote',
  'span',
  'div',
  'sup',
  'sub',
  'small',
  'hr',
  'code',
  'pre',
  'img',
  'table',
  'thead',
  'tbody',
  'tr',
  'td',
  'th',
]);
const GLOBAL_ATTRS = new Set(['style', 'align', 'dir', 'title']);
const TAG_ATTRS: Record<string, Set<string>> = {
  a: new Set(['href', 'target', 'rel']),
  img: new Set(['src', 'alt', 'width', 'height']),
  td: new Set(['colspan', 'rowspan', 'width']),
  th: new Set(['colspan', 'rowspan', 'width']),
  table: new Set(['width', 'cellpadding', 'cellspacing', 'border']),
  ol: new Set(['start']),
};
const BAD_CSS = /expression\s*\(|url\s*\(|javascript:|vbscript:|behavior\s*:|-moz-binding|@import|\\/i;

/** Keeps a safe subset of HTML: no scripts, styles, frames, event handlers or javascript: URLs. */
export function sanitizeHtml(html: string, linkColor?: string): string {
  const $ = cheerio.load(html, null, false);
  // Comments can hide conditional markup for Outlook; drop them all.
  $('*')
    .contents()
    .filter((_, node) => node.type === 'comment')
    .remove();
  $.root()
    .contents()
    .filter((_, node) => node.type === 'comment')
    .remove();
  const elements = $('*').toArray().reverse(); // children first, so unwrapping keeps order simple
  for (const node of elements) {
    const el = node as unknown as { tagName: string; attribs: Record<string, string> };
    const tag = el.tagName.toLowerCase();
    const $el = $(node);
    if (DROP_WITH_CONTENT.has(tag)) {
      $el.remove();
      continue;
    }
    if (!ALLOWED_TAGS.has(tag)) {
      $el.replaceWith($el.contents());
      continue;
    }
    for (const [name, value] of Object.entries(el.attribs)) {
      const allowed = GLOBAL_ATTRS.has(name) || TAG_ATTRS[tag]?.has(name);
      let ok = Boolean(allowed);
      if (ok && (name === 'href' || name === 'src')) {
        // Control characters inside a scheme (`jav\tascript:`) are a classic filter bypass.
        // biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point
        const clean = value.replace(/[\u0000-\u001f\u007f-\u009f]/g, '').trim();
        ok = isSafeUrl(clean) && (name === 'href' || !/^(mailto|tel):/i.test(clean));
        if (ok)
          $el.attr(
            name,
            clean.replace(/\{\{[\s\S]*?\}\}/g, (t) => t.replaceAll('"', "'")),
          );
      }
      if (ok && name === 'style') ok = !BAD_CSS.test(value);
      if (ok && name === 'target') ok = value === '_blank';
      if (!ok) $el.removeAttr(name);
    }
    if (tag === 'a' && linkColor && !$el.attr('style')) $el.attr('style', `color:${linkColor};`);
  }
  const out = $.html();
  return mergeTagError(out) ? neutralizeTags(out) : out;
}

// ---------------------------------------------------------------------------------------------
// Resolution

type Resolved = { [K in keyof typeof BUILT_IN_THEME]: string };

function firstString(...values: unknown[]): string | undefined {
  for (const v of values) if (typeof v === 'string' && v.trim() !== '') return v.trim();
  return undefined;
}

/** The effective theme: design theme → brand default_theme → brand columns → built-in. */
export function resolveTheme(theme: Theme, brand: BrandRenderContext): Resolved {
  const dt = brand.default_theme ?? {};
  // Brand values come from settings or a website scrape: only well-formed ones are used.
  const color = (...v: unknown[]) =>
    v.find((x) => typeof x === 'string' && isColor(x.trim())) as string | undefined;
  const url = (...v: unknown[]) => v.find((x) => typeof x === 'string' && isSafeUrl(x)) as string | undefined;
  return {
    brand_color: color(theme.brand_color, dt['brand_color'], brand.brand_color) ?? BUILT_IN_THEME.brand_color,
    bg_color: color(theme.bg_color, dt['bg_color'], brand.bg_color) ?? BUILT_IN_THEME.bg_color,
    text_color: color(theme.text_color, dt['text_color'], brand.text_color) ?? BUILT_IN_THEME.text_color,
    font_body: firstString(theme.font_body, dt['font_body'], brand.font_body) ?? BUILT_IN_THEME.font_body,
    font_heading:
      firstString(theme.font_heading, dt['font_heading'], brand.font_heading) ??
      firstString(theme.font_body, dt['font_body'], brand.font_body) ??
      BUILT_IN_THEME.font_heading,
    logo_url: url(theme.logo_url, dt['logo_url'], brand.logo) ?? '',
  };
}

function fontName(font: string): string {
  return (font.split(',')[0] ?? '').trim().replace(/^['"]|['"]$/g, '');
}

/** A CSS font stack for a font name or stack (only harmless characters survive). */
export function fontStack(font: string): string {
  const safe = font.replace(/[^\w\s,'-]/g, '').trim();
  if (safe === '') return BUILT_IN_THEME.font_body;
  if (safe.includes(',')) return safe.replaceAll("'", '');
  return `${safe}, Helvetica, Arial, sans-serif`;
}

type Ctx = {
  theme: Resolved;
  brand: BrandRenderContext;
  options: RenderOptions;
  bodyFont: string;
  headingFont: string;
};

type Attrs = Record<string, string | undefined>;

function attrs(a: Attrs): string {
  let out = '';
  for (const [k, v] of Object.entries(a)) if (v !== undefined && v !== '') out += ` ${k}="${escapeAttr(v)}"`;
  return out;
}

function p(section: Section, name: string): string | undefined {
  const v = section.props[name];
  if (typeof v === 'number') return String(v);
  return typeof v === 'string' && v.trim() !== '' ? v : undefined;
}

function propDefault(section: Section, name: string): string | undefined {
  const def = (COMPONENTS[section.type].props as Record<string, { default?: unknown }>)[name];
  return p(section, name) ?? (typeof def?.default === 'string' ? def.default : undefined);
}

function textColor(section: Section, ctx: Ctx): string {
  return section.styles.text_color ?? ctx.theme.text_color;
}

function align(section: Section, fallback: string): string {
  return p(section, 'align') ?? section.styles.align ?? fallback;
}

const LEN = (v: string | undefined) => (v && isLength(v) ? v : undefined);

// ---------------------------------------------------------------------------------------------
// Sections: each returns the elements inside an mj-column.

function renderHeader(s: Section, ctx: Ctx): string {
  const variant = propDefault(s, 'variant') ?? 'logo';
  const logo = p(s, 'logo_url') ?? ctx.theme.logo_url;
  const company = ctx.brand.company_name ?? '';
  const wordmark = p(s, 'wordmark_text');
  const pos = align(s, 'center');
  let out = '';
  if (variant !== 'wordmark' && logo) {
    const alt = p(s, 'logo_alt') ?? wordmark ?? company;
    out += `<mj-image${attrs({ src: logo, alt, width: propDefault(s, 'logo_width'), align: pos, padding: '8px 24px' })} />`;
  }
  if (variant === 'wordmark' || variant === 'logo_and_wordmark' || !logo) {
    const text = wordmark !== undefined ? escapeText(wordmark) : escapePlain(company);
    if (text)
      out += `<mj-text${attrs({
        align: pos,
        'font-family': ctx.headingFont,
        'font-size': s.styles.font_size ?? '24px',
        'font-weight': '700',
        color: textColor(s, ctx),
      })}>${text}</mj-text>`;
  }
  return out;
}

function renderHero(s: Section, ctx: Ctx): string {
  const pos = align(s, 'center');
  let out = '';
  const image = p(s, 'image_url');
  if (image)
    out += `<mj-image${attrs({ src: image, alt: p(s, 'title') ?? '', padding: '0 0 16px 0', 'border-radius': s.styles.border_radius })} />`;
  out += `<mj-text${attrs({
    align: pos,
    'font-family': ctx.headingFont,
    'font-size': '32px',
    'line-height': '1.25',
    'font-weight': '700',
    color: textColor(s, ctx),
  })}><h1 style="margin:0;font-size:inherit;font-weight:inherit;">${escapeText(p(s, 'title') ?? '')}</h1></mj-text>`;
  const subtitle = p(s, 'subtitle');
  if (subtitle)
    out += `<mj-text${attrs({ align: pos, 'font-size': s.styles.font_size ?? '18px', color: textColor(s, ctx) })}>${escapeText(subtitle)}</mj-text>`;
  const ctaText = p(s, 'cta_text');
  const ctaUrl = p(s, 'cta_url');
  if (ctaText && ctaUrl)
    out += `<mj-button${attrs({
      href: ctaUrl,
      align: pos,
      'background-color': ctx.theme.brand_color,
      color: '#ffffff',
      'font-weight': '700',
      'font-size': '16px',
      'border-radius': s.styles.border_radius ?? '6px',
      'inner-padding': '14px 28px',
    })}>${escapeText(ctaText)}</mj-button>`;
  return out;
}

function renderText(s: Section, ctx: Ctx): string {
  const content = sanitizeHtml(p(s, 'content') ?? '', ctx.theme.brand_color);
  return `<mj-text${attrs({
    align: s.styles.align,
    color: textColor(s, ctx),
    'font-size': s.styles.font_size,
  })}>${content}</mj-text>`;
}

function renderImage(s: Section, _ctx: Ctx): string {
  return `<mj-image${attrs({
    src: p(s, 'src'),
    alt: propDefault(s, 'alt') ?? '',
    href: p(s, 'href'),
    width: LEN(p(s, 'width')),
    align: s.styles.align ?? 'center',
    'border-radius': s.styles.border_radius,
  })} />`;
}

function renderButton(s: Section, ctx: Ctx): string {
  return `<mj-button${attrs({
    href: p(s, 'href'),
    align: align(s, 'center'),
    'background-color': p(s, 'background_color') ?? ctx.theme.brand_color,
    color: p(s, 'text_color') ?? s.styles.text_color ?? '#ffffff',
    'border-radius': p(s, 'border_radius') ?? s.styles.border_radius ?? '6px',
    'inner-padding': propDefault(s, 'inner_padding'),
    'font-weight': propDefault(s, 'font_weight'),
    'font-family': p(s, 'font_family') ? fontStack(p(s, 'font_family')!) : undefined,
    'text-transform': propDefault(s, 'text_transform'),
    'font-size': s.styles.font_size ?? '16px',
  })}>${escapeText(p(s, 'text') ?? '')}</mj-button>`;
}

function renderProduct(s: Section, ctx: Ctx): string {
  const href = p(s, 'href');
  const pos = s.styles.align ?? 'center';
  let out = '';
  const image = p(s, 'image_url');
  if (image)
    out += `<mj-image${attrs({ src: image, alt: p(s, 'name') ?? '', href, 'border-radius': s.styles.border_radius })} />`;
  out += `<mj-text${attrs({
    align: pos,
    'font-family': ctx.headingFont,
    'font-size': '18px',
    'font-weight': '700',
    color: textColor(s, ctx),
    'padding-bottom': '4px',
  })}>${escapeText(p(s, 'name') ?? '')}</mj-text>`;
  const price = p(s, 'price');
  if (price)
    out += `<mj-text${attrs({ align: pos, 'font-size': '16px', 'font-weight': '700', color: ctx.theme.brand_color, 'padding-top': '0' })}>${escapeText(price)}</mj-text>`;
  const description = p(s, 'description');
  if (description)
    out += `<mj-text${attrs({ align: pos, color: textColor(s, ctx), 'font-size': s.styles.font_size ?? '14px' })}>${escapeText(description)}</mj-text>`;
  if (href)
    out += `<mj-button${attrs({
      href,
      align: pos,
      'background-color': ctx.theme.brand_color,
      color: '#ffffff',
      'border-radius': s.styles.border_radius ?? '6px',
      'font-weight': '700',
    })}>${escapeText(propDefault(s, 'cta_text') ?? 'Shop now')}</mj-button>`;
  return out;
}

const SHARE_PLATFORMS = new Set(['facebook', 'twitter', 'x', 'linkedin', 'pinterest', 'tumblr']);
const PLATFORM_HOSTS: [RegExp, string][] = [
  [/(^|\.)facebook\.com$/, 'facebook'],
  [/(^|\.)instagram\.com$/, 'instagram'],
  [/(^|\.)(x|twitter)\.com$/, 'x'],
  [/(^|\.)linkedin\.com$/, 'linkedin'],
  [/(^|\.)(youtube\.com|youtu\.be)$/, 'youtube'],
  [/(^|\.)tiktok\.com$/, 'tiktok'],
  [/(^|\.)pinterest\.[a-z.]+$/, 'pinterest'],
  [/(^|\.)github\.com$/, 'github'],
];

/** The brand's links that are social profiles, as social section links. */
export function brandSocialLinks(brand: BrandRenderContext): { platform: string; url: string }[] {
  const out: { platform: string; url: string }[] = [];
  for (const link of brand.links ?? []) {
    if (typeof link?.url !== 'string' || !isSafeUrl(link.url)) continue;
    let host = '';
    try {
      host = new URL(link.url).hostname.toLowerCase();
    } catch {
      continue;
    }
    const match = PLATFORM_HOSTS.find(([re]) => re.test(host));
    if (match) out.push({ platform: match[1], url: link.url });
  }
  return out;
}

function renderSocial(s: Section, ctx: Ctx): string {
  const given = s.props['links'] as { platform: string; url: string }[] | undefined;
  const links = given && given.length > 0 ? given : brandSocialLinks(ctx.brand);
  if (links.length === 0) return '';
  const items = links
    .map((l) => {
      const platform = l.platform === 'tiktok' ? 'web' : l.platform;
      const name = SHARE_PLATFORMS.has(platform) ? `${platform}-noshare` : platform;
      return `<mj-social-element${attrs({ name, href: l.url, alt: l.platform })}></mj-social-element>`;
    })
    .join('');
  return `<mj-social${attrs({ align: align(s, 'center'), mode: 'horizontal', 'icon-size': '24px', padding: '8px 24px' })}>${items}</mj-social>`;
}

function renderDivider(s: Section, _ctx: Ctx): string {
  return `<mj-divider${attrs({
    'border-color': propDefault(s, 'color'),
    'border-width': propDefault(s, 'width'),
    padding: propDefault(s, 'padding'),
  })} />`;
}

function renderSpacer(s: Section, _ctx: Ctx): string {
  return `<mj-spacer${attrs({ height: propDefault(s, 'height') })} />`;
}

function renderFooter(s: Section, ctx: Ctx): string {
  const company = firstString(ctx.brand.company_name, p(s, 'company_name'));
  const address = firstString(ctx.brand.physical_address, p(s, 'address'));
  const color = s.styles.text_color ?? MUTED;
  const lines: string[] = [];
  if (company) lines.push(`<strong>${escapePlain(company)}</strong>`);
  if (address) lines.push(escapePlain(address).replace(/\r?\n/g, '<br />'));
  if (ctx.options.marketing) {
    const url = ctx.brand.unsubscribe_url_placeholder ?? '{{ unsubscribe_url }}';
    const label = escapeText(propDefault(s, 'unsubscribe_text') ?? 'Unsubscribe');
    lines.push(`<a href="${escapeAttr(url)}" style="color:${color};text-decoration:underline;">${label}</a>`);
  }
  if (lines.length === 0) return '';
  return `<mj-text${attrs({
    align: s.styles.align ?? 'center',
    color,
    'font-size': s.styles.font_size ?? '12px',
    'line-height': '1.6',
  })}>${lines.join('<br />')}</mj-text>`;
}

const RENDERERS: Record<string, (s: Section, ctx: Ctx) => string> = {
  header: renderHeader,
  hero: renderHero,
  text: renderText,
  image: renderImage,
  button: renderButton,
  product: renderProduct,
  social: renderSocial,
  divider: renderDivider,
  spacer: renderSpacer,
  footer: renderFooter,
};

/** Band colour: the section's own prop (button: section_background_color) → styles → theme background. */
function bandColor(s: Section, ctx: Ctx): string {
  const own = s.type === 'button' ? p(s, 'section_background_color') : p(s, 'background_color');
  return own ?? s.styles.background_color ?? ctx.theme.bg_color;
}

function renderSection(s: Section, ctx: Ctx): string {
  const band = { 'background-color': bandColor(s, ctx), padding: s.styles.padding ?? '8px 0' };
  if (s.type === 'columns') {
    const columns = (s.props['columns'] as { width?: string; sections?: Section[] }[] | undefined) ?? [];
    const inner = columns
      .map((c) => {
        const content = (c.sections ?? []).map((n) => RENDERERS[n.type]?.(n, ctx) ?? '').join('');
        return `<mj-column${attrs({ width: LEN(c.width) })}>${content}</mj-column>`;
      })
      .join('');
    return `<mj-section${attrs(band)}>${inner}</mj-section>`;
  }
  const content = RENDERERS[s.type]?.(s, ctx) ?? '';
  if (content === '') return '';
  return `<mj-section${attrs(band)}><mj-column>${content}</mj-column></mj-section>`;
}

function hasFooter(sections: Section[]): boolean {
  return sections.some(
    (s) =>
      s.type === 'footer' ||
      (s.type === 'columns' &&
        ((s.props['columns'] as { sections?: Section[] }[] | undefined) ?? []).some((c) =>
          (c.sections ?? []).some((n) => n.type === 'footer'),
        )),
  );
}

/** The MJML document for a validated design. */
export function designToMjml(design: Design, brand: BrandRenderContext, options: RenderOptions): string {
  const theme = resolveTheme(design.theme ?? {}, brand);
  const ctx: Ctx = {
    theme,
    brand,
    options,
    bodyFont: fontStack(theme.font_body),
    headingFont: fontStack(theme.font_heading),
  };
  const sections = [...design.sections];
  // Marketing email must carry the legal footer even when the design forgot it.
  if (options.marketing && !hasFooter(sections)) sections.push({ type: 'footer', props: {}, styles: {} });

  const fonts = [...new Set([fontName(theme.font_body), fontName(theme.font_heading)])]
    .filter((f) => GOOGLE_FONTS.has(f))
    .map(
      (f) =>
        `<mj-font name="${f}" href="https://fonts.googleapis.com/css2?family=${encodeURIComponent(f).replaceAll('%20', '+')}:wght@400;700&amp;display=swap" />`,
    )
    .join('');
  const head = [
    options.subject ? `<mj-title>${escapeText(options.subject)}</mj-title>` : '',
    options.preheader ? `<mj-preview>${escapeText(options.preheader)}</mj-preview>` : '',
    fonts,
    '<mj-attributes>',
    `<mj-all${attrs({ 'font-family': ctx.bodyFont })} />`,
    `<mj-text${attrs({ color: theme.text_color, 'font-size': '16px', 'line-height': '1.6', padding: '8px 24px' })} />`,
    `<mj-image${attrs({ padding: '8px 24px' })} />`,
    `<mj-button${attrs({ padding: '12px 24px' })} />`,
    '</mj-attributes>',
    // Headings written inside text sections use the heading font, like hero and product titles.
    `<mj-style>h1,h2,h3,h4,h5,h6{font-family:${ctx.headingFont}}</mj-style>`,
  ].join('');
  const body = sections.map((s) => renderSection(s, ctx)).join('\n');
  return `<mjml lang="en"><mj-head>${head}</mj-head><mj-body${attrs({ 'background-color': theme.bg_color, width: '600px' })}>\n${body}\n</mj-body></mjml>`;
}
