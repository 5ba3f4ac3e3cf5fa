import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { extractBrandKit, SCRAPE_BACKOFF_MS, SCRAPE_LEASE_MS } from '../src/domain/brands/scrape.ts';
import { housekeeping, runDueBrandScrapes } from '../src/jobs/runner.ts';
import { BlockedAddressError, classifyAddress, guardedLookup, isAddressAllowed } from '../src/lib/ssrf.ts';
import { claimDueBrandScrapes, insertBrandScrape, listBrandScrapes } from '../src/store/brand-scrapes.ts';
import {
  bearer,
  describeEachEngine,
  ISO_DATE,
  type Session,
  setPlan,
  signup,
  uniqueEmail,
} from './helpers.ts';

type Json = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// A local website standing in for the brands' sites.

const FULL_PAGE = `<!doctype html>
<html><head>
  <meta charset="utf-8">
  <title>Acme Widgets — Home</title>
  <meta name="theme-color" content="#1A73E8">
  <meta property="og:site_name" content="Acme Widgets">
  <meta name="description" content="Hand-made widgets &amp; gadgets since 1999.">
  <meta property="og:image" content="/share-card.png">
  <link rel="apple-touch-icon" href="/apple-touch-icon.png">
  <link rel="stylesheet" href="https://fonts.googleapis.com/css2?family=Playfair+Display:wght@700&family=Inter:wght@400;700&display=swap">
  <style>
    /* colours */
    :root { --page-bg: #fafafa; }
    body { background: var(--page-bg); color: #222; font-family: "Inter", system-ui, sans-serif; }
    h1, h2 { font-family: 'Playfair Display', Georgia, serif; }
  </style>
</head><body>
  <header><a href="/"><img class="site-logo" src="/img/acme-logo.svg" alt="Acme"></a></header>
  <h1>Widgets</h1>
  <a href="https://twitter.com/intent/tweet?text=hi">Share this</a>
  <a href="https://twitter.com/acmewidgets">Twitter</a>
  <a href="https://www.facebook.com/acmewidgets">Facebook</a>
  <a href="https://www.instagram.com/acmewidgets/">Instagram</a>
  <a href="https://www.linkedin.com/company/acme-widgets">LinkedIn</a>
  <a href="https://www.youtube.com/@acmewidgets">YouTube</a>
  <a href="https://www.tiktok.com/@acmewidgets">TikTok</a>
  <a href="https://github.com/acme-widgets">GitHub</a>
  <a href="https://example.com/blog">Blog</a>
</body></html>`;

/** What FULL_PAGE yields, for a page served at `origin`. */
function fullKit(origin: string) {
  return {
    brand_color: '#1a73e8',
    bg_color: '#fafafa',
    text_color: '#222222',
    font_heading: 'Playfair Display',
    font_body: 'Inter',
    logo: `${origin}/img/acme-logo.svg`,
    company_name: 'Acme Widgets',
    company_description: 'Hand-made widgets & gadgets since 1999.',
    links: [
      { url: 'https://twitter.com/acmewidgets', icon: 'twitter', title: 'Twitter' },
      { url: 'https://www.facebook.com/acmewidgets', icon: 'facebook', title: 'Facebook' },
      { url: 'https://www.instagram.com/acmewidgets/', icon: 'instagram', title: 'Instagram' },
      { url: 'https://www.linkedin.com/company/acme-widgets', icon: 'linkedin', title: 'LinkedIn' },
      { url: 'https://www.youtube.com/@acmewidgets', icon: 'youtube', title: 'YouTube' },
      { url: 'https://www.tiktok.com/@acmewidgets', icon: 'tiktok', title: 'TikTok' },
      { url: 'https://github.com/acme-widgets', icon: 'github', title: 'GitHub' },
    ],
  };
}

const OTHER_PAGE = `<html><head><title>Other Co</title>
  <meta name="description" content="Something else entirely.">
  <style>.btn { background: #e11d48 } a { color: #e11d48 } body { font-family: Lato }</style>
</head><body><img id="logo" src="other-logo.png"><a href="https://x.com/otherco">X</a></body></html>`;

/** Requests seen per path+query, and the User-Agent of each. */
const hits = new Map<string, number>();
const agents = new Map<string, string | undefined>();
let server: http.Server;
let origin = '';

