import { createHmac, createSecretKey, timingSafeEqual } from 'node:crypto';
import { deriveKey } from '../lib/crypto.ts';

/**
 * Signed tracking and unsubscribe links. A token is base64url(message id as big-endian bytes ‖
 * 16 bytes of HMAC-SHA256): short, and impossible to forge or to move to another message without
 * SECRET_KEY. Each purpose (open, click, unsubscribe) signs a different string, so a token of one kind
 * is never accepted as another. A click token has a second part, `<message part>.<link part>`: the link
 * part is an HMAC of the destination URL alone, so the redirect only ever goes where an email's author
 * linked (no open redirect). Signing the URL apart from the message lets one link signature serve every
 * recipient of a newsletter: a message costs one HMAC, not one per link (a 100-link email to 100k
 * recipients would otherwise compute 10M HMACs).
 */

const MAC_BYTES = 16;
/** The link part of a click token (96 bits: forging one still needs SECRET_KEY). */
const LINK_MAC_BYTES = 12;
// Message ids are positive integers; 6 bytes cover every safe integer we could store.
const MAX_ID_BYTES = 6;
const TOKEN_RE = /^[A-Za-z0-9_-]{22,32}$/;
const LINK_RE = /^[A-Za-z0-9_-]{16}$/;
/** Link signatures kept per process (a cache: losing it only costs recomputing). */
const LINK_CACHE_LIMIT = 10_000;

type Purpose = 'o' | 'c' | 'u';

export type TrackingLinks = {
  /** The open pixel's URL for a message. */
  openUrl(messageId: number): string;
  /** The click redirect for `url` in a message. */
  clickUrl(messageId: number, url: string): string;
  /** The message's half of its click URLs: `<base>/t/c/<message part>.` (one HMAC per message). */
  clickPrefix(messageId: number): string;
  /** The link's half of a click URL: `<link part>?u=<url>` (cached per URL across messages). */
  clickSuffix(url: string): string;
  /** The hosted unsubscribe page (GET) and RFC 8058 one-click endpoint (POST) for a message. */
  unsubscribeUrl(messageId: number): string;
  /** The message id of a valid open token, else null. */
  verifyOpen(token: string): number | null;
  /** The message id when the token was signed for exactly this destination URL, else null. */
  verifyClick(token: string, url: string): number | null;
  /** The message id of a valid unsubscribe token, else null. */
  verifyUnsubscribe(token: string): number | null;
  /** True for URLs this server generated (tracking and unsubscribe links): never wrapped again. */
  isOwnUrl(url: string): boolean;
};

function idBytes(id: number): Buffer {
  if (!Number.isSafeInteger(id) || id < 1) throw new Error(`invalid message id ${id}`);
  const out: number[] = [];
  let rest = id;
  while (rest > 0) {
    out.unshift(rest % 256);
    rest = Math.floor(rest / 256);
  }
  return Buffer.from(out);
}

