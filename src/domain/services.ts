import { createAccountService } from './accounts/accounts.ts';
import { createTeamService } from './accounts/team.ts';
import { createApiKeyService } from './auth/api-keys.ts';
import { createJwtCodec } from './auth/jwt.ts';
import { createAuthenticator } from './auth/principal.ts';
import { createSessionService } from './auth/sessions.ts';
import { createBrandService } from './brands/brands.ts';
import { createScrapeService } from './brands/scrape.ts';
import { createCampaignService } from './campaigns/campaigns.ts';
import { createContactService } from './contacts/contacts.ts';
import { createEnrichmentService } from './contacts/enrich.ts';
import type { Deps } from './deps.ts';
import { createEngagementService } from './engagement/engagement.ts';
import { createEventService } from './events/events.ts';
import { createInboundWebhookService } from './feedback/inbound.ts';
import { createFlowService } from './flows/flows.ts';
import { createImportService } from './imports/imports.ts';
import { createListService } from './lists/lists.ts';
import { createMessageService } from './messages/messages.ts';
import { createOAuthService } from './oauth/oauth.ts';
import { createOutboxService } from './outbox/outbox.ts';
import { createRateLimiter } from './rate-limit.ts';
import { createSegmentService } from './segments/segments.ts';
import { createSuppressionService } from './suppressions/suppressions.ts';
import { createTemplateGenerationService } from './templates/generate.ts';
import { createTemplateService } from './templates/templates.ts';
import { createUnsubscribeService } from './unsubscribe/unsubscribe.ts';
import { createUploadService } from './uploads/uploads.ts';
import { createUserService } from './users/users.ts';

/** Every domain service, built once from the same dependencies. Transports call only these. */
export function createServices(deps: Deps) {
  const jwt = createJwtCodec(deps.config.secretKey, () => deps.clock.now());
  const limiter = createRateLimiter(deps);
  const brands = createBrandService(deps);
  const accounts = createAccountService(deps, brands);
  const sessions = createSessionService(deps, jwt, limiter);
  return {
    deps,
    limiter,
    auth: createAuthenticator(deps, jwt),
    sessions,
    users: createUserService(deps),
    apiKeys: createApiKeyService(deps),
    brands,
    scrapes: createScrapeService(deps, brands),
    contacts: createContactService(deps),
    enrichment: createEnrichmentService(deps),
    accounts,
    team: createTeamService(deps, accounts),
    oauth: createOAuthService(deps, sessions),
    events: createEventService(deps),
    lists: createListService(deps),
    segments: createSegmentService(deps),
    imports: createImportService(deps),
    uploads: createUploadService(deps),
    templates: createTemplateService(deps),
    templateGeneration: createTemplateGenerationService(deps),
    outbox: createOutboxService(deps),
    suppressions: createSuppressionService(deps),
    inboundWebhooks: createInboundWebhookService(deps),
    engagement: createEngagementService(deps),
    unsubscribes: createUnsubscribeService(deps),
    messages: createMessageService(deps),
    campaigns: createCampaignService(deps),
    flows: createFlowService(deps),
  };
}

export type Services = ReturnType<typeof createServices>;
