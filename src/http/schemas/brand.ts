import Type from 'typebox';
import { ONBOARDING_STEPS, SETUP_CARDS } from '../../domain/brands/brands.ts';
import { DateTime, JsonObject, Nullable, ref, StringEnum } from './common.ts';

const Link = Type.Object({
  url: Type.String(),
  icon: Type.Optional(Nullable(Type.String())),
  title: Type.Optional(Nullable(Type.String())),
});

export const Onboarding = Type.Object(
  {
    steps: Type.Record(Type.String(), Type.Boolean(), { description: 'step → done' }),
    progress: Type.Object({ completed: Type.Integer(), total: Type.Integer() }),
  },
  { $id: 'Onboarding' },
);

export const Brand = Type.Object(
  {
    id: Type.Integer(),
    sid: Type.String({ description: 'Public secure identifier (non-sequential)' }),
    account_id: Type.Integer(),
    is_default: Type.Boolean({ description: 'Used when a request names no brand' }),
    public_key: Type.String({
      description: 'Public website-form key (wpkey_live_…) for POST /v1/public/contacts',
    }),
    public_key_allowed_origins: Type.Array(Type.String(), {
      description: 'Origins (https://example.com) allowed to use the public key; empty allows any',
    }),
    brand_color: Nullable(Type.String()),
    text_color: Nullable(Type.String()),
    bg_color: Nullable(Type.String()),
    font_heading: Nullable(Type.String()),
    font_body: Nullable(Type.String()),
    style_notes: Nullable(Type.String()),
    tone: Nullable(Type.String()),
    company_description: Nullable(Type.String()),
    industry: Nullable(Type.String()),
    example_copy: Type.Array(Type.String()),
    default_header: JsonObject,
    default_footer: JsonObject,
    default_theme: JsonObject,
    physical_address: Nullable(Type.String()),
    company_name: Nullable(Type.String()),
    source_url: Nullable(Type.String()),
    last_scraped_at: Nullable(DateTime),
    links: Type.Array(Link),
    logo: Nullable(Type.String()),
    complete: Type.Boolean(),
    email_from_name: Nullable(Type.String()),
    email_from_email: Nullable(Type.String()),
    email_reply_to: Nullable(Type.String()),
    track_opens: Type.Boolean({ description: 'Open pixel on marketing email' }),
    track_clicks: Type.Boolean({ description: 'Signed click redirects on marketing email links' }),
    test_email_recipients: Type.Array(Type.String()),
    onboarding_state: JsonObject,
    onboarding: ref(Onboarding),
    domain_verified: Type.Boolean(),
    can_send: Type.Boolean(),
    subscribed_contacts_count: Type.Integer(),
    using_sandbox: Type.Boolean(),
    sandbox_email: Type.String(),
    sandbox_monthly_cap: Type.Integer(),
    sandbox_sends_remaining: Type.Integer(),
    capabilities: Type.Record(Type.String(), Type.Boolean()),
    created_at: DateTime,
    updated_at: DateTime,
  },
  { $id: 'Brand' },
);

const text = (max = 2000) => Type.Optional(Nullable(Type.String({ maxLength: max })));

export const BrandBody = Type.Object({
  brand_color: text(32),
  text_color: text(32),
  bg_color: text(32),
  font_heading: text(200),
  font_body: text(200),
  style_notes: text(10000),
  tone: text(500),
  company_description: text(10000),
  industry: text(200),
  physical_address: text(1000),
  company_name: text(200),
  logo: text(2000),
  email_from_name: text(200),
  email_from_email: text(254),
  email_reply_to: text(254),
  track_opens: Type.Optional(Type.Boolean({ description: 'Open pixel on marketing email (default true)' })),
  track_clicks: Type.Optional(
    Type.Boolean({ description: 'Signed click redirects on marketing email links (default true)' }),
  ),
  test_email_recipients: Type.Optional(Type.Array(Type.String({ maxLength: 254 }), { maxItems: 50 })),
  example_copy: Type.Optional(Type.Array(Type.String({ maxLength: 5000 }), { maxItems: 50 })),
  links: Type.Optional(Type.Array(Link, { maxItems: 50 })),
  default_header: Type.Optional(JsonObject),
  default_footer: Type.Optional(JsonObject),
  default_theme: Type.Optional(JsonObject),
  public_key_allowed_origins: Type.Optional(
    Type.Array(Type.String({ maxLength: 2048 }), {
      maxItems: 50,
      description: 'Origins allowed to use the public key, e.g. https://example.com; empty allows any',
    }),
  ),
});

export const SidParams = Type.Object({
  sid: Type.String({ minLength: 1, maxLength: 64, description: 'Brand sid or numeric id' }),
});

export const OnboardingStepBody = Type.Object({
  step: StringEnum(ONBOARDING_STEPS),
  metadata: Type.Optional(JsonObject),
});

export const SetupCenter = Type.Object(
  {
    cards: Type.Array(
      Type.Object({
        id: StringEnum(SETUP_CARDS),
        complete: Type.Boolean(),
        acknowledged: Type.Boolean(),
        acknowledged_at: Nullable(DateTime),
      }),
    ),
    sections: Type.Object({ required: Type.Array(Type.String()), recommended: Type.Array(Type.String()) }),
    progress: Type.Object({ completed: Type.Integer(), total: Type.Integer() }),
    seen: Type.Boolean(),
    dismissed: Type.Boolean(),
    complete: Type.Boolean(),
  },
  { $id: 'SetupCenter' },
);

export const SetupCenterBody = Type.Object({
  seen: Type.Optional(Type.Boolean()),
  dismissed: Type.Optional(Type.Boolean()),
  card: Type.Optional(StringEnum(SETUP_CARDS)),
  metadata: Type.Optional(JsonObject),
});