/** Builds the signer and verifier of tracking links from SECRET_KEY and the public base URL. */
export function createTrackingLinks(options: { secretKey: string; appUrl: string }): TrackingLinks {
  // A KeyObject made once: handing raw bytes to every createHmac re-imports the key each time.
  const key = createSecretKey(deriveKey(options.secretKey, 'tracking'));
  const base = options.appUrl.replace(/\/+$/, '');

  const mac = (purpose: Purpose, id: number): Buffer =>
    createHmac('sha256', key).update(`${purpose}\n${id}`).digest().subarray(0, MAC_BYTES);
  // "l" for link: a string no message MAC ever signs ("o|c|u" + newline + digits).
  const linkMac = (url: string): Buffer =>
    createHmac('sha256', key).update(`l\n${url}`).digest().subarray(0, LINK_MAC_BYTES);

  const sign = (purpose: Purpose, id: number): string =>
    Buffer.concat([idBytes(id), mac(purpose, id)]).toString('base64url');

  const suffixes = new Map<string, string>();
  const clickSuffix = (url: string): string => {
    let suffix = suffixes.get(url);
    if (suffix === undefined) {
      suffix = `${linkMac(url).toString('base64url')}?u=${encodeURIComponent(url)}`;
      if (suffixes.size >= LINK_CACHE_LIMIT) suffixes.clear();
      suffixes.set(url, suffix);
    }
    return suffix;
  };

  const verifyLink = (part: string, url: string): boolean => {
    if (!LINK_RE.test(part)) return false;
    const raw = Buffer.from(part, 'base64url');
    return raw.toString('base64url') === part && timingSafeEqual(raw, linkMac(url));
  };

  const verify = (purpose: Purpose, token: unknown): number | null => {
    if (typeof token !== 'string' || !TOKEN_RE.test(token)) return null;
    const raw = Buffer.from(token, 'base64url');
    // Only the canonical encoding is accepted (Node's decoder tolerates stray bits).
    if (raw.toString('base64url') !== token) return null;
    const idLength = raw.length - MAC_BYTES;
    if (idLength < 1 || idLength > MAX_ID_BYTES || raw[0] === 0) return null;
    let id = 0;
    for (const byte of raw.subarray(0, idLength)) id = id * 256 + byte;
    const expected = mac(purpose, id);
    return timingSafeEqual(raw.subarray(idLength), expected) ? id : null;
  };

  const clickPrefix = (id: number) => `${base}/t/c/${sign('c', id)}.`;

  return {
    openUrl: (id) => `${base}/t/o/${sign('o', id)}.gif`,
    clickUrl: (id, url) => clickPrefix(id) + clickSuffix(url),
    clickPrefix,
    clickSuffix,
    unsubscribeUrl: (id) => `${base}/u/${sign('u', id)}`,
    verifyOpen: (token) => verify('o', token),
    verifyClick: (token, url) => {
      if (typeof token !== 'string' || typeof url !== 'string') return null;
      const dot = token.indexOf('.');
      if (dot === -1 || !verifyLink(token.slice(dot + 1), url)) return null;
      return verify('c', token.slice(0, dot));
    },
    verifyUnsubscribe: (token) => verify('u', token),
    isOwnUrl: (url) => url.startsWith(`${base}/t/`) || url.startsWith(`${base}/u/`),
  };
}

/** The List-Unsubscribe pair of a marketing email (RFC 2369 + RFC 8058 one-click). */
export function listUnsubscribeHeaders(
  links: TrackingLinks,
  messageId: number,
  mailto?: string | null,
): Record<'List-Unsubscribe' | 'List-Unsubscribe-Post', string> {
  const targets = [`<${links.unsubscribeUrl(messageId)}>`];
  if (mailto) targets.push(`<mailto:${mailto}>`);
  return {
    'List-Unsubscribe': targets.join(', '),
    'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
  };
}

// ---------------------------------------------------------------------------------------------------
// HTML rewriting. A small tokenizer over `<a …>` start tags rather than a DOM round trip: it leaves
// every other byte of the rendered MJML exactly as it was (conditional comments, entities, whitespace).

const NAMED_ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** Decodes the character references that occur in URLs inside attribute values. */
function decodeEntities(value: string): string {
  return value.replace(/&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]+);/g, (whole, ref: string) => {
    if (ref[0] === '#') {
      const code =
        ref[1] === 'x' || ref[1] === 'X' ? Number.parseInt(ref.slice(2), 16) : Number(ref.slice(1));
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    return NAMED_ENTITIES[ref.toLowerCase()] ?? whole;
  });
}

function escapeAttribute(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;');
}

