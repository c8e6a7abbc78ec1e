// The verifier's copy of Identity's keys: trusted for a while, refetched for an unknown kid at
// most once per cooldown, one fetch for many waiting tokens, and a failed fetch told apart from
// a bad token. Time is the mocked Date (timers stay real); counts, not durations, are asserted.
import { randomUUID } from 'node:crypto';
import { UpstreamError, UpstreamErrorCode } from '@bff/upstream-clients';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT } from 'jose';
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  createJwtVerifier,
  type JwtVerifier,
  type JwtVerifierOptions,
  TokenRejectedError,
} from '../src/index.ts';

const ISSUER = 'urn:test:identity';
const COOLDOWN_MS = 30_000;
const MAX_AGE_MS = 600_000;

interface Pair {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}
let first: Pair;
let second: Pair;

async function pair(kid: string): Promise<Pair> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

beforeAll(async () => {
  first = await pair('k1');
  second = await pair('k2');
});

const nowSeconds = () => Math.floor(Date.now() / 1000);
const sign = (key: Pair, kid = key.kid) =>
  new SignJWT({ roles: [] })
    .setProtectedHeader({ alg: 'ES256', kid })
    .setIssuer(ISSUER)
    .setAudience('web')
    .setSubject('user-1')
    .setIssuedAt(nowSeconds())
    .setExpirationTime(nowSeconds() + 300)
    .sign(key.privateKey);

/** A key set source we control: what it serves, whether it fails, and a gate to hold it open. */
function keySource() {
  const source = {
    keys: [] as JWK[],
    calls: 0,
    failWith: undefined as unknown,
    gate: undefined as Promise<void> | undefined,
    signals: [] as AbortSignal[],
    fetchKeySet: async (call: { signal: AbortSignal; deadline: number }) => {
      source.calls++;
      source.signals.push(call.signal);
      if (source.gate) await source.gate;
      if (source.failWith !== undefined) throw source.failWith;
      return { keys: [...source.keys] };
    },
  };
  return source;
}

function verifierOver(
  source: ReturnType<typeof keySource>,
  overrides: Partial<JwtVerifierOptions> = {},
): JwtVerifier {
  return createJwtVerifier({
    fetchKeySet: source.fetchKeySet,
    issuer: ISSUER,
    audience: 'web',
    verifiedCacheMs: 0, // every verify reads the key set
    jwksCooldownMs: COOLDOWN_MS,
    jwksCacheMaxAgeMs: MAX_AGE_MS,
    ...overrides,
  });
}

async function outcome(verifier: JwtVerifier, token: string): Promise<string> {
  try {
    await verifier.verify(token);
    return 'accepted';
  } catch (error) {
    if (error instanceof TokenRejectedError) return error.reason;
    if (error instanceof UpstreamError) return error.code;
    throw error;
  }
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(new Date('2030-01-01T00:00:00Z'));
});
afterEach(() => {
  vi.useRealTimers();
});

