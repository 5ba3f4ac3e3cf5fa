import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';

/**
 * Outbound requests to addresses a user chose (brand scrape, later flow webhooks) must not reach
 * the server's own network. An address is `public`, `private` (RFC 1918, loopback, CGNAT, unique
 * local: allowed when the operator sets ALLOW_PRIVATE_NETWORK, e.g. to scrape an intranet site), or
 * `blocked` (unspecified, link-local — which holds cloud metadata endpoints such as
 * 169.254.169.254 — multicast and reserved: never a legitimate destination, so refused always).
 */
export type AddressClass = 'public' | 'private' | 'blocked';

type Range = { bytes: number[]; bits: number; cls: Exclude<AddressClass, 'public'> };

const V4_RANGES: Range[] = [
  { bytes: [0, 0, 0, 0], bits: 8, cls: 'blocked' },
  { bytes: [10, 0, 0, 0], bits: 8, cls: 'private' },
  { bytes: [100, 64, 0, 0], bits: 10, cls: 'private' },
  { bytes: [127, 0, 0, 0], bits: 8, cls: 'private' },
  { bytes: [169, 254, 0, 0], bits: 16, cls: 'blocked' },
  { bytes: [172, 16, 0, 0], bits: 12, cls: 'private' },
  { bytes: [192, 0, 0, 0], bits: 24, cls: 'private' },
  { bytes: [192, 168, 0, 0], bits: 16, cls: 'private' },
  { bytes: [198, 18, 0, 0], bits: 15, cls: 'private' },
  { bytes: [224, 0, 0, 0], bits: 4, cls: 'blocked' },
  { bytes: [240, 0, 0, 0], bits: 4, cls: 'blocked' },
];

const V6_RANGES: Range[] = [
  { bytes: [...zeros(15), 1], bits: 128, cls: 'private' }, // ::1
  { bytes: zeros(16), bits: 128, cls: 'blocked' }, // ::
  { bytes: [0xfc, ...zeros(15)], bits: 7, cls: 'private' }, // fc00::/7 unique local
  { bytes: [0xfe, 0x80, ...zeros(14)], bits: 10, cls: 'blocked' }, // fe80::/10 link-local
  { bytes: [0xfe, 0xc0, ...zeros(14)], bits: 10, cls: 'blocked' }, // fec0::/10 old site-local
  { bytes: [0xff, ...zeros(15)], bits: 8, cls: 'blocked' }, // multicast
];

function zeros(n: number): number[] {
  return new Array<number>(n).fill(0);
}

function inRange(bytes: number[], range: Range): boolean {
  let bits = range.bits;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((bytes[i] ?? 0) & mask) !== ((range.bytes[i] ?? 0) & mask)) return false;
  }
  return true;
}

function classifyV4(bytes: number[]): AddressClass {
  for (const range of V4_RANGES) if (inRange(bytes, range)) return range.cls;
  return 'public';
}

/** `a.b.c.d` → four bytes, or undefined. */
function parseV4(ip: string): number[] | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  const bytes = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : Number.NaN));
  return bytes.every((b) => b >= 0 && b <= 255) ? bytes : undefined;
}

/** An IPv6 address (with an optional trailing dotted IPv4 part and zone) → sixteen bytes. */
function parseV6(ip: string): number[] | undefined {
  let text = ip.replace(/%.*$/, '');
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    const v4 = parseV4(text.slice(lastColon + 1));
    if (!v4) return undefined;
    tail.push(...v4);
    text = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const groups = (s: string) => (s === '' ? [] : s.split(':'));
  const head = groups(halves[0]!);
  const rest = halves.length === 2 ? groups(halves[1]!) : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 0) return undefined;
  const all = [...head, ...new Array<string>(missing).fill('0'), ...rest];
  const bytes: number[] = [];
  for (const g of all) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    const n = Number.parseInt(g, 16);
    bytes.push(n >> 8, n & 0xff);
  }
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes;
}