function site(req: http.IncomingMessage, res: http.ServerResponse) {
  const url = new URL(req.url ?? '/', 'http://site.test');
  const key = url.pathname + url.search;
  const count = (hits.get(key) ?? 0) + 1;
  hits.set(key, count);
  agents.set(key, req.headers['user-agent']);
  const html = (status: number, body: string | Buffer, headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', ...headers });
    res.end(body);
  };
  const redirect = (location: string) => {
    res.writeHead(302, { location });
    res.end();
  };
  switch (url.pathname) {
    case '/full':
      return html(200, FULL_PAGE);
    case '/other':
      return html(200, OTHER_PAGE);
    case '/error500':
      return html(500, '<h1>oops</h1>');
    case '/flaky':
      return count === 1 ? html(503, '<h1>busy</h1>') : html(200, FULL_PAGE);
    case '/missing':
      return html(404, '<h1>not found</h1>');
    case '/json':
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end('{"title":"not a page"}');
    case '/hop': {
      const n = Number(url.searchParams.get('n'));
      const t = url.searchParams.get('t');
      return redirect(n <= 1 ? `/full?t=${t}` : `/hop?n=${n - 1}&t=${t}`);
    }
    case '/to-metadata':
      return redirect('http://169.254.169.254/latest/meta-data/');
    case '/to-zero':
      // 0.0.0.0 reaches this very server on Linux: only the guard stops it.
      return redirect(
        `http://0.0.0.0:${(server.address() as AddressInfo).port}/full?t=${url.searchParams.get('t')}`,
      );
    case '/to-ftp':
      return redirect('ftp://files.example.com/');
    case '/big': {
      const head = '<html><head><title>Big Page</title></head><body>';
      const padding = `<p>${'x'.repeat(1000)}</p>`.repeat(2200);
      return html(200, `${head}${padding}<meta name="description" content="beyond the cap"></body></html>`);
    }
    case '/gzip':
      return html(200, gzipSync(FULL_PAGE), { 'content-encoding': 'gzip' });
    case '/latin1':
      res.writeHead(200, { 'content-type': 'text/html; charset=iso-8859-1' });
      return res.end(Buffer.from('<html><head><title>Caf\u00e9 M\u00fcller</title></head></html>', 'latin1'));
    default:
      return html(404, 'no such page');
  }
}

