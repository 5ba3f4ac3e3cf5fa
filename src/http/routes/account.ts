import Type from 'typebox';
import { PLANS } from '../../domain/accounts/plans.ts';
import type { Services } from '../../domain/services.ts';
import { AppError } from '../../lib/errors.ts';
import { tenant } from '../plugins/auth.ts';
import { Account, AccountPatchBody, Plan } from '../schemas/account.ts';
import { AUTHED_ERRORS, errors, NoContent, ref } from '../schemas/common.ts';
import type { TypedApp } from '../typed.ts';

/** /v1/my/account and /v1/my/accounts. */
export function accountRoutes(app: TypedApp, services: Services): void {
  app.get(
    '/v1/my/account',
    {
      schema: {
        summary: 'Get account details',
        description:
          'The current account (X-Account-ID for session tokens) with its billing, brands and team summary.',
        tags: ['Account'],
        operationId: 'getAccount',
        response: { 200: ref(Account), ...errors(401, 403, 404) },
      },
    },
    async (request) => {
      const p = tenant(request);
      return services.accounts.get(p.account.id, p.role);
    },
  );

  app.patch(
    '/v1/my/account',
    {
      config: { permission: 'manage' },
      schema: {
        summary: 'Update account settings',
        tags: ['Account'],
        operationId: 'updateAccount',
        body: AccountPatchBody,
        response: { 200: ref(Account), ...errors(...AUTHED_ERRORS) },
      },
    },
    async (request) => {
      const p = tenant(request);
      return services.accounts.update(p.account.id, p.role, request.body);
    },
  );

  app.delete(
    '/v1/my/account',
    {
      config: { permission: 'owner' },
      schema: {
        summary: 'Delete the account',
        description:
          'Owner only. Deletes the account and everything in it. Requires `?confirm=true`. (Mailwright extension.)',
        tags: ['Account'],
        operationId: 'deleteAccount',
        querystring: Type.Object({ confirm: Type.Optional(Type.Boolean()) }),
        response: { 204: NoContent, ...errors(400, 401, 403, 404, 422) },
      },
    },
    async (request, reply) => {
      if (request.query.confirm !== true) {
        throw new AppError('bad_request', 'Deleting an account is permanent; repeat with ?confirm=true', {
          errorCode: 'confirmation_required',
        });
      }
      await services.accounts.remove(tenant(request).account.id);
      return reply.status(204).send();
    },
  );

  app.get(
    '/v1/my/accounts',
    {
      config: { allowNoAccount: true },
      schema: {
        summary: 'List accessible accounts',
        description:
          'Every account of the signed-in user, each with the caller’s role there. An API key sees only its own account.',
        tags: ['Account'],
        operationId: 'listAccounts',
        response: { 200: Type.Array(ref(Account)), ...errors(401) },
      },
    },
    async (request) => services.accounts.accessible(request.principal),
  );
}

/** GET /v1/app: the active plans (public). */
export function planRoutes(app: TypedApp): void {
  app.get(
    '/v1/app',
    {
      schema: {
        summary: 'Get available plans',
        tags: ['Public'],
        operationId: 'getApp',
        response: { 200: Type.Object({ plans: Type.Array(Plan) }) },
      },
    },
    async () => ({ plans: PLANS.filter((p) => p.active) }),
  );
}
