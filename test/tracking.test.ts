import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { applyTracking, createTrackingLinks, listUnsubscribeHeaders } from '../src/delivery/tracking.ts';
import { recordClick, recordOpen } from '../src/domain/engagement/engagement.ts';
import { validateDesign } from '../src/render/components.ts';
import { brandRenderContext, compileDesign, personalize } from '../src/render/render.ts';
import { countMessageEvents, messageEngagement } from '../src/store/engagement.ts';
import { insertMessage } from '../src/store/messages.ts';
import { describeEachEngine, type Session, signup, uniqueEmail } from './helpers.ts';

type Json = Record<string, unknown>;

const SECRET = 'a'.repeat(64);
const APP_URL = 'https://mw.test';
const links = createTrackingLinks({ secretKey: SECRET, appUrl: APP_URL });

/** The token in a tracking URL (a click token has two parts: `<message>.<link>`). */
function tokenOf(url: string): string {
  return url.replace(/^.*\/(?:t\/[oc]|u)\/([^/?]+?)(?:\.gif)?(?:\?.*)?$/, '$1');
}

/** Every `href` value of an HTML string, raw (as written in the markup). */
function hrefs(html: string): string[] {
  return [...html.matchAll(/<a\s[^>]*?href\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))/gi)].map(
    (m) => m[1] ?? m[2] ?? m[3]!,
  );
}

