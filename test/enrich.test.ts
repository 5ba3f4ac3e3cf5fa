import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.ts';
import { usagePeriod } from '../src/domain/accounts/plans.ts';
import { isDisposableDomain } from '../src/domain/contacts/disposable-domains.ts';
import { createMailResolver, isRoleAddress } from '../src/domain/contacts/email-verification.ts';
import { addUsage } from '../src/store/usage.ts';
import {
  bearer,
  CHANNEL_FIELDS,
  CONTACT_FIELDS,
  createKey,
  describeEachEngine,
  ISO_DATE,
  type Session,
  setPlan,
  signup,
  type TestContext,
} from './helpers.ts';

// biome-ignore lint/suspicious/noExplicitAny: responses are JSON read loosely in assertions
type Json = Record<string, any>;

// ---------------------------------------------------------------------------------------------
// A tiny authoritative DNS server on 127.0.0.1 (UDP). It answers MX, A and AAAA from ZONES and
// NXDOMAIN for every other name; a zone may instead answer SERVFAIL or never answer at all.
// ---------------------------------------------------------------------------------------------

const TYPE = { A: 1, MX: 15, AAAA: 28 } as const;

type Zone = {
  /** `servfail` answers SERVFAIL; `silent` never answers (a timeout). */
  mode?: 'servfail' | 'silent';
  /** Answer only once this promise settles (lets a test act while a lookup is in flight). */
  hold?: Promise<void>;
  mx?: [number, string][];
  a?: string[];
  aaaa?: string[];
};

/** Names the test resolver knows; tests may change a zone between requests. */
const ZONES = new Map<string, Zone>([
  // Listed out of preference order: verification must sort them.
  [
    'good.test',
    {
      mx: [
        [20, 'mx2.good.test'],
        [10, 'mx1.good.test'],
      ],
    },
  ],
  ['mailinator.com', { mx: [[10, 'mail.mailinator.com']] }],
  ['a-only.test', { a: ['192.0.2.10'] }],
  ['v6-only.test', { aaaa: ['2001:db8::25'] }],
  // Exists (NOERROR) but has neither MX nor an address.
  ['nomail.test', {}],
  // RFC 7505 null MX: "this domain accepts no mail".
  ['nullmx.test', { mx: [[0, '.']], a: ['192.0.2.11'] }],
  ['broken.test', { mode: 'servfail' }],
  ['slow.test', { mode: 'silent' }],
]);

/** Every question the server was asked, as `name TYPE`. */
const dnsQueries: string[] = [];

type Question = { id: number; flags: number; name: string; type: number; raw: Buffer };

function decodeQuery(msg: Buffer): Question {
  const labels: string[] = [];
  let offset = 12;
  for (let len = msg[offset]!; len !== 0; len = msg[offset]!) {
    labels.push(msg.subarray(offset + 1, offset + 1 + len).toString('ascii'));
    offset += 1 + len;
  }
  offset += 1;
  return {
    id: msg.readUInt16BE(0),
    flags: msg.readUInt16BE(2),
    name: labels.join('.').toLowerCase(),
    type: msg.readUInt16BE(offset),
    // The question section (name, type, class), echoed in the answer.
    raw: msg.subarray(12, offset + 4),
  };
}

function encodeName(name: string): Buffer {
  const labels = name === '.' || name === '' ? [] : name.replace(/\.$/, '').split('.');
  return Buffer.concat([
    ...labels.map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l, 'ascii')])),
    Buffer.from([0]),
  ]);
}

function ipv6Bytes(ip: string): Buffer {
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => {
    out.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  });
  return out;
}

function answerRecord(type: number, rdata: Buffer): Buffer {
  const head = Buffer.alloc(12);
  head.writeUInt16BE(0xc00c, 0); // pointer to the question's name
  head.writeUInt16BE(type, 2);
  head.writeUInt16BE(1, 4); // IN
  head.writeUInt32BE(60, 6);
  head.writeUInt16BE(rdata.length, 10);
  return Buffer.concat([head, rdata]);
}

function encodeResponse(q: Question, rcode: number, answers: Buffer[]): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(q.id, 0);
  // QR, the query's opcode and RD, AA, RA, rcode.
  header.writeUInt16BE(0x8000 | (q.flags & 0x7900) | 0x0400 | 0x0080 | rcode, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  return Buffer.concat([header, q.raw, ...answers]);
}

