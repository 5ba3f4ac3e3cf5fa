import type { FastifyRequest } from 'fastify';
import Type from 'typebox';
import type { Services } from '../../domain/services.ts';
import type { UnsubscribeScope } from '../../domain/unsubscribe/unsubscribe.ts';
import { errors } from '../schemas/common.ts';
import {
  ClickQuery,
  Gif,
  HtmlPage,
  Redirect,
  TokenParams,
  UnsubscribeBody,
  UnsubscribeResponse,
} from '../schemas/tracking.ts';
import type { TypedApp } from '../typed.ts';

// The smallest transparent GIF89a (43 bytes).
const PIXEL = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');

// Unsubscribe bodies are a key or two; nothing larger is ever needed.
const FORM_BODY_LIMIT = 16 * 1024;

const NO_CACHE = {
  'cache-control': 'no-store, no-cache, must-revalidate, private, max-age=0',
  pragma: 'no-cache',
  expires: '0',
};

// The hosted page runs nothing, loads nothing from elsewhere, cannot be framed, and leaks no token.
const PAGE_HEADERS = {
  ...NO_CACHE,
  'content-security-policy':
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-robots-tag': 'noindex, nofollow',
};

const meta = (request: FastifyRequest) => ({
  ip: request.ip,
  user_agent: request.headers['user-agent'] ?? null,
});

