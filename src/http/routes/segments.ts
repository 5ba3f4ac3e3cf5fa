import Type from 'typebox';
import type { SegmentScope } from '../../domain/segments/segments.ts';
import type { Services } from '../../domain/services.ts';
import { pageRequest, paginate } from '../pagination.ts';
import { type TenantPrincipal, tenant } from '../plugins/auth.ts';
import { AUTHED_ERRORS, errors, IdParams, PageQuery, ref } from '../schemas/common.ts';
import {
  Segment,
  SegmentCount,
  SegmentCountBody,
  SegmentCreateBody,
  SegmentUpdateBody,
} from '../schemas/segment.ts';
import type { TypedApp } from '../typed.ts';

const tags = ['Segments'];

const scopeOf = (p: TenantPrincipal): SegmentScope => ({ account_id: p.account.id, brand_id: p.brand.id });

/** /v1/my/segments: saved contact filters of the current brand, and unsaved counts. */
export function segmentRoutes(app: TypedApp, services: Services): void {
  app.get(
    '/v1/my/segments',
    {
      schema: {
        summary: 'List all segments',
        tags,
        operationId: 'listSegments',
        querystring: PageQuery,
        response: { 200: Type.Array(ref(Segment)), ...errors(401, 403, 404, 422) },
      },
    },
    async (request, reply) => {
      const page = pageRequest(request.query, 30);
      const { items, total } = await services.segments.list(
        scopeOf(tenant(request)),
        page.limit,
        page.offset,
      );
      return paginate(reply, page, items, total);
    },
  );

  app.post(
    '/v1/my/segments',
    {
      schema: {
        summary: 'Create a segment',
        description: 'Filters are validated when saved: 422 `invalid_filter` names each bad condition.',
        tags,
        operationId: 'createSegment',
        body: SegmentCreateBody,
        response: { 201: ref(Segment), ...errors(...AUTHED_ERRORS) },
      },
    },
    async (request, reply) =>
      reply.status(201).send(await services.segments.create(scopeOf(tenant(request)), request.body)),
  );

  app.post(
    '/v1/my/segments/count',
    {
      schema: {
        summary: 'Count contacts matching filters',
        description:
          'Preview how many contacts of the brand match a set of segment filters without creating or saving a segment.',
        tags,
        operationId: 'countSegment',
        body: SegmentCountBody,
        response: { 200: SegmentCount, ...errors(...AUTHED_ERRORS) },
      },
    },
    async (request) => services.segments.count(scopeOf(tenant(request)), request.body.filters),
  );

  app.get(
    '/v1/my/segments/:id',
    {
      schema: {
        summary: 'Get a segment',
        tags,
        operationId: 'getSegment',
        params: IdParams,
        response: { 200: ref(Segment), ...errors(401, 403, 404) },
      },
    },
    async (request) => services.segments.get(scopeOf(tenant(request)), request.params.id),
  );

  app.patch(
    '/v1/my/segments/:id',
    {
      schema: {
        summary: 'Update a segment',
        description:
          'New filters mark the lists populated from this segment stale; they refresh in the background.',
        tags,
        operationId: 'updateSegment',
        params: IdParams,
        body: SegmentUpdateBody,
        response: { 200: ref(Segment), ...errors(...AUTHED_ERRORS) },
      },
    },
    async (request) => services.segments.update(scopeOf(tenant(request)), request.params.id, request.body),
  );

  app.delete(
    '/v1/my/segments/:id',
    {
      schema: {
        summary: 'Delete a segment',
        description:
          'Returns the deleted segment. Lists populated from it keep their members as static lists.',
        tags,
        operationId: 'deleteSegment',
        params: IdParams,
        response: { 200: ref(Segment), ...errors(401, 403, 404) },
      },
    },
    async (request) => services.segments.remove(scopeOf(tenant(request)), request.params.id),
  );
}