// `<a` followed by its attributes, where quoted values may contain `>`.
const ANCHOR_RE = /<a(?=[\s/>])((?:[^>"']|"[^"]*"|'[^']*')*)>/gi;
// One attribute (name, optional value) at a time, from the current position.
const ATTRIBUTE_RE = /[\s/]*([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'<>`]+)))?/y;

type HrefSpan = { start: number; end: number; value: string };

/** The first `href` attribute of an anchor's attribute text: where it sits and its raw value. */
function findHref(attrs: string): HrefSpan | undefined {
  ATTRIBUTE_RE.lastIndex = 0;
  while (ATTRIBUTE_RE.lastIndex < attrs.length) {
    const start = ATTRIBUTE_RE.lastIndex;
    const m = ATTRIBUTE_RE.exec(attrs);
    if (!m || m[0].length === 0) return undefined;
    if (m[1]!.toLowerCase() === 'href') {
      const value = m[2] ?? m[3] ?? m[4];
      if (value === undefined) return undefined;
      const nameAt = start + m[0].indexOf(m[1]!);
      return { start: nameAt, end: ATTRIBUTE_RE.lastIndex, value };
    }
  }
  return undefined;
}

function isHttpUrl(value: string): boolean {
  if (!/^https?:\/\//i.test(value)) return false;
  try {
    new URL(value);
    return true;
  } catch {
    return false;
  }
}

export type TrackingOptions = {
  messageId: number;
  /** Append the open pixel. */
  opens: boolean;
  /** Wrap http(s) links in signed click redirects. */
  clicks: boolean;
  links: TrackingLinks;
  /** Destinations left as they are (compared after entity decoding). */
  skipUrls?: string[];
};

/** How an `href` value (raw, as in the markup) is tracked: its destination and signed link half, or not at all. */
type HrefPlan = { url: string; suffix: string } | null;

// Per signer, the plan of every raw href seen: a newsletter's links repeat across its recipients, so
// decoding, URL parsing and link signing happen once per link, not once per link and recipient.
const hrefPlans = new WeakMap<TrackingLinks, Map<string, HrefPlan>>();

function planHref(links: TrackingLinks, raw: string): HrefPlan {
  let plans = hrefPlans.get(links);
  if (!plans) {
    plans = new Map();
    hrefPlans.set(links, plans);
  }
  let plan = plans.get(raw);
  if (plan === undefined) {
    const url = decodeEntities(raw).trim();
    plan =
      isHttpUrl(url) && !links.isOwnUrl(url)
        ? { url, suffix: escapeAttribute(links.clickSuffix(url)) }
        : null;
    if (plans.size >= LINK_CACHE_LIMIT) plans.clear();
    plans.set(raw, plan);
  }
  return plan;
}

/**
 * Adds tracking to a message's HTML: http(s) links of `<a>` tags become signed click redirects (never
 * mailto:, tel:, anchors, the unsubscribe link or links already pointing at this server), and a 1×1
 * open pixel goes just before `</body>` (or at the end). Everything else is left byte for byte.
 */
export function applyTracking(html: string, options: TrackingOptions): string {
  const { messageId, links } = options;
  let out = html;
  if (options.clicks) {
    const skip = new Set(options.skipUrls ?? []);
    let prefix: string | undefined;
    out = out.replace(ANCHOR_RE, (tag: string, attrs: string) => {
      const href = findHref(attrs);
      if (!href) return tag;
      const plan = planHref(links, href.value);
      if (plan === null || skip.has(plan.url)) return tag;
      prefix ??= escapeAttribute(links.clickPrefix(messageId));
      return `<a${attrs.slice(0, href.start)}href="${prefix}${plan.suffix}"${attrs.slice(href.end)}>`;
    });
  }
  if (options.opens) {
    const src = links.openUrl(messageId);
    if (!out.includes(escapeAttribute(src))) {
      const pixel =
        `<img src="${escapeAttribute(src)}" width="1" height="1" alt="" border="0" ` +
        'style="display:block;width:1px;height:1px;border:0;margin:0;padding:0;" />';
      const close = out.lastIndexOf('</body>');
      const at = close === -1 ? out.toLowerCase().lastIndexOf('</body>') : close;
      out = at === -1 ? out + pixel : out.slice(0, at) + pixel + out.slice(at);
    }
  }
  return out;
}
