import type { FastifyRequest } from 'fastify';
import type { Services } from '../../domain/services.ts';
import type { Brand } from '../../store/schema.ts';
import { errors } from '../schemas/common.ts';
import { PublicContactAccepted, PublicContactBody } from '../schemas/contact.ts';
import type { TypedApp } from '../typed.ts';

const header = (request: FastifyRequest, name: string) => {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
};

/**
 * POST /v1/public/contacts: website-form signups with a brand's public key. Register inside the
 * `/v1/public` prefix scope that carries CORS; the path here is relative to it.
 */
export function publicContactRoutes(app: TypedApp, services: Services): void {
  // The brand the key resolved to, per request; set before the body is read.
  const brands = new WeakMap<FastifyRequest, Brand>();

  app.post(
    '/contacts',
    {
      // Throttle and authenticate before the body is parsed, so a request without a valid key is a
      // 401 (or 429) whatever its body, as on the authenticated API.
      onRequest: async (request) => {
        const brand = await services.contacts.authorizePublic({
          authorization: header(request, 'authorization'),
          origin: header(request, 'origin'),
          ip: request.ip,
        });
        brands.set(request, brand);
      },
      schema: {
        tags: ['Public'],
        summary: 'Add or attach a public signup contact',
        description:
          'For landing pages and embeds: authenticate with the brand’s public key ' +
          '(`Authorization: Bearer wpkey_live_…`); secret keys are refused (401). When the brand lists ' +
          'allowed origins, the request’s `Origin` must be one of them (403). Always 201 `{ok:true}` for ' +
          'new and existing contacts alike. New contacts are subscribed by email; existing ones are opted in ' +
          'by email and gain only what they lack. The contact joins `list_id` (a list of the key’s brand, ' +
          'else 404). A phone is stored but not opted in to SMS. Reserved `data` keys (tags, integration ' +
          'namespaces) are dropped; a filled `company` honeypot is accepted and discarded. Rate-limited ' +
          'per client address and per key (429 with Retry-After).',
        operationId: 'createPublicContact',
        security: [{ BearerAuth: [] }],
        body: PublicContactBody,
        response: { 201: PublicContactAccepted, ...errors(400, 401, 403, 404, 413, 422, 429) },
      },
    },
    async (request, reply) => {
      await services.contacts.publicSignup(brands.get(request)!, request.body);
      return reply.status(201).send({ ok: true as const });
    },
  );
}
