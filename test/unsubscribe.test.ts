import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTrackingLinks } from '../src/delivery/tracking.ts';
import { isMarketingBlocked, unsubscribe } from '../src/domain/unsubscribe/unsubscribe.ts';
import { countMessageEvents } from '../src/store/engagement.ts';
import { insertMessage } from '../src/store/messages.ts';
import { describeEachEngine, ISO_DATE, type Session, signup, uniqueEmail } from './helpers.ts';

type Json = Record<string, unknown>;
type Tenant = Session & {
  accountId: number;
  brandId: number;
  brandSid: string;
  headers: Record<string, string>;
};

describeEachEngine('unsubscribe', (ctx) => {
  const app = () => ctx().app;
  const links = () => ctx().services.unsubscribes.links;
  const db = () => ctx().db;

  async function owner(): Promise<Tenant> {
    const s = await signup(app());
    const account = (await app().inject({ method: 'GET', url: '/v1/my/account', headers: s.auth })).json();
    const brand = account.brands[0];
    return { ...s, accountId: account.id, brandId: brand.id, brandSid: brand.sid, headers: s.auth };
  }

  /** Another brand of the same account, addressed with X-Brand-Sid. */
  async function secondBrand(t: Tenant, payload: Json = {}): Promise<Tenant> {
    const res = await app().inject({ method: 'POST', url: '/v1/my/brands', headers: t.auth, payload });
    assert.equal(res.statusCode, 201, res.body);
    const b = res.json();
    return { ...t, brandId: b.id, brandSid: b.sid, headers: { ...t.auth, 'x-brand-sid': b.sid } };
  }

  async function contact(t: Tenant, email: string): Promise<number> {
    const res = await app().inject({
      method: 'POST',
      url: '/v1/my/contacts',
      headers: t.headers,
      payload: { email },
    });
    assert.equal(res.statusCode, 201, res.body);
    return res.json().id;
  }

  async function getContact(t: Tenant, id: number): Promise<Json> {
    const res = await app().inject({ method: 'GET', url: `/v1/my/contacts/${id}`, headers: t.headers });
    assert.equal(res.statusCode, 200, res.body);
    return res.json();
  }

  async function message(
    t: Tenant,
    to: string,
    contactId: number | null,
    channel: 'email' | 'sms' = 'email',
  ) {
    return insertMessage(db(), {
      account_id: t.accountId,
      brand_id: t.brandId,
      channel,
      source_type: 'campaign',
      marketing: true,
      contact_id: contactId,
      to,
      subject: 'News',
      html: '<p>Hi</p>',
      status: 'sent',
    });
  }

  const path = (id: number) => new URL(links().unsubscribeUrl(id)).pathname;

  function oneClick(id: number, headers: Record<string, string> = {}) {
    return app().inject({
      method: 'POST',
      url: path(id),
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      payload: 'List-Unsubscribe=One-Click',
    });
  }

  async function suppressions(t: Tenant, email: string) {
    const res = await app().inject({
      method: 'GET',
      url: `/v1/my/suppressions?email=${encodeURIComponent(email)}`,
      headers: t.headers,
    });
    assert.equal(res.statusCode, 200, res.body);
    return res.json() as Json[];
  }

  async function contactRow(id: number) {
    return db()
      .selectFrom('contacts')
      .select(['unsubscribed_at', 'suppressed', 'suppression_reason'])
      .where('id', '=', id)
      .executeTakeFirstOrThrow();
  }

  test('RFC 8058 one-click POST unsubscribes at once: channel, contact, suppression, message, event', async () => {
    const t = await owner();
    const email = uniqueEmail('oneclick');
    const cid = await contact(t, email);
    const m = await message(t, email, cid);
    assert.equal(await isMarketingBlocked(db(), t.brandId, email), null);
    const now = ctx().clock.now();

    const res = await oneClick(m.id);
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), { unsubscribed: true, scope: 'brand' });

    const c = await getContact(t, cid);
    assert.equal(c['subscribed_email'], false);
    const ch = (c['channels'] as Json[]).find((x) => x['kind'] === 'email')!;
    assert.equal(ch['subscribed'], false);
    assert.match(ch['opt_out_at'] as string, ISO_DATE);
    assert.equal(new Date(ch['opt_out_at'] as string).getTime(), now.getTime());
    const row = await contactRow(cid);
    assert.equal(row.unsubscribed_at!.getTime(), now.getTime());
    assert.equal(row.suppressed, true);
    assert.equal(row.suppression_reason, 'unsubscribe');
    const sup = await suppressions(t, email);
    assert.equal(sup.length, 1);
    assert.equal(sup[0]!['reason'], 'unsubscribe');
    assert.equal(sup[0]!['active'], true);
    assert.equal(sup[0]!['contact_id'], cid);
    const msg = await db()
      .selectFrom('messages')
      .select('unsubscribed_at')
      .where('id', '=', m.id)
      .executeTakeFirst();
    assert.equal(msg!.unsubscribed_at!.getTime(), now.getTime());
    const events = await db()
      .selectFrom('message_events')
      .selectAll()
      .where('message_id', '=', m.id)
      .execute();
    assert.equal(events.length, 1);
    assert.equal(events[0]!.kind, 'unsubscribe');
    assert.equal(events[0]!.recipient, email);
    assert.equal(await isMarketingBlocked(db(), t.brandId, email), 'unsubscribed');

    // A repeat (the provider retries, the person clicks again) changes nothing.
    ctx().clock.advance(60_000);
    const again = await oneClick(m.id);
    assert.equal(again.statusCode, 200, again.body);
    assert.equal((await suppressions(t, email)).length, 1);
    assert.equal(await countMessageEvents(db(), m.id, 'unsubscribe'), 1);
    const chAgain = ((await getContact(t, cid))['channels'] as Json[]).find((x) => x['kind'] === 'email')!;
    assert.equal(chAgain['opt_out_at'], ch['opt_out_at'], 'the first opt-out time is kept');
    assert.equal((await contactRow(cid)).unsubscribed_at!.getTime(), now.getTime());
  });

  test('multipart/form-data and empty one-click bodies work too; GET alone never unsubscribes', async () => {
    const t = await owner();
    const a = uniqueEmail('multi');
    const ca = await contact(t, a);
    const ma = await message(t, a, ca);
    const page = await app().inject({ method: 'GET', url: path(ma.id) });
    assert.equal(page.statusCode, 200);
    assert.equal((await getContact(t, ca))['subscribed_email'], true, 'viewing the page changes nothing');
    assert.equal(await isMarketingBlocked(db(), t.brandId, a), null);

    const boundary = '----mwboundary';
    const body =
      `--${boundary}\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n` +
      `--${boundary}--\r\n`;
    const res = await app().inject({
      method: 'POST',
      url: path(ma.id),
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      payload: body,
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.json().scope, 'brand');
    assert.equal((await getContact(t, ca))['subscribed_email'], false);

    const b = uniqueEmail('empty');
    const cb = await contact(t, b);
    const mb = await message(t, b, cb);
    const empty = await app().inject({ method: 'POST', url: path(mb.id) });
    assert.equal(empty.statusCode, 200, empty.body);
    assert.equal((await getContact(t, cb))['subscribed_email'], false);
    assert.equal(await isMarketingBlocked(db(), t.brandId, b), 'unsubscribed');

    // Any other content type a provider might send still unsubscribes.
    const c = uniqueEmail('octet');
    const cc = await contact(t, c);
    const mc = await message(t, c, cc);
    const octet = await app().inject({
      method: 'POST',
      url: path(mc.id),
      headers: { 'content-type': 'application/octet-stream' },
      payload: Buffer.from('List-Unsubscribe=One-Click'),
    });
    assert.equal(octet.statusCode, 200, octet.body);
    assert.equal((await getContact(t, cc))['subscribed_email'], false);
  });

  test('the hosted page names the brand, escapes everything and offers both scopes', async () => {
    const t = await owner();
    const name = '<script>alert("x")</script> & "Co"';
    const patch = await app().inject({
      method: 'PATCH',
      url: `/v1/my/brands/${t.brandSid}`,
      headers: t.auth,
      payload: { company_name: name },
    });
    assert.equal(patch.statusCode, 200, patch.body);
    const email = `o'brien+${Date.now()}@example.com`;
    const m = await message(t, email, await contact(t, email));
    const res = await app().inject({ method: 'GET', url: path(m.id) });
    assert.equal(res.statusCode, 200, res.body);
    assert.match(String(res.headers['content-type']), /^text\/html/);
    assert.match(String(res.headers['content-security-policy']), /default-src 'none'/);
    assert.equal(res.headers['referrer-policy'], 'no-referrer');
    assert.match(String(res.headers['cache-control']), /no-store/);
    const html = res.body;
    assert.ok(!html.includes('<script'), 'no markup from the brand name');
    assert.ok(html.includes('&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;Co&quot;'));
    assert.ok(!html.includes("o'brien"), 'the address is masked and escaped');
    assert.ok(html.includes('o&#39;•••@example.com'));
    assert.match(html, /<form method="post">/);
    assert.match(html, /name="scope" value="brand" checked/);
    assert.match(html, /name="scope" value="all"/);

    // The browser form: HTML back, and the unsubscribe done.
    const posted = await app().inject({
      method: 'POST',
      url: path(m.id),
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html,*/*' },
      payload: 'scope=brand',
    });
    assert.equal(posted.statusCode, 200, posted.body);
    assert.match(String(posted.headers['content-type']), /^text\/html/);
    assert.match(posted.body, /You are unsubscribed/);
    assert.ok(!posted.body.includes('<script'));
    const again = await app().inject({ method: 'GET', url: path(m.id) });
    assert.match(again.body, /already unsubscribed/);
  });

  test("scope 'all' covers every brand of the account that knows the address, never another account", async () => {
    const t = await owner();
    const b2 = await secondBrand(t);
    const b3 = await secondBrand(t);
    const email = uniqueEmail('all');
    const c1 = await contact(t, email);
    const c2 = await contact(b2, email.toUpperCase());
    const other = await owner();
    const cOther = await contact(other, email);

    const m = await message(t, email, c1);
    const res = await app().inject({
      method: 'POST',
      url: path(m.id),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'scope=all',
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), { unsubscribed: true, scope: 'all' });

    for (const [tenant, cid] of [
      [t, c1],
      [b2, c2],
    ] as const) {
      assert.equal((await getContact(tenant, cid))['subscribed_email'], false);
      const sup = await suppressions(tenant, email);
      assert.equal(sup.length, 1);
      assert.equal(sup[0]!['reason'], 'unsubscribe');
      assert.equal(sup[0]!['contact_id'], cid);
      assert.equal(await isMarketingBlocked(db(), tenant.brandId, email), 'unsubscribed');
      assert.ok((await contactRow(cid)).unsubscribed_at);
    }
    // A brand of the account without that contact gets nothing.
    assert.equal((await suppressions(b3, email)).length, 0);
    assert.equal(await isMarketingBlocked(db(), b3.brandId, email), null);
    // Another account's contact with the same address is untouched.
    assert.equal((await getContact(other, cOther))['subscribed_email'], true);
    assert.equal((await suppressions(other, email)).length, 0);
    assert.equal((await contactRow(cOther)).unsubscribed_at, null);
    assert.equal(await isMarketingBlocked(db(), other.brandId, email), null);
  });

  test("scope 'brand' leaves the account's other brands subscribed; a later 'all' widens it", async () => {
    const t = await owner();
    const b2 = await secondBrand(t);
    const email = uniqueEmail('brand');
    const c1 = await contact(t, email);
    const c2 = await contact(b2, email);
    const m = await message(t, email, c1);
    const r1 = await unsubscribe(ctx().services.deps, m.id, 'brand');
    assert.deepEqual(r1, { message_id: m.id, scope: 'brand', brand_ids: [t.brandId], first: true });
    assert.equal((await getContact(b2, c2))['subscribed_email'], true);
    assert.equal(await isMarketingBlocked(db(), b2.brandId, email), null);
    const r2 = await unsubscribe(ctx().services.deps, m.id, 'all');
    assert.equal(r2.first, false);
    assert.deepEqual(
      r2.brand_ids,
      [t.brandId, b2.brandId].sort((a, b) => a - b),
    );
    assert.equal((await getContact(b2, c2))['subscribed_email'], false);
    assert.equal(await countMessageEvents(db(), m.id, 'unsubscribe'), 1);
  });

  test('an address without a contact is still suppressed for the brand', async () => {
    const t = await owner();
    const email = uniqueEmail('nocontact');
    const m = await message(t, ` ${email.toUpperCase()} `, null);
    const res = await oneClick(m.id);
    assert.equal(res.statusCode, 200, res.body);
    const sup = await suppressions(t, email);
    assert.equal(sup.length, 1);
    assert.equal(sup[0]!['contact_id'], null);
    assert.equal(sup[0]!['reason'], 'unsubscribe');
  });

  test('bad tokens are 404 on GET and POST and change nothing', async () => {
    const t = await owner();
    const email = uniqueEmail('bad');
    const cid = await contact(t, email);
    const m = await message(t, email, cid);
    const token = new URL(links().unsubscribeUrl(m.id)).pathname.slice(3);
    const forged = new URL(
      createTrackingLinks({ secretKey: 'q'.repeat(64), appUrl: ctx().config.appUrl }).unsubscribeUrl(m.id),
    ).pathname;
    const openToken = new URL(links().openUrl(m.id)).pathname.replace(/^\/t\/o\/|\.gif$/g, '');
    for (const url of [forged, `/u/${openToken}`, `/u/${token.slice(0, -1)}B`, '/u/nope']) {
      const get = await app().inject({ method: 'GET', url });
      assert.equal(get.statusCode, 404, url);
      assert.equal(get.json().error, true);
      const post = await app().inject({
        method: 'POST',
        url,
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        payload: 'List-Unsubscribe=One-Click',
      });
      assert.equal(post.statusCode, 404, url);
    }
    // A valid token for a message that is gone, or an SMS message.
    const sms = await message(t, '+14155550100', null, 'sms');
    assert.equal((await oneClick(sms.id)).statusCode, 404);
    const gone = await message(t, email, cid);
    await db().deleteFrom('messages').where('id', '=', gone.id).execute();
    assert.equal((await app().inject({ method: 'GET', url: path(gone.id) })).statusCode, 404);
    assert.equal((await getContact(t, cid))['subscribed_email'], true);
    assert.equal((await suppressions(t, email)).length, 0);
  });

  test('invalid scope is 422; an oversized body is 413', async () => {
    const t = await owner();
    const email = uniqueEmail('scope');
    const m = await message(t, email, await contact(t, email));
    const bad = await app().inject({
      method: 'POST',
      url: path(m.id),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'scope=everything',
    });
    assert.equal(bad.statusCode, 422, bad.body);
    assert.ok(bad.json().validation_errors.scope);
    const big = await app().inject({
      method: 'POST',
      url: path(m.id),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: `List-Unsubscribe=One-Click&pad=${'x'.repeat(20_000)}`,
    });
    assert.equal(big.statusCode, 413, big.body);
    assert.equal(await isMarketingBlocked(db(), t.brandId, email), null);
  });

  test('isMarketingBlocked: suppression of any reason, opted-out channel, expiry, lifting, other brands', async () => {
    const t = await owner();
    const b2 = await secondBrand(t);
    const email = uniqueEmail('blocked');
    const cid = await contact(t, email);
    assert.equal(await isMarketingBlocked(db(), t.brandId, email), null);

    // Opted out through the contacts API (no suppression): unsubscribed.
    const out = await app().inject({
      method: 'PATCH',
      url: `/v1/my/contacts/${cid}`,
      headers: t.auth,
      payload: { channels_attributes: [{ kind: 'email', value: email, subscribed: false }] },
    });
    assert.equal(out.statusCode, 200, out.body);
    assert.equal(await isMarketingBlocked(db(), t.brandId, ` ${email.toUpperCase()}`), 'unsubscribed');
    assert.equal(await isMarketingBlocked(db(), b2.brandId, email), null, 'per brand');

    // A manual suppression of a different address: suppressed wins.
    const other = uniqueEmail('manual');
    const sup = await app().inject({
      method: 'POST',
      url: '/v1/my/suppressions',
      headers: t.auth,
      payload: { email: other },
    });
    assert.equal(sup.statusCode, 201, sup.body);
    assert.equal(await isMarketingBlocked(db(), t.brandId, other), 'suppressed');
    // Expired suppressions no longer block.
    await db()
      .updateTable('suppressions')
      .set({ expires_at: new Date(ctx().clock.now().getTime() - 1000) })
      .where('id', '=', sup.json().id)
      .execute();
    assert.equal(await isMarketingBlocked(db(), t.brandId, other, ctx().clock.now()), null);
    // Lifted suppressions do not block either.
    const third = uniqueEmail('lifted');
    const s3 = await app().inject({
      method: 'POST',
      url: '/v1/my/suppressions',
      headers: t.auth,
      payload: { email: third },
    });
    assert.equal(await isMarketingBlocked(db(), t.brandId, third), 'suppressed');
    const lift = await app().inject({
      method: 'DELETE',
      url: `/v1/my/suppressions/${s3.json().id}`,
      headers: t.auth,
    });
    assert.equal(lift.statusCode, 200, lift.body);
    assert.equal(await isMarketingBlocked(db(), t.brandId, third), null);
  });
});
