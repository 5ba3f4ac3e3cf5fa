import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { sql } from 'kysely';
import {
  ENGAGEMENT_RATINGS,
  engagementRating,
  filterCatalog,
  PREDICATES,
  type Predicate,
  parseFilters,
} from '../src/domain/segments/compiler.ts';
import { segmentContactsQuery } from '../src/domain/segments/segments.ts';
import { AppError } from '../src/lib/errors.ts';
import { json } from '../src/store/db.ts';
import { describeEachEngine, type Session, signup } from './helpers.ts';

const DAY = 86_400_000;
/** "Now" for the whole suite; every fixture date is relative to it. */
const NOW = new Date('2025-07-01T12:00:00.000Z');
const ago = (ms: number) => new Date(NOW.getTime() - ms);

type Json = Record<string, unknown>;
type Tenant = { account_id: number; brand_id: number; session: Session };
type Fixture = {
  first_name?: string | null;
  last_name?: string | null;
  source?: string | null;
  country_code?: string | null;
  data?: Json;
  created_at: Date;
  last_interacted_at?: Date | null;
  emails_sent?: number;
  unique_opens?: number;
  clicks?: number;
  last_opened_at?: Date | null;
  last_clicked_at?: Date | null;
  soft_bounce_count?: number;
  bounced?: boolean;
  complained?: boolean;
  suppressed?: boolean;
  suppression_reason?: string | null;
  unsubscribed_at?: Date | null;
  email?: [string, boolean];
  phone?: [string, boolean];
};

/**
 * Seven contacts chosen to separate every predicate: nulls, empty and whitespace values, mixed
 * case, tags given as one string, dates exactly on and just past window edges.
 */
const FIXTURES: Record<string, Fixture> = {
  ada: {
    first_name: 'Ada',
    last_name: 'Lovelace',
    source: 'import',
    country_code: 'GB',
    data: {
      tags: ['VIP', 'Newsletter'],
      plan: 'Pro',
      score: 42,
      address: { city: 'London' },
      vip: true,
      signup: '2024-01-15',
      interests: ['Cats', 'dogs'],
    },
    created_at: ago(10 * DAY),
    last_interacted_at: ago(1 * DAY),
    emails_sent: 10,
    unique_opens: 5,
    clicks: 2,
    last_opened_at: ago(5 * DAY),
    last_clicked_at: ago(5 * DAY),
    email: ['ada@example.com', true],
    phone: ['+442079460018', false],
  },
  bob: {
    first_name: 'bob',
    country_code: 'us',
    data: { tags: [], score: '7', vip: false, plan: 'Free', address_city: 'Flatville' },
    created_at: ago(30 * DAY), // exactly on the 30-day edge
    emails_sent: 4,
    suppressed: true,
    suppression_reason: 'Hard bounce',
    bounced: true,
    soft_bounce_count: 3,
    unsubscribed_at: ago(2 * DAY),
    email: ['bob@example.org', false],
  },
  cy: {
    last_name: 'Young',
    source: 'api',
    data: { tags: ['vip'] },
    created_at: ago(30 * DAY + 1000), // one second past the 30-day edge
    complained: true,
    phone: ['+15551234567', true],
  },
  dee: {
    first_name: '',
    last_name: 'de Santos',
    source: 'Import',
    country_code: 'DE',
    data: { score: 100.5, address: { city: 'Berlin' }, signup: 'not a date', vip: 'TRUE' },
    created_at: ago(400 * DAY),
    last_interacted_at: ago(100 * DAY),
    emails_sent: 20,
    unique_opens: 2,
    clicks: 5,
    last_opened_at: ago(100 * DAY),
    last_clicked_at: ago(100 * DAY),
    soft_bounce_count: 1,
    email: ['dee@sample.com', false],
  },
  eve: {
    first_name: 'Évelyne',
    last_name: '  ',
    source: 'form',
    country_code: 'FR',
    data: { tags: ['news_letter'], score: null, signup: '2025-06-01T12:00:00Z', plan: '' },
    created_at: ago(200 * DAY),
    emails_sent: 1,
    unique_opens: 1,
    last_opened_at: ago(60 * DAY),
    email: ['eve_1%@x.com', true],
  },
  fay: {
    first_name: 'Fay',
    data: { tags: 'vip', plan: 'pro' },
    created_at: ago(1 * DAY),
    emails_sent: 3,
    unique_opens: 3, // opens recorded without a date: dormant
  },
  gus: {
    first_name: 'Gus',
    data: { tags: ['x'], interests: [] },
    created_at: ago(50 * DAY),
    emails_sent: 8,
    unique_opens: 2,
    last_opened_at: ago(181 * DAY),
  },
};
const NAMES = Object.keys(FIXTURES);
const ALL = [...NAMES].sort();
const except = (...names: string[]) => ALL.filter((n) => !names.includes(n));

type Row = [string, Json | unknown[], string[]];

