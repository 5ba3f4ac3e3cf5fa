import type { SessionService } from '../auth/sessions.ts';
import type { Deps } from '../deps.ts';

/** Google and GitHub sign-in. */
export function createOAuthService(_deps: Deps, _sessions: SessionService) {
  return {};
}
