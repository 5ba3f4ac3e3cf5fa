import type { FastifyRequest } from 'fastify';
import Type, { type Static } from 'typebox';
import { ProviderError } from '../../domain/oauth/oauth.ts';
import type { Services } from '../../domain/services.ts';
import { AppError } from '../../lib/errors.ts';
import { errorBody, validationErrorsFrom } from '../plugins/errors.ts';
import { type ErrorBody, errors, ref } from '../schemas/common.ts';
import {
  OAuthCallbackParams,
  OAuthCallbackQuery,
  OAuthLaunchBody,
  OAuthLaunchResponse,
  OAuthPopupContext,
  OAuthRedirect,
  OAuthSubscribeBody,
  OAuthSubscribeResponse,
} from '../schemas/oauth.ts';
import { User } from '../schemas/user.ts';
import type { TypedApp } from '../typed.ts';

const ProviderFailure = Type.Unsafe<Static<typeof ErrorBody>>({
  $ref: 'Error#',
  description: 'The provider failed or could not be reached',
});

type AjvIssue = Parameters<typeof validationErrorsFrom>[0][number];

/** The reference answers every bad launch request with 400, so schema failures become one too. */
function launchBadRequest(request: FastifyRequest): AppError | undefined {
  if (!request.validationError) return undefined;
  const issues = (request.validationError as { validation?: AjvIssue[] }).validation;
  const fields = validationErrorsFrom(issues ?? []);
  const enumIssue = issues?.find((i) => i.keyword === 'enum');
  const allowed = enumIssue?.params?.['allowedValues'];
  const [field, messages] = Object.entries(fields)[0]!;
  const message =
    enumIssue && Array.isArray(allowed)
      ? `${fieldName(enumIssue)} must be one of ${allowed.join(', ')}`
      : `${field} ${messages[0]}`;
  return new AppError('bad_request', message, { errorCode: 'bad_request' });
}

function fieldName(issue: AjvIssue): string {
  return (issue.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.') || 'body';
}

/** Public OAuth routes (launch, provider callback). */
export function oauthPublicRoutes(app: TypedApp, services: Services): void {
  app.post(
    '/v1/oauth/launch',
    {
      attachValidation: true,
      schema: {
        summary: 'Create a CSRF-safe OAuth provider launch URL',
        description:
          'Returns the Google or GitHub authorize URL with a signed `state` valid for 10 minutes. The provider sends the browser back to `/auth/{provider}/callback`, which signs the user in (creating a user and account on first sign-in).',
        tags: ['Auth'],
        operationId: 'launchOAuth',
        body: OAuthLaunchBody,
        response: { 200: OAuthLaunchResponse, ...errors(400, 413) },
      },
    },
    async (request) => {
      const invalid = launchBadRequest(request);
      if (invalid) throw invalid;
      return services.oauth.launch(request.body);
    },
  );

  app.get(
    '/auth/:provider/callback',
    {
      schema: {
        summary: 'OAuth provider callback',
        description:
          'Where Google or GitHub return the browser. Verifies the state, exchanges the code and signs the user in. When the launch carried a `resume_url`, redirects there with `#token=<jwt>`; otherwise answers the User with the JWT in the `Authorization` response header. A provider failure is a 502.',
        tags: ['Auth'],
        operationId: 'oauthCallback',
        params: OAuthCallbackParams,
        querystring: OAuthCallbackQuery,
        response: {
          200: ref(User),
          302: OAuthRedirect,
          ...errors(400, 403, 404),
          502: ProviderFailure,
        },
      },
    },
    async (request, reply) => {
      // The URL carries a one-time code and the answer a session token: neither may be cached.
      reply.header('Cache-Control', 'no-store');
      reply.header('Referrer-Policy', 'no-referrer');
      let result: Awaited<ReturnType<Services['oauth']['callback']>>;
      try {
        result = await services.oauth.callback(request.params.provider, request.query);
      } catch (error) {
        // The error kinds have no 502; a provider failure is the one place that needs it.
        if (error instanceof ProviderError) {
          return reply.status(502).send(errorBody(502, error.message, { error_code: 'provider_error' }));
        }
        throw error;
      }
      if (result.redirect) {
        return reply.status(302).header('Location', result.redirect).send({ location: result.redirect });
      }
      reply.header('Authorization', `Bearer ${result.token}`);
      return result.user;
    },
  );
}

/** Authenticated OAuth popup routes (me, subscribe). */
export function oauthRoutes(app: TypedApp, services: Services): void {
  app.get(
    '/v1/oauth/me',
    {
      config: { allowNoAccount: true },
      schema: {
        summary: 'Get OAuth popup context',
        description:
          'The accounts the user can pick in the `/oauth/connect` popup and the plans on offer. `needs_subscribe` is always false and `stripe_publishable_key` always null: Mailwright has no billing provider.',
        tags: ['Auth'],
        operationId: 'getOAuthPopupContext',
        response: { 200: OAuthPopupContext, ...errors(401) },
      },
    },
    async (request) => services.oauth.popupContext(request.principal.user.id),
  );

  app.post(
    '/v1/oauth/subscribe',
    {
      // Ownership of the chosen account is checked by the domain: it need not be the current one.
      config: { jwtOnly: true, allowNoAccount: true },
      schema: {
        summary: 'Subscribe the selected OAuth popup account',
        description:
          'Puts the chosen account (default: the current one) on a plan before the popup continues to consent. Owner only. `stripe_token` is accepted and ignored.',
        tags: ['Auth'],
        operationId: 'subscribeOAuthPopupAccount',
        body: OAuthSubscribeBody,
        response: { 200: OAuthSubscribeResponse, ...errors(400, 401, 403, 413, 422) },
      },
    },
    async (request) =>
      services.oauth.subscribe(
        request.principal.user.id,
        request.principal.account?.id ?? null,
        request.body,
      ),
  );
}
