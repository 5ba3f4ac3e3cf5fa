import Type from 'typebox';
import type { CampaignActor } from '../../domain/campaigns/campaigns.ts';
import type { Services } from '../../domain/services.ts';
import { invalid } from '../../lib/errors.ts';
import { pageRequest, paginate } from '../pagination.ts';
import { type TenantPrincipal, tenant } from '../plugins/auth.ts';
import {
  Campaign,
  CampaignCreateBody,
  CampaignDuplicateBody,
  CampaignListQuery,
  CampaignSendBody,
  CampaignStatsView,
  CampaignUpdateBody,
} from '../schemas/campaign.ts';
import { errors, IdParams, ref } from '../schemas/common.ts';
import { SendTestBody, SendTestResult } from '../schemas/message.ts';
import type { TypedApp } from '../typed.ts';

const actorOf = (p: TenantPrincipal): CampaignActor => ({ brand: p.brand, account: p.account, via: p.kind });

/** Optional bodies: none at all means "no options". */
const optionalBody = {
  preValidation: (request: { body: unknown }, _reply: unknown, done: () => void) => {
    request.body ??= {};
    done();
  },
};

/** /v1/my/campaigns: broadcasts, their lifecycle and figures. */
export function campaignRoutes(app: TypedApp, services: Services): void {
  app.get(
    '/v1/my/campaigns',
    {
      schema: {
        summary: 'List campaigns (paginated)',
        description: 'Newest first; default page size 25.',
        tags: ['Campaigns'],
        operationId: 'listCampaigns',
        querystring: CampaignListQuery,
        response: { 200: Type.Array(ref(Campaign)), ...errors(401, 403, 422) },
      },
    },
    async (request, reply) => {
      const page = pageRequest(request.query, 25);
      const { items, total } = await services.campaigns.list(tenant(request).brand, page.limit, page.offset);
      return paginate(reply, page, items, total);
    },
  );

  app.post(
    '/v1/my/campaigns',
    {
      schema: {
        summary: 'Create a campaign',
        description:
          'Creates a draft from `name` and `channel` (email by default). Content and audience follow with ' +
          'PATCH `template_attributes` / `trigger_attributes`.',
        tags: ['Campaigns'],
        operationId: 'createCampaign',
        body: CampaignCreateBody,
        response: { 201: ref(Campaign), ...errors(400, 401, 403, 422) },
      },
    },
    async (request, reply) => {
      const { campaign: wrapped, ...flat } = request.body;
      const input = wrapped ?? flat;
      if (input.name === undefined) throw invalid({ name: ["can't be blank"] });
      const campaign = await services.campaigns.create(tenant(request).brand, {
        name: input.name,
        channel: input.channel,
      });
      return reply.status(201).send(campaign);
    },
  );

  app.get(
    '/v1/my/campaigns/:id',
    {
      schema: {
        summary: 'Get a campaign',
        tags: ['Campaigns'],
        operationId: 'getCampaign',
        params: IdParams,
        response: { 200: ref(Campaign), ...errors(401, 403, 404, 422) },
      },
    },
    async (request) => services.campaigns.get(tenant(request).brand, request.params.id),
  );

  app.patch(
    '/v1/my/campaigns/:id',
    {
      schema: {
        summary: 'Update a campaign',
        description:
          'Changes name, channel, data, audience (`trigger_attributes`), content (`template_attributes`), ' +
          'schedule (`scheduled_at`: a future time moves a draft to scheduled after preflight; null moves it ' +
          'back) and status (pause, resume/live/active, cancel, archive, restore). A campaign that is not ' +
          '`editable` accepts only its name and status transitions: anything else is 422 campaign_locked.',
        tags: ['Campaigns'],
        operationId: 'updateCampaign',
        params: IdParams,
        body: CampaignUpdateBody,
        response: { 200: ref(Campaign), ...errors(400, 401, 403, 404, 422) },
      },
    },
    async (request) => {
      const { campaign: wrapped, ...flat } = request.body ?? {};
      return services.campaigns.update(actorOf(tenant(request)), request.params.id, wrapped ?? flat);
    },
  );

  app.delete(
    '/v1/my/campaigns/:id',
    {
      schema: {
        summary: 'Delete a campaign',
        description:
          'Only a campaign that never sent (draft or scheduled, no messages); others → 422 ' +
          'campaign_not_deletable (cancel or archive them). Returns the deleted campaign.',
        tags: ['Campaigns'],
        operationId: 'deleteCampaign',
        params: IdParams,
        response: { 200: ref(Campaign), ...errors(401, 403, 404, 422) },
      },
    },
    async (request) => services.campaigns.remove(tenant(request).brand, request.params.id),
  );

  app.post(
    '/v1/my/campaigns/:id/duplicate',
    {
      schema: {
        summary: 'Duplicate a campaign',
        description:
          'A new draft copying the audience and the content; approval pending_review, no schedule, ' +
          'trigger.event manual, named "Copy of …". Works on any status. `cancel_source: true` cancels ' +
          'the source in the same transaction (422 when it is completed or archived).',
        tags: ['Campaigns'],
        operationId: 'duplicateCampaign',
        params: IdParams,
        body: CampaignDuplicateBody,
        response: { 201: ref(Campaign), ...errors(400, 401, 403, 404, 422) },
      },
      ...optionalBody,
    },
    async (request, reply) => {
      const copy = await services.campaigns.duplicate(
        tenant(request).brand,
        request.params.id,
        request.body.cancel_source === true,
      );
      return reply.status(201).send(copy);
    },
  );

  app.post(
    '/v1/my/campaigns/:id/send',
    {
      schema: {
        summary: 'Send a campaign',
        description:
          'Applies the optional attributes, runs preflight (audience chosen, content complete, postal ' +
          'address and company name set, sender verified or sandbox allowance left; all failures at once as ' +
          '422 preflight_failed) and goes live. 422 campaign_locked when the campaign is not editable; 403 ' +
          'for API keys while the account is in safe mode.',
        tags: ['Campaigns'],
        operationId: 'sendCampaign',
        params: IdParams,
        body: CampaignSendBody,
        response: { 200: ref(Campaign), ...errors(400, 401, 403, 404, 422) },
      },
      ...optionalBody,
    },
    async (request) => services.campaigns.send(actorOf(tenant(request)), request.params.id, request.body),
  );

  app.post(
    '/v1/my/campaigns/:id/send_test',
    {
      schema: {
        summary: 'Send a test of a campaign',
        description:
          'Sends the campaign email to `email`, to a contact (`contact_id`), or — with neither — to the ' +
          'account owner, subject prefixed [Test]. The campaign status and figures do not change.',
        tags: ['Campaigns'],
        operationId: 'sendCampaignTest',
        params: IdParams,
        body: SendTestBody,
        response: { 200: SendTestResult, ...errors(400, 401, 403, 404, 422) },
      },
      ...optionalBody,
    },
    async (request) => {
      const { brand } = tenant(request);
      const templateId = await services.campaigns.templateIdFor(brand, request.params.id);
      return services.messages.sendTemplateTest(brand, templateId, request.body);
    },
  );

  app.get(
    '/v1/my/campaigns/:id/stats',
    {
      schema: {
        summary: 'Campaign figures',
        description:
          'Recipients, sent, failed, delivered, opens and clicks (unique and total), bounces, complaints, ' +
          'unsubscribes — from the campaign messages — and clicks per link.',
        tags: ['Campaigns'],
        operationId: 'getCampaignStats',
        params: IdParams,
        response: { 200: ref(CampaignStatsView), ...errors(401, 403, 404, 422) },
      },
    },
    async (request) => services.campaigns.stats(tenant(request).brand, request.params.id),
  );
}
