import type { FastifyRequest } from 'fastify';
import Type from 'typebox';
import type { ListScope } from '../../domain/lists/lists.ts';
import type { Services } from '../../domain/services.ts';
import { pageRequest, paginate } from '../pagination.ts';
import { tenant } from '../plugins/auth.ts';
import { AUTHED_ERRORS, errors, IdParams, ref } from '../schemas/common.ts';
import {
  BulkListContactsRequest,
  BulkListContactsResponse,
  ContactList,
  ListCreateBody,
  ListDeleteWarning,
  ListQuery,
  ListUpdateBody,
} from '../schemas/list.ts';
import type { TypedApp } from '../typed.ts';

const tags = ['Lists'];

function scopeOf(request: FastifyRequest): ListScope {
  const p = tenant(request);
  return { account_id: p.account.id, brand_id: p.brand.id };
}

/** /v1/my/lists: contact lists of the current brand (X-Brand-SID), their members and delete warning. */
export function listRoutes(app: TypedApp, services: Services): void {
  app.get(
    '/v1/my/lists',
    {
      schema: {
        summary: 'List contact lists (paginated)',
        description: 'Newest first; 25 per page by default. `name` filters by exact, case-insensitive name.',
        tags,
        operationId: 'listLists',
        querystring: ListQuery,
        response: { 200: Type.Array(ref(ContactList)), ...errors(401, 403, 404, 422) },
      },
    },
    async (request, reply) => {
      const page = pageRequest(request.query, 25);
      const { items, total } = await services.lists.list(
        scopeOf(request),
        { name: request.query.name },
        page.limit,
        page.offset,
      );
      return paginate(reply, page, items, total);
    },
  );

  app.post(
    '/v1/my/lists',
    {
      schema: {
        summary: 'Create a contact list',
        description:
          '`contact_ids` (contacts of this brand, else 422) become members. With `segment_id` (a segment of ' +
          'this brand, else 422) the list is created `stale` and populated from the segment in the ' +
          'background; such a list takes no `contact_ids` (422).',
        tags,
        operationId: 'createList',
        body: ListCreateBody,
        response: { 201: ref(ContactList), ...errors(...AUTHED_ERRORS) },
      },
    },
    async (request, reply) =>
      reply.status(201).send(await services.lists.create(scopeOf(request), request.body)),
  );

  app.get(
    '/v1/my/lists/:id',
    {
      schema: {
        summary: 'Get a contact list',
        tags,
        operationId: 'getList',
        params: IdParams,
        response: { 200: ref(ContactList), ...errors(401, 403, 404) },
      },
    },
    async (request) => services.lists.get(scopeOf(request), request.params.id),
  );

  app.patch(
    '/v1/my/lists/:id',
    {
      schema: {
        summary: 'Update a contact list',
        description:
          '`contact_ids` are ADDED to the list (current members stay; remove members with ' +
          '`POST /v1/my/lists/{id}/contacts/bulk`). Setting `segment_id` marks the list `stale` until the ' +
          'background refresh repopulates it; `segment_id: null` makes it a plain list that keeps its members.',
        tags,
        operationId: 'updateList',
        params: IdParams,
        body: ListUpdateBody,
        response: { 200: ref(ContactList), ...errors(...AUTHED_ERRORS) },
      },
    },
    async (request) => services.lists.update(scopeOf(request), request.params.id, request.body),
  );

  app.delete(
    '/v1/my/lists/:id',
    {
      schema: {
        summary: 'Delete a contact list',
        description: 'Returns the deleted list. Its contacts are kept; only their membership goes.',
        tags,
        operationId: 'deleteList',
        params: IdParams,
        response: { 200: ref(ContactList), ...errors(401, 403, 404) },
      },
    },
    async (request) => services.lists.remove(scopeOf(request), request.params.id),
  );

  app.get(
    '/v1/my/lists/:id/delete_warning',
    {
      schema: {
        summary: 'Get delete warning metadata for a contact list',
        description: 'Names of the campaigns and flows connected to this list.',
        tags,
        operationId: 'getListDeleteWarning',
        params: IdParams,
        response: { 200: ref(ListDeleteWarning), ...errors(401, 403, 404) },
      },
    },
    async (request) => services.lists.deleteWarning(scopeOf(request), request.params.id),
  );

  app.post(
    '/v1/my/lists/:id/contacts/bulk',
    {
      schema: {
        summary: 'Add or remove existing contacts from a list by email',
        description:
          'Resolves existing contacts by email within the current brand and adds or removes memberships ' +
          'idempotently. It does not create contacts; emails with no current-brand contact are returned in ' +
          '`not_found`, entries that are not addresses in `invalid_emails`. Up to 1000 emails per call. ' +
          'Segment-backed lists take no hand-made changes (422).',
        tags,
        operationId: 'bulkListContacts',
        params: IdParams,
        body: BulkListContactsRequest,
        response: { 200: ref(BulkListContactsResponse), ...errors(...AUTHED_ERRORS) },
      },
    },
    async (request) =>
      services.lists.bulk(scopeOf(request), request.params.id, request.body.action, request.body.emails),
  );
}
