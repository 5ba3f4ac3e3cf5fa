import Type from 'typebox';
import { AUTH_INTENTS, AUTH_STEPS, OAUTH_PROVIDERS } from '../../domain/oauth/oauth.ts';
import { Nullable, StringEnum } from './common.ts';

export const OAuthLaunchBody = Type.Object({
  provider: StringEnum(OAUTH_PROVIDERS, { description: 'The sign-in provider' }),
  auth_intent: Type.Optional(
    StringEnum(AUTH_INTENTS, {
      description: '`app` signs in to the app; `agent` resumes the `/oauth/connect` popup. Default `app`.',
    }),
  ),
  auth_step: Type.Optional(StringEnum(AUTH_STEPS, { description: 'Default `login`' })),
  resume_url: Type.Optional(
    Nullable(
      Type.String({
        format: 'uri',
        maxLength: 2000,
        description:
          'Required when auth_intent=agent; must be on this server’s origin (APP_URL). After sign-in the browser is redirected here with `#token=<jwt>`.',
      }),
    ),
  ),
});

export const OAuthLaunchResponse = Type.Object(
  {
    launch_url: Type.String({
      format: 'uri',
      description: 'The provider’s authorize URL, with a signed state valid for 10 minutes',
    }),
  },
  { description: 'Launch URL created' },
);

export const OAuthCallbackParams = Type.Object({ provider: StringEnum(OAUTH_PROVIDERS) });

// Providers add their own parameters (Google: scope, authuser, prompt), so extras are allowed.
export const OAuthCallbackQuery = Type.Object({
  code: Type.Optional(Type.String({ maxLength: 2000 })),
  state: Type.Optional(Type.String({ maxLength: 4000 })),
  error: Type.Optional(Type.String({ maxLength: 200 })),
  error_description: Type.Optional(Type.String({ maxLength: 2000 })),
});

export const OAuthRedirect = Type.Object(
  { location: Type.String({ description: 'Same as the Location header: resume_url with `#token=<jwt>`' }) },
  { description: 'Signed in; the browser goes back to resume_url' },
);

export const OAuthPopupAccount = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  can_manage: Type.Boolean({ description: 'The user is an owner or admin of the account' }),
  needs_subscribe: Type.Boolean({ description: 'Always false: every account has a plan' }),
});

export const OAuthPopupPlan = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  slug: Type.String(),
  base_price_cents: Type.Integer(),
  interval: Nullable(Type.String()),
});

export const OAuthPopupContext = Type.Object(
  {
    accounts: Type.Array(OAuthPopupAccount),
    plans: Type.Array(OAuthPopupPlan),
    stripe_publishable_key: Nullable(
      Type.String({ description: 'Always null: Mailwright has no billing provider' }),
    ),
  },
  { description: 'Popup context' },
);

export const OAuthSubscribeBody = Type.Object({
  plan_id: Type.Integer({ description: 'A plan id from `plans`' }),
  account_id: Type.Optional(Nullable(Type.Integer({ description: 'Default: the current account' }))),
  stripe_token: Type.Optional(Nullable(Type.String({ maxLength: 500, description: 'Accepted and ignored' }))),
});

export const OAuthSubscribeResponse = Type.Object(
  { next_step: Type.Literal('consent') },
  { description: 'Popup can continue to consent' },
);
