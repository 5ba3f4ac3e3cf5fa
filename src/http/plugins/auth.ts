import type { FastifyInstance, FastifyRequest } from 'fastify';
import { type Permission, requirePermission } from '../../domain/accounts/permissions.ts';
import type { Principal } from '../../domain/auth/principal.ts';
import type { Services } from '../../domain/services.ts';
import { AppError } from '../../lib/errors.ts';
import type { Account, Brand } from '../../store/schema.ts';

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal;
  }
  interface FastifyContextConfig {
    /** Who may call the route; default 'content' (any member). */
    permission?: Permission;
    /** The route works for a signed-in user with no account (profile, invite acceptance). */
    allowNoAccount?: boolean;
    /** Only session JWTs may call the route (logout). */
    jwtOnly?: boolean;
  }
}

/** A principal whose account and brand are known. */
export type TenantPrincipal = Principal & { account: Account; brand: Brand };

/** The request's principal with its tenant; routes that allow no account never call this. */
export function tenant(request: FastifyRequest): TenantPrincipal {
  const p = request.principal;
  if (!p.account || !p.brand)
    throw new AppError('forbidden', 'You are not a member of any account', { errorCode: 'no_account' });
  return p as TenantPrincipal;
}

/**
 * Authenticates every request of the scope it is registered in (before the body is read, so a
 * missing token is a 401 whatever the body), then checks the route's permission.
 */
export function registerAuthentication(app: FastifyInstance, services: Services): void {
  app.decorateRequest('principal', null as unknown as Principal);
  app.addHook('onRequest', async (request) => {
    const header = (name: string) => {
      const value = request.headers[name];
      return Array.isArray(value) ? value[0] : value;
    };
    const principal = await services.auth.authenticate(header('authorization'), {
      accountId: header('x-account-id'),
      brandSid: header('x-brand-sid'),
    });
    request.principal = principal;
    const config = request.routeOptions.config;
    if (config.jwtOnly && principal.kind !== 'jwt') {
      throw new AppError('bad_request', 'This endpoint needs a session token from POST /v1/login', {
        errorCode: 'jwt_required',
      });
    }
    if (!principal.account) {
      if (config.allowNoAccount) return;
      throw new AppError('forbidden', 'You are not a member of any account', { errorCode: 'no_account' });
    }
    requirePermission(principal.role, config.permission ?? 'content');
  });
}
