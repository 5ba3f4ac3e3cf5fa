import { createHash, createHmac } from 'node:crypto';

/**
 * AWS Signature Version 4, written from AWS's documented algorithm
 * (https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html) so that SES needs no
 * SDK: canonical request → string to sign → HMAC chain of date/region/service → signature.
 */

export type SigV4Credentials = {
  access_key_id: string;
  secret_access_key: string;
  session_token?: string;
};

export type SigV4Request = {
  method: string;
  url: string | URL;
  /** Headers to send and sign; `host` and `x-amz-date` are added. */
  headers?: Record<string, string>;
  body?: string | Uint8Array;
};

export type SigV4Signed = {
  /** Every header to send (including `authorization`, `x-amz-date`, `host`). */
  headers: Record<string, string>;
  canonical_request: string;
  string_to_sign: string;
  signature: string;
  authorization: string;
};

const ALGORITHM = 'AWS4-HMAC-SHA256';

/** SHA-256 hex of a string or bytes. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmacRaw(key: string | Uint8Array, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

/** RFC 3986 encoding as AWS requires: everything but A-Z a-z 0-9 - _ . ~ is %XX (uppercase). */
export function awsUriEncode(value: string): string {
  return Array.from(new TextEncoder().encode(value), (b) => {
    const c = String.fromCharCode(b);
    return /[A-Za-z0-9\-_.~]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }).join('');
}

/** `20150830T123600Z` for a Date. */
export function amzDate(now: Date): string {
  return now.toISOString().replace(/[:-]|\.\d{3}/g, '');
}

function canonicalUri(url: URL): string {
  // Non-S3 services encode each path segment twice: URL already encoded it once for the wire, so the
  // canonical form encodes the wire form again (as AWS's SDKs do).
  return (url.pathname || '/')
    .split('/')
    .map((segment) => awsUriEncode(segment))
    .join('/');
}

function canonicalQuery(url: URL): string {
  const pairs: [string, string][] = [];
  for (const [k, v] of url.searchParams) pairs.push([awsUriEncode(k), awsUriEncode(v)]);
  pairs.sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/** The derived signing key: HMAC chain over date, region, service and `aws4_request`. */
export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  const kDate = hmacRaw(`AWS4${secret}`, date);
  const kRegion = hmacRaw(kDate, region);
  const kService = hmacRaw(kRegion, service);
  return hmacRaw(kService, 'aws4_request');
}

/** Signs a request with SigV4 for `service` in `region` at `now`; returns the headers to send and the intermediate strings. */
export function signRequest(
  request: SigV4Request,
  credentials: SigV4Credentials,
  region: string,
  service: string,
  now: Date,
): SigV4Signed {
  const url = typeof request.url === 'string' ? new URL(request.url) : request.url;
  const stamp = amzDate(now);
  const date = stamp.slice(0, 8);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers ?? {})) headers[name.toLowerCase()] = value;
  headers['host'] = url.host;
  headers['x-amz-date'] = stamp;
  if (credentials.session_token) headers['x-amz-security-token'] = credentials.session_token;

  const names = Object.keys(headers).sort();
  const canonicalHeaders = names
    .map((n) => `${n}:${String(headers[n]).trim().replace(/\s+/g, ' ')}\n`)
    .join('');
  const signedHeaders = names.join(';');
  const payloadHash = sha256Hex(request.body ?? '');
  const canonical_request = [
    request.method.toUpperCase(),
    canonicalUri(url),
    canonicalQuery(url),
    canonicalHeaders,
    signedHeaders,
    payloadHash,
  ].join('\n');

  const scope = `${date}/${region}/${service}/aws4_request`;
  const string_to_sign = [ALGORITHM, stamp, scope, sha256Hex(canonical_request)].join('\n');
  const signature = createHmac('sha256', signingKey(credentials.secret_access_key, date, region, service))
    .update(string_to_sign, 'utf8')
    .digest('hex');
  const authorization = `${ALGORITHM} Credential=${credentials.access_key_id}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  headers['authorization'] = authorization;
  return { headers, canonical_request, string_to_sign, signature, authorization };
}
