import Type from 'typebox';
import type { ContactScope } from '../../domain/contacts/contacts.ts';
import type { Services } from '../../domain/services.ts';
import { pageRequest, paginate } from '../pagination.ts';
import { tenant } from '../plugins/auth.ts';
import { AUTHED_ERRORS, errors, IdParams, ref } from '../schemas/common.ts';
import { Contact, ContactCreateBody, ContactListQuery, ContactUpdateBody } from '../schemas/contact.ts';
import type { TypedApp } from '../typed.ts';

/** Contacts default to 50 a page. */
const DEFAULT_PAGE_SIZE = 50;

const scopeOf = (request: Parameters<typeof tenant>[0]): ContactScope => {
  const t = tenant(request);
  return { account_id: t.account.id, brand_id: t.brand.id };
};

/** /v1/my/contacts: the brand's contacts. */
export function contactRoutes(app: TypedApp, services: Services): void {
  const tags = ['Contacts'];

  app.get(
    '/v1/my/contacts',
    {
      schema: {
        tags,
        summary: 'List contacts (paginated)',
        description:
          'Newest first (id descending). `search` matches substrings of name, email and phone (every ' +
          'word must match; a phone number may be written with spaces, dashes or brackets); `list_id` ' +
          'keeps members of that list; `tag` keeps contacts whose `data.tags` has that tag. Default page size 50.',
        operationId: 'listContacts',
        querystring: ContactListQuery,
        response: { 200: Type.Array(ref(Contact)), ...errors(401, 403, 404, 422) },
      },
    },
    async (request, reply) => {
      const page = pageRequest(request.query, DEFAULT_PAGE_SIZE);
      const { search, list_id, tag } = request.query;
      const { items, total } = await services.contacts.list(
        scopeOf(request),
        { search, list_id, tag },
        page.limit,
        page.offset,
      );
      return paginate(reply, page, items, total);
    },
  );

  app.post(
    '/v1/my/contacts',
    {
      schema: {
        tags,
        summary: 'Create a contact',
        description:
          'One contact per email (and per phone) per brand. When the email or phone already belongs to a ' +
          'contact, that contact is updated instead and the answer is 200: non-blank fields are set, `data` ' +
          'is merged (blank values ignored, `tags` united, integration namespaces kept), the addresses are ' +
          'opted in and `list_ids` are added. An email and a phone of two different contacts → 422. ' +
          'Top-level `email`/`phone` are the contact’s address of that kind, subscribed (`opt_in_at` set); ' +
          '`channels_attributes` give explicit control (`subscribed: false` opts out and sets `opt_out_at`).',
        operationId: 'createContact',
        body: ContactCreateBody,
        response: {
          201: ref(Contact),
          200: Type.Unsafe({ $ref: 'Contact#', description: 'An existing contact was updated' }),
          ...errors(...AUTHED_ERRORS),
        },
      },
    },
    async (request, reply) => {
      const { contact, created } = await services.contacts.create(scopeOf(request), request.body);
      return reply.status(created ? 201 : 200).send(contact);
    },
  );

  app.get(
    '/v1/my/contacts/:id',
    {
      schema: {
        tags,
        summary: 'Get a contact',
        operationId: 'getContact',
        params: IdParams,
        response: { 200: ref(Contact), ...errors(401, 403, 404) },
      },
    },
    async (request) => services.contacts.get(scopeOf(request), request.params.id),
  );

  app.patch(
    '/v1/my/contacts/:id',
    {
      schema: {
        tags,
        summary: 'Update a contact',
        description:
          '`data` is replaced wholesale: send the full object (GET, merge, PATCH back). `list_ids` becomes ' +
          'the contact’s exact set of lists. Top-level `email`/`phone` replace the contact’s address of that ' +
          'kind and opt it in; an address of another contact → 422. `channels_attributes` with `id` update ' +
          'or (`_destroy: true`) remove a channel.',
        operationId: 'updateContact',
        params: IdParams,
        body: ContactUpdateBody,
        response: { 200: ref(Contact), ...errors(...AUTHED_ERRORS) },
      },
    },
    async (request) => services.contacts.update(scopeOf(request), request.params.id, request.body),
  );

  app.delete(
    '/v1/my/contacts/:id',
    {
      schema: {
        tags,
        summary: 'Delete a contact',
        description: 'Deletes the contact with its channels, memberships and events; returns it as it was.',
        operationId: 'deleteContact',
        params: IdParams,
        response: { 200: ref(Contact), ...errors(401, 403, 404) },
      },
    },
    async (request) => services.contacts.remove(scopeOf(request), request.params.id),
  );
}