function escapeHtml(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex, nofollow">
<title>${escapeHtml(title)}</title>
<style>
body{margin:0;padding:48px 16px;background:#f4f4f5;color:#18181b;font:16px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI",Roboto,Helvetica,Arial,sans-serif}
main{max-width:440px;margin:0 auto;background:#fff;border-radius:12px;padding:32px;box-shadow:0 1px 3px rgba(0,0,0,.08)}
h1{font-size:22px;margin:0 0 12px}
p{margin:0 0 16px;color:#3f3f46}
fieldset{border:0;margin:0 0 20px;padding:0}
label{display:block;padding:10px 12px;border:1px solid #e4e4e7;border-radius:8px;margin-bottom:8px;cursor:pointer}
button{background:#18181b;color:#fff;border:0;border-radius:8px;padding:10px 18px;font-size:16px;cursor:pointer}
</style>
</head>
<body><main>${body}</main></body>
</html>`;
}

function confirmPage(page: { sender: string | null; email: string; unsubscribed: boolean }): string {
  const sender = page.sender ?? 'this sender';
  const status = page.unsubscribed
    ? `<p>${escapeHtml(page.email)} is already unsubscribed from ${escapeHtml(sender)} emails.</p>`
    : `<p>Choose which emails ${escapeHtml(page.email)} should stop receiving.</p>`;
  return layout(
    `Unsubscribe from ${sender}`,
    `<h1>Unsubscribe</h1>
${status}
<form method="post">
<fieldset>
<label><input type="radio" name="scope" value="brand" checked> Unsubscribe from ${escapeHtml(sender)} emails</label>
<label><input type="radio" name="scope" value="all"> Unsubscribe from all emails from this sender account</label>
</fieldset>
<button type="submit">Unsubscribe</button>
</form>`,
  );
}

function donePage(scope: UnsubscribeScope, sender: string | null): string {
  const from =
    scope === 'all' ? 'any emails from this sender account' : `${escapeHtml(sender ?? 'this sender')} emails`;
  return layout(
    'Unsubscribed',
    `<h1>You are unsubscribed</h1>
<p>You will no longer receive ${from}. It can take a moment for messages already on their way to stop.</p>`,
  );
}

/** A browser (the hosted form) asks for HTML; mailbox providers' one-click POSTs get JSON. */
function wantsHtml(request: FastifyRequest): boolean {
  return /\btext\/html\b/i.test(request.headers.accept ?? '');
}

/** Form fields of an RFC 8058 POST: urlencoded (and text) bodies. */
function parseForm(
  _request: FastifyRequest,
  body: string | Buffer,
  done: (err: Error | null, body?: unknown) => void,
): void {
  done(null, Object.fromEntries(new URLSearchParams(body.toString())));
}

/** multipart/form-data (RFC 8058's SHOULD), through the platform's own parser. */
async function parseMultipart(
  request: FastifyRequest,
  body: string | Buffer,
): Promise<Record<string, string>> {
  try {
    const form = await new Response(body as Buffer<ArrayBuffer>, {
      headers: { 'content-type': String(request.headers['content-type']) },
    }).formData();
    const out: Record<string, string> = {};
    for (const [key, value] of form) if (typeof value === 'string') out[key] = value;
    return out;
  } catch {
    return {};
  }
}

/**
 * Public tracking and unsubscribe endpoints, in their own scope so the form-body parsers registered
 * here apply to nothing else: the open pixel, the signed click redirect, the hosted unsubscribe page
 * and the RFC 8058 one-click POST.
 */
export function trackingRoutes(app: TypedApp, services: Services): void {
  app.register(async (scope: TypedApp) => {
    const formOptions = { parseAs: 'string' as const, bodyLimit: FORM_BODY_LIMIT };
    scope.addContentTypeParser('application/x-www-form-urlencoded', formOptions, parseForm);
    scope.addContentTypeParser('text/plain', formOptions, parseForm);
    scope.addContentTypeParser(
      'multipart/form-data',
      { parseAs: 'buffer', bodyLimit: FORM_BODY_LIMIT },
      parseMultipart,
    );
    // Whatever else a mail provider sends, a POST to the link is still an unsubscribe.
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: FORM_BODY_LIMIT }, (_r, _b, done) =>
      done(null, {}),
    );

    scope.get(
      '/t/o/:token.gif',
      {
        schema: {
          summary: 'Open pixel',
          description:
            'Records an open of the message the token was signed for and answers a 1×1 transparent GIF. ' +
            'Any token gets the GIF; only a valid one records anything.',
          tags: ['Tracking'],
          operationId: 'trackOpen',
          params: TokenParams,
          response: { 200: Gif },
        },
      },
      async (request, reply) => {
        // HEAD (link checkers, prefetchers) gets the same answer but is not an open.
        if (request.method === 'GET') await services.engagement.open(request.params.token, meta(request));
        return reply.headers(NO_CACHE).type('image/gif').send(PIXEL);
      },
    );

    scope.get(
      '/t/c/:token',
      {
        schema: {
          summary: 'Click redirect',
          description:
            'Records a click and redirects (302) to `u`, only when the token was signed for exactly that ' +
            'URL; anything else is 404 and never redirects.',
          tags: ['Tracking'],
          operationId: 'trackClick',
          // Left out of the document: it only ever answers 302 or 404, and the document lists operations
          // with a 2xx outcome. The schemas still validate and describe it.
          hide: true,
          params: TokenParams,
          querystring: ClickQuery,
          response: { 302: Redirect, ...errors(404, 422) },
        },
      },
      async (request, reply) => {
        const url = await services.engagement.click(
          request.params.token,
          request.query.u,
          meta(request),
          request.method === 'GET',
        );
        return reply.headers({ ...NO_CACHE, 'referrer-policy': 'no-referrer' }).redirect(url, 302);
      },
    );

    scope.get(
      '/u/:token',
      {
        schema: {
          summary: 'Unsubscribe page',
          description:
            "A small hosted page confirming the unsubscribe, with a choice between the brand's email and " +
            'all email from the sending account; it posts to the same URL. Viewing it changes nothing.',
          tags: ['Tracking'],
          operationId: 'unsubscribePage',
          params: TokenParams,
          response: { 200: HtmlPage, ...errors(404) },
        },
      },
      async (request, reply) => {
        const page = await services.unsubscribes.page(request.params.token);
        return reply.headers(PAGE_HEADERS).type('text/html; charset=utf-8').send(confirmPage(page));
      },
    );

    scope.post(
      '/u/:token',
      {
        bodyLimit: FORM_BODY_LIMIT,
        // No body at all is a one-click unsubscribe too, not a validation error.
        preValidation: async (request) => {
          request.body ??= {};
        },
        schema: {
          summary: 'Unsubscribe (RFC 8058 one-click)',
          description:
            'Unsubscribes immediately: the email channel is opted out and the address suppressed for ' +
            "marketing. `List-Unsubscribe=One-Click` (or no body) unsubscribes from the brand's email; " +
            '`scope=all` from every brand of the sending account. Browsers (Accept: text/html) get a ' +
            'confirmation page, everyone else JSON.',
          tags: ['Tracking'],
          operationId: 'unsubscribe',
          params: TokenParams,
          body: UnsubscribeBody,
          response: { 200: Type.Union([UnsubscribeResponse, HtmlPage]), ...errors(404, 413, 422) },
        },
      },
      async (request, reply) => {
        const scopeChoice: UnsubscribeScope = request.body?.scope ?? 'brand';
        const result = await services.unsubscribes.unsubscribe(request.params.token, scopeChoice);
        if (wantsHtml(request)) {
          const page = await services.unsubscribes.page(request.params.token);
          return reply
            .headers(PAGE_HEADERS)
            .type('text/html; charset=utf-8')
            .send(donePage(result.scope, page.sender));
        }
        return reply.headers(NO_CACHE).send({ unsubscribed: true as const, scope: result.scope });
      },
    );
  });
}
