import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, { type FastifyBaseLogger } from 'fastify';
import type { Config } from './config.ts';
import type { Services } from './domain/services.ts';
import { registerAuthentication } from './http/plugins/auth.ts';
import { registerErrorHandling } from './http/plugins/errors.ts';
import { registerValidation } from './http/plugins/validation.ts';
import { accountRoutes, planRoutes } from './http/routes/account.ts';
import { apiKeyRoutes } from './http/routes/api-keys.ts';
import { logoutRoute, publicAuthRoutes } from './http/routes/auth.ts';
import { brandRoutes } from './http/routes/brands.ts';
import { campaignRoutes } from './http/routes/campaigns.ts';
import { contactEnrichRoutes } from './http/routes/contact-enrich.ts';
import { contactRoutes } from './http/routes/contacts.ts';
import { directUploadPutRoute, directUploadRoutes } from './http/routes/direct-uploads.ts';
import { eventRoutes } from './http/routes/events.ts';
import { flowRoutes } from './http/routes/flows.ts';
import { healthRoutes } from './http/routes/health.ts';
import { importRoutes } from './http/routes/imports.ts';
import { inboundWebhookRoutes } from './http/routes/inbound-webhooks.ts';
import { listRoutes } from './http/routes/lists.ts';
import { messageRoutes } from './http/routes/messages.ts';
import { oauthPublicRoutes, oauthRoutes } from './http/routes/oauth.ts';
import { outboxRoutes } from './http/routes/outbox.ts';
import { publicContactRoutes } from './http/routes/public-contacts.ts';
import { segmentRoutes } from './http/routes/segments.ts';
import { suppressionRoutes } from './http/routes/suppressions.ts';
import { teamRoutes } from './http/routes/team.ts';
import { templateGenerateRoutes } from './http/routes/template-generate.ts';
import { templateRoutes } from './http/routes/templates.ts';
import { trackingRoutes } from './http/routes/tracking.ts';
import { userRoutes } from './http/routes/user.ts';
import { Account, Invite, Membership } from './http/schemas/account.ts';
import { ApiKey, ApiKeyCreated } from './http/schemas/api-key.ts';
import { Brand, Onboarding, SetupCenter } from './http/schemas/brand.ts';
import { Campaign, CampaignStatsView } from './http/schemas/campaign.ts';
import { ErrorBody } from './http/schemas/common.ts';
import { Contact, ContactChannel } from './http/schemas/contact.ts';
import { Event } from './http/schemas/event.ts';
import { Flow, FlowSpec, FlowStats } from './http/schemas/flow.ts';
import { DirectUpload, Import } from './http/schemas/import.ts';
import { BulkListContactsResponse, ContactList, ListDeleteWarning } from './http/schemas/list.ts';
import { Message } from './http/schemas/message.ts';
import { OutboxMessage, OutboxMessageSummary } from './http/schemas/outbox.ts';
import { Segment } from './http/schemas/segment.ts';
import { Suppression } from './http/schemas/suppression.ts';
import {
  EmailStarter,
  Template,
  TemplateDesign,
  TemplatePreview,
  TemplateSpec,
  TemplateSummary,
} from './http/schemas/template.ts';
import { User } from './http/schemas/user.ts';
import type { TypedApp } from './http/typed.ts';
import type { Db } from './store/db.ts';

export type AppDeps = {
  config: Config;
  services: Services;
  db: Db;
  /** A pino logger; omitted means no request logging (tests). */
  logger?: FastifyBaseLogger;
};

const SHARED_SCHEMAS = [
  ErrorBody,
  User,
  Brand,
  Onboarding,
  SetupCenter,
  Account,
  Membership,
  Invite,
  ApiKey,
  ApiKeyCreated,
  ContactChannel,
  Contact,
  Event,
  ContactList,
  ListDeleteWarning,
  BulkListContactsResponse,
  Segment,
  Import,
  DirectUpload,
  TemplateDesign,
  Template,
  TemplateSummary,
  EmailStarter,
  TemplateSpec,
  TemplatePreview,
  OutboxMessageSummary,
  OutboxMessage,
  Suppression,
  Message,
  Campaign,
  CampaignStatsView,
  Flow,
  FlowStats,
  FlowSpec,
];

