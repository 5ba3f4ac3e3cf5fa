import Type from 'typebox';
import type { FlowInput } from '../../domain/flows/flows.ts';
import type { Services } from '../../domain/services.ts';
import { pageRequest, paginate } from '../pagination.ts';
import { type TenantPrincipal, tenant } from '../plugins/auth.ts';
import { errors, IdParams, ref } from '../schemas/common.ts';
import { Flow, FlowCreateBody, FlowListQuery, FlowSpec, FlowStats, FlowUpdateBody } from '../schemas/flow.ts';
import type { TypedApp } from '../typed.ts';

const scopeOf = (p: TenantPrincipal) => ({ account_id: p.account.id, brand_id: p.brand.id });

/** The body's fields, sent flat or wrapped in `flow`. */
function inputOf(body: (FlowInput & { flow?: FlowInput | undefined }) | undefined): FlowInput {
  const b = body ?? {};
  return b.flow ?? b;
}

/** /v1/my/flows: event-driven automations. */
export function flowRoutes(app: TypedApp, services: Services): void {
  app.get(
    '/v1/my/flows',
    {
      schema: {
        summary: 'List automation flows (paginated)',
        description: 'Standalone flows only (campaign-backed flows are internal), newest first; default 25.',
        tags: ['Flows'],
        operationId: 'listFlows',
        querystring: FlowListQuery,
        response: { 200: Type.Array(ref(Flow)), ...errors(401, 403, 422) },
      },
    },
    async (request, reply) => {
      const page = pageRequest(request.query, 25);
      const { items, total } = await services.flows.list(scopeOf(tenant(request)), page.limit, page.offset);
      return paginate(reply, page, items, total);
    },
  );

  app.get(
    '/v1/my/flows/spec',
    {
      schema: {
        summary: 'Get the flow step type schema',
        description:
          'The segment filters a split may use, the trigger events and every step type with its params.',
        tags: ['Flows'],
        operationId: 'getFlowSpec',
        response: { 200: ref(FlowSpec), ...errors(401, 403) },
      },
    },
    async () => services.flows.spec(),
  );

  app.post(
    '/v1/my/flows',
    {
      schema: {
        summary: 'Create a flow',
        description:
          'Steps get server-assigned integer ids; each email step gets a template (`templates`, ' +
          'action_id = step id). An active flow needs a trigger event and at least one step.',
        tags: ['Flows'],
        operationId: 'createFlow',
        body: FlowCreateBody,
        response: { 201: ref(Flow), ...errors(400, 401, 403, 422) },
      },
    },
    async (request, reply) => {
      const flow = await services.flows.create(scopeOf(tenant(request)), inputOf(request.body));
      return reply.status(201).send(flow);
    },
  );

  app.get(
    '/v1/my/flows/:id',
    {
      schema: {
        summary: 'Get a flow',
        tags: ['Flows'],
        operationId: 'getFlow',
        params: IdParams,
        response: { 200: ref(Flow), ...errors(401, 403, 404, 422) },
      },
    },
    async (request) => services.flows.get(scopeOf(tenant(request)), request.params.id),
  );

  app.patch(
    '/v1/my/flows/:id',
    {
      schema: {
        summary: 'Update a flow',
        description:
          'Send `updated_at` for optimistic concurrency: when it differs from the stored value the ' +
          'update is refused with 409 `flow_conflict`. Steps keep the ids they are sent with; changed ' +
          'steps increment `version` (runs in progress keep the version they started on).',
        tags: ['Flows'],
        operationId: 'updateFlow',
        params: IdParams,
        body: FlowUpdateBody,
        response: { 200: ref(Flow), ...errors(400, 401, 403, 404, 409, 422) },
      },
    },
    async (request) =>
      services.flows.update(scopeOf(tenant(request)), request.params.id, inputOf(request.body)),
  );

  app.delete(
    '/v1/my/flows/:id',
    {
      schema: {
        summary: 'Delete a flow',
        description: 'Deletes the flow with its runs and step templates and returns it as it was.',
        tags: ['Flows'],
        operationId: 'deleteFlow',
        params: IdParams,
        response: { 200: ref(Flow), ...errors(401, 403, 404, 422) },
      },
    },
    async (request) => services.flows.remove(scopeOf(tenant(request)), request.params.id),
  );

  app.get(
    '/v1/my/flows/:id/stats',
    {
      schema: {
        summary: 'Get flow stats',
        description:
          'Messages sent, runs started and, per step of the current graph, runs that entered, completed ' +
          'and are waiting at it.',
        tags: ['Flows'],
        operationId: 'getFlowStats',
        params: IdParams,
        response: { 200: ref(FlowStats), ...errors(401, 403, 404, 422) },
      },
    },
    async (request) => services.flows.stats(scopeOf(tenant(request)), request.params.id),
  );
}
