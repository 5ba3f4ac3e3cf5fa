import Type from 'typebox';
import type { Services } from '../../domain/services.ts';
import { pageRequest, paginate } from '../pagination.ts';
import { tenant } from '../plugins/auth.ts';
import { errors, IdParams, ref } from '../schemas/common.ts';
import {
  Message,
  MessageBatchBody,
  MessageBatchResult,
  MessageCreateBody,
  MessageListQuery,
  SendTestBody,
  SendTestResult,
} from '../schemas/message.ts';
import type { TypedApp } from '../typed.ts';

const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      description: 'Same key and body within 24 h returns the original message; another body → 409',
    }),
  ),
});

/** /v1/my/messages: transactional email and SMS; /v1/my/templates/{id}/send_test. */
export function messageRoutes(app: TypedApp, services: Services): void {
  app.post(
    '/v1/my/messages',
    {
      schema: {
        summary: 'Send a transactional message',
        description:
          'Accepts one email or SMS for immediate asynchronous delivery (201, status queued). With an ' +
          'Idempotency-Key (header or `idempotency_key`) a retry returns the original message with 200; ' +
          'the same key with a different body is 409 idempotency_conflict. `from` must be a verified ' +
          "sender; without one the brand's sandbox sender is used, capped per month.",
        tags: ['Messages'],
        operationId: 'sendMessage',
        headers: IdempotencyHeaders,
        body: MessageCreateBody,
        response: { 200: ref(Message), 201: ref(Message), ...errors(400, 401, 403, 409, 413, 422) },
      },
    },
    async (request, reply) => {
      const { message: wrapped, ...flat } = request.body ?? {};
      const { message, created } = await services.messages.send(
        tenant(request).brand,
        wrapped ?? flat,
        request.headers['idempotency-key'],
      );
      return reply.status(created ? 201 : 200).send(message);
    },
  );

  app.post(
    '/v1/my/messages/batch',
    {
      schema: {
        summary: 'Send up to 100 transactional messages',
        description:
          'Each message is validated and accepted on its own (per-item `idempotency_key` honoured); the ' +
          'response lists one result per item, in order. 200 even when some items failed.',
        tags: ['Messages'],
        operationId: 'sendMessageBatch',
        body: MessageBatchBody,
        response: {
          200: Type.Object({ data: Type.Array(MessageBatchResult) }),
          ...errors(400, 401, 403, 413, 422),
        },
      },
    },
    async (request) => ({
      data: await services.messages.sendBatch(tenant(request).brand, request.body.messages),
    }),
  );

  app.get(
    '/v1/my/messages',
    {
      schema: {
        summary: 'List messages (paginated)',
        description:
          "Newest first; transactional only unless `source_type` is 'all' (everything) or 'flow' (flow and " +
          'campaign messages). Default page size 25.',
        tags: ['Messages'],
        operationId: 'listMessages',
        querystring: MessageListQuery,
        response: { 200: Type.Array(ref(Message)), ...errors(401, 403, 422) },
      },
    },
    async (request, reply) => {
      const page = pageRequest(request.query, 25);
      const { brand } = tenant(request);
      const { items, total } = await services.messages.list(
        { account_id: brand.account_id, brand_id: brand.id },
        {
          source_type: request.query.source_type,
          channel: request.query.channel,
          status: request.query.status,
        },
        page.limit,
        page.offset,
      );
      return paginate(reply, page, items, total);
    },
  );

  app.get(
    '/v1/my/messages/:id',
    {
      schema: {
        summary: 'Get a message',
        tags: ['Messages'],
        operationId: 'getMessage',
        params: IdParams,
        response: { 200: ref(Message), ...errors(401, 403, 404) },
      },
    },
    async (request) => {
      const { brand } = tenant(request);
      return services.messages.get({ account_id: brand.account_id, brand_id: brand.id }, request.params.id);
    },
  );

  app.post(
    '/v1/my/templates/:id/send_test',
    {
      schema: {
        summary: 'Send a test email of a template',
        description:
          "To `email`, to a contact (`contact_id`, personalised with the contact's data), or — with " +
          'neither — to the account owner. Sent as the marketing email would look, subject prefixed [Test].',
        tags: ['Templates'],
        operationId: 'sendTemplateTest',
        params: IdParams,
        body: SendTestBody,
        response: { 200: SendTestResult, ...errors(400, 401, 403, 404, 422) },
      },
      // The body is optional: no body means "send to the account owner".
      preValidation: (request, _reply, done) => {
        request.body ??= {};
        done();
      },
    },
    async (request) =>
      services.messages.sendTemplateTest(tenant(request).brand, request.params.id, request.body),
  );
}
