// The authentication plugin against running apps: every kind of bad token, the JWKS cooldown,
// key rotation without a restart, @auth/@hasRole, and the web app's cookie session.

import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type System, startApp, startSystem, type TestApp } from '../support/system.ts';

const ISSUER = 'urn:test:issuer';
const KID = 'test-key-1';

/** A JWKS we control, counting how often it is fetched. */
async function startJwksServer(keys: () => JWK[]) {
  let fetches = 0;
  const server: Server = createServer((request, response) => {
    if (request.url === '/.well-known/jwks.json') fetches++;
    response.setHeader('content-type', 'application/json');
    response.end(JSON.stringify({ keys: keys() }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`,
    fetches: () => fetches,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

let system: System;
beforeAll(async () => {
  system = await startSystem();
});
afterAll(async () => {
  await system?.close();
});

describe('bearer tokens the web BFF refuses, each with 401 UNAUTHENTICATED and nothing more', () => {
  let jwks: Awaited<ReturnType<typeof startJwksServer>>;
  let app: TestApp;
  let privateKey: CryptoKey;
  let publicJwk: JWK;
  const now = () => Math.floor(Date.now() / 1000);
  const sign = (claims: Record<string, unknown>, header: Record<string, unknown> = {}) =>
    new SignJWT({ roles: ['customer'], ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: KID, ...header })
      .sign(privateKey);
  const good = (overrides: Record<string, unknown> = {}) =>
    sign({
      iss: ISSUER,
      aud: 'web',
      sub: '0a1d2a9e-5a3c-4c1e-9d0a-000000000ada',
      iat: now(),
      exp: now() + 300,
      ...overrides,
    });

  beforeAll(async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    privateKey = pair.privateKey;
    publicJwk = { ...(await exportJWK(pair.publicKey)), kid: KID, alg: 'ES256', use: 'sig' };
    jwks = await startJwksServer(() => [publicJwk]);
    app = await startApp('web', system, {
      jwksUrl: jwks.url,
      tokenIssuer: ISSUER,
      auth: { jwksCooldownMs: 1_000 },
    });
  });
  afterAll(async () => {
    await app?.close();
    await jwks?.close();
  });

  const refused = async (authorization: string, reason?: string) => {
    const response = await fetch(`${app.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization },
      body: JSON.stringify({ query: '{ viewer { id } }' }),
    });
    const text = await response.text();
    expect(response.status).toBe(401);
    const body = JSON.parse(text);
    expect(body.errors[0].extensions.code).toBe('UNAUTHENTICATED');
    if (reason) expect(body.errors[0].extensions.reason).toBe(reason);
    expect(text).not.toMatch(/stack|BEGIN|"d":|"x":|"y":|JWS|JWT[A-Z]|jose|ERR_/);
    return body;
  };

  it('accepts a well-formed token (the control case)', async () => {
    const response = await app.graphql('{ viewer { id roles } }', { token: await good() });
    expect(response.body.data.viewer).toEqual({
      id: '0a1d2a9e-5a3c-4c1e-9d0a-000000000ada',
      roles: ['customer'],
    });
  });

  it('trusts a verified token again only until it expires', async () => {
    const token = await good({ exp: now() + 2 });
    expect((await app.graphql('{ viewer { id } }', { token })).status).toBe(200);
    expect((await app.graphql('{ viewer { id } }', { token })).status).toBe(200); // from the verified cache
    await new Promise((resolve) => setTimeout(resolve, 2_100 + 5_000)); // past exp and the 5 s clock tolerance
    const expired = await app.graphql('{ viewer { id } }', { token });
    expect(expired.status).toBe(401);
    expect(expired.body.errors?.[0]?.extensions?.reason).toBe('expired');
  }, 15_000);

  it('refuses alg: none', async () => {
    const unsecured = new UnsecuredJWT({ sub: 'x', roles: ['admin'] })
      .setIssuer(ISSUER)
      .setAudience('web')
      .setIssuedAt()
      .setExpirationTime('5m')
      .encode();
    await refused(`Bearer ${unsecured}`);
  });

  it('refuses HS256 signed with the public key’s bytes', async () => {
    const { createPublicKey } = await import('node:crypto');
    const pem = createPublicKey({ key: publicJwk as never, format: 'jwk' }).export({
      type: 'spki',
      format: 'pem',
    });
    const forged = await new SignJWT({ roles: ['admin'] })
      .setProtectedHeader({ alg: 'HS256', kid: KID })
      .setIssuer(ISSUER)
      .setAudience('web')
      .setSubject('attacker')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(String(pem)));
    await refused(`Bearer ${forged}`);
  });

  it('refuses an expired token, saying so', async () => {
    await refused(`Bearer ${await good({ iat: now() - 600, exp: now() - 60 })}`, 'expired');
  });

  it('refuses a token that is not yet valid', async () => {
    await refused(`Bearer ${await good({ nbf: now() + 600 })}`);
  });

  it('refuses a token without exp', async () => {
    await refused(`Bearer ${await good({ exp: undefined })}`);
  });

  it('refuses a token for another app (an iOS token sent to web)', async () => {
    await refused(`Bearer ${await good({ aud: 'ios' })}`);
  });

  it('refuses a token from another issuer', async () => {
    await refused(`Bearer ${await good({ iss: 'urn:someone:else' })}`);
  });

  it('refuses a token signed by a key it does not know, even with a known kid', async () => {
    const stranger = await generateKeyPair('ES256');
    const token = await new SignJWT({ roles: ['admin'] })
      .setProtectedHeader({ alg: 'ES256', kid: KID })
      .setIssuer(ISSUER)
      .setAudience('web')
      .setSubject('x')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(stranger.privateKey);
    await refused(`Bearer ${token}`);
  });

  it('refuses 100 tokens with random kids with at most one JWKS fetch per cooldown', async () => {
    const tokens = await Promise.all(
      Array.from({ length: 100 }, () =>
        sign({ iss: ISSUER, aud: 'web', sub: 'x', iat: now(), exp: now() + 60 }, { kid: randomUUID() }),
      ),
    );
    await app.graphql('{ viewer { id } }', { token: await good() }); // keys cached
    await new Promise((resolve) => setTimeout(resolve, 1_100)); // the 1 s cooldown has passed
    const before = jwks.fetches();
    const started = performance.now();
    const statuses = await Promise.all(
      tokens.map(async (token) => (await app.graphql('{ viewer { id } }', { token })).status),
    );
    const cooldowns = Math.floor((performance.now() - started) / 1_000);
    expect(statuses.every((s) => s === 401)).toBe(true);
    // One refetch for the first unknown kid, then at most one per cooldown that passed while the
    // 100 were answered (a loaded machine can take longer than one): never one per token.
    expect(jwks.fetches() - before).toBeLessThanOrEqual(1 + cooldowns);
    expect(jwks.fetches() - before).toBeLessThan(10);
  });

  it.each([
    ['an empty bearer', 'Bearer '],
    ['another scheme', 'Basic dXNlcjpwYXNz'],
    ['one segment', 'Bearer abc'],
    ['two segments', 'Bearer abc.def'],
    ['four segments', 'Bearer a.b.c.d'],
    ['empty segments', 'Bearer ..'],
    ['not base64url', 'Bearer ***.***.***'],
    ['a header that is not JSON', `Bearer ${Buffer.from('not json').toString('base64url')}.e30.c2ln`],
    [
      'a payload that is not JSON',
      `Bearer ${Buffer.from('{"alg":"ES256","kid":"test-key-1"}').toString('base64url')}.bm90IGpzb24.c2ln`,
    ],
    ['a 12 KB token', `Bearer ${'a'.repeat(6_000)}.${'b'.repeat(6_000)}.c2ln`],
    ['a token with spaces', 'Bearer a b.c'],
  ])('refuses a malformed token: %s', async (_name, authorization) => {
    await refused(authorization);
  });
});

