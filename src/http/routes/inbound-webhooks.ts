import type { InboundHeaders } from '../../delivery/inbound/types.ts';
import type { Services } from '../../domain/services.ts';
import { errors } from '../schemas/common.ts';
import { InboundWebhookParams, InboundWebhookReceipt } from '../schemas/inbound-webhook.ts';
import type { TypedApp } from '../typed.ts';

/** Feedback batches are small (SendGrid posts up to a few hundred events); 1 MB is ample. */
const BODY_LIMIT = 1024 * 1024;

/**
 * POST /webhooks/inbound/{provider}: bounces, complaints and deliveries posted by email providers.
 * Public — each provider's own signature (or Postmark's Basic credentials) authenticates the request,
 * and signatures cover the exact bytes sent, so this scope keeps every body as a raw Buffer
 * (whatever its content type: SNS posts JSON as text/plain).
 */
export function inboundWebhookRoutes(app: TypedApp, services: Services): void {
  app.register(async (scope: TypedApp) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: BODY_LIMIT }, (_request, body, done) =>
      done(null, body),
    );
    scope.post(
      '/webhooks/inbound/:provider',
      {
        bodyLimit: BODY_LIMIT,
        schema: {
          summary: 'Receive delivery feedback from an email provider',
          description:
            "Point the provider's webhook here: `ses` (an SNS topic subscription over HTTPS, raw message " +
            'delivery off), `mailgun`, `postmark` (put the configured Basic credentials in the URL), ' +
            '`sendgrid` (Signed Event Webhook) or `resend`. Hard bounces and complaints suppress the address ' +
            "in the message's brand at once; soft bounces after SOFT_BOUNCE_LIMIT messages within " +
            'SOFT_BOUNCE_WINDOW_HOURS. Repeated or out-of-order notifications are harmless. 401 when the ' +
            "signature does not verify; 503 while the provider's secret is not configured.",
          tags: ['Webhooks'],
          operationId: 'receiveInboundWebhook',
          params: InboundWebhookParams,
          response: { 200: InboundWebhookReceipt, ...errors(400, 401, 403, 404, 413, 503) },
        },
      },
      async (request) => {
        const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        return services.inboundWebhooks.receive(
          request.params.provider,
          raw,
          request.headers as InboundHeaders,
        );
      },
    );
  });
}
