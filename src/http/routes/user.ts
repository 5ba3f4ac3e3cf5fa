import type { Services } from '../../domain/services.ts';
import { AUTHED_ERRORS, errors, ref } from '../schemas/common.ts';
import { User, UserPatchBody } from '../schemas/user.ts';
import type { TypedApp } from '../typed.ts';

/** /v1/my/user: the signed-in user's profile (for an API key, the user who created it). */
export function userRoutes(app: TypedApp, services: Services): void {
  app.get(
    '/v1/my/user',
    {
      config: { allowNoAccount: true },
      schema: {
        summary: 'Get current user profile',
        tags: ['User'],
        operationId: 'getUser',
        response: { 200: ref(User), ...errors(401) },
      },
    },
    async (request) => services.users.get(request.principal.user.id),
  );

  app.patch(
    '/v1/my/user',
    {
      config: { allowNoAccount: true },
      schema: {
        summary: 'Update current user profile',
        tags: ['User'],
        operationId: 'updateUser',
        body: UserPatchBody,
        response: { 200: ref(User), ...errors(...AUTHED_ERRORS) },
      },
    },
    async (request) => services.users.update(request.principal.user.id, request.body),
  );
}
