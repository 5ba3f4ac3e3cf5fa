import Type from 'typebox';
import type { Services } from '../../domain/services.ts';
import { pageRequest, paginate } from '../pagination.ts';
import { tenant } from '../plugins/auth.ts';
import { ApiKey, ApiKeyBody, ApiKeyCreated } from '../schemas/api-key.ts';
import { AUTHED_ERRORS, errors, IdParams, NoContent, PageQuery, ref } from '../schemas/common.ts';
import type { TypedApp } from '../typed.ts';

/** /v1/my/api_keys: secret keys pinned to the current account and brand. */
export function apiKeyRoutes(app: TypedApp, services: Services): void {
  app.post(
    '/v1/my/api_keys',
    {
      config: { permission: 'manage' },
      schema: {
        summary: 'Create an API key',
        description:
          'Creates a secret key (`nskey_live_…` or `nskey_test_…`) pinned to the current account and brand (X-Brand-SID). The key is shown only in this response.',
        tags: ['API keys'],
        operationId: 'createApiKey',
        body: ApiKeyBody,
        response: { 201: ref(ApiKeyCreated), ...errors(...AUTHED_ERRORS) },
      },
    },
    async (request, reply) => {
      const p = tenant(request);
      const created = await services.apiKeys.create({
        accountId: p.account.id,
        brandId: p.brand.id,
        brandSid: p.brand.sid,
        userId: p.user.id,
        name: request.body.name,
        mode: request.body.mode ?? 'live',
      });
      return reply.status(201).send(created);
    },
  );

  app.get(
    '/v1/my/api_keys',
    {
      config: { permission: 'manage' },
      schema: {
        summary: 'List API keys',
        description: 'Keys are masked; only their prefix is shown.',
        tags: ['API keys'],
        operationId: 'listApiKeys',
        querystring: PageQuery,
        response: { 200: Type.Array(ref(ApiKey)), ...errors(401, 403, 404, 422) },
      },
    },
    async (request, reply) => {
      const page = pageRequest(request.query, 30);
      const { items, total } = await services.apiKeys.list(
        tenant(request).account.id,
        page.limit,
        page.offset,
      );
      return paginate(reply, page, items, total);
    },
  );

  app.delete(
    '/v1/my/api_keys/:id',
    {
      config: { permission: 'manage' },
      schema: {
        summary: 'Delete an API key',
        description: 'The key stops working immediately.',
        tags: ['API keys'],
        operationId: 'deleteApiKey',
        params: IdParams,
        response: { 204: NoContent, ...errors(401, 403, 404) },
      },
    },
    async (request, reply) => {
      await services.apiKeys.remove(tenant(request).account.id, request.params.id);
      return reply.status(204).send();
    },
  );
}