before(async () => {
  server = http.createServer(site);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

let unique = 0;
/** A URL of the local site whose hits no other test shares. */
function page(path: string, query = ''): string {
  unique += 1;
  const sep = query ? '&' : '';
  return `${origin}${path}?${query}${sep}t=${process.pid}-${unique}`;
}
function hitsOf(url: string): number {
  const u = new URL(url);
  return hits.get(u.pathname + u.search) ?? 0;
}

// ---------------------------------------------------------------------------------------------
// The endpoint and the job, with private networks allowed (the local site is on 127.0.0.1).

describeEachEngine(
  'brand scrape',
  (ctx) => {
    const app = () => ctx().app;

    async function req(
      method: 'GET' | 'POST' | 'PATCH' | 'DELETE',
      url: string,
      headers: Record<string, string>,
      payload?: unknown,
    ) {
      return app().inject({
        method,
        url,
        headers,
        ...(payload === undefined ? {} : { payload: payload as Json }),
      });
    }

    async function defaultBrand(s: Session): Promise<Json> {
      const res = await req('GET', '/v1/my/brands', s.auth);
      assert.equal(res.statusCode, 200);
      return res.json()[0];
    }

    async function getBrand(s: Session, sid: unknown): Promise<Json> {
      const res = await req('GET', `/v1/my/brands/${sid}`, s.auth);
      assert.equal(res.statusCode, 200, res.body);
      return res.json();
    }

    async function scrape(s: Session, sid: unknown, url: string): Promise<void> {
      const res = await req('POST', `/v1/my/brands/${sid}/scrape`, s.auth, { url });
      assert.equal(res.statusCode, 202, res.body);
    }

    async function jobsOf(brand: Json) {
      return listBrandScrapes(ctx().db, brand['account_id'] as number, brand['id'] as number);
    }

    /** Runs due scrapes until none is due. */
    async function drain(): Promise<void> {
      while ((await runDueBrandScrapes(ctx().services.deps)) > 0) {}
    }

    test('POST /v1/my/brands/{sid}/scrape → 202 {status, url} and queues a job; the brand is unchanged until it runs', async () => {
      const s = await signup(app());
      const brand = await defaultBrand(s);
      const url = page('/full');
      const res = await req('POST', `/v1/my/brands/${brand['sid']}/scrape`, s.auth, { url: `  ${url} ` });
      assert.equal(res.statusCode, 202, res.body);
      assert.deepEqual(res.json(), { status: 'scraping', url });
      assert.match(res.headers['content-type'] as string, /application\/json/);
      assert.deepEqual(await getBrand(s, brand['sid']), brand, 'nothing is filled before the job runs');
      const [job, ...rest] = await jobsOf(brand);
      assert.equal(rest.length, 0);
      assert.equal(job!.status, 'pending');
      assert.equal(job!.url, url);
      assert.equal(job!.attempts, 0);
      assert.equal(hitsOf(url), 0, 'the page is fetched by the job, not the request');
    });

    test('the job fills the empty brand fields, source_url and last_scraped_at', async () => {
      const s = await signup(app());
      const brand = await defaultBrand(s);
      const url = page('/full');
      await scrape(s, brand['sid'], url);
      ctx().clock.advance(5_000);
      const ranAt = ctx().clock.now().toISOString();
      assert.ok((await runDueBrandScrapes(ctx().services.deps)) >= 1);
      assert.equal(hitsOf(url), 1);
      assert.equal(agents.get(new URL(url).pathname + new URL(url).search), 'MailwrightBot/1.0');

      const b = await getBrand(s, brand['sid']);
      const kit = fullKit(origin);
      for (const [field, value] of Object.entries(kit)) assert.deepEqual(b[field], value, field);
      assert.equal(b['source_url'], url);
      assert.match(b['last_scraped_at'] as string, ISO_DATE);
      assert.equal(b['last_scraped_at'], ranAt);
      assert.equal(b['updated_at'], ranAt);
      assert.equal(b['complete'], true, 'a brand colour and a company name make the brand complete');
      assert.equal(b['tone'], null, 'tone is not inferred');
      assert.equal(b['industry'], null);
      const [job] = await jobsOf(brand);
      assert.equal(job!.status, 'done');
      assert.equal(job!.attempts, 1);
      assert.equal(job!.error, null);
      assert.equal(job!.locked_until, null);

      const setup = await req('GET', `/v1/my/brands/${brand['sid']}/setup_center`, s.auth);
      const card = setup.json().cards.find((c: Json) => c['id'] === 'brand_scan');
      assert.equal(card.complete, true, 'the brand scan card completes');
    });

    test('a scrape never overwrites what the user set; a second scrape only fills what is still empty', async () => {
      const s = await signup(app());
      const brand = await defaultBrand(s);
      const mine = {
        brand_color: '#00aa55',
        company_name: 'My Own Name',
        font_body: 'Georgia',
        links: [{ url: 'https://mastodon.example/@me', icon: 'mastodon', title: 'Mastodon' }],
      };
      const patched = await req('PATCH', `/v1/my/brands/${brand['sid']}`, s.auth, mine);
      assert.equal(patched.statusCode, 200, patched.body);

      await scrape(s, brand['sid'], page('/other'));
      await drain();
      const first = await getBrand(s, brand['sid']);
      assert.equal(first['brand_color'], '#00aa55');
      assert.equal(first['company_name'], 'My Own Name');
      assert.equal(first['font_body'], 'Georgia');
      assert.deepEqual(first['links'], mine.links);
      assert.equal(first['company_description'], 'Something else entirely.', 'empty fields are filled');
      assert.equal(first['logo'], `${origin}/other-logo.png`);
      assert.equal(first['font_heading'], 'Lato', 'with no heading font, headings use the body font');

      ctx().clock.advance(60_000);
      const url = page('/full');
      await scrape(s, brand['sid'], url);
      await drain();
      const second = await getBrand(s, brand['sid']);
      const kit = fullKit(origin);
      assert.equal(second['company_description'], 'Something else entirely.', 'scraped values are kept too');
      assert.equal(second['logo'], `${origin}/other-logo.png`);
      assert.equal(second['font_heading'], 'Lato');
      assert.equal(second['bg_color'], kit.bg_color, 'still-empty fields are filled');
      assert.equal(second['text_color'], kit.text_color);
      assert.equal(second['brand_color'], '#00aa55');
      assert.deepEqual(second['links'], mine.links);
      assert.equal(second['source_url'], url, 'source_url is always set');
      assert.equal(second['last_scraped_at'], ctx().clock.now().toISOString(), 'last_scraped_at moves');
      assert.ok(
        Date.parse(second['last_scraped_at'] as string) > Date.parse(first['last_scraped_at'] as string),
      );
    });

    test('the alias /v1/my/client_accounts/{sid}/scrape, a numeric id, an API key and a member may scrape', async () => {
      const owner = await signup(app());
      const brand = await defaultBrand(owner);
      const url = page('/full');
      const alias = await req('POST', `/v1/my/client_accounts/${brand['sid']}/scrape`, owner.auth, { url });
      assert.equal(alias.statusCode, 202, alias.body);
      assert.deepEqual(alias.json(), { status: 'scraping', url });
      const byId = await req('POST', `/v1/my/brands/${brand['id']}/scrape`, owner.auth, { url });
      assert.equal(byId.statusCode, 202, byId.body);

      const key = await req('POST', '/v1/my/api_keys', owner.auth, { name: 'agent' });
      const viaKey = await req('POST', `/v1/my/brands/${brand['sid']}/scrape`, bearer(key.json().key), {
        url,
      });
      assert.equal(viaKey.statusCode, 202, viaKey.body);

      await setPlan(ctx().db, brand['account_id'] as number, 'pro');
      const email = uniqueEmail('member');
      const invite = await req('POST', '/v1/my/account/invites', owner.auth, { email, role: 'member' });
      assert.equal(invite.statusCode, 201, invite.body);
      const member = await signup(app(), { email, invite_token: invite.json().token });
      const asMember = await req('POST', `/v1/my/brands/${brand['sid']}/scrape`, member.auth, { url });
      assert.equal(asMember.statusCode, 202, asMember.body);

      const jobs = await jobsOf(brand);
      assert.equal(jobs.length, 4);
      assert.deepEqual(
        jobs.map((j) => j.status),
        ['pending', 'failed', 'failed', 'failed'],
        'a newer request supersedes the pending ones',
      );
      assert.match(jobs[1]!.error!, /superseded/);
      await drain();
      assert.equal(hitsOf(url), 1, 'only the newest request is fetched');
      assert.equal((await getBrand(owner, brand['sid']))['company_name'], 'Acme Widgets');
    });

    test('422 with validation_errors.url for a missing, mistyped or unusable URL', async () => {
      const s = await signup(app());
      const brand = await defaultBrand(s);
      const bad: unknown[] = [
        undefined,
        123,
        null,
        '',
        '   ',
        'not a url',
        'example.com',
        'ftp://example.com/',
        'mailto:hello@example.com',
        'javascript:alert(1)',
        'http://',
        `https://example.com/${'a'.repeat(5000)}`,
        'http://169.254.169.254/latest/meta-data/',
        'http://0.0.0.0/',
        'http://[fe80::1]/',
      ];
      for (const url of bad) {
        const res = await req(
          'POST',
          `/v1/my/brands/${brand['sid']}/scrape`,
          s.auth,
          url === undefined ? {} : { url },
        );
        assert.equal(res.statusCode, 422, `${String(url).slice(0, 60)}: ${res.body}`);
        const body = res.json();
        assert.equal(body.code, 422);
        assert.equal(body.error, true);
        assert.equal(typeof body.message, 'string');
        assert.ok(Array.isArray(body.validation_errors.url), `${String(url).slice(0, 60)}: ${res.body}`);
      }
      assert.equal((await jobsOf(brand)).length, 0, 'nothing was queued');
    });

    test('400 for malformed JSON; 401 without a token or with a bad one', async () => {
      const s = await signup(app());
      const brand = await defaultBrand(s);
      const url = `/v1/my/brands/${brand['sid']}/scrape`;
      const malformed = await app().inject({
        method: 'POST',
        url,
        headers: { ...s.auth, 'content-type': 'application/json' },
        payload: '{"url":',
      });
      assert.equal(malformed.statusCode, 400);
      assert.equal(malformed.json().code, 400);
      assert.equal(malformed.json().error, true);
      for (const headers of [{}, bearer('nskey_live_doesnotexist0000000000000000000000'), bearer('a.b.c')]) {
        for (const path of [url, `/v1/my/client_accounts/${brand['sid']}/scrape`]) {
          const res = await req('POST', path, headers, { url: page('/full') });
          assert.equal(res.statusCode, 401, path);
          assert.equal(res.json().code, 401);
          assert.equal(res.json().error, true);
        }
      }
      assert.equal((await jobsOf(brand)).length, 0);
    });

    test("404 for another account's brand and for a brand that does not exist", async () => {
      const a = await signup(app());
      const b = await signup(app());
      const theirs = await defaultBrand(b);
      for (const sid of [theirs['sid'], theirs['id'], 'doesnotexist00000']) {
        for (const base of ['/v1/my/brands', '/v1/my/client_accounts']) {
          const res = await req('POST', `${base}/${sid}/scrape`, a.auth, { url: page('/full') });
          assert.equal(res.statusCode, 404, `${base}/${sid}`);
          assert.equal(res.json().code, 404);
          assert.equal(res.json().error, true);
        }
      }
      assert.equal((await jobsOf(theirs)).length, 0);
    });

    test('a 5xx is retried with backoff and the job fails after 3 attempts; the brand is untouched', async () => {
      const s = await signup(app());
      const brand = await defaultBrand(s);
      const url = page('/error500');
      await scrape(s, brand['sid'], url);
      const start = ctx().clock.now().getTime();

      await drain();
      let [job] = await jobsOf(brand);
      assert.equal(hitsOf(url), 1);
      assert.equal(job!.status, 'pending');
      assert.equal(job!.attempts, 1);
      assert.match(job!.error!, /500/);
      assert.equal(job!.run_after.getTime(), start + SCRAPE_BACKOFF_MS[0]);

      ctx().clock.advance(SCRAPE_BACKOFF_MS[0] - 1);
      await drain();
      assert.equal(hitsOf(url), 1, 'not retried before its time');

      ctx().clock.advance(1);
      await drain();
      [job] = await jobsOf(brand);
      assert.equal(hitsOf(url), 2);
      assert.equal(job!.status, 'pending');
      assert.equal(job!.attempts, 2);
      assert.equal(job!.run_after.getTime(), ctx().clock.now().getTime() + SCRAPE_BACKOFF_MS[1]);

      ctx().clock.advance(SCRAPE_BACKOFF_MS[1]);
      await drain();
      [job] = await jobsOf(brand);
      assert.equal(hitsOf(url), 3);
      assert.equal(job!.status, 'failed');
      assert.equal(job!.attempts, 3);
      assert.match(job!.error!, /500/);

      ctx().clock.advance(24 * 60 * 60 * 1000);
      await drain();
      assert.equal(hitsOf(url), 3, 'a failed job is not run again');
      const b = await getBrand(s, brand['sid']);
      assert.equal(b['last_scraped_at'], null);
      assert.equal(b['source_url'], null);
      assert.equal(b['company_name'], null);
    });

    test('a transient failure followed by success fills the brand on the retry', async () => {
      const s = await signup(app());
      const brand = await defaultBrand(s);
      const url = page('/flaky');
      await scrape(s, brand['sid'], url);
      await drain();
      assert.equal((await getBrand(s, brand['sid']))['last_scraped_at'], null);
      ctx().clock.advance(SCRAPE_BACKOFF_MS[0]);
      await drain();
      assert.equal(hitsOf(url), 2);
      const [job] = await jobsOf(brand);
      assert.equal(job!.status, 'done');
      assert.equal(job!.attempts, 2);
      assert.equal(job!.error, null);
      assert.equal((await getBrand(s, brand['sid']))['company_name'], 'Acme Widgets');
    });

    test('a 4xx, a non-HTML page and a bad redirect fail at once, with the reason recorded', async () => {
      const cases: [string, RegExp][] = [
        [page('/missing'), /404/],
        [page('/json'), /not an HTML page.*application\/json/],
        [page('/hop', 'n=4'), /too many redirects/],
        [page('/to-ftp'), /ftp:/],
        [page('/to-metadata'), /private or reserved network address/],
      ];
      for (const [url, reason] of cases) {
        const s = await signup(app());
        const brand = await defaultBrand(s);
        await scrape(s, brand['sid'], url);
        await drain();
        const [job] = await jobsOf(brand);
        assert.equal(job!.status, 'failed', url);
        assert.equal(job!.attempts, 1, url);
        assert.match(job!.error!, reason, url);
        ctx().clock.advance(10 * 60 * 1000);
        await drain();
        assert.equal(hitsOf(url), 1, `${url} is not retried`);
        const b = await getBrand(s, brand['sid']);
        assert.equal(b['last_scraped_at'], null, url);
        assert.equal(b['source_url'], null, url);
      }
    });

    test('redirects are followed up to 3 hops, and each hop is checked against the address guard', async () => {
      const s = await signup(app());
      const brand = await defaultBrand(s);
      const hop = page('/hop', 'n=3');
      await scrape(s, brand['sid'], hop);
      await drain();
      const b = await getBrand(s, brand['sid']);
      assert.equal(b['company_name'], 'Acme Widgets');
      assert.equal(b['source_url'], hop, 'source_url is the URL asked for');

      const other = await signup(app());
      const otherBrand = await defaultBrand(other);
      const t = `${process.pid}-zero`;
      await scrape(other, otherBrand['sid'], `${origin}/to-zero?t=${t}`);
      await drain();
      const [job] = await jobsOf(otherBrand);
      assert.equal(job!.status, 'failed');
      assert.match(job!.error!, /0\.0\.0\.0.*private or reserved/);
      assert.equal(hits.get(`/full?t=${t}`) ?? 0, 0, 'the redirect target was never requested');
    });

    test('a job whose worker died is claimed again once its lease expires', async () => {
      const s = await signup(app());
      const brand = await defaultBrand(s);
      const url = page('/full');
      await scrape(s, brand['sid'], url);
      // A worker claims the job and dies before finishing.
      const now = ctx().clock.now();
      const claimed = await claimDueBrandScrapes(
        ctx().db,
        now,
        new Date(now.getTime() + SCRAPE_LEASE_MS),
        100,
      );
      assert.ok(claimed.some((j) => j.brand_id === brand['id']));
      await drain();
      assert.equal(hitsOf(url), 0, 'a leased job is not taken by another worker');
      ctx().clock.advance(SCRAPE_LEASE_MS + 1);
      await drain();
      assert.equal(hitsOf(url), 1);
      const [job] = await jobsOf(brand);
      assert.equal(job!.status, 'done');
      assert.equal(job!.attempts, 2, 'the lost claim counts as an attempt');
      assert.equal((await getBrand(s, brand['sid']))['company_name'], 'Acme Widgets');
    });

    test('concurrent claims never take the same job', async () => {
      const s = await signup(app());
      const brand = await defaultBrand(s);
      const now = ctx().clock.now();
      for (let i = 0; i < 6; i++) {
        await insertBrandScrape(ctx().db, {
          account_id: brand['account_id'] as number,
          brand_id: brand['id'] as number,
          url: page('/full'),
          now,
        });
      }
      const lease = new Date(now.getTime() + SCRAPE_LEASE_MS);
      // Three workers claim two at a time until the queue looks empty to them, all at once.
      const worker = async () => {
        const mine = [];
        for (;;) {
          const batch = await claimDueBrandScrapes(ctx().db, now, lease, 2);
          if (batch.length === 0) return mine;
          mine.push(...batch);
        }
      };
      const batches = await Promise.all([worker(), worker(), worker()]);
      const ids = batches.flat().map((j) => j.id);
      assert.equal(ids.length, 6);
      assert.equal(new Set(ids).size, 6, 'every job was claimed once');
      for (const j of batches.flat()) assert.equal(j.status, 'running');
      ctx().clock.advance(SCRAPE_LEASE_MS + 1);
      await drain();
      assert.ok((await jobsOf(brand)).every((j) => j.status === 'done'));
    });

    test('deleting a brand deletes its queued scrapes', async () => {
      const s = await signup(app());
      const extra = await req('POST', '/v1/my/brands', s.auth, {});
      const brand = extra.json();
      const url = page('/full');
      await scrape(s, brand.sid, url);
      assert.equal((await jobsOf(brand)).length, 1);
      const del = await req('DELETE', `/v1/my/brands/${brand.sid}`, s.auth);
      assert.equal(del.statusCode, 200, del.body);
      assert.equal((await jobsOf(brand)).length, 0);
      await drain();
      assert.equal(hitsOf(url), 0);
    });

    test('housekeeping deletes finished scrapes after 30 days and keeps the rest', async () => {
      const s = await signup(app());
      const brand = await defaultBrand(s);
      await scrape(s, brand['sid'], page('/full'));
      await drain();
      await scrape(s, brand['sid'], page('/error500'));
      await drain();
      assert.deepEqual(
        (await jobsOf(brand)).map((j) => j.status),
        ['pending', 'done'],
      );
      ctx().clock.advance(29 * 24 * 60 * 60 * 1000);
      await housekeeping.run(ctx().services.deps);
      assert.equal((await jobsOf(brand)).length, 2, 'kept for 30 days');
      ctx().clock.advance(2 * 24 * 60 * 60 * 1000);
      await housekeeping.run(ctx().services.deps);
      assert.deepEqual(
        (await jobsOf(brand)).map((j) => j.status),
        ['pending'],
        'a queued job is never purged',
      );
      await drain();
      ctx().clock.advance(SCRAPE_BACKOFF_MS[1]);
      await drain();
    });

    test('bodies are read up to 2 MB, gzip is decoded and the declared charset is honoured', async () => {
      const cases: [string, Json][] = [
        [page('/big'), { company_name: 'Big Page', company_description: null }],
        [page('/gzip'), { company_name: 'Acme Widgets', brand_color: '#1a73e8' }],
        [page('/latin1'), { company_name: 'Caf\u00e9 M\u00fcller' }],
      ];
      for (const [url, expected] of cases) {
        const s = await signup(app());
        const brand = await defaultBrand(s);
        await scrape(s, brand['sid'], url);
        await drain();
        const [job] = await jobsOf(brand);
        assert.equal(job!.status, 'done', `${url}: ${job!.error}`);
        const b = await getBrand(s, brand['sid']);
        for (const [field, value] of Object.entries(expected))
          assert.equal(b[field], value, `${url} ${field}`);
      }
    });
  },
  { ALLOW_PRIVATE_NETWORK: 'true' },
);

// ---------------------------------------------------------------------------------------------
// The default: private networks are refused, at the request and again in the job.

describeEachEngine('brand scrape without private networks', (ctx) => {
  test('a URL whose host is or resolves to a private address → 422', async () => {
    assert.equal(ctx().config.allowPrivateNetwork, false);
    const s = await signup(ctx().app);
    const brand = (
      await ctx().app.inject({ method: 'GET', url: '/v1/my/brands', headers: s.auth })
    ).json()[0];
    const port = (server.address() as AddressInfo).port;
    for (const url of [
      `http://127.0.0.1:${port}/full`,
      `http://localhost:${port}/full`,
      'http://[::1]/',
      'http://[::ffff:127.0.0.1]/',
      'http://10.0.0.1/',
      'http://192.168.1.1/',
      'http://169.254.169.254/',
    ]) {
      const res = await ctx().app.inject({
        method: 'POST',
        url: `/v1/my/brands/${brand.sid}/scrape`,
        headers: s.auth,
        payload: { url },
      });
      assert.equal(res.statusCode, 422, `${url}: ${res.body}`);
      assert.match(res.json().validation_errors.url[0], /private or internal/, url);
    }
    assert.equal((await listBrandScrapes(ctx().db, brand.account_id, brand.id)).length, 0);
  });

  test('the job checks the address again: a queued private URL fails without being fetched', async () => {
    const s = await signup(ctx().app);
    const brand = (
      await ctx().app.inject({ method: 'GET', url: '/v1/my/brands', headers: s.auth })
    ).json()[0];
    const url = page('/full');
    await insertBrandScrape(ctx().db, {
      account_id: brand.account_id,
      brand_id: brand.id,
      url,
      now: ctx().clock.now(),
    });
    while ((await runDueBrandScrapes(ctx().services.deps)) > 0) {}
    const [job] = await listBrandScrapes(ctx().db, brand.account_id, brand.id);
    assert.equal(job!.status, 'failed');
    assert.equal(job!.attempts, 1, 'a refused address is not retried');
    assert.match(job!.error!, /private or reserved network address/);
    assert.equal(hitsOf(url), 0);
  });
});

// ---------------------------------------------------------------------------------------------
// Pure parts.

describe('extractBrandKit', () => {
  test('reads the full sample page', () => {
    assert.deepEqual(extractBrandKit(FULL_PAGE, 'https://acme.example/en/'), fullKit('https://acme.example'));
  });

  test('an empty or unrelated page yields nothing', () => {
    const empty = {
      brand_color: null,
      bg_color: null,
      text_color: null,
      font_heading: null,
      font_body: null,
      logo: null,
      company_name: null,
      company_description: null,
      links: [],
    };
    assert.deepEqual(extractBrandKit('', 'https://a.example/'), empty);
    assert.deepEqual(extractBrandKit('<p>Hello <b>world</b></p>', 'https://a.example/'), empty);
  });

  test('brand colour: the theme colour, else the most used chromatic CSS colour', () => {
    const css = (rules: string, head = '') =>
      extractBrandKit(
        `<html><head>${head}<style>${rules}</style></head><body></body></html>`,
        'https://a.example/',
      ).brand_color;
    assert.equal(css('a { color: #E11D48 } .b { background: #e11d48 } .c { color: #0a0 }'), '#e11d48');
    assert.equal(css('a { color: #fff } p { color: #333 } b { color: #000 } .x { color: #f60 }'), '#ff6600');
    assert.equal(css('a { color: #fff } p { color: #333333 }'), null, 'greys are not a brand colour');
    assert.equal(css('.x { color: #f60 }', '<meta name="theme-color" content="#123abc">'), '#123abc');
    assert.equal(
      css('.x { color: #f60 }', '<meta name="theme-color" content="#ffffff">'),
      '#ff6600',
      'a white theme colour only tints the browser',
    );
    assert.equal(css('.x { color: rgb(0, 128, 255) } .y { color: rgba(0,128,255,.9) }'), '#0080ff');
    assert.equal(css(':root { --brand: #7c3aed } a { color: var(--brand) } b { color: #10b981 }'), '#7c3aed');
    const inline = extractBrandKit(
      '<body><a style="color:#0EA5E9">a</a><b style="color: #0ea5e9">b</b><i style="color:#f00">c</i></body>',
      'https://a.example/',
    );
    assert.equal(inline.brand_color, '#0ea5e9', 'inline styles count');
  });

  test('background and text colour come from the body styles', () => {
    const inline = extractBrandKit(
      '<body style="background-color: rgb(10, 20, 30); color: white">x</body>',
      'https://a.example/',
    );
    assert.equal(inline.bg_color, '#0a141e');
    assert.equal(inline.text_color, '#ffffff');
    const styled = extractBrandKit(
      '<style>html { background: #eee } body { color: #111 } .card { background: #f00 }</style>',
      'https://a.example/',
    );
    assert.equal(styled.bg_color, '#eeeeee', 'html stands in for body');
    assert.equal(styled.text_color, '#111111');
  });

  test('fonts: CSS of body and headings, else Google Fonts', () => {
    const kit = (html: string) => extractBrandKit(html, 'https://a.example/');
    const google =
      '<link rel="stylesheet" href="https://fonts.googleapis.com/css?family=Roboto:400,700|Open+Sans">';
    assert.deepEqual(
      [kit(google).font_body, kit(google).font_heading],
      ['Roboto', 'Open Sans'],
      'the first loaded font is the body font',
    );
    const one = '<style>@import url("https://fonts.googleapis.com/css2?family=Work+Sans:wght@400");</style>';
    assert.deepEqual([kit(one).font_body, kit(one).font_heading], ['Work Sans', 'Work Sans']);
    const system =
      '<style>body { font-family: -apple-system, BlinkMacSystemFont, "Helvetica Neue", sans-serif }</style>';
    assert.equal(kit(system).font_body, 'Helvetica Neue', 'system aliases are skipped');
    assert.equal(kit('<style>body { font-family: sans-serif }</style>').font_body, null);
  });

  test('logo: an image marked as the logo, else og:logo, the touch icon, og:image; always absolute', () => {
    const kit = (html: string, base = 'https://a.example/shop/') => extractBrandKit(html, base).logo;
    assert.equal(
      kit('<img src="/hero.jpg"><img alt="Acme logo" src="brand.png">'),
      'https://a.example/shop/brand.png',
    );
    assert.equal(
      kit('<div id="site-logo"><img src="//cdn.example/x.svg"></div>'),
      'https://cdn.example/x.svg',
      'an image inside a logo container',
    );
    assert.equal(
      kit('<img class="Logo" srcset="/l-1x.png 1x, /l-2x.png 2x">'),
      'https://a.example/l-1x.png',
      'srcset when there is no src',
    );
    assert.equal(
      kit('<head><base href="https://static.example/assets/"></head><img id="logo" src="l.png">'),
      'https://static.example/assets/l.png',
    );
    assert.equal(
      kit('<link rel="apple-touch-icon" href="/touch.png"><meta property="og:image" content="/og.png">'),
      'https://a.example/touch.png',
    );
    assert.equal(
      kit('<meta property="og:image" content="https://img.example/og.png">'),
      'https://img.example/og.png',
    );
    assert.equal(kit('<img class="logo" src="data:image/png;base64,AAAA">'), null, 'data: URLs are not kept');
  });

  test('company name and description', () => {
    const kit = (html: string) => extractBrandKit(html, 'https://a.example/');
    assert.equal(kit('<title>\n  Acme\n  Store </title>').company_name, 'Acme Store');
    assert.equal(kit('<title>T</title><meta property="og:site_name" content="Acme">').company_name, 'Acme');
    assert.equal(kit('<meta property="og:description" content="From OG">').company_description, 'From OG');
    assert.equal(
      kit('<meta name="Description" content="Meta wins"><meta property="og:description" content="OG">')
        .company_description,
      'Meta wins',
    );
    assert.equal((kit(`<title>${'n'.repeat(500)}</title>`).company_name as string).length, 200);
  });

  test('social links: profiles only, one per platform, in page order', () => {
    const links = extractBrandKit(
      `<a href="https://x.com/acme">X</a>
       <a href="https://twitter.com/acme">dup of X</a>
       <a href="https://www.facebook.com/sharer/sharer.php?u=1">share</a>
       <a href="https://facebook.com/">root</a>
       <a href="https://m.facebook.com/acme#about">fb</a>
       <a href="https://www.youtube.com/watch?v=abc">a video</a>
       <a href="https://www.linkedin.com/shareArticle?url=x">share</a>
       <a href="/relative">local</a>
       <a href="https://mastodon.social/@acme">not listed</a>`,
      'https://a.example/',
    ).links;
    assert.deepEqual(links, [
      { url: 'https://x.com/acme', icon: 'x', title: 'X' },
      { url: 'https://m.facebook.com/acme', icon: 'facebook', title: 'Facebook' },
    ]);
  });
});

describe('address guard', () => {
  test('classifies addresses', () => {
    const cases: [string, string][] = [
      ['8.8.8.8', 'public'],
      ['172.32.0.1', 'public'],
      ['2606:4700::1111', 'public'],
      ['::ffff:8.8.8.8', 'public'],
      ['10.1.2.3', 'private'],
      ['172.16.0.1', 'private'],
      ['172.31.255.255', 'private'],
      ['192.168.0.1', 'private'],
      ['127.0.0.1', 'private'],
      ['127.255.0.9', 'private'],
      ['100.64.0.1', 'private'],
      ['::1', 'private'],
      ['[::1]', 'private'],
      ['fd12:3456::1', 'private'],
      ['fc00::1', 'private'],
      ['::ffff:127.0.0.1', 'private'],
      ['::ffff:7f00:1', 'private'],
      ['::ffff:10.0.0.1', 'private'],
      ['64:ff9b::a00:1', 'private'],
      ['2002:c0a8:101::', 'private'],
      ['0.0.0.0', 'blocked'],
      ['0.1.2.3', 'blocked'],
      ['169.254.169.254', 'blocked'],
      ['::ffff:169.254.169.254', 'blocked'],
      ['::', 'blocked'],
      ['fe80::1', 'blocked'],
      ['fe80::1%eth0', 'blocked'],
      ['febf::1', 'blocked'],
      ['224.0.0.1', 'blocked'],
      ['255.255.255.255', 'blocked'],
      ['ff02::1', 'blocked'],
      ['not-an-ip', 'blocked'],
    ];
    for (const [ip, cls] of cases) assert.equal(classifyAddress(ip), cls, ip);
  });

  test('private addresses are allowed only when the operator allows them; blocked ones never', () => {
    assert.equal(isAddressAllowed('8.8.8.8', false), true);
    assert.equal(isAddressAllowed('10.0.0.1', false), false);
    assert.equal(isAddressAllowed('10.0.0.1', true), true);
    assert.equal(isAddressAllowed('169.254.169.254', true), false);
    assert.equal(isAddressAllowed('0.0.0.0', true), false);
  });

  test('the connection-time lookup refuses a name that resolves to a refused address', async () => {
    const resolve = (allowPrivate: boolean, all: boolean) =>
      new Promise<unknown>((done) => {
        guardedLookup(allowPrivate)('localhost', { all }, (err, address) => done(err ?? address));
      });
    assert.ok((await resolve(false, false)) instanceof BlockedAddressError);
    assert.ok((await resolve(false, true)) instanceof BlockedAddressError);
    const loopback = ['127.0.0.1', '::1'];
    assert.ok(loopback.includes((await resolve(true, false)) as string));
    const all = (await resolve(true, true)) as { address: string }[];
    assert.ok(all.length > 0 && all.every((a) => loopback.includes(a.address)), JSON.stringify(all));
  });
});
