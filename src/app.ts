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
import { healthRoutes } from './http/routes/health.ts';
import { oauthPublicRoutes, oauthRoutes } from './http/routes/oauth.ts';
import { teamRoutes } from './http/routes/team.ts';
import { userRoutes } from './http/routes/user.ts';
import { Account, Invite, Membership } from './http/schemas/account.ts';
import { ApiKey, ApiKeyCreated } from './http/schemas/api-key.ts';
import { Brand, Onboarding, SetupCenter } from './http/schemas/brand.ts';
import { ErrorBody } from './http/schemas/common.ts';
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

  await app.register(async (authed: TypedApp) => {
    registerAuthentication(authed, services);
    logoutRoute(authed, services);
    userRoutes(authed, services);
    accountRoutes(authed, services);
    teamRoutes(authed, services);
    apiKeyRoutes(authed, services);
    brandRoutes(authed, services);
    oauthRoutes(authed, services);
  });

  return app;
}

export type App = Awaited<ReturnType<typeof buildApp>>;
