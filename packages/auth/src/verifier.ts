import type { Viewer } from '@bff/resolvers';
import { UpstreamError } from '@bff/upstream-clients';
import { decodeJwt, decodeProtectedHeader, errors, type JWTPayload, jwtVerify } from 'jose';
import { CachedKeySet, type KeySetSource } from './key-set.ts';

export interface JwtVerifierOptions {
  /**
   * Fetches Identity's JWKS (e.g. `createJwksClient(…).fetchKeySet`). The keys are cached here:
   * one key set per verifier, so make one verifier per process.
   */
  fetchKeySet: KeySetSource;
  /** Required `iss`. */
  issuer: string;
  /** Required `aud`: the app's name. */
  audience: string;
  /** Accepted `alg` values; symmetric algorithms and `none` are refused. @default ['ES256', 'EdDSA'] */
  algorithms?: readonly string[];
  /** Leeway for `exp`, `nbf` and `iat`, in seconds. @default 5 */
  clockToleranceSeconds?: number;
  /** Deadline for one fetch of the JWKS, retries included, in ms. @default 2000 */
  jwksTimeoutMs?: number;
  /** Least time between two JWKS fetches caused by unknown `kid`s, in ms. @default 30000 */
  jwksCooldownMs?: number;
  /** How long fetched keys are trusted before a refetch, in ms. @default 600000 */
  jwksCacheMaxAgeMs?: number;
  /**
   * How long a token that verified is trusted again without verifying its signature, in ms
   * (never past its `exp`). Entries are keyed by the whole token, so only a request presenting
   * that very token can hit one. 0 turns the cache off. @default 30000
   */
  verifiedCacheMs?: number;
  /** Most tokens remembered. @default 10000 */
  verifiedCacheSize?: number;
}

/** Why a token was refused. Only `expired` is worth telling a client apart: it can refresh. */
export type TokenRejection = 'malformed' | 'expired' | 'invalid';

export class TokenRejectedError extends Error {
  override readonly name = 'TokenRejectedError';
  constructor(
    readonly reason: TokenRejection,
    /** The token is good but for another app (`aud`): a WebSocket says so apart (4403, not 4401). */
    readonly wrongAudience = false,
  ) {
    super(`access token ${reason}`);
  }
}

export interface JwtVerifier {
  /** The viewer a token speaks for; TokenRejectedError when it is not acceptable, UpstreamError when the JWKS cannot be had. */
  verify(token: string): Promise<Viewer>;
  /**
   * Fetches the keys now unless fresh ones are held, so that the first token does not wait for
   * them (call it at start). Never rejects: false when they could not be had, and the next
   * token tries again. Absent where no keys are needed.
   */
  prefetchKeys?(): Promise<boolean>;
}

const COMPACT_JWS = /^[A-Za-z0-9_-]{2,2048}\.[A-Za-z0-9_-]{2,8192}\.[A-Za-z0-9_-]{2,2048}$/;
const ASYMMETRIC = new Set([
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
]);

export function createJwtVerifier(options: JwtVerifierOptions): JwtVerifier {
  const algorithms = [...(options.algorithms ?? ['ES256', 'EdDSA'])];
  for (const alg of algorithms) {
    if (!ASYMMETRIC.has(alg)) {
      throw new TypeError(
        `createJwtVerifier: algorithms may hold only asymmetric algorithms, received ${JSON.stringify(alg)}`,
      );
    }
  }
  if ('jwksUrl' in options) {
    // The key set is fetched through the upstream clients now; a URL here would be ignored.
    throw new TypeError(
      `createJwtVerifier: jwksUrl is no longer read (pass fetchKeySet, e.g. createJwksClient({ url }).fetchKeySet), received ${JSON.stringify((options as { jwksUrl?: unknown }).jwksUrl)}`,
    );
  }
  if (typeof options.fetchKeySet !== 'function')
    throw new TypeError(
      `createJwtVerifier: fetchKeySet must be a function, received ${typeof options.fetchKeySet}`,
    );
  const clockTolerance = validClockTolerance('createJwtVerifier', options.clockToleranceSeconds);
  const keys = new CachedKeySet({
    fetchKeySet: options.fetchKeySet,
    timeoutMs: milliseconds('jwksTimeoutMs', options.jwksTimeoutMs, 2_000, { min: 1 }),
    cooldownMs: milliseconds('jwksCooldownMs', options.jwksCooldownMs, 30_000),
    cacheMaxAgeMs: milliseconds('jwksCacheMaxAgeMs', options.jwksCacheMaxAgeMs, 600_000, { infinite: true }),
  });

  // Verified tokens, newest last (a Map keeps insertion order: the first key is the oldest).
  const verified = new Map<string, { viewer: Viewer; until: number }>();
  const cacheMs = milliseconds('verifiedCacheMs', options.verifiedCacheMs, 30_000);
  const cacheSize = options.verifiedCacheSize ?? 10_000;
  if (!(Number.isSafeInteger(cacheSize) && cacheSize > 0))
    throw new TypeError(
      `createJwtVerifier: verifiedCacheSize must be a positive integer, received ${String(options.verifiedCacheSize)}`,
    );

  return {
    async verify(token) {
      const cached = cacheMs > 0 ? verified.get(token) : undefined;
      if (cached) {
        if (cached.until > Date.now()) return { ...cached.viewer, roles: [...cached.viewer.roles] };
        verified.delete(token);
      }
      if (!COMPACT_JWS.test(token)) throw new TokenRejectedError('malformed');
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, keys.getKey, {
          issuer: options.issuer,
          audience: options.audience,
          algorithms,
          requiredClaims: ['exp', 'iat', 'sub'],
          clockTolerance,
        }));
      } catch (error) {
        throw classify(error);
      }
      // jose checks `iat` only against a maximum age; a token "issued" in the future would
      // otherwise be good for as long as its `exp` says, from before it was made.
      refuseIssuedInFuture(payload, clockTolerance);
      if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 128) {
        throw new TokenRejectedError('invalid');
      }
      const roles = Array.isArray(payload.roles)
        ? payload.roles.filter((r): r is string => typeof r === 'string')
        : [];
      const viewer: Viewer = {
        id: payload.sub,
        roles,
        email: typeof payload.email === 'string' ? payload.email : undefined,
        name: typeof payload.name === 'string' ? payload.name : undefined,
        expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : undefined,
      };
      if (cacheMs > 0 && typeof payload.exp === 'number') {
        if (verified.size >= cacheSize) verified.delete(verified.keys().next().value as string);
        verified.set(token, { viewer, until: Math.min(Date.now() + cacheMs, payload.exp * 1000) });
      }
      return { ...viewer, roles: [...roles] };
    },
    prefetchKeys: () =>
      keys.ensureFresh().then(
        () => true,
        () => false,
      ),
  };
}

