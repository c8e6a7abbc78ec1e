// Claims believed too easily: a token "issued" in the future, not yet valid, unsigned or
// signed with a shared secret, in both the verifying and the gateway modes.
import fc from 'fast-check';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT, UnsecuredJWT } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createGatewayClaimsReader,
  createJwtVerifier,
  type JwtVerifier,
  TokenRejectedError,
} from '../src/index.ts';

const ISSUER = 'urn:test:identity';
const KID = 'k1';
const now = () => Math.floor(Date.now() / 1000);

let publicJwk: JWK;
let privateKey: CryptoKey;

beforeAll(async () => {
  const pair = await generateKeyPair('ES256', { extractable: true });
  privateKey = pair.privateKey;
  publicJwk = { ...(await exportJWK(pair.publicKey)), kid: KID, alg: 'ES256', use: 'sig' };
});

const sign = (overrides: Record<string, unknown> = {}) =>
  new SignJWT({
    roles: ['customer'],
    iss: ISSUER,
    aud: 'web',
    sub: 'user-1',
    iat: now(),
    exp: now() + 300,
    ...overrides,
  })
    .setProtectedHeader({ alg: 'ES256', kid: KID, typ: 'JWT' })
    .sign(privateKey);

const modes: [string, () => JwtVerifier][] = [
  [
    'verify',
    () =>
      createJwtVerifier({
        fetchKeySet: async () => ({ keys: [publicJwk] }),
        issuer: ISSUER,
        audience: 'web',
        verifiedCacheMs: 0,
        clockToleranceSeconds: 5,
      }),
  ],
  ['gateway', () => createGatewayClaimsReader({ issuer: ISSUER, audience: 'web', clockToleranceSeconds: 5 })],
];

async function rejection(verifier: JwtVerifier, token: string): Promise<string | undefined> {
  try {
    await verifier.verify(token);
    return undefined;
  } catch (error) {
    if (error instanceof TokenRejectedError) return error.reason;
    throw error;
  }
}

describe.each(modes)('%s mode', (_mode, make) => {
  let verifier: JwtVerifier;
  beforeAll(() => {
    verifier = make();
  });

  it('accepts a good token (the control case), and one issued within the clock tolerance', async () => {
    expect(await rejection(verifier, await sign())).toBeUndefined();
    expect(await rejection(verifier, await sign({ iat: now() + 2 }))).toBeUndefined();
  });

  it('refuses a token issued an hour or a year from now (regression: it was accepted)', async () => {
    expect(await rejection(verifier, await sign({ iat: now() + 3_600, exp: now() + 7_200 }))).toBe('invalid');
    expect(await rejection(verifier, await sign({ iat: now() + 31_536_000, exp: now() + 31_537_000 }))).toBe(
      'invalid',
    );
  });

  it('refuses any token issued further in the future than the tolerance', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 10, max: 20 * 31_536_000 }), async (ahead) => {
        const issued = now() + ahead;
        expect(await rejection(verifier, await sign({ iat: issued, exp: issued + 300 }))).toBe('invalid');
      }),
      { numRuns: 25 },
    );
  });

  it('refuses a token without a numeric iat, or not valid before a time still to come', async () => {
    expect(await rejection(verifier, await sign({ iat: undefined }))).not.toBeUndefined();
    expect(await rejection(verifier, await sign({ iat: 'yesterday' }))).not.toBeUndefined();
    expect(await rejection(verifier, await sign({ nbf: now() + 600 }))).not.toBeUndefined();
  });

  it('refuses an expired token as expired, and an unsigned one', async () => {
    expect(await rejection(verifier, await sign({ iat: now() - 600, exp: now() - 60 }))).toBe('expired');
    const unsigned = new UnsecuredJWT({
      iss: ISSUER,
      aud: 'web',
      sub: 'user-1',
      iat: now(),
      exp: now() + 300,
    })
      .encode()
      .concat('AA'); // the compact form needs some signature part to get past the shape check
    expect(await rejection(verifier, unsigned)).not.toBeUndefined();
  });
});

describe('gateway mode', () => {
  it('refuses alg none and shared-secret algorithms, which no gateway in front would have verified', async () => {
    const reader = createGatewayClaimsReader({ issuer: ISSUER, audience: 'web' });
    const claims = { iss: ISSUER, aud: 'web', sub: 'user-1', iat: now(), exp: now() + 300 };
    const hs256 = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'HS256' })
      .sign(new TextEncoder().encode('a-shared-secret-of-enough-length!!'));
    expect(await rejection(reader, hs256)).toBe('invalid');
    const none = `${new UnsecuredJWT(claims).encode()}AA`;
    expect(await rejection(reader, none)).toBe('invalid');
  });

  it('names a bad clock tolerance', () => {
    expect(() =>
      createGatewayClaimsReader({ issuer: ISSUER, audience: 'web', clockToleranceSeconds: -1 }),
    ).toThrow(/clockToleranceSeconds .* received -1/);
  });
});