/** Classifies an IP address; anything unparseable is blocked. */
export function classifyAddress(ip: string): AddressClass {
  const bare = ip.replace(/^\[|\]$/g, '');
  const version = isIP(bare.replace(/%.*$/, ''));
  if (version === 4) return classifyV4(parseV4(bare)!);
  if (version !== 6) return 'blocked';
  const b = parseV6(bare);
  if (!b) return 'blocked';
  const prefixZero = (n: number) => b.slice(0, n).every((x) => x === 0);
  // Forms that carry an IPv4 address reach that address: judge them by it.
  // ::ffff:a.b.c.d (IPv4-mapped), ::a.b.c.d (IPv4-compatible), 64:ff9b::a.b.c.d (NAT64).
  if (prefixZero(10) && b[10] === 0xff && b[11] === 0xff) return classifyV4(b.slice(12));
  if (prefixZero(12) && (b[12] !== 0 || b[13] !== 0 || b[14] !== 0 || (b[15] ?? 0) > 1)) {
    return classifyV4(b.slice(12));
  }
  if (b[0] === 0 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && b.slice(4, 12).every((x) => x === 0)) {
    return classifyV4(b.slice(12));
  }
  // 2002:AABB:CCDD::/48 (6to4) embeds the IPv4 address in bytes 2–5.
  if (b[0] === 0x20 && b[1] === 0x02) {
    const cls = classifyV4(b.slice(2, 6));
    if (cls !== 'public') return cls;
  }
  for (const range of V6_RANGES) if (inRange(b, range)) return range.cls;
  return 'public';
}

/** True when an outbound request may connect to `ip`. */
export function isAddressAllowed(ip: string, allowPrivate: boolean): boolean {
  const cls = classifyAddress(ip);
  return cls === 'public' || (cls === 'private' && allowPrivate);
}

/** A destination refused by the guard. Permanent: retrying cannot make it allowed. */
export class BlockedAddressError extends Error {
  readonly address: string;
  constructor(host: string, address: string) {
    super(
      host === address
        ? `${host} is a private or reserved network address`
        : `${host} resolves to a private or reserved network address (${address})`,
    );
    this.name = 'BlockedAddressError';
    this.address = address;
  }
}

/** The host of a URL as a resolver wants it (IPv6 literals lose their brackets). */
export function hostOf(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, '');
}

function lookupAll(host: string): Promise<LookupAddress[]> {
  return new Promise((resolve, reject) => {
    dnsLookup(host, { all: true, verbatim: true }, (err, addresses) =>
      err ? reject(err) : resolve(addresses),
    );
  });
}

/**
 * Resolves a host and throws BlockedAddressError when any of its addresses is refused (one bad
 * record is enough: the connection could pick it). DNS failures propagate with their `code`.
 */
export async function assertHostAllowed(host: string, allowPrivate: boolean): Promise<void> {
  const addresses = isIP(host) ? [{ address: host, family: isIP(host) }] : await lookupAll(host);
  for (const { address } of addresses) {
    if (!isAddressAllowed(address, allowPrivate)) throw new BlockedAddressError(host, address);
  }
}

/**
 * A `lookup` for node:http/net that refuses blocked addresses at connection time. Checking the
 * resolved address of the very connection defeats DNS rebinding (a name that resolves to a public
 * address when checked and to a private one when connected).
 */
export function guardedLookup(allowPrivate: boolean): LookupFunction {
  return (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '', 0);
      const list = addresses as LookupAddress[];
      const bad = list.find((a) => !isAddressAllowed(a.address, allowPrivate));
      if (bad) return callback(new BlockedAddressError(hostname, bad.address), '', 0);
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
      const first = list[0];
      if (!first) {
        const none = Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' });
        return callback(none, '', 0);
      }
      callback(null, first.address, first.family);
    });
  };
}

/** Why a guarded request failed; `transient` failures may succeed if tried again later. */
export class OutboundError extends Error {
  readonly transient: boolean;
  constructor(message: string, transient: boolean, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OutboundError';
    this.transient = transient;
  }
}

export type GuardedRequestOptions = {
  allowPrivate: boolean;
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Whole-request deadline, redirects and body included. */
  timeoutMs: number;
  /** Bytes of (decoded) body kept; the rest is not read and `truncated` is set. */
  maxBytes: number;
  /** Redirects followed; each hop is checked against the guard again. 0 returns the 3xx itself. */
  maxRedirects: number;
};

export type GuardedResponse = {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
  truncated: boolean;
  /** The URL that answered, after redirects. */
  url: string;
};

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const NETWORK_PERMANENT = new Set(['ENOTFOUND', 'ERR_INVALID_URL', 'ERR_TLS_CERT_ALTNAME_INVALID']);

/**
 * An HTTP(S) request whose every hop must pass the address guard: the URL's host is checked
 * before connecting (IP literals never reach `lookup`) and the connection's own lookup is checked
 * again. Never throws anything but OutboundError (blocked destinations are permanent).
 */
