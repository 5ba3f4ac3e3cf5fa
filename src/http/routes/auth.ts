import type { Services } from '../../domain/services.ts';
import { errors, NoContent, ref } from '../schemas/common.ts';
import { LoginBody, SignupBody, User } from '../schemas/user.ts';
import type { TypedApp } from '../typed.ts';

/** POST /v1/signup, POST /v1/login: the JWT travels in the `Authorization` response header. */
export function publicAuthRoutes(app: TypedApp, services: Services): void {
  app.post(
    '/v1/signup',
    {
      schema: {
        summary: 'Create a new account',
        description:
          'Creates a user with their own account, default brand and owner membership — or, with `invite_token`, joins the inviting account. The session JWT is returned in the `Authorization` response header.',
        tags: ['Auth'],
        operationId: 'signup',
        body: SignupBody,
        response: { 201: ref(User), ...errors(400, 403, 413, 422) },
      },
    },
    async (request, reply) => {
      const { user, token } = await services.sessions.signup(request.body.user);
      reply.header('Authorization', `Bearer ${token}`);
      return reply.status(201).send(user);
    },
  );

  app.post(
    '/v1/login',
    {
      schema: {
        summary: 'Sign in and receive a JWT',
        description:
          'The session JWT (valid 15 days) is returned in the `Authorization` response header. Failed attempts are throttled per email and per client address (429 with `Retry-After`).',
        tags: ['Auth'],
        operationId: 'login',
        body: LoginBody,
        response: { 200: ref(User), ...errors(400, 401, 413, 422, 429) },
      },
    },
    async (request, reply) => {
      const { user, token } = await services.sessions.login(request.body.user, request.ip);
      reply.header('Authorization', `Bearer ${token}`);
      return user;
    },
  );
}

/** DELETE /v1/logout: revokes the session JWT it is called with. */
export function logoutRoute(app: TypedApp, services: Services): void {
  app.delete(
    '/v1/logout',
    {
      config: { jwtOnly: true, allowNoAccount: true },
      schema: {
        summary: 'Sign out and revoke JWT',
        tags: ['Auth'],
        operationId: 'logout',
        response: { 204: NoContent, ...errors(400, 401) },
      },
    },
    async (request, reply) => {
      const { jti, tokenExpiresAt } = request.principal;
      await services.sessions.logout(jti!, tokenExpiresAt!);
      return reply.status(204).send();
    },
  );
}