/** Builds the HTTP application. Never listens: main.ts does, tests use `inject`. */
export async function buildApp(deps: AppDeps) {
  const { config, services, db } = deps;
  const app = Fastify({
    ...(deps.logger ? { loggerInstance: deps.logger } : { logger: false }),
    bodyLimit: config.bodyLimitBytes,
    trustProxy: config.trustProxy,
  }).withTypeProvider<TypeBoxTypeProvider>();

  for (const schema of SHARED_SCHEMAS) app.addSchema(schema);

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Mailwright API',
        version: '1.0.0',
        description:
          'Self-hostable marketing automation for email and SMS, compatible with the Nitrosend REST API v1. ' +
          'Authenticate `/v1/my/*` requests with `Authorization: Bearer <API key or session JWT>`.',
      },
      servers: [{ url: config.appUrl }],
      components: { securitySchemes: { BearerAuth: { type: 'http', scheme: 'bearer' } } },
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { deepLinking: true } });

  registerErrorHandling(app);
  registerValidation(app);
  // An empty body sent as JSON (some clients set the header on every POST) means "no body", not 400.
  const defaultJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    if (typeof body === 'string' && body.trim() === '') return done(null, undefined);
    return defaultJson(request, body as string, done);
  });

  // Every authenticated route documents the bearer requirement.
  app.addHook('onRoute', (route) => {
    const authed =
      route.url.startsWith('/v1/my') ||
      route.url === '/v1/logout' ||
      ['/v1/oauth/me', '/v1/oauth/subscribe'].includes(route.url);
    if (authed && route.schema) {
      route.schema.security = [{ BearerAuth: [] }];
    }
  });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/openapi.yaml', { schema: { hide: true } }, async (_request, reply) =>
    reply.type('application/yaml').send(app.swagger({ yaml: true })),
  );

  healthRoutes(app, db);
  publicAuthRoutes(app, services);
  planRoutes(app);
  oauthPublicRoutes(app, services);
  directUploadPutRoute(app, services);
  inboundWebhookRoutes(app, services);
  // Open pixel, click redirect, unsubscribe page and one-click POST: public, signed by token.
  trackingRoutes(app, services);

  // Browser-callable endpoints (website forms on other origins). CORS is open here; which origins may
  // use a key is the key's own allowed-origins check.
  await app.register(
    async (pub: TypedApp) => {
      await pub.register(cors, {
        origin: '*',
        methods: ['POST'],
        allowedHeaders: ['authorization', 'content-type'],
        exposedHeaders: ['retry-after'],
        maxAge: 86400,
        // A malformed preflight still gets a plain 204 rather than a text/plain 400.
        strictPreflight: false,
      });
      publicContactRoutes(pub, services);
    },
    { prefix: '/v1/public' },
  );

  await app.register(async (authed: TypedApp) => {
    registerAuthentication(authed, services);
    logoutRoute(authed, services);
    userRoutes(authed, services);
    accountRoutes(authed, services);
    teamRoutes(authed, services);
    apiKeyRoutes(authed, services);
    brandRoutes(authed, services);
    contactRoutes(authed, services);
    contactEnrichRoutes(authed, services);
    oauthRoutes(authed, services);
    eventRoutes(authed, services);
    listRoutes(authed, services);
    segmentRoutes(authed, services);
    importRoutes(authed, services);
    directUploadRoutes(authed, services);
    templateGenerateRoutes(authed, services);
    templateRoutes(authed, services);
    outboxRoutes(authed, services);
    suppressionRoutes(authed, services);
    messageRoutes(authed, services);
    campaignRoutes(authed, services);
    flowRoutes(authed, services);
  });

  return app;
}

export type App = Awaited<ReturnType<typeof buildApp>>;