describe('tokens from the real Identity service', () => {
  it('verify a token from a key rotated in after start, without a restart', async () => {
    const admin = randomUUID();
    const { startIdentityService } = await import('@bff/identity-service');
    const { InProcessEventBus } = await import('@bff/events');
    const bus = new InProcessEventBus();
    const identity = await startIdentityService({
      port: 0,
      database: { schema: 'identity' },
      bus,
      adminToken: admin,
      logLevel: false,
    });
    const app = await startApp('ios', system, { identityUrl: identity.url, auth: { jwksCooldownMs: 200 } });
    try {
      const token = async () => {
        const response = await fetch(`${identity.url}/v1/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ email: 'grace@example.com', password: 'demo-password', audience: 'ios' }),
        });
        return ((await response.json()) as { access_token: string }).access_token;
      };
      const before = await app.graphql('{ viewer { email } }', { token: await token() });
      expect(before.body.data.viewer.email).toBe('grace@example.com');
      const rotated = await fetch(`${identity.url}/v1/admin/keys/rotate`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}` },
      });
      expect(rotated.status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 300)); // past the cooldown
      const after = await app.graphql('{ viewer { email } }', { token: await token() });
      expect(after.status).toBe(200);
      expect(after.body.data.viewer.email).toBe('grace@example.com');
    } finally {
      await app.close();
      await identity.close();
      await bus.close();
    }
  });
});

