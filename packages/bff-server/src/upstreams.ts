import { createGatewayClaimsReader, createJwtVerifier, type JwtVerifier } from '@bff/auth';
import type { Upstreams } from '@bff/loaders';
import { UpstreamGuard } from '@bff/resilience';
import {
  createBillingClient,
  createIdentityClient,
  createJwksClient,
  createProductClient,
  type UpstreamCall,
} from '@bff/upstream-clients';
import type { BffServerOptions } from './options.ts';

export type UpstreamGuards = Record<'identity' | 'billing' | 'product', UpstreamGuard>;

/** The clients of the three services, each behind the process's one guard for that service. */
export function createUpstreams(options: BffServerOptions): { upstreams: Upstreams; guards: UpstreamGuards } {
  const timeoutMs = options.upstreamTimeoutMs ?? 2_000;
  const report = (call: UpstreamCall) => options.onUpstreamCall?.(call);
  // One guard per upstream for the whole process: it holds that service's health (breaker,
  // retry budget), which is about the service, not about any user.
  const guardOptions = options.resilience ?? {};
  const guards = {
    identity: new UpstreamGuard({ service: 'identity', callTimeoutMs: timeoutMs, ...guardOptions }),
    billing: new UpstreamGuard({ service: 'billing', callTimeoutMs: timeoutMs, ...guardOptions }),
    product: new UpstreamGuard({ service: 'product', callTimeoutMs: timeoutMs, ...guardOptions }),
  };
  const upstreams: Upstreams = {
    identity: createIdentityClient({
      baseUrl: options.identityUrl,
      timeoutMs,
      onCall: report,
      guard: guards.identity,
    }),
    billing: createBillingClient({
      baseUrl: options.billingUrl,
      timeoutMs,
      onCall: report,
      guard: guards.billing,
    }),
    product: createProductClient({
      address: options.productAddr,
      timeoutMs,
      onCall: report,
      guard: guards.product,
    }),
  };
  return { upstreams, guards };
}

/**
 * Verifies access tokens against Identity's JWKS, fetched through the identity guard (deadline,
 * retries, breaker) and reported like every upstream call; or, behind a verifying gateway, reads
 * their claims. `close` closes the JWKS client's connection.
 */
export function createVerifier(
  options: BffServerOptions,
  guards: UpstreamGuards,
): { verifier: JwtVerifier; close(): Promise<void> } {
  const timeoutMs = options.upstreamTimeoutMs ?? 2_000;
  const tolerance =
    options.auth?.clockToleranceSeconds === undefined
      ? {}
      : { clockToleranceSeconds: options.auth.clockToleranceSeconds };
  const issuer = options.tokenIssuer ?? 'urn:bff:identity';
  if (options.auth?.mode === 'gateway') {
    return {
      verifier: createGatewayClaimsReader({ issuer, audience: options.app, ...tolerance }),
      close: async () => {},
    };
  }
  const jwks = createJwksClient({
    url: options.jwksUrl ?? new URL('/.well-known/jwks.json', options.identityUrl).toString(),
    timeoutMs,
    onCall: (call: UpstreamCall) => options.onUpstreamCall?.(call),
    guard: guards.identity,
  });
  const verifier = createJwtVerifier({
    fetchKeySet: (call) => jwks.fetchKeySet(call),
    issuer,
    audience: options.app,
    jwksTimeoutMs: timeoutMs,
    ...(options.auth?.jwksCooldownMs === undefined ? {} : { jwksCooldownMs: options.auth.jwksCooldownMs }),
    ...(options.auth?.jwksCacheMaxAgeMs === undefined
      ? {}
      : { jwksCacheMaxAgeMs: options.auth.jwksCacheMaxAgeMs }),
    ...tolerance,
  });
  return { verifier, close: () => jwks.close() };
}
