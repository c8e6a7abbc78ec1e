/**
 * Authentication and authorization for the BFFs: bearer (and, on web, cookie) JWTs verified
 * against Identity's JWKS, the viewer put on the context, `@auth` / `@hasRole` enforced, every
 * root field made to declare `@public` or one of them, and the web app's cookie session.
 *
 * Every export here is public API of `@bff/auth`.
 */

export { applyAuthDirectives, assertRootFieldsDeclareAccess, authDirectiveTypeDefs } from './directives.ts';
export type { KeySetSource } from './key-set.ts';
export type { AuthPluginOptions } from './plugin.ts';
export { createAuthPlugin, refuseUnservableOperation } from './plugin.ts';
export { endSessionCookie, readSessionToken, SESSION_COOKIE, startSessionCookie } from './session-cookie.ts';
export type { JwtVerifier, JwtVerifierOptions, TokenRejection } from './verifier.ts';
export { createGatewayClaimsReader, createJwtVerifier, TokenRejectedError } from './verifier.ts';
