import { type CheerioAPI, load } from 'cheerio';
import { invalid } from '../../lib/errors.ts';
import {
  assertHostAllowed,
  BlockedAddressError,
  guardedRequest,
  hostOf,
  OutboundError,
} from '../../lib/ssrf.ts';
import {
  claimDueBrandScrapes,
  failBrandScrape,
  finishBrandScrape,
  insertBrandScrape,
  lockScrapedBrand,
  retryBrandScrape,
  supersedePendingScrapes,
} from '../../store/brand-scrapes.ts';
import { updateBrand } from '../../store/brands.ts';
import { json } from '../../store/db.ts';
import type { Brand, BrandLink, BrandScrape, BrandUpdate } from '../../store/schema.ts';
import type { Deps } from '../deps.ts';
import type { createBrandService } from './brands.ts';

/** How a scrape fetches: bounded in time, size and redirects, and identifiable to site owners. */
export const SCRAPE_FETCH = {
  timeoutMs: 10_000,
  maxBytes: 2 * 1024 * 1024,
  maxRedirects: 3,
  userAgent: 'MailwrightBot/1.0',
} as const;

/** Attempts before a transiently failing scrape is given up. */
export const SCRAPE_MAX_ATTEMPTS = 3;
/** Wait before the 2nd and 3rd attempts. */
export const SCRAPE_BACKOFF_MS = [30_000, 120_000] as const;
/** How long a claim lasts; a worker that dies mid-scrape loses the job to another after this. */
export const SCRAPE_LEASE_MS = 60_000;

const MAX_URL_LENGTH = 2048;

/** What a web page tells about its brand; every field may be unknown. */
export type BrandKit = {
  brand_color: string | null;
  bg_color: string | null;
  text_color: string | null;
  font_heading: string | null;
  font_body: string | null;
  logo: string | null;
  company_name: string | null;
  company_description: string | null;
  links: BrandLink[];
};