function respond(q: Question): Buffer | undefined {
  const zone = ZONES.get(q.name);
  if (!zone) return encodeResponse(q, 3, []); // NXDOMAIN
  if (zone.mode === 'silent') return undefined;
  if (zone.mode === 'servfail') return encodeResponse(q, 2, []);
  const answers: Buffer[] = [];
  if (q.type === TYPE.MX) {
    for (const [pref, host] of zone.mx ?? []) {
      const p = Buffer.alloc(2);
      p.writeUInt16BE(pref);
      answers.push(answerRecord(TYPE.MX, Buffer.concat([p, encodeName(host)])));
    }
  } else if (q.type === TYPE.A) {
    for (const ip of zone.a ?? []) answers.push(answerRecord(TYPE.A, Buffer.from(ip.split('.').map(Number))));
  } else if (q.type === TYPE.AAAA) {
    for (const ip of zone.aaaa ?? []) answers.push(answerRecord(TYPE.AAAA, ipv6Bytes(ip)));
  }
  return encodeResponse(q, 0, answers); // NOERROR, maybe with no answers (NODATA)
}

const dns = dgram.createSocket('udp4');
dns.on('message', (msg, peer) => {
  const q = decodeQuery(msg);
  dnsQueries.push(`${q.name} ${Object.entries(TYPE).find(([, v]) => v === q.type)?.[0] ?? q.type}`);
  const reply = respond(q);
  if (reply)
    void (ZONES.get(q.name)?.hold ?? Promise.resolve()).then(() => dns.send(reply, peer.port, peer.address));
});
await new Promise<void>((resolve) => dns.bind(0, '127.0.0.1', resolve));
const DNS_RESOLVER = `127.0.0.1:${(dns.address() as AddressInfo).port}`;

// ---------------------------------------------------------------------------------------------
// A local server playing Apollo's People Match API.
// ---------------------------------------------------------------------------------------------

const APOLLO_KEY = 'apollo-test-key';
const apolloCalls: { key: string | undefined; contentType: string | undefined; body: Json }[] = [];

const APOLLO_PEOPLE: Record<string, Json> = {
  'ada@good.test': {
    id: '5f1e2d3c4b5a',
    first_name: 'Ada',
    last_name: 'Lovelace',
    name: 'Ada Lovelace',
    title: 'Head of Analytics',
    headline: 'Engines and numbers',
    seniority: 'head',
    departments: ['data_science', 42],
    linkedin_url: 'http://www.linkedin.com/in/ada',
    twitter_url: null,
    city: 'London',
    state: 'England',
    country: 'United Kingdom',
    email: 'ada@good.test',
    organization: {
      id: 'org1',
      name: 'Analytical Engines Ltd',
      primary_domain: 'good.test',
      website_url: 'http://www.good.test',
      industry: 'computer software',
      estimated_num_employees: 120,
    },
  },
};

const apollo = http.createServer((req, res) => {
  let raw = '';
  req.on('data', (chunk) => {
    raw += chunk;
  });
  req.on('end', () => {
    const body = raw ? (JSON.parse(raw) as Json) : {};
    const key = req.headers['x-api-key'] as string | undefined;
    apolloCalls.push({ key, contentType: req.headers['content-type'], body });
    const send = (status: number, payload: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(payload));
    };
    if (req.method !== 'POST' || req.url !== '/api/v1/people/match') return send(404, { error: 'not found' });
    if (key !== APOLLO_KEY) return send(401, { error: 'Invalid access credentials.' });
    if (body['email'] === 'crash@good.test') return send(500, { error: 'internal' });
    return send(200, { person: APOLLO_PEOPLE[body['email'] as string] ?? null });
  });
});
await new Promise<void>((resolve) => apollo.listen(0, '127.0.0.1', resolve));
const APOLLO_BASE_URL = `http://127.0.0.1:${(apollo.address() as AddressInfo).port}`;

after(async () => {
  dns.close();
  await new Promise((resolve) => apollo.close(resolve));
});

// ---------------------------------------------------------------------------------------------

type Tenant = Session & { accountId: number; brandId: number };