describe('the cached key set', () => {
  it('fetches once, trusts the keys for jwksCacheMaxAgeMs, then fetches again', async () => {
    const source = keySource();
    source.keys = [first.jwk];
    const verifier = verifierOver(source);
    for (let i = 0; i < 3; i++) expect(await outcome(verifier, await sign(first))).toBe('accepted');
    expect(source.calls).toBe(1);
    vi.setSystemTime(Date.now() + MAX_AGE_MS - 1_000);
    expect(await outcome(verifier, await sign(first))).toBe('accepted');
    expect(source.calls).toBe(1);
    vi.setSystemTime(Date.now() + 2_000); // past the max age
    expect(await outcome(verifier, await sign(first))).toBe('accepted');
    expect(source.calls).toBe(2);
  });

  it('refetches for an unknown kid at most once per cooldown, and then knows a rotated-in key', async () => {
    const source = keySource();
    source.keys = [first.jwk];
    const verifier = verifierOver(source);
    expect(await outcome(verifier, await sign(first))).toBe('accepted');
    source.keys = [first.jwk, second.jwk]; // Identity rotates a key in
    // Within the cooldown of the last fetch: no refetch, so the new key is not known yet.
    expect(await outcome(verifier, await sign(second))).toBe('invalid');
    expect(source.calls).toBe(1);
    vi.setSystemTime(Date.now() + COOLDOWN_MS + 1);
    expect(await outcome(verifier, await sign(second))).toBe('accepted');
    expect(source.calls).toBe(2);
    // Made-up kids right after: refused without asking again.
    for (let i = 0; i < 5; i++)
      expect(await outcome(verifier, await sign(first, randomUUID()))).toBe('invalid');
    expect(source.calls).toBe(2);
    vi.setSystemTime(Date.now() + COOLDOWN_MS + 1);
    expect(await outcome(verifier, await sign(first, randomUUID()))).toBe('invalid');
    expect(source.calls).toBe(3);
  });

  it('makes one fetch for many tokens waiting on the keys at once', async () => {
    const source = keySource();
    source.keys = [first.jwk];
    let open = () => {};
    source.gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const verifier = verifierOver(source);
    const tokens = await Promise.all(Array.from({ length: 20 }, () => sign(first)));
    const pending = tokens.map((token) => outcome(verifier, token));
    await vi.waitFor(() => expect(source.calls).toBe(1));
    open();
    expect(await Promise.all(pending)).toEqual(tokens.map(() => 'accepted'));
    expect(source.calls).toBe(1);

    // After the cooldown, many unknown kids at once are one refetch too.
    vi.setSystemTime(Date.now() + COOLDOWN_MS + 1);
    source.gate = new Promise<void>((resolve) => {
      open = resolve;
    });
    const strangers = await Promise.all(Array.from({ length: 20 }, () => sign(first, randomUUID())));
    const refused = strangers.map((token) => outcome(verifier, token));
    await vi.waitFor(() => expect(source.calls).toBe(2));
    open();
    expect(new Set(await Promise.all(refused))).toEqual(new Set(['invalid']));
    expect(source.calls).toBe(2);
  });

  it('reports a failed fetch as an UpstreamError, never as a refused token, and tries again next time', async () => {
    const source = keySource();
    source.keys = [first.jwk];
    source.failWith = new UpstreamError('identity', UpstreamErrorCode.Unavailable, 'identity: circuit open');
    const verifier = verifierOver(source);
    const token = await sign(first);
    expect(await outcome(verifier, token)).toBe(UpstreamErrorCode.Unavailable);
    expect(await outcome(verifier, token)).toBe(UpstreamErrorCode.Unavailable);
    expect(source.calls).toBe(2); // a failure starts no cooldown and caches nothing
    source.failWith = undefined;
    expect(await outcome(verifier, token)).toBe('accepted');
    expect(source.calls).toBe(3);
  });

  it('reports a failed refetch for an unknown kid as an UpstreamError too', async () => {
    const source = keySource();
    source.keys = [first.jwk];
    const verifier = verifierOver(source);
    expect(await outcome(verifier, await sign(first))).toBe('accepted');
    vi.setSystemTime(Date.now() + COOLDOWN_MS + 1);
    source.failWith = new UpstreamError('identity', UpstreamErrorCode.Timeout, 'identity timed out');
    expect(await outcome(verifier, await sign(second))).toBe(UpstreamErrorCode.Timeout);
    // The keys held are kept: a known kid still verifies, without a fetch.
    const calls = source.calls;
    expect(await outcome(verifier, await sign(first))).toBe('accepted');
    expect(source.calls).toBe(calls);
  });

  it('makes anything else a source throws, or an unreadable key set, an UpstreamError', async () => {
    const thrower = keySource();
    thrower.failWith = new Error('socket hang up');
    const error = await verifierOver(thrower)
      .verify(await sign(first))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UpstreamError);
    expect((error as UpstreamError).code).toBe(UpstreamErrorCode.Unavailable);
    expect((error as UpstreamError).message).not.toMatch(/socket/);

    const unreadable = verifierOver(keySource(), {
      fetchKeySet: async () => ({ keys: 'none' }) as never,
    });
    expect(await outcome(unreadable, await sign(first))).toBe(UpstreamErrorCode.BadResponse);
  });

  it('gives up on a fetch past jwksTimeoutMs with UPSTREAM_TIMEOUT, aborting its signal', async () => {
    const source = keySource();
    source.gate = new Promise<void>(() => {}); // never answers
    const verifier = verifierOver(source, { jwksTimeoutMs: 20 });
    expect(await outcome(verifier, await sign(first))).toBe(UpstreamErrorCode.Timeout);
    expect(source.signals[0]?.aborted).toBe(true);
  });

  it('prefetches the keys on request, saying whether it could, without ever rejecting', async () => {
    const source = keySource();
    source.keys = [first.jwk];
    source.failWith = new Error('down');
    const verifier = verifierOver(source);
    expect(await verifier.prefetchKeys?.()).toBe(false);
    source.failWith = undefined;
    expect(await verifier.prefetchKeys?.()).toBe(true);
    expect(await verifier.prefetchKeys?.()).toBe(true); // fresh: no second fetch
    expect(source.calls).toBe(2);
    expect(await outcome(verifier, await sign(first))).toBe('accepted');
    expect(source.calls).toBe(2);
  });
});

describe('createJwtVerifier options', () => {
  const base = { fetchKeySet: keySource().fetchKeySet, issuer: ISSUER, audience: 'web' };

  it('names a bad duration and the value received', () => {
    expect(() => createJwtVerifier({ ...base, jwksCooldownMs: -1 })).toThrow(/jwksCooldownMs .*received -1/);
    expect(() => createJwtVerifier({ ...base, jwksTimeoutMs: 0 })).toThrow(/jwksTimeoutMs .*received 0/);
    expect(() => createJwtVerifier({ ...base, jwksCacheMaxAgeMs: Number.NaN })).toThrow(
      /jwksCacheMaxAgeMs .*received NaN/,
    );
    expect(() => createJwtVerifier({ ...base, verifiedCacheSize: 0 })).toThrow(
      /verifiedCacheSize .*received 0/,
    );
  });

  it('refuses a missing key set source, and a jwksUrl it would otherwise ignore', () => {
    expect(() => createJwtVerifier({ ...base, fetchKeySet: undefined as never })).toThrow(
      /fetchKeySet must be a function, received undefined/,
    );
    expect(() =>
      createJwtVerifier({ ...base, jwksUrl: 'http://identity/.well-known/jwks.json' } as never),
    ).toThrow(/jwksUrl is no longer read .*received "http:\/\/identity/);
  });
});
