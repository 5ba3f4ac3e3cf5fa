import Type from 'typebox';
import type { Services } from '../../domain/services.ts';
import { pageRequest, paginate } from '../pagination.ts';
import { type TenantPrincipal, tenant } from '../plugins/auth.ts';
import { errors, IdParams, ref } from '../schemas/common.ts';
import { Suppression, SuppressionCreateBody, SuppressionListQuery } from '../schemas/suppression.ts';
import type { TypedApp } from '../typed.ts';

const scopeOf = (p: TenantPrincipal) => ({ account_id: p.account.id, brand_id: p.brand.id });

/** /v1/my/suppressions: addresses the brand does not email. */
export function suppressionRoutes(app: TypedApp, services: Services): void {
  app.get(
    '/v1/my/suppressions',
    {
      schema: {
        summary: 'List suppressions (paginated)',
        description:
          'Newest first; default page size 25. Only active suppressions unless `active=false` is given.',
        tags: ['Suppressions'],
        operationId: 'listSuppressions',
        querystring: SuppressionListQuery,
        response: { 200: Type.Array(ref(Suppression)), ...errors(401, 403, 422) },
      },
    },
    async (request, reply) => {
      const page = pageRequest(request.query, 25);
      const { items, total } = await services.suppressions.list(
        scopeOf(tenant(request)),
        request.query,
        page.limit,
        page.offset,
      );
      return paginate(reply, page, items, total);
    },
  );

  app.post(
    '/v1/my/suppressions',
    {
      schema: {
        summary: 'Suppress an address',
        description:
          'Adds a manual (or admin) suppression. 201 when created; 200 with the existing suppression ' +
          'when the address is already actively suppressed. The matching contact is flagged suppressed.',
        tags: ['Suppressions'],
        operationId: 'createSuppression',
        body: SuppressionCreateBody,
        response: { 200: ref(Suppression), 201: ref(Suppression), ...errors(400, 401, 403, 422) },
      },
    },
    async (request, reply) => {
      const body = request.body ?? {};
      const input = body.suppression ?? { email: body.email, reason: body.reason };
      const { suppression, created } = await services.suppressions.create(scopeOf(tenant(request)), input);
      return reply.status(created ? 201 : 200).send(suppression);
    },
  );

  app.get(
    '/v1/my/suppressions/:id',
    {
      schema: {
        summary: 'Get a suppression',
        tags: ['Suppressions'],
        operationId: 'getSuppression',
        params: IdParams,
        response: { 200: ref(Suppression), ...errors(401, 403, 404, 422) },
      },
    },
    async (request) => services.suppressions.get(scopeOf(tenant(request)), request.params.id),
  );

  app.delete(
    '/v1/my/suppressions/:id',
    {
      schema: {
        summary: 'Lift a suppression',
        description:
          'Sets `active` to false (the row is kept as history) and returns it. When no other active ' +
          'suppression remains for the contact, its suppressed flag is cleared.',
        tags: ['Suppressions'],
        operationId: 'liftSuppression',
        params: IdParams,
        response: { 200: ref(Suppression), ...errors(401, 403, 404, 422) },
      },
    },
    async (request) => services.suppressions.lift(scopeOf(tenant(request)), request.params.id),
  );
}
