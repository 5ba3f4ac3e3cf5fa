import Type from 'typebox';
import type { Services } from '../../domain/services.ts';
import { pageRequest, paginate } from '../pagination.ts';
import { tenant } from '../plugins/auth.ts';
import {
  Brand,
  BrandBody,
  Onboarding,
  OnboardingStepBody,
  SetupCenter,
  SetupCenterBody,
  SidParams,
} from '../schemas/brand.ts';
import { AUTHED_ERRORS, errors, PageQuery, ref, StringEnum } from '../schemas/common.ts';
import type { TypedApp } from '../typed.ts';

const ScrapeBody = Type.Object({
  url: Type.String({ maxLength: 4096, description: 'The website to read, an http(s) URL' }),
});

const ScrapeAccepted = Type.Object(
  {
    status: StringEnum(['scraping']),
    url: Type.String({ description: 'The URL being scraped, as given' }),
  },
  { description: 'Scrape job enqueued' },
);

/**
 * /v1/my/brands and its temporary alias /v1/my/client_accounts (older SDK builds). Brands are
 * addressed by sid; the numeric id is accepted too.
 */
export function brandRoutes(app: TypedApp, services: Services): void {
  for (const [base, suffix, deprecated] of [
    ['/v1/my/brands', '', false],
    ['/v1/my/client_accounts', 'ClientAccount', true],
  ] as const) {
    const op = (name: string) => (suffix ? `${name}${suffix}` : name);
    const common = { tags: ['Brands'], ...(deprecated ? { deprecated: true } : {}) };

    app.get(
      base,
      {
        schema: {
          ...common,
          summary: deprecated ? 'List brands (alias)' : 'List brands',
          operationId: op('listBrands'),
          querystring: PageQuery,
          response: { 200: Type.Array(ref(Brand)), ...errors(401, 403, 404, 422) },
        },
      },
      async (request, reply) => {
        const page = pageRequest(request.query, 100);
        const { items, total } = await services.brands.list(
          tenant(request).account.id,
          page.limit,
          page.offset,
        );
        return paginate(reply, page, items, total);
      },
    );

    app.post(
      base,
      {
        config: { permission: 'manage' },
        schema: {
          ...common,
          summary: deprecated ? 'Create a brand (alias)' : 'Create a brand',
          description: 'Within the plan’s brand limit (422 `brand_limit_reached`).',
          operationId: op('createBrand'),
          body: BrandBody,
          response: { 201: ref(Brand), ...errors(...AUTHED_ERRORS) },
        },
      },
      async (request, reply) =>
        reply.status(201).send(await services.brands.create(tenant(request).account.id, request.body)),
    );

    app.get(
      `${base}/:sid`,
      {
        schema: {
          ...common,
          summary: deprecated ? 'Get a brand (alias)' : 'Get a brand',
          operationId: op('getBrand'),
          params: SidParams,
          response: { 200: ref(Brand), ...errors(401, 403, 404) },
        },
      },
      async (request) => services.brands.get(tenant(request).account.id, request.params.sid),
    );

    app.patch(
      `${base}/:sid`,
      {
        schema: {
          ...common,
          summary: deprecated ? 'Update a brand (alias)' : 'Update a brand',
          operationId: op('updateBrand'),
          params: SidParams,
          body: BrandBody,
          response: { 200: ref(Brand), ...errors(...AUTHED_ERRORS) },
        },
      },
      async (request) => services.brands.update(tenant(request).account.id, request.params.sid, request.body),
    );

    app.delete(
      `${base}/:sid`,
      {
        config: { permission: 'manage' },
        schema: {
          ...common,
          summary: deprecated ? 'Delete a brand (alias)' : 'Delete a brand',
          description: 'The last brand of an account cannot be deleted (422).',
          operationId: op('deleteBrand'),
          params: SidParams,
          response: { 200: ref(Brand), ...errors(401, 403, 404, 422) },
        },
      },
      async (request) => services.brands.remove(tenant(request).account.id, request.params.sid),
    );

    app.get(
      `${base}/:sid/onboarding`,
      {
        schema: {
          ...common,
          summary: deprecated ? 'Get brand onboarding state (alias)' : 'Get brand onboarding state',
          operationId: op('getBrandOnboarding'),
          params: SidParams,
          response: { 200: ref(Onboarding), ...errors(401, 403, 404) },
        },
      },
      async (request) => services.brands.onboarding(tenant(request).account.id, request.params.sid),
    );

    app.post(
      `${base}/:sid/onboarding/steps`,
      {
        schema: {
          ...common,
          summary: deprecated
            ? 'Complete a brand onboarding step (alias)'
            : 'Complete a brand onboarding step',
          description: 'Idempotent: completing a step twice keeps the first completion.',
          operationId: op('completeBrandOnboardingStep'),
          params: SidParams,
          body: OnboardingStepBody,
          response: { 200: ref(Onboarding), ...errors(...AUTHED_ERRORS) },
        },
      },
      async (request) =>
        services.brands.completeOnboardingStep(
          tenant(request).account.id,
          request.params.sid,
          request.body.step,
          request.body.metadata,
        ),
    );

    app.post(
      `${base}/:sid/scrape`,
      {
        schema: {
          ...common,
          summary: deprecated ? 'Auto-detect brand from website (alias)' : 'Auto-detect brand from website',
          description:
            'Queues a background job that fetches the page and fills the brand’s empty fields: colours, ' +
            'fonts, logo, company name and description, social links; `source_url` and `last_scraped_at` ' +
            'are always set. Fields the user already set are never overwritten. Returns 202 at once; poll ' +
            'GET /v1/my/brands/{sid} for the result. 422 when the URL is not http(s) or points to a private ' +
            'network address.',
          operationId: op('scrapeBrand'),
          params: SidParams,
          body: ScrapeBody,
          response: { 202: ScrapeAccepted, ...errors(...AUTHED_ERRORS) },
        },
      },
      async (request, reply) =>
        reply
          .status(202)
          .send(
            await services.scrapes.enqueue(tenant(request).account.id, request.params.sid, request.body.url),
          ),
    );

    if (deprecated) continue;

    app.get(
      `${base}/:sid/setup_center`,
      {
        schema: {
          ...common,
          summary: 'Get brand setup center state',
          operationId: 'getBrandSetupCenter',
          params: SidParams,
          response: { 200: ref(SetupCenter), ...errors(401, 403, 404) },
        },
      },
      async (request) => services.brands.setupCenter(tenant(request).account.id, request.params.sid),
    );

    app.patch(
      `${base}/:sid/setup_center`,
      {
        schema: {
          ...common,
          summary: 'Update brand setup center state',
          description:
            'Provide exactly one of `seen`, `dismissed`, or `card` (with optional `metadata`, acknowledging that card).',
          operationId: 'updateBrandSetupCenter',
          params: SidParams,
          body: SetupCenterBody,
          response: { 200: ref(SetupCenter), ...errors(...AUTHED_ERRORS) },
        },
      },
      async (request) =>
        services.brands.updateSetupCenter(tenant(request).account.id, request.params.sid, request.body),
    );
  }
}