/** Shared helpers over one suite's context. */
function helpers(ctx: () => TestContext) {
  const app = () => ctx().app;

  /** A new user with their own account and its default brand. */
  async function owner(): Promise<Tenant> {
    const s = await signup(app());
    const res = await app().inject({ method: 'GET', url: '/v1/my/brands', headers: s.auth });
    assert.equal(res.statusCode, 200, res.body);
    const [brand] = res.json() as Json[];
    return { ...s, accountId: brand!['account_id'], brandId: brand!['id'] };
  }

  /** A contact inserted straight into the tables, with the given channels. */
  async function insertContact(
    t: { accountId: number; brandId: number },
    opts: { email?: string; phone?: string; first_name?: string | null; data?: Json } = {},
  ): Promise<number> {
    const { id } = await ctx()
      .db.insertInto('contacts')
      .values({
        account_id: t.accountId,
        brand_id: t.brandId,
        first_name: opts.first_name === undefined ? null : opts.first_name,
        data: JSON.stringify(opts.data ?? {}),
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    const channels = [
      ...(opts.email ? [{ kind: 'email' as const, value: opts.email }] : []),
      ...(opts.phone ? [{ kind: 'phone' as const, value: opts.phone }] : []),
    ];
    for (const ch of channels) {
      await ctx()
        .db.insertInto('contact_channels')
        .values({ contact_id: id, brand_id: t.brandId, ...ch, subscribed: true, opt_in_at: new Date() })
        .execute();
    }
    return id;
  }

  function enrich(id: number | string, headers: Record<string, string>, payload?: string) {
    return app().inject({
      method: 'POST',
      url: `/v1/my/contacts/${id}/enrich`,
      headers: payload === undefined ? headers : { ...headers, 'content-type': 'application/json' },
      ...(payload === undefined ? {} : { payload }),
    });
  }

  async function validationUsed(accountId: number): Promise<number> {
    const row = await ctx()
      .db.selectFrom('usage_counters')
      .select('used')
      .where('account_id', '=', accountId)
      .where('resource', '=', 'validation')
      .executeTakeFirst();
    return row?.used ?? 0;
  }

  /** Enriches a fresh contact at `email` and returns the Contact and its email channel's verification. */
  async function verify(email: string) {
    const t = await owner();
    const id = await insertContact(t, { email });
    const res = await enrich(id, t.auth);
    assert.equal(res.statusCode, 200, res.body);
    const contact = res.json() as Json;
    const channel = (contact['channels'] as Json[]).find((c) => c['kind'] === 'email')!;
    return { t, id, contact, channel, verification: channel['data']['verification'] as Json };
  }

  return { owner, insertContact, enrich, validationUsed, verify };
}

describeEachEngine(
  'contact enrich',
  (ctx) => {
    const { owner, insertContact, enrich, validationUsed, verify } = helpers(ctx);

    test('a deliverable address → 200 with the whole Contact, verified, details on the channel', async () => {
      const t = await owner();
      const id = await insertContact(t, {
        email: 'grace@good.test',
        phone: '+14155552671',
        first_name: 'Grace',
        data: { tags: ['vip'] },
      });
      const res = await enrich(id, t.auth);
      assert.equal(res.statusCode, 200, res.body);
      const c = res.json() as Json;
      assert.deepEqual(Object.keys(c).sort(), CONTACT_FIELDS);
      assert.equal(c['id'], id);
      assert.equal(c['brand_id'], t.brandId);
      assert.match(c['uuid'], /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      assert.equal(c['first_name'], 'Grace');
      assert.equal(c['last_name'], null);
      assert.equal(c['source'], null);
      assert.equal(c['country_code'], null);
      assert.deepEqual(c['data'], { tags: ['vip'] });
      assert.equal(c['subscribed_email'], true);
      assert.equal(c['subscribed_phone'], true);
      assert.equal(c['verification_status'], 'verified');
      assert.equal(c['enrichment_status'], 'not_enriched');
      assert.deepEqual(c['list_ids'], []);
      assert.equal(c['last_interacted_at'], null);
      assert.match(c['created_at'], ISO_DATE);
      assert.match(c['updated_at'], ISO_DATE);
      assert.equal(c['channels'].length, 2);
      const [email, phone] = c['channels'] as Json[];
      assert.deepEqual(Object.keys(email!).sort(), CHANNEL_FIELDS);
      assert.equal(email!['kind'], 'email');
      assert.equal(email!['value'], 'grace@good.test');
      assert.equal(email!['contact_id'], id);
      assert.equal(typeof email!['id'], 'number');
      assert.equal(email!['subscribed'], true);
      assert.equal(email!['verified'], true);
      assert.match(email!['opt_in_at'], ISO_DATE);
      assert.equal(email!['opt_out_at'], null);
      assert.equal(email!['sent_count'], 0);
      assert.equal(email!['fail_count'], 0);
      assert.match(email!['created_at'], ISO_DATE);
      assert.match(email!['updated_at'], ISO_DATE);
      const v = email!['data']['verification'] as Json;
      assert.deepEqual(Object.keys(v).sort(), [
        'checked_at',
        'disposable',
        'email',
        'mx',
        'reason',
        'result',
        'role',
      ]);
      assert.equal(v['email'], 'grace@good.test');
      assert.equal(v['result'], 'deliverable');
      assert.equal(v['reason'], 'mx');
      assert.deepEqual(v['mx'], ['mx1.good.test', 'mx2.good.test']);
      assert.equal(v['disposable'], false);
      assert.equal(v['role'], false);
      assert.equal(v['checked_at'], ctx().clock.now().toISOString());
      // The phone channel is not touched.
      assert.equal(phone!['kind'], 'phone');
      assert.equal(phone!['verified'], false);
      assert.deepEqual(phone!['data'], {});
      // The answer came from the configured resolver, and the change is stored.
      assert.ok(dnsQueries.includes('good.test MX'), dnsQueries.join(', '));
      const row = await ctx()
        .db.selectFrom('contacts')
        .select(['verification_status', 'enrichment_status'])
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      assert.deepEqual(row, { verification_status: 'verified', enrichment_status: 'not_enriched' });
    });

    test('a domain that does not exist (NXDOMAIN) → suppressed, channel not verified', async () => {
      const { contact, channel, verification } = await verify('someone@no-such-domain.test');
      assert.equal(contact['verification_status'], 'suppressed');
      assert.equal(channel['verified'], false);
      assert.equal(verification['result'], 'undeliverable');
      assert.equal(verification['reason'], 'no_such_domain');
      assert.deepEqual(verification['mx'], []);
    });

    test('a disposable domain that accepts mail → suppressed and flagged disposable', async () => {
      const { contact, channel, verification } = await verify('temp123@mailinator.com');
      assert.equal(contact['verification_status'], 'suppressed');
      assert.equal(channel['verified'], false);
      assert.equal(verification['result'], 'deliverable');
      assert.deepEqual(verification['mx'], ['mail.mailinator.com']);
      assert.equal(verification['disposable'], true);
    });

    test('a role address that accepts mail → verified and flagged role', async () => {
      const { contact, channel, verification } = await verify('support@good.test');
      assert.equal(contact['verification_status'], 'verified');
      assert.equal(channel['verified'], true);
      assert.equal(verification['result'], 'deliverable');
      assert.equal(verification['role'], true);
      assert.equal(verification['disposable'], false);
    });

    test('no MX but an A record → deliverable through the implicit MX (RFC 5321)', async () => {
      const { contact, verification } = await verify('ops.lead@a-only.test');
      assert.equal(contact['verification_status'], 'verified');
      assert.equal(verification['result'], 'deliverable');
      assert.equal(verification['reason'], 'implicit_mx');
      assert.deepEqual(verification['mx'], ['a-only.test']);
      assert.ok(dnsQueries.includes('a-only.test A'));
    });

    test('no MX but an AAAA record → deliverable too', async () => {
      const { contact, verification } = await verify('x@v6-only.test');
      assert.equal(contact['verification_status'], 'verified');
      assert.equal(verification['reason'], 'implicit_mx');
    });

    test('a domain with neither MX nor address → suppressed (no mail server)', async () => {
      const { contact, verification } = await verify('x@nomail.test');
      assert.equal(contact['verification_status'], 'suppressed');
      assert.equal(verification['result'], 'undeliverable');
      assert.equal(verification['reason'], 'no_mail_server');
    });

    test('a null MX (RFC 7505) → suppressed even though the domain has an address', async () => {
      const { contact, verification } = await verify('x@nullmx.test');
      assert.equal(contact['verification_status'], 'suppressed');
      assert.equal(verification['reason'], 'null_mx');
    });

    test('a resolver that never answers → unverified (unknown), never suppressed', async () => {
      const { contact, channel, verification } = await verify('someone@slow.test');
      assert.equal(contact['verification_status'], 'unverified');
      assert.equal(channel['verified'], false);
      assert.equal(verification['result'], 'unknown');
      assert.equal(verification['reason'], 'dns_timeout');
    });

    test('SERVFAIL → unverified; a later failure keeps an earlier definite result of the same address', async () => {
      const fresh = await verify('someone@broken.test');
      assert.equal(fresh.contact['verification_status'], 'unverified');
      assert.equal(fresh.verification['result'], 'unknown');
      assert.equal(fresh.verification['reason'], 'dns_error');

      ZONES.set('flaky.test', { mx: [[5, 'mx.flaky.test']] });
      const t = await owner();
      const id = await insertContact(t, { email: 'ann@flaky.test' });
      assert.equal((await enrich(id, t.auth)).json()['verification_status'], 'verified');
      ZONES.set('flaky.test', { mode: 'servfail' });
      const again = await enrich(id, t.auth);
      assert.equal(again.statusCode, 200, again.body);
      const c = again.json() as Json;
      assert.equal(c['verification_status'], 'verified');
      assert.equal(c['channels'][0]['verified'], true);
      assert.equal(c['channels'][0]['data']['verification']['result'], 'unknown');

      // The address changed since: the earlier result says nothing about the new one.
      await ctx()
        .db.updateTable('contact_channels')
        .set({ value: 'ann@broken.test' })
        .where('contact_id', '=', id)
        .execute();
      const changed = await enrich(id, t.auth);
      assert.equal(changed.json()['verification_status'], 'unverified');
      assert.equal(changed.json()['channels'][0]['verified'], false);
    });

    test('a suppressed address that becomes deliverable is verified again', async () => {
      ZONES.delete('later.test');
      const t = await owner();
      const id = await insertContact(t, { email: 'bo@later.test' });
      assert.equal((await enrich(id, t.auth)).json()['verification_status'], 'suppressed');
      ZONES.set('later.test', { mx: [[10, 'mx.later.test']] });
      const res = await enrich(id, t.auth);
      assert.equal(res.json()['verification_status'], 'verified');
      assert.equal(res.json()['channels'][0]['verified'], true);
    });

    let held = 0;

    /** A new domain whose DNS answers wait until `release` is called. */
    function heldZone(zone: Zone): { domain: string; release: () => void } {
      held += 1;
      const domain = `held-${held}-${ctx().engine}.test`;
      let release!: () => void;
      ZONES.set(domain, { ...zone, hold: new Promise<void>((r) => (release = r)) });
      return { domain, release };
    }

    async function untilAsked(question: string): Promise<void> {
      while (!dnsQueries.includes(question)) await new Promise((r) => setImmediate(r));
    }

    test('an address changed while it was being checked keeps its status (the result is about the old one)', async () => {
      const { domain, release } = heldZone({ mx: [[10, 'mx.held.test']] });
      const t = await owner();
      const id = await insertContact(t, { email: `old@${domain}` });
      const pending = enrich(id, t.auth);
      await untilAsked(`${domain} MX`);
      await ctx()
        .db.updateTable('contact_channels')
        .set({ value: 'new@elsewhere.test' })
        .where('contact_id', '=', id)
        .execute();
      release();
      const res = await pending;
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json()['verification_status'], 'unverified');
      assert.equal(res.json()['channels'][0]['verified'], false);
      assert.deepEqual(res.json()['channels'][0]['data'], {});
    });

    test('a contact deleted while it was being checked → 404 and the units are given back', async () => {
      const { domain, release } = heldZone({ mx: [[10, 'mx.gone.test']] });
      const t = await owner();
      const id = await insertContact(t, { email: `bye@${domain}` });
      const pending = enrich(id, t.auth);
      await untilAsked(`${domain} MX`);
      await ctx().db.deleteFrom('contacts').where('id', '=', id).execute();
      release();
      const res = await pending;
      assert.equal(res.statusCode, 404, res.body);
      assert.equal(await validationUsed(t.accountId), 0);
    });

    test('a contact with no email channel → 400 no_email_channel, nothing spent', async () => {
      const t = await owner();
      const id = await insertContact(t, { phone: '+14155552671' });
      const res = await enrich(id, t.auth);
      assert.equal(res.statusCode, 400);
      const body = res.json();
      assert.equal(body.code, 400);
      assert.equal(body.error, true);
      assert.equal(body.error_code, 'no_email_channel');
      assert.match(body.message, /no email/i);
      assert.equal(await validationUsed(t.accountId), 0);
    });

    test('each enrichment uses 2 validation units of this month', async () => {
      const t = await owner();
      const id = await insertContact(t, { email: 'count@good.test' });
      assert.equal(await validationUsed(t.accountId), 0);
      assert.equal((await enrich(id, t.auth)).statusCode, 200);
      assert.equal(await validationUsed(t.accountId), 2);
      // Unknown and undeliverable results cost the same: the check was made.
      const other = await insertContact(t, { email: 'x@no-such-domain.test' });
      assert.equal((await enrich(other, t.auth)).statusCode, 200);
      assert.equal(await validationUsed(t.accountId), 4);
      const row = await ctx()
        .db.selectFrom('usage_counters')
        .select('period')
        .where('account_id', '=', t.accountId)
        .where('resource', '=', 'validation')
        .executeTakeFirstOrThrow();
      assert.equal(row.period, usagePeriod(ctx().clock.now()));
    });

    test('an exhausted allowance → 400 allowance_exhausted, nothing spent or changed', async () => {
      const t = await owner();
      const id = await insertContact(t, { email: 'limit@good.test' });
      const period = usagePeriod(ctx().clock.now());
      // Free allows 100 a month: 98 used leaves exactly one enrichment.
      await addUsage(ctx().db, t.accountId, 'validation', period, 98);
      assert.equal((await enrich(id, t.auth)).statusCode, 200);
      assert.equal(await validationUsed(t.accountId), 100);
      const res = await enrich(id, t.auth);
      assert.equal(res.statusCode, 400);
      assert.equal(res.json().error_code, 'allowance_exhausted');
      assert.equal(res.json().error, true);
      assert.match(res.json().message, /allowance/i);
      assert.equal(await validationUsed(t.accountId), 100);

      // 99 used: one unit left is not enough for an enrichment of 2.
      const u = await owner();
      const c = await insertContact(u, { email: 'odd@good.test' });
      await addUsage(ctx().db, u.accountId, 'validation', period, 99);
      const odd = await enrich(c, u.auth);
      assert.equal(odd.statusCode, 400);
      assert.equal(odd.json().error_code, 'allowance_exhausted');
      const row = await ctx()
        .db.selectFrom('contacts')
        .select('verification_status')
        .where('id', '=', c)
        .executeTakeFirstOrThrow();
      assert.equal(row.verification_status, 'unverified');
      assert.equal(await validationUsed(u.accountId), 99);

      // A new month starts afresh (an API key: the session would have expired by then).
      const key = await createKey(ctx().app, t);
      ctx().clock.advance(32 * 24 * 3600 * 1000);
      try {
        const next = await enrich(id, bearer(key));
        assert.equal(next.statusCode, 200, next.body);
      } finally {
        ctx().clock.advance(-32 * 24 * 3600 * 1000);
      }
    });

    test('the allowance follows the plan: pro allows 1000, enterprise is unlimited', async () => {
      const period = usagePeriod(ctx().clock.now());
      const t = await owner();
      const id = await insertContact(t, { email: 'plan@good.test' });
      await addUsage(ctx().db, t.accountId, 'validation', period, 500);
      assert.equal((await enrich(id, t.auth)).statusCode, 400, 'free: 500 used is over 100');
      await setPlan(ctx().db, t.accountId, 'pro');
      const pro = await enrich(id, t.auth);
      assert.equal(pro.statusCode, 200, pro.body);
      await addUsage(ctx().db, t.accountId, 'validation', period, 500);
      assert.equal((await enrich(id, t.auth)).statusCode, 400, 'pro: 1002 used is over 1000');
      await setPlan(ctx().db, t.accountId, 'enterprise');
      const unlimited = await enrich(id, t.auth);
      assert.equal(unlimited.statusCode, 200, unlimited.body);
      assert.equal(await validationUsed(t.accountId), 1004);
    });

    test('concurrent enrichments never overdraw the allowance', async () => {
      const t = await owner();
      const id = await insertContact(t, { email: 'race@good.test' });
      await addUsage(ctx().db, t.accountId, 'validation', usagePeriod(ctx().clock.now()), 94);
      const results = await Promise.all(Array.from({ length: 6 }, () => enrich(id, t.auth)));
      const codes = results.map((r) => r.statusCode).sort();
      assert.deepEqual(codes, [200, 200, 200, 400, 400, 400]);
      assert.equal(await validationUsed(t.accountId), 100);
    });

    test('without an Apollo key, Apollo is never called and enrichment_status stays not_enriched', async () => {
      const before = apolloCalls.length;
      const { contact } = await verify('ada@good.test');
      assert.equal(contact['enrichment_status'], 'not_enriched');
      assert.equal(contact['first_name'], null);
      assert.equal(contact['data']['apollo'], undefined);
      assert.equal(apolloCalls.length, before);
    });

    test('an API key works as well as a session; an empty JSON object body is accepted', async () => {
      const t = await owner();
      const key = await createKey(ctx().app, t);
      const id = await insertContact(t, { email: 'key@good.test' });
      const res = await enrich(id, bearer(key), '{}');
      assert.equal(res.statusCode, 200, res.body);
      assert.equal(res.json()['verification_status'], 'verified');
    });

    test('malformed JSON → 400', async () => {
      const t = await owner();
      const id = await insertContact(t, { email: 'json@good.test' });
      const res = await enrich(id, t.auth, '{"oops"');
      assert.equal(res.statusCode, 400);
      assert.equal(res.json().error, true);
      assert.equal(await validationUsed(t.accountId), 0);
    });

    test('401 without a token and with a bad one', async () => {
      const t = await owner();
      const id = await insertContact(t, { email: 'auth@good.test' });
      const none = await enrich(id, {});
      assert.equal(none.statusCode, 401);
      assert.equal(none.json().code, 401);
      assert.equal(none.json().error, true);
      const bad = await enrich(id, bearer('nskey_live_notarealkey'));
      assert.equal(bad.statusCode, 401);
      assert.equal(await validationUsed(t.accountId), 0);
    });

    test('another account’s contact, another brand’s contact, or no such id → 404, nothing spent', async () => {
      const t = await owner();
      const other = await owner();
      const theirs = await insertContact(other, { email: 'theirs@good.test' });
      const res = await enrich(theirs, t.auth);
      assert.equal(res.statusCode, 404);
      assert.equal(res.json().error_code, 'not_found');

      const brand = await ctx().app.inject({
        method: 'POST',
        url: '/v1/my/brands',
        headers: t.auth,
        payload: {},
      });
      assert.equal(brand.statusCode, 201, brand.body);
      const b = brand.json();
      const inOtherBrand = await insertContact(
        { accountId: t.accountId, brandId: b.id },
        { email: 'b2@good.test' },
      );
      assert.equal((await enrich(inOtherBrand, t.auth)).statusCode, 404, 'the default brand cannot see it');
      const viaSid = await enrich(inOtherBrand, { ...t.auth, 'x-brand-sid': b.sid });
      assert.equal(viaSid.statusCode, 200, 'its own brand can');

      assert.equal((await enrich(2_000_000_000, t.auth)).statusCode, 404);
      assert.equal((await enrich('abc', t.auth)).statusCode, 404);
      assert.equal(await validationUsed(other.accountId), 0);
      assert.equal(await validationUsed(t.accountId), 2);
      const untouched = await ctx()
        .db.selectFrom('contacts')
        .select('verification_status')
        .where('id', '=', theirs)
        .executeTakeFirstOrThrow();
      assert.equal(untouched.verification_status, 'unverified');
    });

    test('the route is documented in the OpenAPI document', async () => {
      const doc = (await ctx().app.inject({ method: 'GET', url: '/openapi.json' })).json();
      const op = doc.paths['/v1/my/contacts/{id}/enrich'].post;
      assert.equal(op.operationId, 'enrichContact');
      assert.deepEqual(op.tags, ['Contacts']);
      assert.ok(op.responses['200'] && op.responses['400'] && op.responses['401'] && op.responses['404']);
    });
  },
  { DNS_RESOLVER, APOLLO_BASE_URL },
);

describeEachEngine(
  'contact enrich with Apollo',
  (ctx) => {
    const { owner, insertContact, enrich, verify } = helpers(ctx);

    test('a match fills empty names, stores data.apollo and marks the contact enriched', async () => {
      const before = apolloCalls.length;
      const t = await owner();
      const id = await insertContact(t, { email: 'ada@good.test', data: { tags: ['vip'], plan: 'pro' } });
      const res = await enrich(id, t.auth);
      assert.equal(res.statusCode, 200, res.body);
      const c = res.json() as Json;
      assert.equal(c['verification_status'], 'verified');
      assert.equal(c['enrichment_status'], 'enriched');
      assert.equal(c['first_name'], 'Ada');
      assert.equal(c['last_name'], 'Lovelace');
      assert.deepEqual(c['data']['tags'], ['vip']);
      assert.equal(c['data']['plan'], 'pro');
      assert.deepEqual(c['data']['apollo'], {
        id: '5f1e2d3c4b5a',
        name: 'Ada Lovelace',
        first_name: 'Ada',
        last_name: 'Lovelace',
        title: 'Head of Analytics',
        headline: 'Engines and numbers',
        seniority: 'head',
        departments: ['data_science'],
        linkedin_url: 'http://www.linkedin.com/in/ada',
        city: 'London',
        state: 'England',
        country: 'United Kingdom',
        organization_name: 'Analytical Engines Ltd',
        organization_domain: 'good.test',
        organization_website_url: 'http://www.good.test',
        organization_industry: 'computer software',
        organization_size: 120,
        enriched_at: ctx().clock.now().toISOString(),
      });
      assert.equal(apolloCalls.length, before + 1);
      const call = apolloCalls.at(-1)!;
      assert.equal(call.key, APOLLO_KEY);
      assert.match(call.contentType ?? '', /^application\/json/);
      assert.deepEqual(call.body, { email: 'ada@good.test' });
      // The filled-in names are searchable.
      const row = await ctx()
        .db.selectFrom('contacts')
        .select('search_text')
        .where('id', '=', id)
        .executeTakeFirstOrThrow();
      assert.match(row.search_text, /ada lovelace/);
    });

    test('names the contact already has are kept', async () => {
      const t = await owner();
      const id = await insertContact(t, { email: 'ada@good.test', first_name: 'Augusta' });
      const c = (await enrich(id, t.auth)).json() as Json;
      assert.equal(c['enrichment_status'], 'enriched');
      assert.equal(c['first_name'], 'Augusta');
      assert.equal(c['last_name'], 'Lovelace');
      assert.equal(c['data']['apollo']['first_name'], 'Ada');
    });

    test('Apollo failing (500) does not fail the verification', async () => {
      const before = apolloCalls.length;
      const { contact, channel } = await verify('crash@good.test');
      assert.equal(apolloCalls.length, before + 1, 'Apollo was asked');
      assert.equal(contact['verification_status'], 'verified');
      assert.equal(channel['verified'], true);
      assert.equal(contact['enrichment_status'], 'not_enriched');
      assert.equal(contact['data']['apollo'], undefined);
    });

    test('no match leaves the contact not_enriched', async () => {
      const { contact } = await verify('nobody@good.test');
      assert.equal(contact['enrichment_status'], 'not_enriched');
      assert.equal(contact['data']['apollo'], undefined);
    });

    test('a suppressed address is not sent to Apollo', async () => {
      const before = apolloCalls.length;
      const { contact } = await verify('ada@no-such-domain.test');
      assert.equal(contact['verification_status'], 'suppressed');
      assert.equal(contact['enrichment_status'], 'not_enriched');
      assert.equal(apolloCalls.length, before);
    });
  },
  { DNS_RESOLVER, APOLLO_API_KEY: APOLLO_KEY, APOLLO_BASE_URL },
);

test('disposable domains match themselves and their subdomains, not look-alikes', () => {
  assert.equal(isDisposableDomain('mailinator.com'), true);
  assert.equal(isDisposableDomain('eu.mailinator.com'), true);
  assert.equal(isDisposableDomain('YOPMAIL.COM'), true);
  assert.equal(isDisposableDomain('notmailinator.co'), false);
  assert.equal(isDisposableDomain('gmail.com'), false);
  assert.equal(isDisposableDomain('com'), false);
});

test('role addresses are recognised through separators and sub-address tags', () => {
  for (const e of ['admin@x.io', 'info@x.io', 'no-reply@x.io', 'No_Reply+bounce@x.io', 'postmaster@x.io']) {
    assert.equal(isRoleAddress(e), true, e);
  }
  for (const e of ['ada@x.io', 'admiral@x.io', 'information.desk.jane@x.io']) {
    assert.equal(isRoleAddress(e), false, e);
  }
});

test('DNS_RESOLVER takes IP addresses with optional ports; APOLLO_* are read as given', () => {
  const base = { SECRET_KEY: 'x'.repeat(32), DATA_DIR: '/nonexistent' };
  const ok = loadConfig({ ...base, DNS_RESOLVER: '127.0.0.1:5353, 1.1.1.1,[::1]:53,2001:db8::1' });
  assert.equal(ok.dnsResolver, '127.0.0.1:5353, 1.1.1.1,[::1]:53,2001:db8::1');
  // Every accepted form is one node:dns accepts too.
  assert.doesNotThrow(() => createMailResolver(ok.dnsResolver));
  const defaults = loadConfig(base);
  assert.equal(defaults.dnsResolver, undefined);
  assert.equal(defaults.apolloApiKey, undefined);
  assert.equal(defaults.apolloBaseUrl, 'https://api.apollo.io');
  const apollo = loadConfig({ ...base, APOLLO_API_KEY: 'k', APOLLO_BASE_URL: 'http://127.0.0.1:9/' });
  assert.equal(apollo.apolloApiKey, 'k');
  assert.equal(apollo.apolloBaseUrl, 'http://127.0.0.1:9');
  for (const bad of ['dns.google', '127.0.0.1:99999', '1.2.3.4:53,nope', 'ftp://1.1.1.1']) {
    assert.throws(
      () => loadConfig({ ...base, DNS_RESOLVER: bad }),
      (err: unknown) => err instanceof ConfigError && err.problems.some((p) => p.startsWith('DNS_RESOLVER')),
      bad,
    );
  }
  assert.throws(() => loadConfig({ ...base, APOLLO_BASE_URL: 'not a url' }), ConfigError);
});