describe('authorization declared in SDL', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startApp('android', system);
  });
  afterAll(async () => {
    await app?.close();
  });

  it('refuses an operation whose every root field needs a viewer with HTTP 401', async () => {
    const response = await app.graphql('mutation { payInvoice(id: "x") { id } }');
    expect(response.status).toBe(401);
    expect(response.body.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  it('serves public fields to anyone, and refuses only the protected ones', async () => {
    const response = await app.graphql(
      '{ product(id: "p-0001") { name inventory } other: product(id: "p-0002") { name } }',
    );
    expect(response.status).toBe(200);
    expect(response.body.data.other.name).toEqual(expect.any(String));
    expect(response.body.data.product).toBeNull(); // inventory is non-null, so its parent is nulled
    expect(response.body.errors?.[0]).toMatchObject({
      path: ['product', 'inventory'],
      extensions: { code: 'UNAUTHENTICATED' },
    });
  });

  it('refuses a field to a viewer without its role (FORBIDDEN), and serves it to one with it', async () => {
    const grace = await app.graphql('{ product(id: "p-0001") { inventory } }', {
      token: await system.token('grace@example.com', 'android'),
    });
    expect(grace.body.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const ada = await app.graphql('{ product(id: "p-0001") { inventory } }', {
      token: await system.token('ada@example.com', 'android'),
    });
    expect(ada.body.errors).toBeUndefined();
    expect(ada.body.data.product.inventory).toEqual(expect.any(Number));
  });

  it('reaches the whole-operation check through fragments too', async () => {
    const response = await app.graphql(
      'mutation { ...M } fragment M on Mutation { purchase(input: { productId: "p-0001", quantity: 1, idempotencyKey: "k" }) { invoice { id } } }',
    );
    expect(response.status).toBe(401);
  });
});

describe('the web app’s cookie session', () => {
  let app: TestApp;
  beforeAll(async () => {
    app = await startApp('web', system);
  });
  afterAll(async () => {
    await app?.close();
  });

  const post = (query: string, headers: Record<string, string> = {}) =>
    fetch(`${app.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ query }),
    });

  it('signs in into an HttpOnly, Secure, SameSite=Strict cookie, never returning the token', async () => {
    const login = await post(
      'mutation { login(email: "ada@example.com", password: "demo-password") { viewer { name } expiresAt } }',
    );
    const text = await login.text();
    expect(JSON.parse(text).data.login.viewer.name).toBe('Ada Lovelace');
    expect(text).not.toMatch(/eyJ/); // no JWT in the body
    const cookie = login.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(/^__Host-bff_session=eyJ/);
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/Secure/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    expect(cookie).toMatch(/Path=\//);
    const session = cookie.split(';')[0] as string;

    const me = await post('{ viewer { email } }', { cookie: session });
    expect(((await me.json()) as { data: { viewer: { email: string } } }).data.viewer.email).toBe(
      'ada@example.com',
    );

    // CSRF prevention stays on: a "simple" cross-site request carrying the cookie is refused.
    const simple = await fetch(`${app.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain', cookie: session },
      body: JSON.stringify({ query: 'mutation { logout }' }),
    });
    expect(simple.status).toBe(400);

    const logout = await post('mutation { logout }', { cookie: session });
    expect(logout.headers.get('set-cookie')).toMatch(/^__Host-bff_session=;.*Max-Age=0/i);
  });

  it('refuses wrong credentials with INVALID_CREDENTIALS and sets no cookie', async () => {
    const login = await post('mutation { login(email: "ada@example.com", password: "wrong") { expiresAt } }');
    expect(login.headers.get('set-cookie')).toBeNull();
    expect(
      ((await login.json()) as { errors: { extensions: { code: string } }[] }).errors[0]?.extensions.code,
    ).toBe('INVALID_CREDENTIALS');
  });

  it('drops a bad session cookie and serves the request anonymously', async () => {
    const response = await post('{ viewer { id } }', { cookie: '__Host-bff_session=not.a.jwt' });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { data: { viewer: null } }).data.viewer).toBeNull();
    expect(response.headers.get('set-cookie')).toMatch(/Max-Age=0/);
  });

  it('exists only on the web app', async () => {
    const ios = await startApp('ios', system);
    try {
      const response = await ios.graphql('mutation { logout }');
      expect(response.body.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    } finally {
      await ios.close();
    }
  });
});
