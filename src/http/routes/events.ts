import Type from 'typebox';
import type { Services } from '../../domain/services.ts';
import { pageRequest, paginate } from '../pagination.ts';
import { type TenantPrincipal, tenant } from '../plugins/auth.ts';
import { AUTHED_ERRORS, errors, IdParams, ref } from '../schemas/common.ts';
import { Event, EventListQuery, TrackEventBody, TrackEventHeaders } from '../schemas/event.ts';
import type { TypedApp } from '../typed.ts';

const scopeOf = (p: TenantPrincipal) => ({ account_id: p.account.id, brand_id: p.brand.id });

const header = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

/** /v1/my/events: contact event tracking. */
export function eventRoutes(app: TypedApp, services: Services): void {
  app.post(
    '/v1/my/events',
    {
      schema: {
        summary: 'Track a contact event',
        description:
          'Requires an idempotency key via the `Idempotency-Key` header or `idempotency_key` (422 `idempotency_key_required`). ' +
          'The same account + event name + key returns the stored event with 200; a new event answers 201. ' +
          'The contact is named by `contact_id` or `contact_email` in the current brand (404 when unknown; never created). ' +
          'The server records the client IP, user agent (parsed into browser, os and device_type) and referrer.',
        tags: ['Events'],
        operationId: 'trackEvent',
        headers: TrackEventHeaders,
        body: TrackEventBody,
        response: {
          200: { ...ref(Event), description: 'Duplicate event (idempotent — returns the existing one)' },
          201: { ...ref(Event), description: 'Event created' },
          ...errors(...AUTHED_ERRORS, 409),
        },
      },
    },
    async (request, reply) => {
      const p = tenant(request);
      const { event, created } = await services.events.track(
        { ...scopeOf(p), user_id: p.user.id },
        request.body,
        {
          ip: request.ip ?? null,
          userAgent: header(request.headers['user-agent']) ?? null,
          referrer: header(request.headers['referer']) ?? null,
        },
        request.headers['idempotency-key'],
      );
      return reply.status(created ? 201 : 200).send(event);
    },
  );

  app.get(
    '/v1/my/events',
    {
      schema: {
        summary: 'List events (paginated)',
        description: 'Newest first; default page size 50.',
        tags: ['Events'],
        operationId: 'listEvents',
        querystring: EventListQuery,
        response: { 200: Type.Array(ref(Event)), ...errors(401, 403, 404, 422) },
      },
    },
    async (request, reply) => {
      const { page: _p, limit: _l, per: _per, per_page: _pp, ...filters } = request.query;
      const page = pageRequest(request.query, 50);
      const { items, total } = await services.events.list(
        scopeOf(tenant(request)),
        filters,
        page.limit,
        page.offset,
      );
      return paginate(reply, page, items, total);
    },
  );

  app.get(
    '/v1/my/events/:id',
    {
      schema: {
        summary: 'Get an event',
        tags: ['Events'],
        operationId: 'getEvent',
        params: IdParams,
        response: { 200: ref(Event), ...errors(401, 403, 404) },
      },
    },
    async (request) => services.events.get(scopeOf(tenant(request)), request.params.id),
  );

  app.delete(
    '/v1/my/events/:id',
    {
      schema: {
        summary: 'Delete an event',
        description: 'Answers the deleted event.',
        tags: ['Events'],
        operationId: 'deleteEvent',
        params: IdParams,
        response: { 200: { ...ref(Event), description: 'Deleted event' }, ...errors(401, 403, 404) },
      },
    },
    async (request) => services.events.remove(scopeOf(tenant(request)), request.params.id),
  );
}
