import Type from 'typebox';
import { DateTime, Nullable } from './common.ts';

const Resource = Type.Object({
  used: Type.Integer(),
  allowance: Nullable(Type.Integer({ description: 'null = unlimited' })),
  remaining: Nullable(Type.Integer({ description: 'null = unlimited' })),
  overage_rate: Type.Number({ description: 'Cents per unit over the allowance' }),
});

export const Team = Type.Object({
  seat_limit: Nullable(Type.Integer({ description: 'null = unlimited' })),
  seat_count: Type.Integer(),
  member_count: Type.Integer(),
  invite_count: Type.Integer(),
  current_role: Type.String(),
  can_manage_team: Type.Boolean(),
});

export const Account = Type.Object(
  {
    id: Type.Integer(),
    name: Type.String(),
    avatar: Nullable(Type.String()),
    banner: Nullable(Type.String()),
    plan: Type.String({ description: 'Plan slug' }),
    account_tier: Type.Union([Type.Literal('free'), Type.Literal('paid'), Type.Literal('trusted')]),
    safe_mode_enabled: Type.Boolean(),
    billing: Type.Object({
      plan_name: Type.String(),
      plan_slug: Type.String(),
      wallet_balance_cents: Type.Integer(),
      auto_topup: Type.Boolean(),
      resources: Type.Object({ email: Resource, sms: Resource, ai: Resource }),
      lifetime: Type.Object({
        email_sent: Type.Integer(),
        sms_sent: Type.Integer(),
        ai_used: Type.Integer(),
      }),
    }),
    brands: Type.Array(Type.Unsafe({ $ref: 'Brand#' })),
    team: Team,
    created_at: DateTime,
    updated_at: DateTime,
  },
  { $id: 'Account' },
);

export const AccountPatchBody = Type.Object({
  name: Type.Optional(Type.String({ maxLength: 200 })),
  avatar: Type.Optional(Nullable(Type.String({ maxLength: 2000, description: 'Signed blob ID or URL' }))),
  banner: Type.Optional(Nullable(Type.String({ maxLength: 2000, description: 'Signed blob ID or URL' }))),
});

export const Membership = Type.Object(
  {
    id: Type.Integer(),
    role: Type.Union([Type.Literal('owner'), Type.Literal('admin'), Type.Literal('member')]),
    user_id: Type.Integer(),
    email: Type.String(),
    name: Nullable(Type.String()),
    created_at: DateTime,
    updated_at: DateTime,
  },
  { $id: 'Membership' },
);

export const Invite = Type.Object(
  {
    id: Type.Integer(),
    account_id: Type.Integer(),
    email: Type.String(),
    role: Type.Union([Type.Literal('admin'), Type.Literal('member')]),
    token: Type.String(),
    status: Type.Union([
      Type.Literal('pending'),
      Type.Literal('accepted'),
      Type.Literal('revoked'),
      Type.Literal('expired'),
    ]),
    accepted_at: Nullable(DateTime),
    revoked_at: Nullable(DateTime),
    expires_at: DateTime,
    created_at: DateTime,
    updated_at: DateTime,
  },
  { $id: 'Invite' },
);

export const TeamView = Type.Object({
  account: Type.Unsafe({ $ref: 'Account#' }),
  memberships: Type.Array(Type.Unsafe({ $ref: 'Membership#' })),
  invites: Type.Array(Type.Unsafe({ $ref: 'Invite#' })),
  accessible_accounts: Type.Array(Type.Unsafe({ $ref: 'Account#' })),
});

export const RoleBody = Type.Object({ role: Type.Union([Type.Literal('member'), Type.Literal('admin')]) });

export const InviteBody = Type.Object({
  email: Type.String({ maxLength: 254 }),
  role: Type.Optional(Type.Union([Type.Literal('member'), Type.Literal('admin')])),
});

export const Plan = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  slug: Type.String(),
  active: Type.Boolean(),
  base_price_cents: Type.Integer(),
  interval: Type.String(),
});