describeEachEngine('segment filter compiler', (ctx) => {
  let a: Tenant;
  let b: Tenant;
  const ids = new Map<string, number>(); // name → contact id (brand A)
  const lists: Record<string, number> = {};

  async function tenantOf(session: Session): Promise<Tenant> {
    const res = await ctx().app.inject({ method: 'GET', url: '/v1/my/account', headers: session.auth });
    const account = res.json();
    return { account_id: account.id, brand_id: account.brands[0].id, session };
  }

  async function insertContact(t: Tenant, f: Fixture): Promise<number> {
    const { db } = ctx();
    const row = await db
      .insertInto('contacts')
      .values({
        account_id: t.account_id,
        brand_id: t.brand_id,
        first_name: f.first_name ?? null,
        last_name: f.last_name ?? null,
        source: f.source ?? null,
        country_code: f.country_code ?? null,
        data: json(f.data ?? {}),
        created_at: f.created_at,
        last_interacted_at: f.last_interacted_at ?? null,
        emails_sent: f.emails_sent ?? 0,
        unique_opens: f.unique_opens ?? 0,
        clicks: f.clicks ?? 0,
        last_opened_at: f.last_opened_at ?? null,
        last_clicked_at: f.last_clicked_at ?? null,
        soft_bounce_count: f.soft_bounce_count ?? 0,
        bounced: f.bounced ?? false,
        complained: f.complained ?? false,
        suppressed: f.suppressed ?? false,
        suppression_reason: f.suppression_reason ?? null,
        unsubscribed_at: f.unsubscribed_at ?? null,
      })
      .returning('id')
      .executeTakeFirstOrThrow();
    for (const [kind, channel] of [
      ['email', f.email],
      ['phone', f.phone],
    ] as const) {
      if (!channel) continue;
      await db
        .insertInto('contact_channels')
        .values({
          contact_id: row.id,
          brand_id: t.brand_id,
          kind,
          value: channel[0],
          subscribed: channel[1],
          data: json({}),
        })
        .execute();
    }
    return row.id;
  }

  async function insertList(t: Tenant, name: string, members: number[]): Promise<number> {
    const { db } = ctx();
    const list = await db
      .insertInto('contact_lists')
      .values({ account_id: t.account_id, brand_id: t.brand_id, name })
      .returning('id')
      .executeTakeFirstOrThrow();
    for (const contact_id of members) {
      await db.insertInto('list_memberships').values({ list_id: list.id, contact_id }).execute();
    }
    return list.id;
  }

  async function insertEvent(t: Tenant, contactId: number, event: string, at: Date, testMode = false) {
    await ctx()
      .db.insertInto('events')
      .values({
        account_id: t.account_id,
        brand_id: t.brand_id,
        contact_id: contactId,
        event,
        data: json({}),
        test: testMode,
        created_at: at,
      })
      .execute();
  }

  before(async () => {
    ctx().clock.set(NOW);
    a = await tenantOf(await signup(ctx().app));
    b = await tenantOf(await signup(ctx().app));
    for (const name of NAMES) {
      ids.set(name, await insertContact(a, FIXTURES[name]!));
      // Brand B holds an identical copy of every contact: any leak across brands doubles a count.
      await insertContact(b, FIXTURES[name]!);
    }
    const id = (n: string) => ids.get(n)!;
    lists['L1'] = await insertList(a, 'L1', [id('ada'), id('bob')]);
    lists['L2'] = await insertList(a, 'L2', [id('bob'), id('cy')]);
    lists['L3'] = await insertList(a, 'L3', []);
    lists['LB'] = await insertList(b, 'LB', []);
    await insertEvent(a, id('ada'), 'checkout', ago(1 * DAY));
    await insertEvent(a, id('ada'), 'checkout', ago(10 * DAY));
    await insertEvent(a, id('ada'), 'checkout', ago(40 * DAY));
    await insertEvent(a, id('ada'), 'checkout', ago(1 * DAY), true); // test events never count
    await insertEvent(a, id('bob'), 'checkout', ago(5 * DAY));
    await insertEvent(a, id('dee'), 'signup', ago(2 * DAY));
    await insertEvent(a, id('eve'), 'checkout', ago(1 * DAY), true);
  });

  /** Names of brand A's contacts matching `filters` at the clock's now (validating like the API). */
  async function match(filters: unknown, brand = a): Promise<string[]> {
    const query = await segmentContactsQuery(ctx().db, brand.brand_id, filters, ctx().clock.now());
    const rows = await query.execute();
    const byId = new Map([...ids].map(([n, id]) => [id, n]));
    return rows.map((r) => byId.get(r.id) ?? `foreign:${r.id}`).sort();
  }

  const f = (name: string, predicate: string, value?: unknown): Json =>
    value === undefined ? { name, predicate } : { name, predicate, value };

  // prettier-ignore
  const TABLE: Row[] = [
    // --- text columns (case-insensitive; NULL and '' fail positives, pass negations)
    ['first eq (case)', [f('contact_first_name', 'eq', 'ADA')], ['ada']],
    ['first not_eq includes nulls', [f('contact_first_name', 'not_eq', 'ada')], except('ada')],
    ['first cont', [f('contact_first_name', 'cont', 'B')], ['bob']],
    ['first cont % is literal', [f('contact_first_name', 'cont', '%')], []],
    ['first not_cont', [f('contact_first_name', 'not_cont', 'a')], ['bob', 'cy', 'dee', 'eve', 'gus']],
    ['first start (unicode)', [f('contact_first_name', 'start', 'Év')], ['eve']],
    ['first end', [f('contact_first_name', 'end', 'Y')], ['fay']],
    ['first not_start', [f('contact_first_name', 'not_start', 'a')], except('ada')],
    ['first not_end', [f('contact_first_name', 'not_end', 'y')], except('fay')],
    ['first in', [f('contact_first_name', 'in', ['ADA', 'Fay'])], ['ada', 'fay']],
    ['first not_in', [f('contact_first_name', 'not_in', ['ada', 'fay'])], ['bob', 'cy', 'dee', 'eve', 'gus']],
    ['first present', [f('contact_first_name', 'present')], ['ada', 'bob', 'eve', 'fay', 'gus']],
    ['first present true', [f('contact_first_name', 'present', true)], ['ada', 'bob', 'eve', 'fay', 'gus']],
    ['first present false = blank', [f('contact_first_name', 'present', false)], ['cy', 'dee']],
    ['first blank', [f('contact_first_name', 'blank')], ['cy', 'dee']],
    [
      'first blank false = present',
      [f('contact_first_name', 'blank', 'false')],
      ['ada', 'bob', 'eve', 'fay', 'gus'],
    ],
    ['last eq', [f('contact_last_name', 'eq', 'young')], ['cy']],
    ['last not_eq', [f('contact_last_name', 'not_eq', 'young')], except('cy')],
    ['last cont space', [f('contact_last_name', 'cont', ' ')], ['dee', 'eve']],
    ['last not_cont', [f('contact_last_name', 'not_cont', 'o')], ['bob', 'eve', 'fay', 'gus']],
    ['last start', [f('contact_last_name', 'start', 'DE ')], ['dee']],
    ['last end', [f('contact_last_name', 'end', 'ACE')], ['ada']],
    ['last not_start', [f('contact_last_name', 'not_start', 'l')], except('ada')],
    ['last not_end', [f('contact_last_name', 'not_end', 'g')], except('cy')],
    ['last in', [f('contact_last_name', 'in', ['lovelace', 'x'])], ['ada']],
    ['last not_in', [f('contact_last_name', 'not_in', ['lovelace'])], except('ada')],
    ['last present (whitespace is blank)', [f('contact_last_name', 'present')], ['ada', 'cy', 'dee']],
    ['last blank', [f('contact_last_name', 'blank')], ['bob', 'eve', 'fay', 'gus']],
    ['country eq', [f('contact_country', 'eq', 'US')], ['bob']],
    ['country not_eq', [f('contact_country', 'not_eq', 'us')], except('bob')],
    ['country cont', [f('contact_country', 'cont', 'b')], ['ada']],
    ['country not_cont', [f('contact_country', 'not_cont', 'u')], except('bob')],
    ['country start', [f('contact_country', 'start', 'd')], ['dee']],
    ['country end', [f('contact_country', 'end', 'R')], ['eve']],
    ['country not_start', [f('contact_country', 'not_start', 'g')], except('ada')],
    ['country not_end', [f('contact_country', 'not_end', 's')], except('bob')],
    ['country in', [f('contact_country', 'in', ['gb', 'De'])], ['ada', 'dee']],
    ['country not_in', [f('contact_country', 'not_in', ['gb', 'de'])], ['bob', 'cy', 'eve', 'fay', 'gus']],
    ['country present', [f('contact_country', 'present')], ['ada', 'bob', 'dee', 'eve']],
    ['country blank', [f('contact_country', 'blank')], ['cy', 'fay', 'gus']],
    ['source eq (case)', [f('contact_source', 'eq', 'IMPORT')], ['ada', 'dee']],
    ['source not_eq', [f('contact_source', 'not_eq', 'import')], except('ada', 'dee')],
    ['source cont', [f('contact_source', 'cont', 'OR')], ['ada', 'dee', 'eve']],
    ['source not_cont', [f('contact_source', 'not_cont', 'or')], ['bob', 'cy', 'fay', 'gus']],
    ['source start', [f('contact_source', 'start', 'a')], ['cy']],
    ['source end', [f('contact_source', 'end', 'm')], ['eve']],
    ['source not_start', [f('contact_source', 'not_start', 'im')], except('ada', 'dee')],
    ['source not_end', [f('contact_source', 'not_end', 'pi')], except('cy')],
    ['source in', [f('contact_source', 'in', ['API', 'form'])], ['cy', 'eve']],
    ['source not_in', [f('contact_source', 'not_in', ['api', 'form'])], except('cy', 'eve')],
    ['source present', [f('contact_source', 'present')], ['ada', 'cy', 'dee', 'eve']],
    ['source blank', [f('contact_source', 'blank')], ['bob', 'fay', 'gus']],
    ['reason eq', [f('contact_suppression_reason', 'eq', 'hard BOUNCE')], ['bob']],
    ['reason not_eq', [f('contact_suppression_reason', 'not_eq', 'hard bounce')], except('bob')],
    ['reason cont', [f('contact_suppression_reason', 'cont', 'bounce')], ['bob']],
    ['reason not_cont', [f('contact_suppression_reason', 'not_cont', 'bounce')], except('bob')],
    ['reason start', [f('contact_suppression_reason', 'start', 'hard')], ['bob']],
    ['reason end', [f('contact_suppression_reason', 'end', 'ounce')], ['bob']],
    ['reason not_start', [f('contact_suppression_reason', 'not_start', 'hard')], except('bob')],
    ['reason not_end', [f('contact_suppression_reason', 'not_end', 'x')], ALL],
    ['reason in', [f('contact_suppression_reason', 'in', ['Hard bounce', 'complaint'])], ['bob']],
    ['reason not_in', [f('contact_suppression_reason', 'not_in', ['complaint'])], ALL],
    ['reason present', [f('contact_suppression_reason', 'present')], ['bob']],
    ['reason blank', [f('contact_suppression_reason', 'blank')], except('bob')],

    // --- channels: any channel of the kind; negations include contacts without one
    ['email eq (case)', [f('contact_email', 'eq', 'ADA@Example.com')], ['ada']],
    ['email not_eq', [f('contact_email', 'not_eq', 'ada@example.com')], except('ada')],
    ['email cont', [f('contact_email', 'cont', 'EXAMPLE')], ['ada', 'bob']],
    ['email cont % literal', [f('contact_email', 'cont', '%')], ['eve']],
    ['email cont _ literal', [f('contact_email', 'cont', '_')], ['eve']],
    ['email not_cont', [f('contact_email', 'not_cont', 'example')], ['cy', 'dee', 'eve', 'fay', 'gus']],
    ['email start', [f('contact_email', 'start', 'bob@')], ['bob']],
    ['email end', [f('contact_email', 'end', '.ORG')], ['bob']],
    ['email not_start', [f('contact_email', 'not_start', 'bob')], except('bob')],
    ['email not_end', [f('contact_email', 'not_end', '.com')], ['bob', 'cy', 'fay', 'gus']],
    ['email in', [f('contact_email', 'in', ['dee@sample.com', 'nobody@x.com'])], ['dee']],
    ['email not_in', [f('contact_email', 'not_in', ['dee@sample.com'])], except('dee')],
    ['email present', [f('contact_email', 'present')], ['ada', 'bob', 'dee', 'eve']],
    ['email blank', [f('contact_email', 'blank')], ['cy', 'fay', 'gus']],
    ['phone eq (formatting ignored)', [f('contact_phone_number', 'eq', '+44 20 7946 0018')], ['ada']],
    ['phone not_eq', [f('contact_phone_number', 'not_eq', '+442079460018')], except('ada')],
    ['phone cont', [f('contact_phone_number', 'cont', '555')], ['cy']],
    ['phone not_cont', [f('contact_phone_number', 'not_cont', '555')], except('cy')],
    ['phone start', [f('contact_phone_number', 'start', '+1')], ['cy']],
    ['phone end', [f('contact_phone_number', 'end', '0018')], ['ada']],
    ['phone not_start', [f('contact_phone_number', 'not_start', '+44')], except('ada')],
    ['phone not_end', [f('contact_phone_number', 'not_end', '567')], except('cy')],
    ['phone in', [f('contact_phone_number', 'in', ['+1 (555) 123-4567'])], ['cy']],
    ['phone not_in', [f('contact_phone_number', 'not_in', ['+15551234567'])], except('cy')],
    ['phone present', [f('contact_phone_number', 'present')], ['ada', 'cy']],
    ['phone blank', [f('contact_phone_number', 'blank')], except('ada', 'cy')],

    // --- booleans
    ['subscribed email true', [f('contact_subscribed_email', 'true')], ['ada', 'eve']],
    ['subscribed email false', [f('contact_subscribed_email', 'false')], except('ada', 'eve')],
    ['subscribed email true:false', [f('contact_subscribed_email', 'true', false)], except('ada', 'eve')],
    ['subscribed email eq true', [f('contact_subscribed_email', 'eq', true)], ['ada', 'eve']],
    ['subscribed email eq "false"', [f('contact_subscribed_email', 'eq', 'false')], except('ada', 'eve')],
    ['subscribed email not_eq true', [f('contact_subscribed_email', 'not_eq', true)], except('ada', 'eve')],
    ['subscribed email not_eq false', [f('contact_subscribed_email', 'not_eq', false)], ['ada', 'eve']],
    ['subscribed phone true', [f('contact_subscribed_phone', 'true')], ['cy']],
    ['subscribed phone false', [f('contact_subscribed_phone', 'false')], except('cy')],
    ['subscribed phone eq', [f('contact_subscribed_phone', 'eq', true)], ['cy']],
    ['subscribed phone not_eq', [f('contact_subscribed_phone', 'not_eq', true)], except('cy')],
    ['suppressed true', [f('contact_suppressed', 'true')], ['bob']],
    ['suppressed false', [f('contact_suppressed', 'false')], except('bob')],
    ['suppressed eq', [f('contact_suppressed', 'eq', false)], except('bob')],
    ['suppressed not_eq', [f('contact_suppressed', 'not_eq', false)], ['bob']],
    ['bounced true', [f('contact_bounced', 'true')], ['bob']],
    ['bounced false', [f('contact_bounced', 'false')], except('bob')],
    ['bounced eq', [f('contact_bounced', 'eq', true)], ['bob']],
    ['bounced not_eq', [f('contact_bounced', 'not_eq', true)], except('bob')],
    ['complained true', [f('contact_complained', 'true')], ['cy']],
    ['complained false', [f('contact_complained', 'false')], except('cy')],
    ['complained eq', [f('contact_complained', 'eq', 'TRUE')], ['cy']],
    ['complained not_eq', [f('contact_complained', 'not_eq', true)], except('cy')],

    // --- dates: windows relative to the clock, date-only = whole UTC day, date-time = instant
    [
      'created within 30 (edge included)',
      [f('contact_created_at', 'within_days', 30)],
      ['ada', 'bob', 'fay'],
    ],
    [
      'created not_within 30',
      [f('contact_created_at', 'not_within_days', '30')],
      ['cy', 'dee', 'eve', 'gus'],
    ],
    ['created eq day', [f('contact_created_at', 'eq', '2025-06-01')], ['bob', 'cy']],
    ['created not_eq day', [f('contact_created_at', 'not_eq', '2025-06-01')], except('bob', 'cy')],
    ['created gt day = from next day', [f('contact_created_at', 'gt', '2025-06-01')], ['ada', 'fay']],
    ['created gteq day', [f('contact_created_at', 'gteq', '2025-06-01')], ['ada', 'bob', 'cy', 'fay']],
    ['created lt day', [f('contact_created_at', 'lt', '2025-06-01')], ['dee', 'eve', 'gus']],
    [
      'created lteq day = to end of day',
      [f('contact_created_at', 'lteq', '2025-06-01')],
      ['bob', 'cy', 'dee', 'eve', 'gus'],
    ],
    ['created eq instant', [f('contact_created_at', 'eq', '2025-06-01T12:00:00Z')], ['bob']],
    ['created gt instant', [f('contact_created_at', 'gt', '2025-06-01T11:59:59Z')], ['ada', 'bob', 'fay']],
    [
      'created lteq instant',
      [f('contact_created_at', 'lteq', '2025-06-01T11:59:59.000Z')],
      ['cy', 'dee', 'eve', 'gus'],
    ],
    [
      'created lt with offset',
      [f('contact_created_at', 'lt', '2025-06-01T13:59:59+02:00')],
      ['dee', 'eve', 'gus'],
    ],
    [
      'created gteq zone-less = UTC',
      [f('contact_created_at', 'gteq', '2025-06-01 12:00')],
      ['ada', 'bob', 'fay'],
    ],
    ['created present', [f('contact_created_at', 'present')], ALL],
    ['created blank', [f('contact_created_at', 'blank')], []],
    ['interacted within 7', [f('contact_last_interacted_at', 'within_days', 7)], ['ada']],
    [
      'interacted not_within 7 (nulls in)',
      [f('contact_last_interacted_at', 'not_within_days', 7)],
      except('ada'),
    ],
    ['interacted eq', [f('contact_last_interacted_at', 'eq', '2025-06-30')], ['ada']],
    [
      'interacted not_eq (nulls in)',
      [f('contact_last_interacted_at', 'not_eq', '2025-06-30')],
      except('ada'),
    ],
    ['interacted gt', [f('contact_last_interacted_at', 'gt', '2025-01-01')], ['ada', 'dee']],
    ['interacted gteq', [f('contact_last_interacted_at', 'gteq', '2025-06-30')], ['ada']],
    ['interacted lt (nulls out)', [f('contact_last_interacted_at', 'lt', '2025-06-30')], ['dee']],
    ['interacted lteq', [f('contact_last_interacted_at', 'lteq', '2025-06-30')], ['ada', 'dee']],
    ['interacted present', [f('contact_last_interacted_at', 'present')], ['ada', 'dee']],
    ['interacted blank', [f('contact_last_interacted_at', 'blank')], except('ada', 'dee')],
    ['opened within 90', [f('contact_last_opened_at', 'within_days', 90)], ['ada', 'eve']],
    [
      'opened not_within 90 (never opened in)',
      [f('contact_last_opened_at', 'not_within_days', 90)],
      ['bob', 'cy', 'dee', 'fay', 'gus'],
    ],
    ['opened eq', [f('contact_last_opened_at', 'eq', '2025-06-26')], ['ada']],
    ['opened not_eq', [f('contact_last_opened_at', 'not_eq', '2025-06-26')], except('ada')],
    ['opened gt', [f('contact_last_opened_at', 'gt', '2025-04-01')], ['ada', 'eve']],
    ['opened gteq', [f('contact_last_opened_at', 'gteq', '2025-05-02')], ['ada', 'eve']],
    ['opened lt', [f('contact_last_opened_at', 'lt', '2025-05-02')], ['dee', 'gus']],
    ['opened lteq', [f('contact_last_opened_at', 'lteq', '2025-05-02')], ['dee', 'eve', 'gus']],
    ['opened present', [f('contact_last_opened_at', 'present')], ['ada', 'dee', 'eve', 'gus']],
    ['opened blank', [f('contact_last_opened_at', 'blank')], ['bob', 'cy', 'fay']],
    ['clicked within 30', [f('contact_last_clicked_at', 'within_days', 30)], ['ada']],
    ['clicked not_within 30', [f('contact_last_clicked_at', 'not_within_days', 30)], except('ada')],
    ['clicked eq', [f('contact_last_clicked_at', 'eq', '2025-03-23')], ['dee']],
    ['clicked not_eq', [f('contact_last_clicked_at', 'not_eq', '2025-03-23')], except('dee')],
    ['clicked gt', [f('contact_last_clicked_at', 'gt', '2025-03-23')], ['ada']],
    ['clicked gteq', [f('contact_last_clicked_at', 'gteq', '2025-03-23')], ['ada', 'dee']],
    ['clicked lt', [f('contact_last_clicked_at', 'lt', '2025-03-24')], ['dee']],
    ['clicked lteq', [f('contact_last_clicked_at', 'lteq', '2025-03-22')], []],
    ['clicked present', [f('contact_last_clicked_at', 'present')], ['ada', 'dee']],
    ['clicked blank', [f('contact_last_clicked_at', 'blank')], except('ada', 'dee')],
    ['unsubscribed within 7', [f('contact_unsubscribed_at', 'within_days', 7)], ['bob']],
    ['unsubscribed not_within 7', [f('contact_unsubscribed_at', 'not_within_days', 7)], except('bob')],
    ['unsubscribed eq', [f('contact_unsubscribed_at', 'eq', '2025-06-29')], ['bob']],
    ['unsubscribed not_eq', [f('contact_unsubscribed_at', 'not_eq', '2025-06-29')], except('bob')],
    ['unsubscribed gt', [f('contact_unsubscribed_at', 'gt', '2025-06-29')], []],
    ['unsubscribed gteq', [f('contact_unsubscribed_at', 'gteq', '2025-06-29')], ['bob']],
    ['unsubscribed lt', [f('contact_unsubscribed_at', 'lt', '2025-06-30')], ['bob']],
    ['unsubscribed lteq', [f('contact_unsubscribed_at', 'lteq', '2025-06-28')], []],
    ['unsubscribed present', [f('contact_unsubscribed_at', 'present')], ['bob']],
    ['unsubscribed blank', [f('contact_unsubscribed_at', 'blank')], except('bob')],

    // --- numbers (numeric strings accepted); rates in percent, 0 when nothing was sent
    ['sent eq', [f('contact_emails_sent', 'eq', 10)], ['ada']],
    ['sent eq numeric string', [f('contact_emails_sent', 'eq', '10')], ['ada']],
    ['sent not_eq', [f('contact_emails_sent', 'not_eq', 10)], except('ada')],
    ['sent gt', [f('contact_emails_sent', 'gt', 8)], ['ada', 'dee']],
    ['sent gteq', [f('contact_emails_sent', 'gteq', 8)], ['ada', 'dee', 'gus']],
    ['sent lt', [f('contact_emails_sent', 'lt', 1)], ['cy']],
    ['sent lteq', [f('contact_emails_sent', 'lteq', 1)], ['cy', 'eve']],
    ['sent in', [f('contact_emails_sent', 'in', [0, '4'])], ['bob', 'cy']],
    ['sent not_in', [f('contact_emails_sent', 'not_in', [0, 4])], except('bob', 'cy')],
    ['opens eq', [f('contact_unique_opens', 'eq', 2)], ['dee', 'gus']],
    ['opens not_eq', [f('contact_unique_opens', 'not_eq', 0)], except('bob', 'cy')],
    ['opens gt', [f('contact_unique_opens', 'gt', 2)], ['ada', 'fay']],
    ['opens gteq', [f('contact_unique_opens', 'gteq', 3)], ['ada', 'fay']],
    ['opens lt', [f('contact_unique_opens', 'lt', 1.5)], ['bob', 'cy', 'eve']],
    ['opens lteq', [f('contact_unique_opens', 'lteq', 1)], ['bob', 'cy', 'eve']],
    ['opens in', [f('contact_unique_opens', 'in', [5, 3])], ['ada', 'fay']],
    ['opens not_in', [f('contact_unique_opens', 'not_in', [0])], except('bob', 'cy')],
    ['clicks eq', [f('contact_clicks', 'eq', 5)], ['dee']],
    ['clicks not_eq', [f('contact_clicks', 'not_eq', 0)], ['ada', 'dee']],
    ['clicks gt', [f('contact_clicks', 'gt', 0)], ['ada', 'dee']],
    ['clicks gteq', [f('contact_clicks', 'gteq', 2)], ['ada', 'dee']],
    ['clicks lt', [f('contact_clicks', 'lt', 5)], except('dee')],
    ['clicks lteq', [f('contact_clicks', 'lteq', 5)], ALL],
    ['clicks in', [f('contact_clicks', 'in', [2])], ['ada']],
    ['clicks not_in', [f('contact_clicks', 'not_in', [2, 5])], except('ada', 'dee')],
    ['soft bounces eq', [f('contact_soft_bounce_count', 'eq', 3)], ['bob']],
    ['soft bounces not_eq', [f('contact_soft_bounce_count', 'not_eq', 0)], ['bob', 'dee']],
    ['soft bounces gt', [f('contact_soft_bounce_count', 'gt', 1)], ['bob']],
    ['soft bounces gteq', [f('contact_soft_bounce_count', 'gteq', 1)], ['bob', 'dee']],
    ['soft bounces lt', [f('contact_soft_bounce_count', 'lt', 1)], except('bob', 'dee')],
    ['soft bounces lteq', [f('contact_soft_bounce_count', 'lteq', 1)], except('bob')],
    ['soft bounces in', [f('contact_soft_bounce_count', 'in', [1, 3])], ['bob', 'dee']],
    ['soft bounces not_in', [f('contact_soft_bounce_count', 'not_in', [1, 3])], except('bob', 'dee')],
    ['open rate eq 0 (none sent is 0)', [f('contact_open_rate', 'eq', 0)], ['bob', 'cy']],
    ['open rate not_eq', [f('contact_open_rate', 'not_eq', 100)], except('eve', 'fay')],
    ['open rate gt', [f('contact_open_rate', 'gt', 99.5)], ['eve', 'fay']],
    ['open rate gteq', [f('contact_open_rate', 'gteq', 50)], ['ada', 'eve', 'fay']],
    ['open rate lt', [f('contact_open_rate', 'lt', 20)], ['bob', 'cy', 'dee']],
    ['open rate lteq', [f('contact_open_rate', 'lteq', 25)], ['bob', 'cy', 'dee', 'gus']],
    ['open rate in', [f('contact_open_rate', 'in', [25, 10])], ['dee', 'gus']],
    ['open rate not_in', [f('contact_open_rate', 'not_in', [0, 100])], ['ada', 'dee', 'gus']],
    ['click rate eq', [f('contact_click_rate', 'eq', 20)], ['ada']],
    ['click rate not_eq', [f('contact_click_rate', 'not_eq', 0)], ['ada', 'dee']],
    ['click rate gt', [f('contact_click_rate', 'gt', 20)], ['dee']],
    ['click rate gteq', [f('contact_click_rate', 'gteq', 20)], ['ada', 'dee']],
    ['click rate lt', [f('contact_click_rate', 'lt', 20)], except('ada', 'dee')],
    ['click rate lteq', [f('contact_click_rate', 'lteq', 20)], except('dee')],
    ['click rate in', [f('contact_click_rate', 'in', [25])], ['dee']],
    ['click rate not_in', [f('contact_click_rate', 'not_in', [0])], ['ada', 'dee']],

    // --- tags: whole tag, case-insensitive; `tags` given as one string is that one tag
    ['tag cont (case; a single string is one tag)', [f('contact_tag', 'cont', 'vip')], ['ada', 'cy', 'fay']],
    ['tag cont is whole-tag', [f('contact_tag', 'cont', 'news')], []],
    ['tag eq', [f('contact_tag', 'eq', 'Vip')], ['ada', 'cy', 'fay']],
    ['tag not_cont', [f('contact_tag', 'not_cont', 'VIP')], ['bob', 'dee', 'eve', 'gus']],
    ['tag not_eq', [f('contact_tag', 'not_eq', 'news_letter')], except('eve')],
    ['tag in', [f('contact_tag', 'in', ['NEWSLETTER', 'x'])], ['ada', 'gus']],
    ['tag not_in', [f('contact_tag', 'not_in', ['newsletter', 'x'])], ['bob', 'cy', 'dee', 'eve', 'fay']],
    ['tag present', [f('contact_tag', 'present')], ['ada', 'cy', 'eve', 'fay', 'gus']],
    ['tag blank (empty array, no key)', [f('contact_tag', 'blank')], ['bob', 'dee']],

    // --- engagement rating
    ['rating eq engaged', [f('contact_engagement_rating', 'eq', 'engaged')], ['ada']],
    ['rating eq warm', [f('contact_engagement_rating', 'eq', 'Warm')], ['eve']],
    ['rating eq cooling', [f('contact_engagement_rating', 'eq', 'cooling')], ['dee']],
    ['rating eq dormant', [f('contact_engagement_rating', 'eq', 'dormant')], ['fay', 'gus']],
    ['rating eq never', [f('contact_engagement_rating', 'eq', 'never')], ['bob', 'cy']],
    ['rating not_eq', [f('contact_engagement_rating', 'not_eq', 'never')], except('bob', 'cy')],
    ['rating in', [f('contact_engagement_rating', 'in', ['engaged', 'warm'])], ['ada', 'eve']],
    [
      'rating not_in',
      [f('contact_engagement_rating', 'not_in', ['never', 'dormant'])],
      ['ada', 'dee', 'eve'],
    ],

    // --- custom fields
    ['data text eq', [f('contact_data_plan', 'eq', 'pro')], ['ada', 'fay']],
    ['data text not_eq (missing in)', [f('contact_data_plan', 'not_eq', 'pro')], except('ada', 'fay')],
    ['data text cont', [f('contact_data_plan', 'cont', 'R')], ['ada', 'bob', 'fay']],
    ['data text not_cont', [f('contact_data_plan', 'not_cont', 'r')], ['cy', 'dee', 'eve', 'gus']],
    ['data text start', [f('contact_data_plan', 'start', 'f')], ['bob']],
    ['data text end', [f('contact_data_plan', 'end', 'O')], ['ada', 'fay']],
    ['data text not_start', [f('contact_data_plan', 'not_start', 'p')], except('ada', 'fay')],
    ['data text not_end', [f('contact_data_plan', 'not_end', 'e')], except('bob')],
    ['data text in', [f('contact_data_plan', 'in', ['free', 'PRO'])], ['ada', 'bob', 'fay']],
    ['data text not_in', [f('contact_data_plan', 'not_in', ['free', 'pro'])], ['cy', 'dee', 'eve', 'gus']],
    ['data present (empty string is blank)', [f('contact_data_plan', 'present')], ['ada', 'bob', 'fay']],
    ['data blank', [f('contact_data_plan', 'blank')], ['cy', 'dee', 'eve', 'gus']],
    ['data number gt (numeric strings count)', [f('contact_data_score', 'gt', 5)], ['ada', 'bob', 'dee']],
    ['data number lt', [f('contact_data_score', 'lt', 50)], ['ada', 'bob']],
    ['data number gteq', [f('contact_data_score', 'gteq', 42)], ['ada', 'dee']],
    ['data number lteq', [f('contact_data_score', 'lteq', '7')], ['bob']],
    ['data number eq', [f('contact_data_score', 'eq', 100.5)], ['dee']],
    ['data number not_eq', [f('contact_data_score', 'not_eq', 42)], except('ada')],
    ['data number in', [f('contact_data_score', 'in', [7, 100.5])], ['bob', 'dee']],
    ['data number not_in', [f('contact_data_score', 'not_in', [7, 100.5])], except('bob', 'dee')],
    ['data string eq on a number', [f('contact_data_score', 'eq', '42')], ['ada']],
    ['data present (JSON null is blank)', [f('contact_data_score', 'present')], ['ada', 'bob', 'dee']],
    ['data true (boolean or "true")', [f('contact_data_vip', 'true')], ['ada', 'dee']],
    ['data false (missing in)', [f('contact_data_vip', 'false')], except('ada', 'dee')],
    ['data eq true', [f('contact_data_vip', 'eq', true)], ['ada', 'dee']],
    ['data eq false', [f('contact_data_vip', 'eq', false)], except('ada', 'dee')],
    ['data not_eq true', [f('contact_data_vip', 'not_eq', true)], except('ada', 'dee')],
    ['data date gt', [f('contact_data_signup', 'gt', '2025-01-01')], ['eve']],
    ['data date lt', [f('contact_data_signup', 'lt', '2025-01-01')], ['ada']],
    ['data date gteq', [f('contact_data_signup', 'gteq', '2024-01-15')], ['ada', 'eve']],
    ['data date lteq', [f('contact_data_signup', 'lteq', '2024-01-15')], ['ada']],
    ['data date within (bad dates are no date)', [f('contact_data_signup', 'within_days', 60)], ['eve']],
    ['data date not_within', [f('contact_data_signup', 'not_within_days', 60)], except('eve')],
    ['data path: literal key or nested', [f('contact_data_address_city', 'present')], ['ada', 'bob', 'dee']],
    ['data path: nested eq', [f('contact_data_address_city', 'eq', 'london')], ['ada']],
    [
      'data path: explicit nested',
      [{ ...f('contact_data_address_city', 'present'), path: 'address.city' }],
      ['ada', 'dee'],
    ],
    [
      'data path: explicit literal',
      [{ ...f('contact_data_address_city', 'present'), path: 'address_city' }],
      ['bob'],
    ],
    ['data array cont any element', [f('contact_data_interests', 'cont', 'cat')], ['ada']],
    ['data array eq any element', [f('contact_data_interests', 'eq', 'DOGS')], ['ada']],
    ['data array not_cont', [f('contact_data_interests', 'not_cont', 'cat')], except('ada')],
    ['data empty array is blank', [f('contact_data_interests', 'blank')], except('ada')],
    ['data tags as a custom array', [f('contact_data_tags', 'cont', 'news')], ['ada', 'eve']],

    // --- list membership
    ['list eq', [f('contact_list', 'eq', 'L1')], ['ada', 'bob']],
    ['list not_eq', [f('contact_list', 'not_eq', 'L1')], except('ada', 'bob')],
    ['list in (any)', [f('contact_list', 'in', ['L1', 'L2'])], ['ada', 'bob', 'cy']],
    ['list not_in (none)', [f('contact_list', 'not_in', ['L1', 'L2'])], ['dee', 'eve', 'fay', 'gus']],
    ['list in empty list', [f('contact_list', 'in', ['L3'])], []],
    ['list present', [f('contact_list', 'present')], ['ada', 'bob', 'cy']],
    ['list blank', [f('contact_list', 'blank')], ['dee', 'eve', 'fay', 'gus']],

    // --- events (test events never count)
    ['event performed', [{ type: 'event', event: 'checkout', predicate: 'performed' }], ['ada', 'bob']],
    [
      'event performed false',
      [{ type: 'event', event: 'checkout', predicate: 'performed', value: false }],
      except('ada', 'bob'),
    ],
    [
      'event not_performed',
      [{ type: 'event', event: 'checkout', predicate: 'not_performed' }],
      except('ada', 'bob'),
    ],
    [
      'event within 2 days',
      [{ type: 'event', event: 'checkout', predicate: 'performed', within_days: 2 }],
      ['ada'],
    ],
    [
      'event not_performed within 2',
      [{ type: 'event', event: 'checkout', predicate: 'not_performed', within_days: 2 }],
      except('ada'),
    ],
    [
      'event count_at_least 3',
      [{ type: 'event', event: 'checkout', predicate: 'count_at_least', value: 3 }],
      ['ada'],
    ],
    [
      'event count_at_least 4 (test ignored)',
      [{ type: 'event', event: 'checkout', predicate: 'count_at_least', value: 4 }],
      [],
    ],
    [
      'event count_at_least within',
      [{ type: 'event', event: 'checkout', predicate: 'count_at_least', value: 2, within_days: 30 }],
      ['ada'],
    ],
    [
      'event count_at_least 3 within 30',
      [{ type: 'event', event: 'checkout', predicate: 'count_at_least', value: 3, within_days: 30 }],
      [],
    ],
    [
      'event count_at_least 0 is everyone',
      [{ type: 'event', event: 'checkout', predicate: 'count_at_least', value: 0 }],
      ALL,
    ],
    [
      'event count_at_most 1',
      [{ type: 'event', event: 'checkout', predicate: 'count_at_most', value: 1 }],
      except('ada'),
    ],
    [
      'event count_at_most 0',
      [{ type: 'event', event: 'checkout', predicate: 'count_at_most', value: '0' }],
      except('ada', 'bob'),
    ],
    [
      'event since',
      [{ type: 'event', event: 'checkout', predicate: 'performed', since: '2025-06-25' }],
      ['ada', 'bob'],
    ],
    [
      'event since instant',
      [{ type: 'event', event: 'checkout', predicate: 'performed', since: '2025-06-30T12:00:00.001Z' }],
      [],
    ],
    ['event other name', [{ type: 'event', event: 'signup', predicate: 'performed' }], ['dee']],

    // --- trees
    ['empty array is every contact', [], ALL],
    [
      'or',
      {
        op: 'or',
        conditions: [f('contact_email', 'eq', 'ada@example.com'), f('contact_country', 'eq', 'us')],
      },
      ['ada', 'bob'],
    ],
    [
      'not = negated predicate (nulls in)',
      { op: 'not', conditions: [f('contact_country', 'eq', 'us')] },
      except('bob'),
    ],
    ['not of a negation', { op: 'not', conditions: [f('contact_country', 'not_eq', 'us')] }, ['bob']],
    [
      'and with nested not',
      [f('contact_tag', 'cont', 'vip'), { op: 'not', conditions: [f('contact_subscribed_email', 'true')] }],
      ['cy', 'fay'],
    ],
    [
      'nested and/or/not with an event',
      {
        op: 'and',
        conditions: [
          { op: 'or', conditions: [f('contact_tag', 'cont', 'vip'), f('contact_country', 'eq', 'de')] },
          { op: 'not', conditions: [{ type: 'event', event: 'checkout', predicate: 'performed' }] },
        ],
      },
      ['cy', 'dee', 'fay'],
    ],
    ['single condition object at the root', f('contact_first_name', 'eq', 'gus'), ['gus']],
  ];

  /** Replaces list names (L1 …) by the ids created in `before`. */
  function resolveLists(doc: unknown): unknown {
    if (Array.isArray(doc)) return doc.map(resolveLists);
    if (doc && typeof doc === 'object') {
      const node = { ...(doc as Json) };
      if (node['name'] === 'contact_list' && node['value'] !== undefined) {
        const v = node['value'];
        node['value'] = Array.isArray(v) ? v.map((x) => lists[x as string] ?? x) : (lists[v as string] ?? v);
      }
      if (Array.isArray(node['conditions'])) node['conditions'] = node['conditions'].map(resolveLists);
      return node;
    }
    return doc;
  }

  test('truth table: every filter × predicate against the fixture (and its negation by `not`)', async () => {
    ctx().clock.set(NOW);
    const failures: string[] = [];
    for (const [label, doc, expected] of TABLE) {
      const filters = resolveLists(doc);
      const got = await match(filters);
      if (JSON.stringify(got) !== JSON.stringify([...expected].sort())) {
        failures.push(
          `${label}: expected ${JSON.stringify([...expected].sort())}, got ${JSON.stringify(got)}`,
        );
      }
      // Every condition is two-valued: `not` must give exactly the other contacts.
      const negated = await match({
        op: 'not',
        conditions: [
          Array.isArray(filters)
            ? { op: 'and', conditions: filters.length ? filters : [f('contact_created_at', 'present')] }
            : filters,
        ],
      });
      const complement = ALL.filter((n) => !expected.includes(n));
      if (JSON.stringify(negated) !== JSON.stringify(complement)) {
        failures.push(
          `not(${label}): expected ${JSON.stringify(complement)}, got ${JSON.stringify(negated)}`,
        );
      }
    }
    assert.deepEqual(failures, []);
  });

  test('the truth table covers every valid field × predicate pair of the catalogue', () => {
    const covered = new Set<string>();
    const walk = (doc: unknown) => {
      if (Array.isArray(doc)) return doc.forEach(walk);
      if (doc && typeof doc === 'object') {
        const n = doc as Json;
        if (typeof n['name'] === 'string') covered.add(`${n['name']} ${n['predicate']}`);
        if (Array.isArray(n['conditions'])) n['conditions'].forEach(walk);
      }
    };
    for (const [, doc] of TABLE) walk(doc);
    const missing: string[] = [];
    for (const [name, spec] of Object.entries(filterCatalog())) {
      for (const p of spec.predicates) if (!covered.has(`${name} ${p}`)) missing.push(`${name} ${p}`);
    }
    // Custom fields accept every predicate.
    for (const p of PREDICATES) {
      if (![...covered].some((c) => c.startsWith('contact_data_') && c.endsWith(` ${p}`))) {
        missing.push(`contact_data_* ${p}`);
      }
    }
    assert.deepEqual(missing, []);
  });

  test('never a contact of another brand, even with identical data and events', async () => {
    const everyone = await match([]);
    assert.deepEqual(everyone, ALL);
    const foreign = await match([f('contact_first_name', 'eq', 'ada')], b);
    assert.equal(foreign.length, 1);
    assert.match(foreign[0]!, /^foreign:/, 'brand B sees only its own copy');
  });

  test('windows move with the clock: edges are inclusive, one millisecond later they are not', async () => {
    try {
      ctx().clock.set(NOW);
      assert.deepEqual(await match([f('contact_created_at', 'within_days', 30)]), ['ada', 'bob', 'fay']);
      ctx().clock.set(new Date(NOW.getTime() + 1));
      assert.deepEqual(await match([f('contact_created_at', 'within_days', 30)]), ['ada', 'fay']);
      ctx().clock.set(new Date(NOW.getTime() - 1000));
      assert.deepEqual(await match([f('contact_created_at', 'within_days', 30)]), [
        'ada',
        'bob',
        'cy',
        'fay',
      ]);

      // ada last opened 5 days ago: engaged until exactly 30 days, warm from then on.
      const rating = [f('contact_engagement_rating', 'eq', 'engaged')];
      ctx().clock.set(new Date(NOW.getTime() + 25 * DAY));
      assert.deepEqual(await match(rating), ['ada']);
      ctx().clock.set(new Date(NOW.getTime() + 25 * DAY + 1));
      assert.deepEqual(await match(rating), []);
      assert.deepEqual(await match([f('contact_engagement_rating', 'eq', 'warm')]), ['ada', 'eve']);
    } finally {
      ctx().clock.set(NOW);
    }
  });

  test('engagementRating (for contact views) agrees with the SQL rule', async () => {
    const expected: Record<string, string> = {};
    for (const r of ENGAGEMENT_RATINGS) {
      for (const n of await match([f('contact_engagement_rating', 'eq', r)])) expected[n] = r;
    }
    for (const n of NAMES) {
      const fx = FIXTURES[n]!;
      assert.equal(
        engagementRating(
          { last_opened_at: fx.last_opened_at ?? null, unique_opens: fx.unique_opens ?? 0 },
          NOW,
        ),
        expected[n],
        n,
      );
    }
  });

  test('custom date parsing never runs in a parallel worker (its exception block needs a subtransaction)', async () => {
    const { rows } = await sql<{ proparallel: string }>`
      select proparallel from pg_proc where proname = 'mw_try_timestamptz'
        and pronamespace = current_schema()::regnamespace`.execute(ctx().db);
    assert.deepEqual(rows, [{ proparallel: 'u' }]);
  });

  /** Asserts that `filters` is rejected with 422 invalid_filter naming exactly `paths`. */
  function rejects(filters: unknown, paths: string[]) {
    try {
      parseFilters(filters);
    } catch (err) {
      assert.ok(err instanceof AppError, String(err));
      assert.equal(err.status, 422);
      assert.equal(err.errorCode, 'invalid_filter');
      assert.deepEqual(
        Object.keys(err.validationErrors ?? {}).sort(),
        [...paths].sort(),
        JSON.stringify(filters),
      );
      return;
    }
    assert.fail(`accepted ${JSON.stringify(filters)}`);
  }

  test('every predicate a field does not support is a 422 naming filters[i].predicate', () => {
    const catalog = filterCatalog();
    let checked = 0;
    for (const [name, spec] of Object.entries(catalog)) {
      for (const p of PREDICATES) {
        if (spec.predicates.includes(p)) continue;
        rejects([f('contact_first_name', 'present'), f(name, p, 'x')], ['filters[1].predicate']);
        checked++;
      }
    }
    assert.ok(checked > 100, `checked ${checked} invalid pairs`);
    rejects([f('contact_first_name', 'like', 'x')], ['filters[0].predicate']);
    rejects([f('contact_first_name', 'performed')], ['filters[0].predicate']);
  });

  test('unknown names, wrong value types and bad shapes are 422 invalid_filter naming the path', () => {
    const cases: [unknown, string[]][] = [
      [[f('contact_favourite_colour', 'eq', 'x')], ['filters[0].name']],
      [[f('constructor', 'eq', 'x')], ['filters[0].name']],
      [[f('__proto__', 'eq', 'x')], ['filters[0].name']],
      [[{ predicate: 'eq', value: 'x' }], ['filters[0].name']],
      [[f('contact_data_a.b', 'eq', 'x')], ['filters[0].name']],
      [[{ ...f('contact_data_address_city', 'eq', 'x'), path: 'address.town' }], ['filters[0].path']],
      [[f('contact_first_name', 'eq', 5)], ['filters[0].value']],
      [[f('contact_first_name', 'eq', '')], ['filters[0].value']],
      [[f('contact_first_name', 'eq', null)], ['filters[0].value']],
      [[f('contact_first_name', 'eq')], ['filters[0].value']],
      [[f('contact_first_name', 'eq', 'x'.repeat(1001))], ['filters[0].value']],
      [[f('contact_first_name', 'in', 'ada')], ['filters[0].value']],
      [[f('contact_first_name', 'in', [])], ['filters[0].value']],
      [[f('contact_first_name', 'not_in', ['a', 3])], ['filters[0].value']],
      [[f('contact_first_name', 'present', 'yes')], ['filters[0].value']],
      [[f('contact_emails_sent', 'gt', 'many')], ['filters[0].value']],
      [[f('contact_emails_sent', 'in', [1, 'x'])], ['filters[0].value']],
      [[f('contact_subscribed_email', 'eq', 'yes')], ['filters[0].value']],
      [[f('contact_created_at', 'gt', '2025-02-30')], ['filters[0].value']],
      [[f('contact_created_at', 'gt', 'yesterday')], ['filters[0].value']],
      [[f('contact_created_at', 'gt', 1719835200)], ['filters[0].value']],
      [[f('contact_created_at', 'within_days', 0)], ['filters[0].value']],
      [[f('contact_created_at', 'within_days', -3)], ['filters[0].value']],
      [[f('contact_created_at', 'within_days', 1.5)], ['filters[0].value']],
      [[f('contact_created_at', 'within_days', 36501)], ['filters[0].value']],
      [[f('contact_engagement_rating', 'eq', 'hot')], ['filters[0].value']],
      [[f('contact_tag', 'cont', '  ')], ['filters[0].value']],
      [[f('contact_list', 'in', ['a'])], ['filters[0].value']],
      [[f('contact_list', 'eq', 0)], ['filters[0].value']],
      [[f('contact_data_score', 'gt', 'high')], ['filters[0].value']],
      [[f('contact_data_score', 'in', [1, 'a'])], ['filters[0].value']],
      [[f('contact_data_score', 'eq', { a: 1 })], ['filters[0].value']],
      [[{ type: 'event', predicate: 'performed' }], ['filters[0].event']],
      [[{ type: 'event', event: 'x', predicate: 'did' }], ['filters[0].predicate']],
      [[{ type: 'event', event: 'x', predicate: 'count_at_least', value: -1 }], ['filters[0].value']],
      [[{ type: 'event', event: 'x', predicate: 'count_at_least' }], ['filters[0].value']],
      [[{ type: 'event', event: 'x', predicate: 'performed', value: 'yes' }], ['filters[0].value']],
      [
        [{ type: 'event', event: 'x', predicate: 'performed', within_days: 0, since: 'last week' }],
        ['filters[0].within_days', 'filters[0].since'],
      ],
      [[{ type: 'segment', id: 3 }], ['filters[0].type']],
      [{ op: 'xor', conditions: [] }, ['filters.op']],
      [{ op: 'and' }, ['filters.conditions']],
      [{ op: 'or', conditions: [] }, ['filters.conditions']],
      [
        { op: 'not', conditions: [f('contact_tag', 'present'), f('contact_tag', 'blank')] },
        ['filters.conditions'],
      ],
      [
        { op: 'and', conditions: Array.from({ length: 26 }, () => f('contact_tag', 'present')) },
        ['filters.conditions'],
      ],
      [Array.from({ length: 26 }, () => f('contact_tag', 'present')), ['filters']],
      [
        [{ op: 'or', conditions: [f('contact_tag', 'present'), f('contact_tag', 'start', 'x')] }],
        ['filters[0].conditions[1].predicate'],
      ],
      [
        [f('contact_first_name', 'eq', 1), 'text', f('contact_tag', 'start', 'x')],
        ['filters[0].value', 'filters[1]', 'filters[2].predicate'],
      ],
      ['contact_tag', ['filters']],
      [null, ['filters']],
      [42, ['filters']],
    ];
    for (const [doc, paths] of cases) rejects(doc, paths);

    // Six levels of nesting, and more than 100 conditions in all.
    let deep: unknown = f('contact_tag', 'present');
    for (let i = 0; i < 6; i++) deep = { op: 'and', conditions: [deep] };
    assert.throws(
      () => parseFilters(deep),
      (err: AppError) =>
        err.errorCode === 'invalid_filter' && /too deeply/.test(JSON.stringify(err.validationErrors)),
    );
    const wide = {
      op: 'or',
      conditions: Array.from({ length: 25 }, () => ({
        op: 'and',
        conditions: Array.from({ length: 5 }, () => f('contact_tag', 'present')),
      })),
    };
    assert.throws(
      () => parseFilters(wide),
      (err: AppError) =>
        err.errorCode === 'invalid_filter' && /too large/.test(JSON.stringify(err.validationErrors)),
    );
    // Five levels is fine.
    let ok: unknown = f('contact_tag', 'present');
    for (let i = 0; i < 5; i++) ok = { op: 'and', conditions: [ok] };
    parseFilters(ok);
  });

  test('list ids must be lists of the brand (another brand’s list is a 422, not an empty match)', async () => {
    await assert.rejects(
      match([f('contact_list', 'not_in', [lists['L1'], lists['LB']])]),
      (err: AppError) =>
        err.errorCode === 'invalid_filter' &&
        JSON.stringify(Object.keys(err.validationErrors!)) === '["filters[0].value"]' &&
        err.validationErrors!['filters[0].value']![0]!.includes(String(lists['LB'])),
    );
  });

  test('POST /v1/my/segments/count answers from the compiler and names bad filters', async () => {
    const res = await ctx().app.inject({
      method: 'POST',
      url: '/v1/my/segments/count',
      headers: a.session.auth,
      payload: { filters: [f('contact_tag', 'cont', 'VIP'), f('contact_created_at', 'within_days', 30)] },
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), { count: 2 });
    const bad = await ctx().app.inject({
      method: 'POST',
      url: '/v1/my/segments/count',
      headers: a.session.auth,
      payload: { filters: [f('contact_tag', 'cont', 'vip'), f('contact_tag', 'gt', 3)] },
    });
    assert.equal(bad.statusCode, 422);
    assert.equal(bad.json().error_code, 'invalid_filter');
    assert.deepEqual(Object.keys(bad.json().validation_errors), ['filters[1].predicate']);
  });

  test('fuzz: random filter trees never cause a 500 and never count another brand’s contacts', async () => {
    let seed = 0x5eed;
    const rand = () => {
      // mulberry32
      seed = (seed + 0x6d2b79f5) | 0;
      let t = seed;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const names = [
      ...Object.keys(filterCatalog()),
      'contact_data_plan',
      'contact_data_score',
      'contact_data_address_city',
      'contact_data_interests',
      'contact_data_',
      'contact_nope',
      '',
    ];
    const values: unknown[] = [
      'ada',
      'VIP',
      'vip',
      '',
      '%',
      '_',
      "'; drop table contacts; --",
      'x'.repeat(1001),
      0,
      1,
      30,
      -1,
      1.5,
      1e308,
      true,
      false,
      null,
      undefined,
      ['a', 'B'],
      [1, 2],
      [],
      [lists['L1']],
      [lists['LB']],
      lists['L2'],
      '2025-06-01',
      '2025-02-30',
      '2025-06-01T12:00:00Z',
      '30',
      {},
      [null],
      'engaged',
      ['never', 'warm'],
    ];
    const node = (depth: number): unknown => {
      const r = rand();
      if (r < 0.05) return pick(['junk', 3, null, []]);
      if (r < 0.25 && depth < 7) {
        const op = pick(['and', 'or', 'not', 'nand']);
        const n = op === 'not' ? (rand() < 0.85 ? 1 : 2) : Math.floor(rand() * 5);
        return { op, conditions: Array.from({ length: n }, () => node(depth + 1)) };
      }
      if (r < 0.4) {
        const e: Json = {
          type: 'event',
          event: pick(['checkout', 'signup', '', 'x']),
          predicate: pick(['performed', 'not_performed', 'count_at_least', 'count_at_most', 'eq']),
        };
        if (rand() < 0.7) e['value'] = pick([0, 1, 2, 3, true, false, -1, 'x']);
        if (rand() < 0.4) e['within_days'] = pick([1, 7, 30, 0, 'x']);
        if (rand() < 0.3) e['since'] = pick(['2025-06-25', '2025-13-01', 5]);
        return e;
      }
      const leaf: Json = {
        name: pick(names),
        predicate: pick([...PREDICATES, 'like'] as (Predicate | 'like')[]),
      };
      const v = pick(values);
      if (v !== undefined) leaf['value'] = v;
      return leaf;
    };
    const aIds = new Set(ids.values());
    let ok = 0;
    let rejected = 0;
    for (let i = 0; i < 250; i++) {
      const filters = rand() < 0.5 ? Array.from({ length: Math.floor(rand() * 4) }, () => node(1)) : node(1);
      const res = await ctx().app.inject({
        method: 'POST',
        url: '/v1/my/segments/count',
        headers: a.session.auth,
        payload: { filters },
      });
      const where = JSON.stringify(filters);
      assert.ok(
        res.statusCode === 200 || res.statusCode === 422,
        `${res.statusCode} ${res.body} for ${where}`,
      );
      if (res.statusCode === 422) {
        rejected++;
        assert.equal(res.json().error_code, 'invalid_filter', where);
        for (const key of Object.keys(res.json().validation_errors)) assert.match(key, /^filters/, where);
        continue;
      }
      ok++;
      const matched = await (
        await segmentContactsQuery(ctx().db, a.brand_id, filters, ctx().clock.now())
      ).execute();
      assert.ok(
        matched.every((r) => aIds.has(r.id)),
        `only brand A's contacts for ${where}`,
      );
      assert.equal(res.json().count, matched.length, where);
    }
    assert.ok(ok > 30 && rejected > 30, `both outcomes exercised (ok ${ok}, rejected ${rejected})`);
  });
});
