/**
 * The Identity service: users, password login issuing ES256 JWTs, the JWKS with key
 * rotation, and `identity.*` events through the outbox.
 */

export type { IdentityConfig } from './config.ts';
export { DEFAULT_TOKEN_AUDIENCES, readIdentityConfig } from './config.ts';
export type { IdentityServiceOptions, RunningIdentityService } from './service.ts';
export { startIdentityService } from './service.ts';
