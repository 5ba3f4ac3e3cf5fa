import type { Services } from '../../domain/services.ts';
import { tenant } from '../plugins/auth.ts';
import { errors, IdParams, ref } from '../schemas/common.ts';
import { Contact } from '../schemas/contact.ts';
import type { TypedApp } from '../typed.ts';

/** POST /v1/my/contacts/{id}/enrich: email verification and Apollo enrichment of one contact. */
export function contactEnrichRoutes(app: TypedApp, services: Services): void {
  app.post(
    '/v1/my/contacts/:id/enrich',
    {
      schema: {
        summary: 'Re-enrich a contact via email verification + Apollo',
        description:
          'Verifies the contact’s email — syntax, MX lookup (A/AAAA fallback), disposable-domain and ' +
          'role-address checks — and sets `verification_status`: `verified` when it accepts mail, ' +
          '`suppressed` when undeliverable or disposable, `unverified` when DNS gave no answer (an ' +
          'earlier definite result of the same address is kept). Role addresses (support@, info@ …) ' +
          'that accept mail are `verified` and flagged `role: true`. Details are stored on the email ' +
          'channel as `data.verification {email, result, reason, mx, disposable, role, checked_at}`. ' +
          'When the server has an Apollo API key, Apollo’s match is stored under `data.apollo`, empty ' +
          'names are filled and `enrichment_status` becomes `enriched`. The work runs within the ' +
          'request (a few seconds at most) and the updated Contact is returned. Consumes 2 validation ' +
          'allowance units; 400 `no_email_channel` without an email, 400 `allowance_exhausted` when ' +
          'the month’s allowance is spent.',
        tags: ['Contacts'],
        operationId: 'enrichContact',
        params: IdParams,
        response: { 200: ref(Contact), ...errors(400, 401, 403, 404) },
      },
    },
    async (request) => {
      const p = tenant(request);
      return services.enrichment.enrich({ account: p.account, brandId: p.brand.id }, request.params.id);
    },
  );
}
