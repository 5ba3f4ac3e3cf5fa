import Type from 'typebox';
import type { Services } from '../../domain/services.ts';
import { tenant } from '../plugins/auth.ts';
import { Invite, InviteBody, Membership, RoleBody, TeamView } from '../schemas/account.ts';
import { AUTHED_ERRORS, errors, IdParams, ref } from '../schemas/common.ts';
import type { TypedApp } from '../typed.ts';

/** /v1/my/account/team, memberships and invites. */
export function teamRoutes(app: TypedApp, services: Services): void {
  app.get(
    '/v1/my/account/team',
    {
      schema: {
        summary: 'Get team metadata for the current account',
        tags: ['Account'],
        operationId: 'getTeam',
        response: { 200: TeamView, ...errors(401, 403, 404) },
      },
    },
    async (request) => services.team.team(tenant(request)),
  );

  app.get(
    '/v1/my/account/memberships',
    {
      schema: {
        summary: 'List account memberships',
        tags: ['Account'],
        operationId: 'listMemberships',
        response: { 200: Type.Array(ref(Membership)), ...errors(401, 403, 404) },
      },
    },
    async (request) => services.team.memberships(tenant(request).account.id),
  );

  app.patch(
    '/v1/my/account/memberships/:id',
    {
      config: { permission: 'manage' },
      schema: {
        summary: 'Update a membership role',
        description:
          "Admins and the owner may change roles to member or admin; the owner's own role never changes.",
        tags: ['Account'],
        operationId: 'updateMembership',
        params: IdParams,
        body: RoleBody,
        response: { 200: ref(Membership), ...errors(...AUTHED_ERRORS) },
      },
    },
    async (request) =>
      services.team.updateRole(tenant(request).account.id, request.params.id, request.body.role),
  );

  app.delete(
    '/v1/my/account/memberships/:id',
    {
      config: { permission: 'manage' },
      schema: {
        summary: 'Remove a membership',
        description: 'The owner can never be removed.',
        tags: ['Account'],
        operationId: 'deleteMembership',
        params: IdParams,
        response: { 200: ref(Membership), ...errors(401, 403, 404, 422) },
      },
    },
    async (request) => services.team.removeMember(tenant(request).account.id, request.params.id),
  );

  app.get(
    '/v1/my/account/invites',
    {
      schema: {
        summary: 'List account invites',
        tags: ['Account'],
        operationId: 'listInvites',
        response: { 200: Type.Array(ref(Invite)), ...errors(401, 403, 404) },
      },
    },
    async (request) => services.team.invites(tenant(request).account.id),
  );

  app.post(
    '/v1/my/account/invites',
    {
      config: { permission: 'manage' },
      schema: {
        summary: 'Create an account invite',
        description:
          'Within the plan’s seat limit (members plus pending invites). Invites expire after 7 days.',
        tags: ['Account'],
        operationId: 'createInvite',
        body: InviteBody,
        response: { 201: ref(Invite), ...errors(...AUTHED_ERRORS) },
      },
    },
    async (request, reply) => {
      const p = tenant(request);
      return reply
        .status(201)
        .send(await services.team.invite(p.account.id, p.user.id, p.role, request.body));
    },
  );

  app.delete(
    '/v1/my/account/invites/:id',
    {
      config: { permission: 'manage' },
      schema: {
        summary: 'Revoke an invite',
        tags: ['Account'],
        operationId: 'revokeInvite',
        params: IdParams,
        response: { 200: ref(Invite), ...errors(401, 403, 404, 422) },
      },
    },
    async (request) => services.team.revoke(tenant(request).account.id, request.params.id),
  );

  app.post(
    '/v1/my/account/invites/:id/accept',
    {
      config: { allowNoAccount: true, jwtOnly: true },
      schema: {
        summary: 'Accept an invite token',
        description: 'The signed-in user joins the inviting account. `id` is the invite token.',
        tags: ['Account'],
        operationId: 'acceptInvite',
        params: Type.Object({
          id: Type.String({ minLength: 1, maxLength: 128, description: 'Invite token' }),
        }),
        response: { 200: ref(Invite), ...errors(400, 401, 404, 422) },
      },
    },
    async (request) => services.team.accept(request.principal.user.id, request.params.id),
  );
}