export async function guardedRequest(raw: string, options: GuardedRequestOptions): Promise<GuardedResponse> {
  const signal = AbortSignal.timeout(options.timeoutMs);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new OutboundError('not a valid URL', false);
  }
  let method = (options.method ?? 'GET').toUpperCase();
  let body = options.body;
  for (let hop = 0; ; hop++) {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new OutboundError(`refusing to follow a redirect to ${url.protocol} URL`, false);
    }
    try {
      await untilAborted(assertHostAllowed(hostOf(url), options.allowPrivate), signal);
    } catch (err) {
      throw asOutbound(err, signal);
    }
    const res = await send(url, method, body, options, signal);
    const location = res.headers.location;
    if (!REDIRECTS.has(res.status) || !location || options.maxRedirects === 0) return res;
    if (hop >= options.maxRedirects) {
      throw new OutboundError(`too many redirects (more than ${options.maxRedirects})`, false);
    }
    try {
      url = new URL(location, url);
    } catch {
      throw new OutboundError('redirect to an invalid URL', false);
    }
    if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
      method = 'GET';
      body = undefined;
    }
  }
}

/** `promise`, or a rejection once `signal` aborts (a DNS lookup itself cannot be cancelled). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function asOutbound(err: unknown, signal: AbortSignal): OutboundError {
  if (err instanceof OutboundError) return err;
  if (err instanceof BlockedAddressError) return new OutboundError(err.message, false, { cause: err });
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof BlockedAddressError) return new OutboundError(cause.message, false, { cause });
  if (signal.aborted) return new OutboundError('timed out', true, { cause: err });
  const code = (err as { code?: string }).code;
  const message = err instanceof Error ? err.message : String(err);
  return new OutboundError(
    code === 'ENOTFOUND' ? 'host not found' : `network error: ${code ?? message}`,
    !(code !== undefined && NETWORK_PERMANENT.has(code)),
    { cause: err },
  );
}

function send(
  url: URL,
  method: string,
  body: string | Buffer | undefined,
  options: GuardedRequestOptions,
  signal: AbortSignal,
): Promise<GuardedResponse> {
  const client = url.protocol === 'https:' ? https : http;
  return new Promise<GuardedResponse>((resolve, reject) => {
    let settled = false;
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      req.destroy();
      reject(asOutbound(err, signal));
    };
    const req = client.request(
      url,
      {
        method,
        headers: { 'accept-encoding': 'gzip, deflate, br', ...options.headers },
        lookup: guardedLookup(options.allowPrivate),
        signal,
        // A fresh connection per request: a pooled socket was checked for another host.
        agent: false,
      },
      (res) => {
        const status = res.statusCode ?? 0;
        if (REDIRECTS.has(status) && res.headers.location && options.maxRedirects > 0) {
          res.resume();
          settled = true;
          resolve({ status, headers: res.headers, body: Buffer.alloc(0), truncated: false, url: url.href });
          return;
        }
        readBody(res, options.maxBytes).then(({ body: data, truncated }) => {
          if (settled) return;
          settled = true;
          resolve({ status, headers: res.headers, body: data, truncated, url: url.href });
          req.destroy();
        }, fail);
      },
    );
    req.on('error', fail);
    req.end(body);
  });
}

/** Reads (and decodes) a response body up to `maxBytes`, then stops reading. */
function readBody(res: IncomingMessage, maxBytes: number): Promise<{ body: Buffer; truncated: boolean }> {
  const encoding = String(res.headers['content-encoding'] ?? '')
    .trim()
    .toLowerCase();
  const decoder =
    encoding === 'gzip' || encoding === 'x-gzip'
      ? createGunzip()
      : encoding === 'deflate'
        ? createInflate()
        : encoding === 'br'
          ? createBrotliDecompress()
          : undefined;
  const stream = decoder ? res.pipe(decoder) : res;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (truncated: boolean) => {
      if (done) return;
      done = true;
      resolve({ body: Buffer.concat(chunks), truncated });
      if (truncated) {
        res.destroy();
        decoder?.destroy();
      }
    };
    stream.on('data', (chunk: Buffer) => {
      if (done) return;
      const room = maxBytes - size;
      chunks.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
      size += Math.min(chunk.length, room);
      if (size >= maxBytes) finish(true);
    });
    stream.on('end', () => finish(false));
    stream.on('error', (err) => {
      if (!done) {
        done = true;
        reject(err);
      }
    });
    if (decoder) res.on('error', (err) => decoder.destroy(err));
    res.on('aborted', () => {
      if (!done) {
        done = true;
        reject(new Error('connection closed before the response ended'));
      }
    });
  });
}
