import type { Services } from '../../domain/services.ts';
import type { TypedApp } from '../typed.ts';

/** Public OAuth routes (launch, provider callback). */
export function oauthPublicRoutes(_app: TypedApp, _services: Services): void {}

/** Authenticated OAuth popup routes (me, subscribe). */
export function oauthRoutes(_app: TypedApp, _services: Services): void {}