/** Parses a user's scrape URL: an absolute http(s) URL with a host; 422 on `url` otherwise. */
export function parseScrapeUrl(raw: string): URL {
  const text = raw.trim();
  const fail = (message: string) => invalid({ url: [message] });
  if (text === '') throw fail("can't be blank");
  if (text.length > MAX_URL_LENGTH) throw fail(`is too long (at most ${MAX_URL_LENGTH} characters)`);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw fail('is not a valid URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw fail('must be an http or https URL');
  if (hostOf(url) === '') throw fail('must include a host');
  return url;
}

/** Brand scrape requests of one account. */
export function createScrapeService(deps: Deps, brands: ReturnType<typeof createBrandService>) {
  const { db, clock, config } = deps;
  return {
    /**
     * Queues a scrape of `rawUrl` for a brand after checking the URL and where its host points.
     * A host whose lookup fails for a reason other than "does not exist" is accepted: the job
     * checks again and retries.
     */
    async enqueue(accountId: number, sidOrId: string, rawUrl: string) {
      const brand = await brands.load(accountId, sidOrId);
      const url = parseScrapeUrl(rawUrl);
      // Checked here for an immediate 422; the job checks every hop again when it connects.
      try {
        await assertHostAllowed(hostOf(url), config.allowPrivateNetwork);
      } catch (err) {
        if (err instanceof BlockedAddressError) {
          throw invalid({ url: ['must not point to a private or internal network address'] });
        }
        if ((err as { code?: string }).code === 'ENOTFOUND') {
          throw invalid({ url: [`host ${hostOf(url)} could not be found`] });
        }
      }
      const now = clock.now();
      await db.transaction().execute(async (trx) => {
        await supersedePendingScrapes(trx, accountId, brand.id, now);
        await insertBrandScrape(trx, { account_id: accountId, brand_id: brand.id, url: rawUrl.trim(), now });
      });
      return { status: 'scraping' as const, url: rawUrl.trim() };
    },
  };
}

/**
 * Claims and runs the scrapes that are due (at most `batchSize`, concurrently) and returns how
 * many it ran. Workers call it on a short interval; tests call it directly.
 */
export async function runDueScrapes(deps: Deps, batchSize = 5): Promise<number> {
  const now = deps.clock.now();
  const jobs = await claimDueBrandScrapes(deps.db, now, new Date(now.getTime() + SCRAPE_LEASE_MS), batchSize);
  await Promise.all(jobs.map((job) => runScrape(deps, job)));
  return jobs.length;
}

/** Fetches, parses and fills one claimed scrape; records the outcome. Never throws. */
async function runScrape(deps: Deps, job: BrandScrape): Promise<void> {
  const { db, clock, log } = deps;
  // A job reclaimed after its worker died counts that lost attempt too.
  if (job.attempts > SCRAPE_MAX_ATTEMPTS) {
    await failBrandScrape(db, job, 'gave up: the worker running it stopped', clock.now());
    return;
  }
  try {
    const kit = await fetchBrandKit(job.url, deps.config.allowPrivateNetwork);
    await db.transaction().execute(async (trx) => {
      const now = clock.now();
      if (!(await finishBrandScrape(trx, job, now))) return;
      const brand = await lockScrapedBrand(trx, job);
      if (brand) await updateBrand(trx, job.account_id, brand.id, fillEmpty(brand, kit, job.url, now));
    });
    log.info({ scrape: job.id, brand: job.brand_id }, 'brand scraped');
  } catch (err) {
    const now = clock.now();
    // Anything but a classified fetch failure (a database hiccup, say) is worth another try.
    const transient = err instanceof OutboundError ? err.transient : true;
    const message = err instanceof Error ? err.message : String(err);
    if (transient && job.attempts < SCRAPE_MAX_ATTEMPTS) {
      const delay = SCRAPE_BACKOFF_MS[job.attempts - 1] ?? SCRAPE_BACKOFF_MS.at(-1)!;
      await retryBrandScrape(db, job, message, new Date(now.getTime() + delay), now).catch(() => {});
    } else {
      await failBrandScrape(db, job, message, now).catch(() => {});
    }
    if (!(err instanceof OutboundError)) log.error({ err, scrape: job.id }, 'brand scrape crashed');
    else log.info({ scrape: job.id, error: message, transient }, 'brand scrape failed');
  }
}

/** Fetches a page and extracts its brand kit; OutboundError (transient or not) on any failure. */
async function fetchBrandKit(url: string, allowPrivate: boolean): Promise<BrandKit> {
  const res = await guardedRequest(url, {
    allowPrivate,
    timeoutMs: SCRAPE_FETCH.timeoutMs,
    maxBytes: SCRAPE_FETCH.maxBytes,
    maxRedirects: SCRAPE_FETCH.maxRedirects,
    headers: {
      'user-agent': SCRAPE_FETCH.userAgent,
      accept: 'text/html,application/xhtml+xml;q=0.9,*/*;q=0.5',
    },
  });
  if (res.status >= 500 || res.status === 429 || res.status === 408) {
    throw new OutboundError(`the site answered HTTP ${res.status}`, true);
  }
  if (res.status < 200 || res.status >= 300) {
    throw new OutboundError(`the site answered HTTP ${res.status}`, false);
  }
  const type = String(res.headers['content-type'] ?? '').toLowerCase();
  const head = res.body.subarray(0, 512).toString('latin1').trimStart().toLowerCase();
  const html = type
    ? /^(text\/html|application\/xhtml\+xml)\b/.test(type)
    : head.startsWith('<!doctype html') || head.startsWith('<html');
  if (!html) throw new OutboundError(`not an HTML page (${type || 'no content type'})`, false);
  return extractBrandKit(decodeHtml(res.body, type), res.url);
}

/** The page's text in its declared charset (header, then `<meta charset>`), UTF-8 otherwise. */
function decodeHtml(body: Buffer, contentType: string): string {
  const sniff = body.subarray(0, 1024).toString('latin1');
  const label =
    /charset=["']?([\w-]+)/i.exec(contentType)?.[1] ?? /<meta[^>]+charset=["']?([\w-]+)/i.exec(sniff)?.[1];
  try {
    return new TextDecoder(label ?? 'utf-8').decode(body);
  } catch {
    return new TextDecoder('utf-8').decode(body);
  }
}

/**
 * The brand update a scrape makes: each field only where the brand has none yet, so a scrape
 * never overwrites what the user typed; `source_url` and `last_scraped_at` always.
 */
export function fillEmpty(brand: Brand, kit: BrandKit, url: string, now: Date): BrandUpdate {
  const update: BrandUpdate = { source_url: url, last_scraped_at: now, updated_at: now };
  const fields = [
    'brand_color',
    'bg_color',
    'text_color',
    'font_heading',
    'font_body',
    'logo',
    'company_name',
    'company_description',
  ] as const;
  for (const field of fields) {
    const value = kit[field];
    if (value !== null && (brand[field] === null || brand[field].trim() === '')) update[field] = value;
  }
  if (kit.links.length > 0 && brand.links.length === 0) update.links = json(kit.links);
  return update;
}

// ---------------------------------------------------------------------------------------------
// Extraction: pure functions of the page's HTML.

/** Reads the brand kit a page declares: meta tags, CSS colours and fonts, logo, social links. */
export function extractBrandKit(html: string, baseUrl: string): BrandKit {
  const $ = load(html);
  const base = resolveBase($, baseUrl);
  const meta = metaTags($);
  const css = collectCss($);
  const vars = customProperties(css);
  const value = (v: string) => resolveVars(v, vars);

  const bodyDecls = css.filter((r) => r.selectors.some((s) => s === 'body')).flatMap((r) => r.decls);
  const htmlDecls = css
    .filter((r) => r.selectors.some((s) => s === 'html' || s === ':root'))
    .flatMap((r) => r.decls);
  const lastColor = (decls: Decl[], props: string[]) => {
    let found: string | null = null;
    for (const d of decls) {
      if (!props.includes(d.prop)) continue;
      const c = firstColor(value(d.value));
      if (c) found = c;
    }
    return found;
  };
  const bgProps = ['background-color', 'background'];
  const bg_color = lastColor(bodyDecls, bgProps) ?? lastColor(htmlDecls, bgProps);
  const text_color = lastColor(bodyDecls, ['color']) ?? lastColor(htmlDecls, ['color']);

  return {
    brand_color: brandColor(meta, css, value),
    bg_color,
    text_color,
    ...fonts($, css, value),
    logo: findLogo($, meta, base),
    company_name: clean(
      meta.get('og:site_name') ?? meta.get('application-name') ?? $('title').first().text(),
      200,
    ),
    company_description: clean(
      meta.get('description') ?? meta.get('og:description') ?? meta.get('twitter:description'),
      1000,
    ),
    links: socialLinks($, base),
  };
}

function clean(text: string | undefined, max: number): string | null {
  const t = (text ?? '').replace(/\s+/g, ' ').trim();
  if (t === '') return null;
  return t.length > max ? `${t.slice(0, max - 1).trimEnd()}…` : t;
}

function resolveBase($: CheerioAPI, pageUrl: string): URL {
  const page = new URL(pageUrl);
  const href = $('base[href]').first().attr('href');
  if (!href) return page;
  try {
    return new URL(href, page);
  } catch {
    return page;
  }
}

/** An absolute http(s) URL for `ref` relative to `base`, or null. */
function absolute(ref: string | undefined, base: URL): string | null {
  const text = ref?.trim();
  if (!text) return null;
  try {
    const url = new URL(text, base);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
    return url.href.length <= 2000 ? url.href : null;
  } catch {
    return null;
  }
}

/** First `content` of each `<meta name|property>`, keyed in lower case. */
function metaTags($: CheerioAPI): Map<string, string> {
  const out = new Map<string, string>();
  $('meta').each((_, el) => {
    const key = ($(el).attr('name') ?? $(el).attr('property') ?? '').trim().toLowerCase();
    const content = $(el).attr('content')?.trim();
    if (key && content && !out.has(key)) out.set(key, content);
  });
  return out;
}

type Decl = { prop: string; value: string };
type Rule = { selectors: string[]; decls: Decl[] };

/** Flat CSS rules from `<style>` blocks (nested at-rules flattened) and inline `style` attributes. */
function collectCss($: CheerioAPI): Rule[] {
  const rules: Rule[] = [];
  $('style').each((_, el) => {
    const text = $(el)
      .text()
      .replace(/\/\*[\s\S]*?\*\//g, '');
    for (const m of text.matchAll(/([^{}]+)\{([^{}]*)\}/g)) {
      const selectors = m[1]!
        .split(',')
        .map((s) => s.trim().toLowerCase().replace(/\s+/g, ' '))
        .filter(Boolean);
      rules.push({ selectors, decls: declarations(m[2]!) });
    }
  });
  $('[style]').each((_, el) => {
    const tag = ((el as { tagName?: string }).tagName ?? '').toLowerCase();
    rules.push({ selectors: [tag], decls: declarations($(el).attr('style') ?? '') });
  });
  return rules;
}

function declarations(body: string): Decl[] {
  const out: Decl[] = [];
  for (const part of body.split(';')) {
    const colon = part.indexOf(':');
    if (colon <= 0) continue;
    const prop = part.slice(0, colon).trim().toLowerCase();
    const value = part
      .slice(colon + 1)
      .replace(/!important/i, '')
      .trim();
    if (prop && value) out.push({ prop, value });
  }
  return out;
}

/** `--name: value` declarations anywhere; the last one wins, as in the cascade. */
function customProperties(rules: Rule[]): Map<string, string> {
  const vars = new Map<string, string>();
  for (const r of rules) for (const d of r.decls) if (d.prop.startsWith('--')) vars.set(d.prop, d.value);
  return vars;
}

function resolveVars(value: string, vars: Map<string, string>, depth = 0): string {
  if (depth > 3 || !value.includes('var(')) return value;
  const replaced = value.replace(
    /var\(\s*(--[\w-]+)\s*(?:,\s*([^()]*))?\)/g,
    (_, name: string, fallback?: string) => (vars.get(name.toLowerCase()) ?? fallback ?? '').trim(),
  );
  return resolveVars(replaced, vars, depth + 1);
}

const NAMED_COLORS: Record<string, string> = {
  white: '#ffffff',
  black: '#000000',
  red: '#ff0000',
  green: '#008000',
  blue: '#0000ff',
  navy: '#000080',
  orange: '#ffa500',
  purple: '#800080',
  gray: '#808080',
  grey: '#808080',
};

const hex2 = (n: number) =>
  Math.max(0, Math.min(255, Math.round(n)))
    .toString(16)
    .padStart(2, '0');

/** Every colour in a CSS value, as `#rrggbb`, in order. Transparent colours are skipped. */
function colorsIn(value: string): string[] {
  const out: string[] = [];
  const pattern =
    /#([0-9a-f]{8}|[0-9a-f]{6}|[0-9a-f]{4}|[0-9a-f]{3})(?![0-9a-z])|rgba?\(\s*([\d.]+%?)[\s,]+([\d.]+%?)[\s,]+([\d.]+%?)(?:\s*[,/]\s*([\d.]+%?))?\s*\)|\b([a-z]+)\b/gi;
  for (const m of value.matchAll(pattern)) {
    if (m[1]) {
      let h = m[1].toLowerCase();
      if (h.length <= 4) h = [...h].map((c) => c + c).join('');
      if (h.length === 8 && Number.parseInt(h.slice(6), 16) < 128) continue;
      out.push(`#${h.slice(0, 6)}`);
    } else if (m[2]) {
      const channel = (v: string) =>
        v.endsWith('%') ? (Number.parseFloat(v) * 255) / 100 : Number.parseFloat(v);
      const alpha = m[5] ? (m[5].endsWith('%') ? Number.parseFloat(m[5]) / 100 : Number.parseFloat(m[5])) : 1;
      if (alpha < 0.5) continue;
      out.push(`#${hex2(channel(m[2]))}${hex2(channel(m[3]!))}${hex2(channel(m[4]!))}`);
    } else if (m[6]) {
      const named = NAMED_COLORS[m[6].toLowerCase()];
      if (named) out.push(named);
    }
  }
  return out;
}

function firstColor(value: string): string | null {
  return colorsIn(value)[0] ?? null;
}

/** White, black and greys say little about a brand: its colour is a chromatic one. */
function isNeutral(hex: string): boolean {
  const [r, g, b] = [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16)) as [
    number,
    number,
    number,
  ];
  return Math.max(r, g, b) - Math.min(r, g, b) < 24;
}

/** The declared theme colour, else the most used chromatic colour of the page's CSS. */
function brandColor(meta: Map<string, string>, css: Rule[], value: (v: string) => string): string | null {
  for (const key of ['theme-color', 'msapplication-tilecolor']) {
    const c = firstColor(meta.get(key) ?? '');
    if (c && !isNeutral(c)) return c;
  }
  const counts = new Map<string, number>();
  for (const r of css) {
    for (const d of r.decls) {
      if (d.prop.includes('font') || d.prop === 'content') continue;
      for (const c of colorsIn(value(d.value))) if (!isNeutral(c)) counts.set(c, (counts.get(c) ?? 0) + 1);
    }
  }
  let best: string | null = null;
  let bestCount = 0;
  for (const [c, n] of counts) {
    if (n > bestCount) {
      best = c;
      bestCount = n;
    }
  }
  return best;
}

const GENERIC_FONTS = new Set([
  'serif',
  'sans-serif',
  'monospace',
  'cursive',
  'fantasy',
  'system-ui',
  'ui-serif',
  'ui-sans-serif',
  'ui-monospace',
  'ui-rounded',
  'math',
  'emoji',
  'fangsong',
  '-apple-system',
  'blinkmacsystemfont',
  'inherit',
  'initial',
  'unset',
  'revert',
  'apple color emoji',
  'segoe ui emoji',
  'segoe ui symbol',
  'noto color emoji',
]);

/** The first named (non-generic, non-system) family of a font-family list. */
function firstFamily(list: string): string | null {
  for (const part of list.split(',')) {
    const name = part
      .trim()
      .replace(/^["']|["']$/g, '')
      .trim();
    if (!name || GENERIC_FONTS.has(name.toLowerCase()) || name.length > 100 || /[(){}]/.test(name)) continue;
    return name;
  }
  return null;
}

/** Families requested from Google Fonts (`<link>` or `@import`), in order. */
function googleFonts($: CheerioAPI): string[] {
  const hrefs: string[] = [];
  $('link[href]').each((_, el) => {
    hrefs.push($(el).attr('href')!);
  });
  $('style').each((_, el) => {
    for (const m of $(el)
      .text()
      .matchAll(/@import\s+(?:url\()?\s*["']?([^"')\s;]+)/g))
      hrefs.push(m[1]!);
  });
  const families: string[] = [];
  for (const href of hrefs) {
    let url: URL;
    try {
      url = new URL(href, 'https://fonts.googleapis.com');
    } catch {
      continue;
    }
    if (url.hostname !== 'fonts.googleapis.com' || !url.pathname.startsWith('/css')) continue;
    // css2: one `family` per font ("Inter:wght@400;700"); css v1: "Roboto:400,700|Open+Sans".
    for (const param of url.searchParams.getAll('family')) {
      for (const spec of param.split('|')) {
        const name = spec.split(':')[0]!.replace(/\+/g, ' ').trim();
        if (name && !families.includes(name)) families.push(name);
      }
    }
  }
  return families;
}

/** Heading and body fonts: from the CSS of headings and body, else the Google Fonts loaded. */
function fonts($: CheerioAPI, css: Rule[], value: (v: string) => string) {
  const familyOf = (match: (selector: string) => boolean) => {
    let found: string | null = null;
    for (const r of css) {
      if (!r.selectors.some(match)) continue;
      for (const d of r.decls) {
        if (d.prop !== 'font-family') continue;
        const name = firstFamily(value(d.value));
        if (name) found = name;
      }
    }
    return found;
  };
  const google = googleFonts($);
  const body = familyOf((s) => s === 'body' || s === 'html' || s === ':root') ?? google[0] ?? null;
  const heading =
    familyOf((s) => /(^|[\s>+~])h[1-3](?![\w-])/.test(s)) ?? google.find((f) => f !== body) ?? body;
  return { font_heading: heading, font_body: body };
}

const LOGO = /logo/i;

/** The logo: an image marked as one, else the site's og:logo, touch icon or share image. */
function findLogo($: CheerioAPI, meta: Map<string, string>, base: URL): string | null {
  const imgs = $('img').toArray();
  type Img = (typeof imgs)[number];
  const srcOf = (el: Img) => {
    const img = $(el);
    const srcset = img.attr('srcset')?.split(',')[0]?.trim().split(/\s+/)[0];
    return absolute(img.attr('src') ?? img.attr('data-src') ?? srcset, base);
  };
  const marked = (el: Img) => ['class', 'id', 'alt', 'src'].some((a) => LOGO.test($(el).attr(a) ?? ''));
  const inHeader = imgs.filter((el) => $(el).closest('header, nav, [role=banner]').length > 0);
  const candidates = [
    ...inHeader.filter(marked),
    ...imgs.filter((el) => $(el).parents('[class*=logo i], [id*=logo i]').length > 0),
    ...imgs.filter(marked),
  ];
  for (const el of candidates) {
    const src = srcOf(el);
    if (src) return src;
  }
  const touch = $('link[rel]')
    .toArray()
    .find((el) => /(^|\s)apple-touch-icon(-precomposed)?(\s|$)/i.test($(el).attr('rel') ?? ''));
  return (
    absolute(meta.get('og:logo'), base) ??
    absolute(touch ? $(touch).attr('href') : undefined, base) ??
    absolute(meta.get('og:image') ?? meta.get('og:image:url') ?? meta.get('og:image:secure_url'), base)
  );
}

type Platform = { icon: string; title: string; group: string };

const PLATFORMS: Record<string, Platform> = {
  'twitter.com': { icon: 'twitter', title: 'Twitter', group: 'twitter' },
  'x.com': { icon: 'x', title: 'X', group: 'twitter' },
  'facebook.com': { icon: 'facebook', title: 'Facebook', group: 'facebook' },
  'fb.com': { icon: 'facebook', title: 'Facebook', group: 'facebook' },
  'instagram.com': { icon: 'instagram', title: 'Instagram', group: 'instagram' },
  'linkedin.com': { icon: 'linkedin', title: 'LinkedIn', group: 'linkedin' },
  'youtube.com': { icon: 'youtube', title: 'YouTube', group: 'youtube' },
  'tiktok.com': { icon: 'tiktok', title: 'TikTok', group: 'tiktok' },
  'github.com': { icon: 'github', title: 'GitHub', group: 'github' },
};

/** First path segments that are actions or site pages rather than someone's profile. */
const NOT_PROFILES = new Set([
  'share',
  'sharer',
  'sharer.php',
  'sharearticle',
  'sharing',
  'intent',
  'home',
  'search',
  'hashtag',
  'login',
  'signup',
  'watch',
  'embed',
  'dialog',
  'plugins',
  'privacy',
  'legal',
  'policies',
  'policy',
  'help',
  'tos',
  'terms',
  'explore',
  'about',
  'settings',
]);

/** Links to the brand's own social profiles, one per platform, in page order. */
function socialLinks($: CheerioAPI, base: URL): BrandLink[] {
  const out: BrandLink[] = [];
  const seen = new Set<string>();
  $('a[href]').each((_, el) => {
    const href = absolute($(el).attr('href'), base);
    if (!href) return;
    const url = new URL(href);
    const host = url.hostname.toLowerCase().replace(/^(www|m|mobile)\./, '');
    const platform = PLATFORMS[host];
    if (!platform || seen.has(platform.group)) return;
    const first = url.pathname.split('/').filter(Boolean)[0]?.toLowerCase();
    if (!first || NOT_PROFILES.has(first)) return;
    seen.add(platform.group);
    url.hash = '';
    out.push({ url: url.href, icon: platform.icon, title: platform.title });
  });
  return out.slice(0, 10);
}
