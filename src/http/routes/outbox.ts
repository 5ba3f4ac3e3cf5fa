import Type from 'typebox';
import type { Services } from '../../domain/services.ts';
import { pageRequest, paginate } from '../pagination.ts';
import { type TenantPrincipal, tenant } from '../plugins/auth.ts';
import { errors, IdParams, PageQuery, ref } from '../schemas/common.ts';
import { OutboxMessage, OutboxMessageSummary } from '../schemas/outbox.ts';
import type { TypedApp } from '../typed.ts';

const scopeOf = (p: TenantPrincipal) => ({ account_id: p.account.id, brand_id: p.brand.id });

const CAPTURE_NOTE =
  'Extension endpoint. When no SMTP server or provider is configured, Mailwright does not deliver mail: ' +
  'the capture transport keeps each message here instead (and records it with `provider: capture`). ' +
  'Messages listed here were NOT delivered to anyone.';

/** /v1/my/outbox: messages the capture transport kept instead of delivering. */
export function outboxRoutes(app: TypedApp, services: Services): void {
  app.get(
    '/v1/my/outbox',
    {
      schema: {
        summary: 'List captured (undelivered) messages (paginated)',
        description: `${CAPTURE_NOTE} Newest first; default page size 25. The content is on the single-message endpoint.`,
        tags: ['Outbox'],
        operationId: 'listOutboxMessages',
        querystring: PageQuery,
        response: { 200: Type.Array(ref(OutboxMessageSummary)), ...errors(401, 403, 422) },
      },
    },
    async (request, reply) => {
      const page = pageRequest(request.query, 25);
      const { items, total } = await services.outbox.list(scopeOf(tenant(request)), page.limit, page.offset);
      return paginate(reply, page, items, total);
    },
  );

  app.get(
    '/v1/my/outbox/:id',
    {
      schema: {
        summary: 'Get a captured (undelivered) message',
        description: `${CAPTURE_NOTE} \`mime\` is the complete raw message of an email; \`body\` the text of an SMS.`,
        tags: ['Outbox'],
        operationId: 'getOutboxMessage',
        params: IdParams,
        response: { 200: ref(OutboxMessage), ...errors(401, 403, 404, 422) },
      },
    },
    async (request) => services.outbox.get(scopeOf(tenant(request)), request.params.id),
  );
}