function classify(error: unknown): unknown {
  if (error instanceof errors.JWTExpired) return new TokenRejectedError('expired');
  // The key set could not be had (CachedKeySet makes every such failure an UpstreamError).
  if (error instanceof UpstreamError) return error;
  if (error instanceof errors.JWSInvalid || error instanceof errors.JWTInvalid)
    return new TokenRejectedError('malformed');
  if (error instanceof errors.JWTClaimValidationFailed && error.claim === 'aud')
    return new TokenRejectedError('invalid', true);
  if (error instanceof errors.JOSEError) return new TokenRejectedError('invalid');
  return error; // not the token and not Identity: a fault of ours, reported as one
}

/** A duration option in ms: a finite number, at least `min` (or Infinity where allowed), or a TypeError naming it. */
function milliseconds(
  name: string,
  given: number | undefined,
  fallback: number,
  allow: { min?: number; infinite?: boolean } = {},
): number {
  const value = given ?? fallback;
  const ok =
    typeof value === 'number' &&
    value >= (allow.min ?? 0) &&
    (Number.isFinite(value) || (allow.infinite === true && value === Number.POSITIVE_INFINITY));
  if (!ok)
    throw new TypeError(
      `createJwtVerifier: ${name} must be a number of ms, at least ${allow.min ?? 0}, received ${String(given)}`,
    );
  return value;
}

function validClockTolerance(where: string, given: number | undefined): number {
  const seconds = given ?? 5;
  if (!(typeof seconds === 'number' && seconds >= 0 && seconds <= 300)) {
    throw new TypeError(`${where}: clockToleranceSeconds must be 0 to 300, received ${String(given)}`);
  }
  return seconds;
}

function refuseIssuedInFuture(payload: JWTPayload, toleranceSeconds: number) {
  if (typeof payload.iat !== 'number' || !Number.isFinite(payload.iat))
    throw new TokenRejectedError('invalid');
  if (payload.iat > Date.now() / 1000 + toleranceSeconds) throw new TokenRejectedError('invalid');
}

/**
 * For a BFF behind a gateway that has verified the token already (Kong, Apollo Router): reads
 * the claims without checking the signature, still requiring `iss`, `aud`, `sub`, an asymmetric
 * `alg`, an unexpired `exp`, an `iat` not in the future and any `nbf` passed (within the clock
 * tolerance), as the verifier does. A BFF configured so must never be reachable except through
 * that gateway.
 */
export function createGatewayClaimsReader(options: {
  issuer: string;
  audience: string;
  /** Leeway for `exp`, `nbf` and `iat`, in seconds. @default 5 */
  clockToleranceSeconds?: number | undefined;
}): JwtVerifier {
  const clockTolerance = validClockTolerance('createGatewayClaimsReader', options.clockToleranceSeconds);
  return {
    async verify(token) {
      if (!COMPACT_JWS.test(token)) throw new TokenRejectedError('malformed');
      let payload: JWTPayload;
      let alg: unknown;
      try {
        payload = decodeJwt(token);
        ({ alg } = decodeProtectedHeader(token));
      } catch {
        throw new TokenRejectedError('malformed');
      }
      // No gateway signs with `none` or a shared secret: such a token did not come through it.
      if (typeof alg !== 'string' || !ASYMMETRIC.has(alg)) throw new TokenRejectedError('invalid');
      const audiences = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
      if (
        payload.iss !== options.issuer ||
        !audiences.includes(options.audience) ||
        typeof payload.sub !== 'string' ||
        payload.sub.length === 0 ||
        payload.sub.length > 128
      ) {
        throw new TokenRejectedError('invalid');
      }
      const now = Date.now() / 1000;
      if (typeof payload.exp !== 'number' || !Number.isFinite(payload.exp))
        throw new TokenRejectedError('invalid');
      if (payload.exp <= now - clockTolerance) throw new TokenRejectedError('expired');
      if (
        payload.nbf !== undefined &&
        !(typeof payload.nbf === 'number' && payload.nbf <= now + clockTolerance)
      )
        throw new TokenRejectedError('invalid');
      refuseIssuedInFuture(payload, clockTolerance);
      const roles = Array.isArray(payload.roles)
        ? payload.roles.filter((r): r is string => typeof r === 'string')
        : [];
      return {
        id: payload.sub,
        roles,
        email: typeof payload.email === 'string' ? payload.email : undefined,
        name: typeof payload.name === 'string' ? payload.name : undefined,
        expiresAt: payload.exp * 1000,
      };
    },
  };
}
