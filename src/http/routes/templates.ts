import type { FastifyRequest } from 'fastify';
import Type from 'typebox';
import type { Services } from '../../domain/services.ts';
import type { TemplateScope } from '../../domain/templates/templates.ts';
import { pageRequest, paginate } from '../pagination.ts';
import { tenant } from '../plugins/auth.ts';
import { AUTHED_ERRORS, errors, IdParams, ref } from '../schemas/common.ts';
import {
  EmailStarter,
  Template,
  TemplateCreateBody,
  TemplateListQuery,
  TemplatePreview,
  TemplatePreviewBody,
  TemplateSpec,
  TemplateSummary,
  TemplateUpdateBody,
} from '../schemas/template.ts';
import type { TypedApp } from '../typed.ts';

const tags = ['Templates'];

function scopeOf(request: FastifyRequest): TemplateScope {
  const p = tenant(request);
  return { account_id: p.account.id, brand_id: p.brand.id };
}

/** /v1/my/templates: email templates of the current brand, preview, component spec and starters. */
export function templateRoutes(app: TypedApp, services: Services): void {
  // The fixed paths are declared before `/:id` so they read as what they are (the router would
  // prefer them anyway, but `/:id` takes integers only and would answer them with a 400).
  app.post(
    '/v1/my/templates/preview',
    {
      schema: {
        summary: 'Render an email design to HTML',
        description:
          "Renders `document` (a design) as the current brand's marketing email, with the brand's footer " +
          '(company name, physical address, unsubscribe link) and merge tags filled with sample values. ' +
          '400 for a document that is not a design; 422 naming the section and prop for invalid sections.',
        tags,
        operationId: 'previewTemplate',
        body: TemplatePreviewBody,
        response: { 200: ref(TemplatePreview), ...errors(...AUTHED_ERRORS) },
      },
    },
    async (request) => services.templates.preview(tenant(request).brand, request.body.document),
  );

  app.get(
    '/v1/my/templates/spec',
    {
      schema: {
        summary: 'Get the email component schema',
        description:
          'Every section type with its props (type, required, default, description), tips, the common ' +
          'styles, merge variables and theme fields. Designs are validated against exactly this.',
        tags,
        operationId: 'getTemplateSpec',
        response: { 200: ref(TemplateSpec), ...errors(401, 403) },
      },
    },
    async () => services.templates.spec(),
  );

  app.get(
    '/v1/my/templates/starters',
    {
      schema: {
        summary: 'List email starter designs',
        description: "Starter designs with the current brand's theme merged in and an HTML preview of each.",
        tags,
        operationId: 'listTemplateStarters',
        response: { 200: Type.Array(ref(EmailStarter)), ...errors(401, 403) },
      },
    },
    async (request) => services.templates.starters(tenant(request).brand),
  );

  app.get(
    '/v1/my/templates',
    {
      schema: {
        summary: 'List all templates',
        description: 'Summaries (no design) with section counts, newest first; 25 per page by default.',
        tags,
        operationId: 'listTemplates',
        querystring: TemplateListQuery,
        response: { 200: Type.Array(ref(TemplateSummary)), ...errors(401, 403, 422) },
      },
    },
    async (request, reply) => {
      const page = pageRequest(request.query, 25);
      const { items, total } = await services.templates.list(scopeOf(request), page.limit, page.offset);
      return paginate(reply, page, items, total);
    },
  );

  app.post(
    '/v1/my/templates',
    {
      schema: {
        summary: 'Create a standalone template',
        description:
          '`name` is required. `design` is validated against the component spec (422 naming e.g. ' +
          '`design.sections[2].props.href`); merge tags in `subject`, `preheader` and `body` must parse.',
        tags,
        operationId: 'createTemplate',
        body: TemplateCreateBody,
        response: { 201: ref(Template), ...errors(...AUTHED_ERRORS) },
      },
    },
    async (request, reply) =>
      reply.status(201).send(await services.templates.create(scopeOf(request), request.body)),
  );

  app.get(
    '/v1/my/templates/:id',
    {
      schema: {
        summary: 'Get a template with full design',
        tags,
        operationId: 'getTemplate',
        params: IdParams,
        response: { 200: ref(Template), ...errors(401, 403, 404) },
      },
    },
    async (request) => services.templates.get(scopeOf(request), request.params.id),
  );

  app.patch(
    '/v1/my/templates/:id',
    {
      schema: {
        summary: 'Update a template',
        description:
          'Changes only the fields sent; `version` increments. With `if_version`, a template changed ' +
          'since that version is left alone and the answer is 409 `template_version_conflict`.',
        tags,
        operationId: 'updateTemplate',
        params: IdParams,
        body: TemplateUpdateBody,
        response: { 200: ref(Template), ...errors(...AUTHED_ERRORS, 409) },
      },
    },
    async (request) => services.templates.update(scopeOf(request), request.params.id, request.body),
  );

  app.delete(
    '/v1/my/templates/:id',
    {
      schema: {
        summary: 'Delete a template',
        description:
          'Returns the deleted template. A template owned by a flow or campaign is refused with 422 ' +
          '`template_in_use`; edit or delete it through its owner.',
        tags,
        operationId: 'deleteTemplate',
        params: IdParams,
        response: { 200: ref(Template), ...errors(401, 403, 404, 422) },
      },
    },
    async (request) => services.templates.remove(scopeOf(request), request.params.id),
  );
}
