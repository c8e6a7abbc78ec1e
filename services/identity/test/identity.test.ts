import { ConfigError } from '@bff/config';
import { InProcessEventBus } from '@bff/events';
import { databaseBackends, throwawayDatabase } from '@bff/testkit';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_TOKEN_AUDIENCES,
  type RunningIdentityService,
  readIdentityConfig,
  startIdentityService,
} from '../src/index.ts';

const backends = await databaseBackends();
const ADMIN = 'test-admin-token';

describe.each(backends)('Identity service over HTTP (%s)', (backend) => {
  const database = throwawayDatabase(backend, 'identity');
  const bus = new InProcessEventBus();
  const events: { type: string; payload: unknown }[] = [];
  let service: RunningIdentityService;

  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const response = await fetch(`${service.url}${path}`, {
      method,
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
      body: body === undefined ? null : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await response.text();
    return {
      status: response.status,
      body: text ? JSON.parse(text) : undefined,
      headers: response.headers,
      text,
    };
  };
  const login = (email: string, password: string, audience = 'web') =>
    call('POST', '/v1/token', { email, password, audience });

  beforeAll(async () => {
    await bus.subscribe('test.identity-events', ['identity.#'], async (event) => {
      events.push(event);
    });
    service = await startIdentityService({
      port: 0,
      database: database.options,
      bus,
      keyGraceSeconds: 2,
      adminToken: ADMIN,
      logLevel: false,
    });
  });
  afterAll(async () => {
    await service?.close();
    await bus.close();
    await database.drop();
  });

  it('issues an ES256 JWT with kid, iss, sub, aud, iat, exp and roles that verifies against the JWKS', async () => {
    const { status, body } = await login('ada@example.com', 'demo-password', 'ios');
    expect(status).toBe(200);
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 900 });
    const header = decodeProtectedHeader(body.access_token);
    expect(header.alg).toBe('ES256');
    expect(header.kid).toEqual(expect.any(String));
    const jwks = createRemoteJWKSet(new URL(`${service.url}/.well-known/jwks.json`));
    const { payload } = await jwtVerify(body.access_token, jwks, {
      issuer: 'urn:bff:identity',
      audience: 'ios',
    });
    expect(payload.sub).toBe('0a1d2a9e-5a3c-4c1e-9d0a-000000000ada');
    expect(payload.roles).toEqual(['customer', 'admin']);
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(900);
  });

  it('logs in case-insensitively by email', async () => {
    expect((await login('ADA@Example.COM', 'demo-password')).status).toBe(200);
  });

  it('answers a wrong password and an unknown email with the same 401, in similar time', async () => {
    const wrong = await login('grace@example.com', 'not-the-password');
    const unknown = await login('nobody@example.com', 'not-the-password');
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect(wrong.body).toEqual({
      error: { code: 'INVALID_CREDENTIALS', message: 'Email or password is incorrect' },
    });
    expect(unknown.body).toEqual(wrong.body);
    // Without the decoy hash an unknown email answers ~30x faster; the bound is loose on purpose.
    // The two are timed in turn, pair by pair, and the median of the pairs' ratios is compared:
    // a busy machine slows both of a pair alike, so the ratio holds where the times do not.
    const timed = async (email: string) => {
      const start = performance.now();
      await login(email, 'not-the-password');
      return performance.now() - start;
    };
    const ratios: number[] = [];
    for (let i = 0; i < 7; i++) {
      const known = await timed('grace@example.com');
      ratios.push((await timed('nobody@example.com')) / known);
    }
    const ratio = ratios.sort((a, b) => a - b)[3] as number;
    expect(ratio).toBeGreaterThan(0.33);
    expect(ratio).toBeLessThan(3);
  });

  it.each([
    [{ email: 'ada@example.com', password: 'demo-password', audience: 'desktop' }],
    [{ email: 'ada@example.com', password: 'demo-password' }],
    [{ email: 'ada@example.com', password: 'demo-password', audience: 'web', extra: 1 }],
    [{ email: 42, password: 'demo-password', audience: 'web' }],
    ['{"email": "ada@example.com", '],
    ['[]'],
    // PostgreSQL refuses a NUL in text: these were 500s.
    [{ email: 'ada@example.com\u0000', password: 'demo-password', audience: 'web' }],
    [{ email: 'ada\u0000@example.com', password: 'demo-password', audience: 'web' }],
    [{ email: 'ada@example.com\u001b', password: 'demo-password', audience: 'web' }],
    [{ email: 'a'.repeat(255), password: 'demo-password', audience: 'web' }],
    [{ email: '', password: 'demo-password', audience: 'web' }],
  ])('rejects the token request %j with a coded 400', async (body) => {
    const response = await call('POST', '/v1/token', body);
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('BAD_REQUEST');
  });

  it('still signs in after refusing malformed requests', async () => {
    const response = await call('POST', '/v1/token', {
      email: 'ada@example.com',
      password: 'demo-password',
      audience: 'web',
    });
    expect(response.status).toBe(200);
  });

  it('rejects a token request that is not JSON with 415', async () => {
    const response = await call('POST', '/v1/token', 'email=a', {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(response.status).toBe(415);
    expect(response.body.error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('publishes only public key material', async () => {
    const { status, body, headers } = await call('GET', '/.well-known/jwks.json');
    expect(status).toBe(200);
    expect(headers.get('cache-control')).toMatch(/max-age=\d+/);
    expect(body.keys.length).toBeGreaterThanOrEqual(1);
    for (const key of body.keys) {
      expect(key).toMatchObject({
        kty: 'EC',
        crv: 'P-256',
        alg: 'ES256',
        use: 'sig',
        kid: expect.any(String),
      });
      expect(key).not.toHaveProperty('d');
    }
  });

  it('rotates keys: old tokens verify during the grace period, new ones use the new key, then the old kid leaves', async () => {
    const before = (await login('ada@example.com', 'demo-password')).body.access_token as string;
    const oldKid = decodeProtectedHeader(before).kid;
    expect((await call('POST', '/v1/admin/keys/rotate')).status).toBe(401);
    expect(
      (await call('POST', '/v1/admin/keys/rotate', undefined, { authorization: 'Bearer wrong' })).status,
    ).toBe(401);
    const rotated = await call('POST', '/v1/admin/keys/rotate', undefined, {
      authorization: `Bearer ${ADMIN}`,
    });
    expect(rotated.status).toBe(200);
    expect(rotated.body.retired).toEqual([oldKid]);
    const after = (await login('ada@example.com', 'demo-password')).body.access_token as string;
    expect(decodeProtectedHeader(after).kid).toBe(rotated.body.kid);

    const kids = async () =>
      (await call('GET', '/.well-known/jwks.json')).body.keys.map((k: { kid: string }) => k.kid);
    expect(await kids()).toEqual(expect.arrayContaining([oldKid, rotated.body.kid]));
    const jwks = createRemoteJWKSet(new URL(`${service.url}/.well-known/jwks.json`));
    await expect(jwtVerify(before, jwks, { audience: 'web' })).resolves.toBeTruthy();
    await expect(jwtVerify(after, jwks, { audience: 'web' })).resolves.toBeTruthy();

    await new Promise((resolve) => setTimeout(resolve, 2_200)); // grace period is 2 s here
    expect(await kids()).toEqual([rotated.body.kid]);
    const fresh = createRemoteJWKSet(new URL(`${service.url}/.well-known/jwks.json`));
    await expect(jwtVerify(before, fresh, { audience: 'web' })).rejects.toThrow();
  });

  it('looks users up singly and in batches, leaving unknown and malformed ids out', async () => {
    const ada = await call('GET', '/v1/users/0a1d2a9e-5a3c-4c1e-9d0a-000000000ada');
    expect(ada.status).toBe(200);
    expect(ada.body).toMatchObject({
      email: 'ada@example.com',
      name: 'Ada Lovelace',
      roles: ['customer', 'admin'],
    });
    expect(ada.body.createdAt).toEqual(expect.any(String));
    expect((await call('GET', '/v1/users/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await call('GET', '/v1/users/not-a-uuid')).status).toBe(404);
    const batch = await call(
      'GET',
      '/v1/users?ids=0a1d2a9e-5a3c-4c1e-9d0a-000000009ace,junk,00000000-0000-4000-8000-000000000000,0a1d2a9e-5a3c-4c1e-9d0a-000000000ada',
    );
    expect(batch.body.users.map((u: { email: string }) => u.email)).toEqual([
      'grace@example.com',
      'ada@example.com',
    ]);
    expect((await call('GET', '/v1/users')).status).toBe(400);
    const tooMany = Array.from({ length: 101 }, () => '0a1d2a9e-5a3c-4c1e-9d0a-000000000ada').join(',');
    expect((await call('GET', `/v1/users?ids=${tooMany}`)).body.error.code).toBe('BAD_REQUEST');
  });

  it('registers a user, emits identity.user.registered once, and never returns the password', async () => {
    const response = await call('POST', '/v1/users', {
      email: 'Linus@Example.com',
      password: 'correct horse battery',
      name: 'Linus',
    });
    expect(response.status).toBe(201);
    expect(response.text).not.toMatch(/password|scrypt/i);
    expect(response.body).toMatchObject({ email: 'Linus@Example.com', name: 'Linus', roles: ['customer'] });
    await service.db.query('SELECT 1');
    await new Promise((resolve) => setTimeout(resolve, 50));
    await bus.drain();
    const registered = events.filter((e) => e.type === 'identity.user.registered');
    expect(registered).toHaveLength(1);
    expect(registered[0]?.payload).toEqual({
      userId: response.body.id,
      email: 'Linus@Example.com',
      name: 'Linus',
    });
    expect((await login('linus@example.com', 'correct horse battery')).status).toBe(200);

    const duplicate = await call('POST', '/v1/users', {
      email: 'linus@EXAMPLE.com',
      password: 'another one!',
      name: 'L',
    });
    expect(duplicate.status).toBe(409);
    expect(duplicate.body.error.code).toBe('EMAIL_TAKEN');
  });

  it.each([
    [{ email: 'not-an-email', password: 'long enough', name: 'X' }],
    [{ email: 'x@example.com', password: 'short', name: 'X' }],
    [{ email: 'x@example.com', password: 'long enough', name: '' }],
    [{ email: 'x@example.com', password: 'long enough', name: 'X', avatarUrl: 'javascript:alert(1)' }],
    [{ email: 'x@example.com', password: 'long enough', name: 'X', roles: ['admin'] }],
    [{ email: 'x\u0000@example.com', password: 'long enough', name: 'X' }],
    [{ email: 'x@example.com\u0000', password: 'long enough', name: 'X' }],
    [{ email: 'x@example.com', password: 'long enough', name: 'X\u0000' }],
    [{ email: 'x@example.com', password: 'long enough', name: 'X', avatarUrl: 'https://a.example/\u0000' }],
  ])('rejects the registration %j with a coded 400', async (body) => {
    const response = await call('POST', '/v1/users', body);
    expect(response.status).toBe(400);
    expect(response.body.error.code).toBe('BAD_REQUEST');
  });

  it('answers unknown routes with a coded 404 and reports health and readiness', async () => {
    expect((await call('GET', '/v2/nothing')).body.error.code).toBe('NOT_FOUND');
    expect((await call('GET', '/healthz')).status).toBe(200);
    expect((await call('GET', '/readyz')).status).toBe(200);
  });
});

describe('the audiences Identity issues tokens for', () => {
  it('issues tokens for the configured apps only, whatever their names', async () => {
    const bus = new InProcessEventBus();
    const service = await startIdentityService({
      port: 0,
      database: throwawayDatabase('pglite', 'identity').options,
      bus,
      audiences: ['web', 'desktop'],
      logLevel: false,
    });
    try {
      const token = (audience: string) =>
        fetch(`${service.url}/v1/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ email: 'ada@example.com', password: 'demo-password', audience }),
        });
      const desktop = await token('desktop');
      expect(desktop.status).toBe(200);
      const { access_token } = (await desktop.json()) as { access_token: string };
      const jwks = createRemoteJWKSet(new URL(`${service.url}/.well-known/jwks.json`));
      await expect(jwtVerify(access_token, jwks, { audience: 'desktop' })).resolves.toBeTruthy();
      const ios = await token('ios');
      expect(ios.status).toBe(400);
      expect(((await ios.json()) as { error: { code: string } }).error.code).toBe('BAD_REQUEST');
    } finally {
      await service.close();
      await bus.close();
    }
    // Starts its own service (a database, migrations, a key): generous on a loaded machine.
  }, 120_000);

  it('refuses an empty or malformed list at start, naming what it received', async () => {
    const start = (audiences: string[]) =>
      startIdentityService({
        port: 0,
        database: { schema: 'identity_unused' },
        bus: new InProcessEventBus(),
        audiences,
        logLevel: false,
      });
    await expect(start([])).rejects.toThrow(/audiences must be .*received \[\]/);
    await expect(start(['Web App'])).rejects.toThrow(/received \["Web App"\]/);
  });

  it('reads TOKEN_AUDIENCES, defaulting to the apps this repository shipped with', () => {
    expect(readIdentityConfig({}).TOKEN_AUDIENCES).toEqual(DEFAULT_TOKEN_AUDIENCES);
    expect(readIdentityConfig({ TOKEN_AUDIENCES: 'web, ios,android,desktop' }).TOKEN_AUDIENCES).toEqual([
      'web',
      'ios',
      'android',
      'desktop',
    ]);
    expect(() => readIdentityConfig({ TOKEN_AUDIENCES: 'web,,ios' })).toThrow(ConfigError);
    expect(() => readIdentityConfig({ TOKEN_AUDIENCES: 'web,,ios' })).toThrow(/TOKEN_AUDIENCES/);
  });
});