/** The destination carried by a click URL (HTML-entity encoded in markup). */
function destinationOf(clickHref: string): string {
  const decoded = clickHref
    .replace(/&#39;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&');
  const url = new URL(decoded);
  return url.searchParams.get('u')!;
}

describe('tracking tokens', () => {
  test('open, click and unsubscribe URLs round-trip to the message id', () => {
    for (const id of [1, 255, 256, 65_535, 2_147_483_647, 2 ** 40 + 7]) {
      const open = links.openUrl(id);
      assert.match(open, /^https:\/\/mw\.test\/t\/o\/[A-Za-z0-9_-]+\.gif$/);
      assert.equal(links.verifyOpen(tokenOf(open)), id);
      const dest = 'https://shop.test/a?x=1&y=2#frag';
      const click = links.clickUrl(id, dest);
      assert.match(click, /^https:\/\/mw\.test\/t\/c\/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{16}\?u=/);
      assert.equal(new URL(click).searchParams.get('u'), dest);
      assert.equal(links.verifyClick(tokenOf(click), dest), id);
      const unsub = links.unsubscribeUrl(id);
      assert.match(unsub, /^https:\/\/mw\.test\/u\/[A-Za-z0-9_-]+$/);
      assert.equal(links.verifyUnsubscribe(tokenOf(unsub)), id);
      // Short: id bytes + 128-bit MAC.
      assert.ok(tokenOf(unsub).length <= 30, tokenOf(unsub));
    }
  });

  test('tampered, forged, cross-purpose and malformed tokens are rejected', () => {
    const token = tokenOf(links.unsubscribeUrl(42));
    // Every single-character change is caught (id or MAC).
    for (let i = 0; i < token.length; i++) {
      const c = token[i] === 'A' ? 'B' : 'A';
      const tampered = token.slice(0, i) + c + token.slice(i + 1);
      assert.equal(links.verifyUnsubscribe(tampered), null, `position ${i}`);
    }
    // Moving the MAC onto another id.
    const raw = Buffer.from(token, 'base64url');
    raw[0] = 43;
    assert.equal(links.verifyUnsubscribe(raw.toString('base64url')), null);
    // Another server's key.
    const other = createTrackingLinks({ secretKey: 'b'.repeat(64), appUrl: APP_URL });
    assert.equal(links.verifyUnsubscribe(tokenOf(other.unsubscribeUrl(42))), null);
    // A token of one purpose is not accepted as another.
    const open = tokenOf(links.openUrl(42));
    assert.equal(links.verifyUnsubscribe(open), null);
    assert.equal(links.verifyOpen(token), null);
    assert.equal(links.verifyClick(open, 'https://x.test/'), null);
    assert.equal(links.verifyOpen(tokenOf(links.clickUrl(42, 'https://x.test/'))), null);
    // Garbage, truncation, padding, non-strings.
    for (const bad of [
      '',
      'abc',
      token.slice(0, -1),
      `${token}A`,
      `${token}=`,
      `${token}.gif`,
      '!'.repeat(27),
    ]) {
      assert.equal(links.verifyUnsubscribe(bad), null, bad);
    }
    assert.equal(links.verifyOpen(undefined as unknown as string), null);
    // A zero-padded id (non-canonical) with a correct-looking length is refused.
    const padded = Buffer.concat([Buffer.from([0]), Buffer.from(token, 'base64url')]).toString('base64url');
    assert.equal(links.verifyUnsubscribe(padded), null);
  });

  test('a click token is bound to its destination: no open redirect', () => {
    const token = tokenOf(links.clickUrl(7, 'https://shop.test/sale'));
    assert.equal(links.verifyClick(token, 'https://shop.test/sale'), 7);
    for (const other of [
      'https://evil.test/',
      'https://shop.test/sale/',
      'https://shop.test/sale?x',
      'https://SHOP.test/sale',
      'https://shop.test/sal',
    ]) {
      assert.equal(links.verifyClick(token, other), null, other);
    }
  });

  test('a click token is <message part>.<link part>: the link part signs the URL alone, once for every recipient', () => {
    const url = 'https://shop.test/sale';
    const [msg7, link7] = tokenOf(links.clickUrl(7, url)).split('.');
    const [msg8, link8] = tokenOf(links.clickUrl(8, url)).split('.');
    // The same link signature serves every message; the message parts differ.
    assert.equal(link7, link8);
    assert.notEqual(msg7, msg8);
    assert.equal(links.clickUrl(8, url), links.clickPrefix(8) + links.clickSuffix(url));
    // Tampering with either part, or taking a part from elsewhere, is refused.
    const other = createTrackingLinks({ secretKey: 'b'.repeat(64), appUrl: APP_URL });
    const [, foreignLink] = tokenOf(other.clickUrl(7, url)).split('.');
    const [, evilLink] = tokenOf(links.clickUrl(7, 'https://evil.test/')).split('.');
    const openPart = tokenOf(links.openUrl(7));
    for (const bad of [
      `${msg7}.${foreignLink}`,
      `${msg7}.${evilLink}`,
      `${openPart}.${link7}`,
      `${msg7}.${link7!.slice(0, -1)}${link7!.endsWith('A') ? 'B' : 'A'}`,
      `${msg7}.`,
      `.${link7}`,
      `${msg7}${link7}`,
      `${msg7}.${link7}.${link7}`,
    ]) {
      assert.equal(links.verifyClick(bad, url), null, bad);
    }
    assert.equal(links.verifyClick(`${msg7}.${link7}`, url), 7);
  });

  test('List-Unsubscribe headers: https URL, optional mailto, one-click post', () => {
    assert.deepEqual(listUnsubscribeHeaders(links, 9), {
      'List-Unsubscribe': `<${links.unsubscribeUrl(9)}>`,
      'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
    });
    assert.equal(
      listUnsubscribeHeaders(links, 9, 'unsub+9@mw.test')['List-Unsubscribe'],
      `<${links.unsubscribeUrl(9)}>, <mailto:unsub+9@mw.test>`,
    );
  });
});

describe('applyTracking', () => {
  const apply = (html: string, extra: Partial<Parameters<typeof applyTracking>[1]> = {}) =>
    applyTracking(html, { messageId: 5, opens: false, clicks: true, links, ...extra });

  test('rewrites http(s) links; leaves mailto, tel, anchors, relative and javascript links alone', () => {
    const html =
      '<p><a href="https://shop.test/a">a</a> <A HREF="HTTP://shop.test/B">b</A> ' +
      '<a href="mailto:x@y.test">m</a> <a href="tel:+4420">t</a> <a href="#top">h</a> ' +
      '<a href="/relative">r</a> <a href="javascript:alert(1)">j</a> <a name="anchor">n</a> ' +
      '<abbr title="x">abbr</abbr> <a>plain</a></p>';
    const out = apply(html);
    const got = hrefs(out);
    assert.equal(got.length, 7);
    assert.equal(destinationOf(got[0]!), 'https://shop.test/a');
    assert.equal(destinationOf(got[1]!), 'HTTP://shop.test/B');
    assert.deepEqual(got.slice(2), [
      'mailto:x@y.test',
      'tel:+4420',
      '#top',
      '/relative',
      'javascript:alert(1)',
    ]);
    for (const h of got.slice(0, 2)) {
      const url = new URL(h.replace(/&amp;/g, '&'));
      assert.equal(url.origin, APP_URL);
      assert.equal(links.verifyClick(tokenOf(url.pathname), url.searchParams.get('u')!), 5);
    }
    assert.ok(
      out.includes('<a name="anchor">n</a>') && out.includes('<abbr title="x">abbr</abbr> <a>plain</a>'),
    );
  });

  test('entity-encoded hrefs are decoded once and re-encoded safely', () => {
    const out = apply(
      '<a href="https://shop.test/p?a=1&amp;b=2&#38;c=3&#x26;d=&quot;q&quot;">x</a>' +
        "<a class='btn' href='https://shop.test/s?q=it&apos;s'>y</a>" +
        '<a href=https://shop.test/u?k=v>z</a>',
    );
    const got = hrefs(out);
    assert.equal(destinationOf(got[0]!), 'https://shop.test/p?a=1&b=2&c=3&d="q"');
    assert.equal(destinationOf(got[1]!), "https://shop.test/s?q=it's");
    assert.equal(destinationOf(got[2]!), 'https://shop.test/u?k=v');
    // The rewritten attribute is always double-quoted and the class attribute is kept.
    assert.match(out, /<a class='btn' href="https:\/\/mw\.test\/t\/c\/[^"]+">y<\/a>/);
    assert.doesNotMatch(out, /&(?!amp;|quot;|#39;|lt;|gt;)/, 'no bare ampersands in the output');
  });

  test('the unsubscribe link, links already pointing here and skipUrls stay as they are', () => {
    const unsub = links.unsubscribeUrl(5);
    const tracked = links.clickUrl(5, 'https://shop.test/x').replace(/&/g, '&amp;');
    const html =
      `<a href="${unsub}">unsubscribe</a><a href="${tracked}">t</a>` +
      `<a href="${links.unsubscribeUrl(6)}">other</a><a href="https://keep.test/?a=1&amp;b=2">k</a>` +
      '<a href="https://shop.test/y">y</a>';
    const out = apply(html, { skipUrls: ['https://keep.test/?a=1&b=2'] });
    const got = hrefs(out);
    assert.deepEqual(got.slice(0, 4), [
      unsub,
      tracked,
      links.unsubscribeUrl(6),
      'https://keep.test/?a=1&amp;b=2',
    ]);
    assert.equal(destinationOf(got[4]!), 'https://shop.test/y');
    // Applying twice changes nothing more.
    assert.equal(apply(apply(html, { opens: true }), { opens: true }), apply(html, { opens: true }));
  });

  test('only the href attribute changes; data-href, titles containing href= and other bytes are kept', () => {
    const html =
      '<a data-href="https://no.test/" title=\'see href="https://no.test/"\' href="https://yes.test/" ' +
      'style="color:red">x</a>\n<!--[if mso]><a href="https://mso.test/">o</a><![endif]-->';
    const out = apply(html);
    assert.equal(out.split('https://no.test/').length - 1, 2, 'both decoys untouched');
    const first = out.match(
      /^<a data-href="https:\/\/no\.test\/" title='see href="https:\/\/no\.test\/"' href="([^"]+)" style="color:red">x<\/a>\n<!--\[if mso\]><a href="([^"]+)">o<\/a><!\[endif\]-->$/,
    );
    assert.ok(first, out);
    assert.equal(destinationOf(first[1]!), 'https://yes.test/');
    assert.equal(destinationOf(first[2]!), 'https://mso.test/');
  });

  test('the open pixel goes just before </body>, or at the end; switches are honoured', () => {
    const withBody = '<html><body><p>Hi <a href="https://a.test/">a</a></p></BODY></html>';
    const out = applyTracking(withBody, { messageId: 5, opens: true, clicks: false, links });
    const pixel = `<img src="${links.openUrl(5)}" width="1" height="1" alt="" border="0"`;
    assert.ok(out.includes(`${pixel}`));
    assert.ok(out.indexOf(pixel) < out.indexOf('</BODY>') && out.endsWith('</BODY></html>'));
    assert.ok(out.includes('<a href="https://a.test/">'), 'clicks off: links untouched');
    const fragment = applyTracking('<p>x</p>', { messageId: 5, opens: true, clicks: false, links });
    assert.ok(fragment.startsWith('<p>x</p><img src="') && fragment.endsWith('/>'));
    assert.equal(applyTracking(withBody, { messageId: 5, opens: false, clicks: false, links }), withBody);
  });

  test('an MJML-rendered marketing email: every web link tracked, the footer unsubscribe link not', async () => {
    const brand = brandRenderContext({
      company_name: 'Acme',
      physical_address: '1 Road',
      logo: null,
      brand_color: '#aa0000',
      bg_color: null,
      text_color: null,
      font_heading: null,
      font_body: null,
      default_theme: {},
      links: [],
    });
    const design = validateDesign({
      theme: {},
      sections: [
        {
          type: 'text',
          props: {
            content:
              '<p><a href="https://shop.test/a?x=1&y=2">shop</a> <a href="mailto:help@acme.test">mail</a></p>',
          },
        },
        { type: 'button', props: { text: 'Go', href: 'https://shop.test/b?q=a%20b&z=1' } },
      ],
    });
    const compiled = await compileDesign(design, brand, { marketing: true });
    const html = personalize(compiled, { unsubscribe_url: links.unsubscribeUrl(5) } as never).html;
    const out = applyTracking(html, { messageId: 5, opens: true, clicks: true, links });
    const got = hrefs(out);
    const dests = got.filter((h) => h.startsWith(`${APP_URL}/t/c/`)).map(destinationOf);
    assert.deepEqual(dests, ['https://shop.test/a?x=1&y=2', 'https://shop.test/b?q=a%20b&z=1']);
    assert.ok(got.includes('mailto:help@acme.test'));
    assert.ok(got.includes(links.unsubscribeUrl(5)));
    // Outside the rewritten hrefs and the pixel, the document is byte for byte the same.
    const strip = (s: string) =>
      s.replace(/href="[^"]*"/g, 'href=""').replace(/<img src="https:\/\/mw\.test\/t\/o\/[^>]+\/>/, '');
    assert.equal(strip(out), strip(html));
  });
});

describeEachEngine('open and click tracking', (ctx) => {
  const app = () => ctx().app;
  const deps = () => ctx().services.deps;
  const live = () => ctx().services.engagement.links;

  type Tenant = Session & { accountId: number; brandId: number; brandSid: string };

  async function owner(): Promise<Tenant> {
    const s = await signup(app());
    const account = (await app().inject({ method: 'GET', url: '/v1/my/account', headers: s.auth })).json();
    const brand = account.brands[0];
    return { ...s, accountId: account.id, brandId: brand.id, brandSid: brand.sid };
  }

  async function contact(t: Tenant, email: string): Promise<number> {
    const res = await app().inject({
      method: 'POST',
      url: '/v1/my/contacts',
      headers: t.auth,
      payload: { email },
    });
    assert.equal(res.statusCode, 201, res.body);
    return res.json().id;
  }

  async function message(t: Tenant, to: string, contactId: number | null) {
    return insertMessage(ctx().db, {
      account_id: t.accountId,
      brand_id: t.brandId,
      channel: 'email',
      source_type: 'campaign',
      marketing: true,
      contact_id: contactId,
      to,
      subject: 'Hello',
      html: '<p>Hi</p>',
      status: 'sent',
    });
  }

  async function contactRow(id: number) {
    return ctx()
      .db.selectFrom('contacts')
      .select(['unique_opens', 'clicks', 'last_opened_at', 'last_clicked_at', 'last_interacted_at'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
  }

  const pixelPath = (id: number) => new URL(live().openUrl(id)).pathname;
  const clickPath = (id: number, url: string) => {
    const u = new URL(live().clickUrl(id, url));
    return `${u.pathname}${u.search}`;
  };

  test('the open pixel is a no-cache GIF and records the open once per message on the contact', async () => {
    const t = await owner();
    const email = uniqueEmail('open');
    const cid = await contact(t, email);
    const m = await message(t, email, cid);
    const now = ctx().clock.now();

    const res = await app().inject({
      method: 'GET',
      url: pixelPath(m.id),
      headers: { 'user-agent': 'MailClient/1.0' },
    });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'image/gif');
    assert.match(String(res.headers['cache-control']), /no-store/);
    assert.equal(res.rawPayload.subarray(0, 6).toString(), 'GIF89a');
    assert.ok(res.rawPayload.length < 64 && res.rawPayload.at(-1) === 0x3b, 'a complete, tiny GIF');

    const after1 = await messageEngagement(ctx().db, m.id);
    assert.equal(after1!.open_count, 1);
    assert.equal(after1!.opened_at!.getTime(), now.getTime());
    const c1 = await contactRow(cid);
    assert.equal(c1.unique_opens, 1);
    assert.equal(c1.last_opened_at!.getTime(), now.getTime());
    assert.equal(c1.last_interacted_at!.getTime(), now.getTime());
    assert.equal(c1.clicks, 0);
    const events = await ctx()
      .db.selectFrom('message_events')
      .selectAll()
      .where('message_id', '=', m.id)
      .execute();
    assert.equal(events.length, 1);
    assert.equal(events[0]!.kind, 'open');
    assert.equal(events[0]!.recipient, email);
    assert.equal(events[0]!.account_id, t.accountId);
    assert.equal(events[0]!.brand_id, t.brandId);
    assert.equal(events[0]!.user_agent, 'MailClient/1.0');
    assert.equal(typeof events[0]!.ip, 'string');

    ctx().clock.advance(60_000);
    await app().inject({ method: 'GET', url: pixelPath(m.id) });
    const after2 = await messageEngagement(ctx().db, m.id);
    assert.equal(after2!.open_count, 2);
    assert.equal(after2!.opened_at!.getTime(), now.getTime(), 'opened_at keeps the first open');
    const c2 = await contactRow(cid);
    assert.equal(c2.unique_opens, 1, 'a second open of the same message is not a unique open');
    assert.equal(c2.last_opened_at!.getTime(), now.getTime() + 60_000);
    assert.equal(await countMessageEvents(ctx().db, m.id, 'open'), 2);

    // A second message to the same contact is a second unique open.
    const m2 = await message(t, email, cid);
    await app().inject({ method: 'GET', url: pixelPath(m2.id) });
    assert.equal((await contactRow(cid)).unique_opens, 2);
  });

  test('10 concurrent first opens count one unique open', async () => {
    const t = await owner();
    const email = uniqueEmail('race');
    const cid = await contact(t, email);
    const m = await message(t, email, cid);
    const results = await Promise.all(
      Array.from({ length: 10 }, () => recordOpen(deps(), m.id, { ip: '192.0.2.1', user_agent: null })),
    );
    assert.equal(results.filter((r) => r.first_open).length, 1);
    assert.equal((await messageEngagement(ctx().db, m.id))!.open_count, 10);
    assert.equal((await contactRow(cid)).unique_opens, 1);
    assert.equal(await countMessageEvents(ctx().db, m.id, 'open'), 10);
    // And through HTTP as well.
    const m2 = await message(t, email, cid);
    const responses = await Promise.all(
      Array.from({ length: 10 }, () => app().inject({ method: 'GET', url: pixelPath(m2.id) })),
    );
    assert.ok(responses.every((r) => r.statusCode === 200));
    assert.equal((await messageEngagement(ctx().db, m2.id))!.open_count, 10);
    assert.equal((await contactRow(cid)).unique_opens, 2);
  });

  test('HEAD requests (link checkers) get the same answers but record nothing', async () => {
    const t = await owner();
    const email = uniqueEmail('head');
    const cid = await contact(t, email);
    const m = await message(t, email, cid);
    const pixel = await app().inject({ method: 'HEAD', url: pixelPath(m.id) });
    assert.equal(pixel.statusCode, 200);
    assert.equal(pixel.headers['content-type'], 'image/gif');
    const click = await app().inject({ method: 'HEAD', url: clickPath(m.id, 'https://shop.test/') });
    assert.equal(click.statusCode, 302);
    assert.equal(click.headers['location'], 'https://shop.test/');
    const e = (await messageEngagement(ctx().db, m.id))!;
    assert.equal(e.open_count, 0);
    assert.equal(e.click_count, 0);
    assert.equal((await contactRow(cid)).unique_opens, 0);
  });

  test('bad pixel tokens still get the GIF but record nothing', async () => {
    const t = await owner();
    const email = uniqueEmail('badopen');
    const m = await message(t, email, await contact(t, email));
    const good = tokenOf(live().openUrl(m.id));
    const forged = tokenOf(createTrackingLinks({ secretKey: 'z'.repeat(64), appUrl: APP_URL }).openUrl(m.id));
    const unsub = tokenOf(live().unsubscribeUrl(m.id));
    for (const token of [forged, unsub, `${good.slice(0, -2)}AA`, 'nonsense', 'x'.repeat(90)]) {
      const res = await app().inject({ method: 'GET', url: `/t/o/${token}.gif` });
      assert.equal(res.statusCode, 200, token);
      assert.equal(res.headers['content-type'], 'image/gif');
    }
    assert.equal((await messageEngagement(ctx().db, m.id))!.open_count, 0);
    assert.equal(await countMessageEvents(ctx().db, m.id, 'open'), 0);
  });

  test('a click redirects to the signed URL, records the click, implies the open and rolls up', async () => {
    const t = await owner();
    const email = uniqueEmail('click');
    const cid = await contact(t, email);
    const m = await message(t, email, cid);
    const now = ctx().clock.now();
    const dest = 'https://shop.test/sale?utm_source=mail&x=1';
    const res = await app().inject({ method: 'GET', url: clickPath(m.id, dest) });
    assert.equal(res.statusCode, 302, res.body);
    assert.equal(res.headers['location'], dest);
    assert.match(String(res.headers['cache-control']), /no-store/);

    const e = (await messageEngagement(ctx().db, m.id))!;
    assert.equal(e.click_count, 1);
    assert.equal(e.clicked_at!.getTime(), now.getTime());
    assert.equal(e.open_count, 1, 'a click with no open recorded counts as the open');
    assert.equal(e.opened_at!.getTime(), now.getTime());
    const c = await contactRow(cid);
    assert.equal(c.clicks, 1);
    assert.equal(c.unique_opens, 1);
    assert.equal(c.last_clicked_at!.getTime(), now.getTime());
    assert.equal(c.last_opened_at!.getTime(), now.getTime());
    assert.equal(c.last_interacted_at!.getTime(), now.getTime());
    const ev = await ctx()
      .db.selectFrom('message_events')
      .selectAll()
      .where('message_id', '=', m.id)
      .where('kind', '=', 'click')
      .executeTakeFirstOrThrow();
    assert.equal(ev.url, dest);
    assert.equal(ev.recipient, email);

    // Another link of the same message, then an open: counters move, the per-message rollups do not.
    ctx().clock.advance(5_000);
    const second = await app().inject({ method: 'GET', url: clickPath(m.id, 'https://shop.test/other') });
    assert.equal(second.statusCode, 302);
    await app().inject({ method: 'GET', url: pixelPath(m.id) });
    const e2 = (await messageEngagement(ctx().db, m.id))!;
    assert.equal(e2.click_count, 2);
    assert.equal(e2.open_count, 2);
    assert.equal(e2.clicked_at!.getTime(), now.getTime());
    const c2 = await contactRow(cid);
    assert.equal(c2.clicks, 1, 'contact clicks count clicked emails, once per message');
    assert.equal(c2.unique_opens, 1);
    assert.equal(c2.last_clicked_at!.getTime(), now.getTime() + 5_000);

    // Concurrent first clicks on a fresh message count once.
    const m2 = await message(t, email, cid);
    const results = await Promise.all(
      Array.from({ length: 10 }, () => recordClick(deps(), m2.id, 'https://shop.test/', {})),
    );
    assert.equal(results.filter((r) => r.first_click).length, 1);
    assert.equal(results.filter((r) => r.first_open).length, 1);
    const c3 = await contactRow(cid);
    assert.equal(c3.clicks, 2);
    assert.equal(c3.unique_opens, 2);
    assert.equal((await messageEngagement(ctx().db, m2.id))!.click_count, 10);
  });

  test('click redirects are never open redirects: unsigned or altered destinations are 404', async () => {
    const t = await owner();
    const email = uniqueEmail('redir');
    const m = await message(t, email, await contact(t, email));
    const token = tokenOf(live().clickUrl(m.id, 'https://shop.test/sale'));
    const forged = tokenOf(
      createTrackingLinks({ secretKey: 'z'.repeat(64), appUrl: APP_URL }).clickUrl(
        m.id,
        'https://evil.test/',
      ),
    );
    for (const url of [
      `/t/c/${token}?u=${encodeURIComponent('https://evil.test/')}`,
      `/t/c/${token}?u=${encodeURIComponent('https://shop.test/sale/')}`,
      `/t/c/${token}`,
      `/t/c/${forged}?u=${encodeURIComponent('https://evil.test/')}`,
      `/t/c/${tokenOf(live().openUrl(m.id))}?u=${encodeURIComponent('https://shop.test/sale')}`,
      `/t/c/garbage?u=${encodeURIComponent('https://shop.test/sale')}`,
    ]) {
      const res = await app().inject({ method: 'GET', url });
      assert.equal(res.statusCode, 404, url);
      assert.equal(res.headers['location'], undefined, url);
      assert.equal(res.json().error, true);
      assert.equal(res.json().code, 404);
    }
    assert.equal((await messageEngagement(ctx().db, m.id))!.click_count, 0);
    // A signed non-web URL is still refused (only http(s) is ever wrapped).
    const js = live().clickUrl(m.id, 'javascript:alert(1)');
    const jsRes = await app().inject({ method: 'GET', url: js.slice(APP_URL.length) });
    assert.equal(jsRes.statusCode, 404);
  });

  test('destinations with spaces, unicode and entities redirect to a valid Location', async () => {
    const t = await owner();
    const m = await message(t, uniqueEmail('uni'), null);
    const dest = 'https://shop.test/caf\u00e9 menu?q=a+b&x=\u00fc';
    const res = await app().inject({ method: 'GET', url: clickPath(m.id, dest) });
    assert.equal(res.statusCode, 302, res.body);
    assert.equal(res.headers['location'], new URL(dest).href);
    assert.equal((await messageEngagement(ctx().db, m.id))!.click_count, 1, 'recorded without a contact');
  });

  test("a deleted message's links still work and record nothing", async () => {
    const t = await owner();
    const m = await message(t, uniqueEmail('gone'), null);
    const click = clickPath(m.id, 'https://shop.test/');
    const pixel = pixelPath(m.id);
    await ctx().db.deleteFrom('messages').where('id', '=', m.id).execute();
    assert.equal((await app().inject({ method: 'GET', url: click })).statusCode, 302);
    assert.equal((await app().inject({ method: 'GET', url: pixel })).statusCode, 200);
    assert.equal(await countMessageEvents(ctx().db, m.id, 'click'), 0);
  });

  test('brands expose and accept track_opens / track_clicks', async () => {
    const t = await owner();
    const got = await app().inject({ method: 'GET', url: `/v1/my/brands/${t.brandSid}`, headers: t.auth });
    assert.equal(got.statusCode, 200, got.body);
    assert.equal(got.json().track_opens, true);
    assert.equal(got.json().track_clicks, true);
    const patched = await app().inject({
      method: 'PATCH',
      url: `/v1/my/brands/${t.brandSid}`,
      headers: t.auth,
      payload: { track_opens: false },
    });
    assert.equal(patched.statusCode, 200, patched.body);
    assert.equal(patched.json().track_opens, false);
    assert.equal(patched.json().track_clicks, true);
    const row = await ctx()
      .db.selectFrom('brands')
      .select(['track_opens', 'track_clicks'])
      .where('id', '=', t.brandId)
      .executeTakeFirstOrThrow();
    assert.deepEqual(row, { track_opens: false, track_clicks: true });
    const created = await app().inject({
      method: 'POST',
      url: '/v1/my/brands',
      headers: t.auth,
      payload: { track_clicks: false },
    });
    assert.equal(created.statusCode, 201, created.body);
    assert.equal(created.json().track_clicks, false);
    assert.equal(created.json().track_opens, true);
    const bad = await app().inject({
      method: 'PATCH',
      url: `/v1/my/brands/${t.brandSid}`,
      headers: t.auth,
      payload: { track_opens: 'nope' },
    });
    assert.equal(bad.statusCode, 422, bad.body);
    assert.ok((bad.json() as Json)['validation_errors']);
  });

  test('the pixel and unsubscribe routes are documented under Tracking without bearer auth', async () => {
    const doc = (await app().inject({ method: 'GET', url: '/openapi.json' })).json();
    const ops = [
      doc.paths['/t/o/{token}.gif']?.get,
      doc.paths['/u/{token}']?.get,
      doc.paths['/u/{token}']?.post,
    ];
    for (const op of ops) {
      assert.ok(op, JSON.stringify(Object.keys(doc.paths).filter((p) => !p.startsWith('/v1'))));
      assert.deepEqual(op.tags, ['Tracking']);
      assert.equal(op.security, undefined);
    }
  });
});
