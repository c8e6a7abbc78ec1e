// What the web BFF believes about the edge, with real requests: X-Forwarded-For only from a
// trusted proxy, a deadline for a request whose headers never finish, sign-in budgets keyed on
// the account however its email is typed, and access tokens "issued" in the future.
import { once } from 'node:events';
import { connect } from 'node:net';
import { type BffServerOptions, bffOptionsFromConfig, type RunningBff, readBffConfig } from '@bff/bff-server';
import { startWebBff } from '@bff/web-app';
import { generateKeyPair, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type System, startSystem } from '../support/system.ts';

let system: System;
beforeAll(async () => {
  system = await startSystem();
});
afterAll(async () => {
  await system?.close();
});

type Extra = Partial<Omit<BffServerOptions, 'app' | 'schemaDir' | 'resolvers' | 'policy'>>;

async function withWeb(extra: Extra, run: (bff: RunningBff) => Promise<void>) {
  const bff = await startWebBff({
    port: 0,
    identityUrl: system.identityUrl,
    billingUrl: system.billingUrl,
    productAddr: system.productAddr,
    production: false,
    graphiql: false,
    logLevel: false,
    ...extra,
  });
  try {
    await run(bff);
  } finally {
    await bff.close();
  }
}

async function post(bff: RunningBff, query: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${bff.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query }),
  });
  const body = (await response.json()) as {
    data?: unknown;
    errors?: { message: string; extensions?: Record<string, unknown> }[];
  };
  return { status: response.status, body };
}

const productQuery = '{ product(id: "p-0001") { id } }';
const twoPerMinute = { rateLimit: { defaults: { max: 2, window: '1m' } } };

describe('X-Forwarded-For', () => {
  it('gives each client behind a trusted proxy its own bucket', async () => {
    await withWeb({ ...twoPerMinute, trustProxy: '127.0.0.1' }, async (bff) => {
      const from = (address: string) => post(bff, productQuery, { 'x-forwarded-for': address });
      expect((await from('203.0.113.1')).status).toBe(200);
      expect((await from('203.0.113.1')).status).toBe(200);
      expect((await from('203.0.113.1')).status).toBe(429);
      // Regression: TRUST_PROXY never reached Fastify, so every client shared the proxy's bucket.
      expect((await from('203.0.113.2')).status).toBe(200);
      // A client-supplied entry left of the proxy's own does not pick the bucket.
      expect((await from('198.51.100.9, 203.0.113.1')).status).toBe(429);
    });
  });

  it('takes the address a hop count away, so a spoofed left-most entry changes nothing', async () => {
    await withWeb({ ...twoPerMinute, trustProxy: 1 }, async (bff) => {
      const from = (header: string) => post(bff, productQuery, { 'x-forwarded-for': header });
      expect((await from('10.9.9.9, 203.0.113.5')).status).toBe(200);
      expect((await from('10.9.9.8, 203.0.113.5')).status).toBe(200);
      expect((await from('10.9.9.7, 203.0.113.5')).status).toBe(429);
    });
  });

  it('is ignored without a trusted proxy: a spoofed header does not buy a new bucket', async () => {
    await withWeb(twoPerMinute, async (bff) => {
      expect((await post(bff, productQuery, { 'x-forwarded-for': '203.0.113.1' })).status).toBe(200);
      expect((await post(bff, productQuery, { 'x-forwarded-for': '203.0.113.2' })).status).toBe(200);
      expect((await post(bff, productQuery, { 'x-forwarded-for': '203.0.113.3' })).status).toBe(429);
      expect((await post(bff, productQuery)).status).toBe(429);
    });
  });

  it('refuses a trustProxy that is neither a flag, a hop count nor addresses, naming it', async () => {
    await expect(withWeb({ trustProxy: '10.0.0.0/99' }, async () => {})).rejects.toThrow(
      /trustProxy.*"10\.0\.0\.0\/99"/,
    );
    await expect(withWeb({ trustProxy: 'ingress.local' }, async () => {})).rejects.toThrow(
      /trustProxy.*"ingress\.local"/,
    );
  });
});

describe('TRUST_PROXY and the connection deadlines from the environment', () => {
  it('reach the server options, and a bad value names its variable', () => {
    const options = bffOptionsFromConfig(
      readBffConfig(4000, { TRUST_PROXY: '1', HEADERS_TIMEOUT_MS: '5000', REQUEST_TIMEOUT_MS: '20000' }),
    );
    expect(options.trustProxy).toBe('1');
    expect(options.connectionTimeouts).toMatchObject({
      headersMs: 5_000,
      requestMs: 20_000,
      keepAliveMs: 72_000,
    });
    expect(bffOptionsFromConfig(readBffConfig(4000, {})).trustProxy).toBe(false);
    expect(() => readBffConfig(4000, { TRUST_PROXY: 'yes please' })).toThrow(/TRUST_PROXY.*"yes please"/);
    expect(() => readBffConfig(4000, { HEADERS_TIMEOUT_MS: '40000', REQUEST_TIMEOUT_MS: '30000' })).toThrow(
      /headersMs \(40000\) must not exceed requestMs \(30000\)/,
    );
  });
});

describe('a request whose headers never finish', () => {
  it('is cut by the server soon after the headers deadline (regression: held 65 s)', {
    timeout: 30_000,
  }, async () => {
    const headersMs = 500;
    await withWeb(
      { connectionTimeouts: { headersMs, requestMs: 2_000, checkIntervalMs: 100 } },
      async (bff) => {
        const { hostname, port } = new URL(bff.url);
        const socket = connect(Number(port), hostname);
        await once(socket, 'connect');
        const started = Date.now();
        let received = '';
        socket.on('data', (chunk: Buffer) => {
          received += chunk.toString('latin1');
        });
        socket.on('error', () => {}); // a reset counts as closed too
        socket.write('POST /graphql HTTP/1.1\r\nHost: bff\r\nContent-Type: application/jso');
        await once(socket, 'close');
        // Generous: the deadline plus Node's checking interval plus a loaded machine.
        expect(Date.now() - started).toBeLessThan(headersMs + 10_000);
        if (received) expect(received).toMatch(/^HTTP\/1\.1 408/);
      },
    );
  });

  it('refuses a headers deadline past the request deadline, naming both', async () => {
    await expect(
      withWeb({ connectionTimeouts: { headersMs: 5_000, requestMs: 1_000 } }, async () => {}),
    ).rejects.toThrow(/headersMs \(5000\) must not exceed requestMs \(1000\)/);
  });
});

describe('sign-in budgets keyed on the account', () => {
  const login = (bff: RunningBff, email: string, address: string) =>
    post(bff, `mutation { login(email: ${JSON.stringify(email)}, password: "wrong") { expiresAt } }`, {
      'x-forwarded-for': address,
    });

  it('gives another spelling of the same email no fresh tries (regression: Grace@ got five more)', async () => {
    await withWeb({ trustProxy: '127.0.0.1' }, async (bff) => {
      for (let i = 0; i < 5; i++)
        expect(
          (await login(bff, 'grace@example.com', '203.0.113.7')).body.errors?.[0]?.extensions?.code,
        ).toBe('INVALID_CREDENTIALS');
      for (const variant of ['Grace@example.com', ' GRACE@EXAMPLE.COM', 'ｇｒａｃｅ@example.com']) {
        const refused = await login(bff, variant, '203.0.113.7');
        expect(refused.status, variant).toBe(429);
        expect(refused.body.errors?.[0]?.extensions).toMatchObject({
          code: 'RATE_LIMITED',
          retryAfter: expect.any(Number),
        });
      }
    });
  });

  it('limits one account across every client address', async () => {
    await withWeb({ trustProxy: '127.0.0.1' }, async (bff) => {
      // Ten addresses, one try each: the account's own budget (10 per 15 min) is spent.
      for (let i = 0; i < 10; i++)
        expect((await login(bff, 'ada@example.com', `198.51.100.${i + 1}`)).status).toBe(200);
      const stuffed = await login(bff, 'ADA@example.com', '198.51.100.200');
      expect(stuffed.status).toBe(429);
      expect(stuffed.body.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', limit: 10 });
      // Another account from a fresh address is served.
      expect((await login(bff, 'grace@example.com', '198.51.100.201')).status).toBe(200);
    });
  });
});

describe('access tokens issued in the future', () => {
  const future = async (audience: string, issuer: string) => {
    const now = Math.floor(Date.now() / 1000);
    const { privateKey } = await generateKeyPair('ES256');
    // Signed with a throwaway key: in gateway mode only the claims are read.
    return new SignJWT({ roles: ['customer'] })
      .setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
      .setIssuer(issuer)
      .setAudience(audience)
      .setSubject('0a1d2a9e-5a3c-4c1e-9d0a-000000000ada')
      .setIssuedAt(now + 3_600)
      .setExpirationTime(now + 7_200)
      .sign(privateKey);
  };

  it('are refused with 401 UNAUTHENTICATED in gateway mode (regression: accepted)', async () => {
    await withWeb({ auth: { mode: 'gateway' } }, async (bff) => {
      const token = await future('web', 'urn:bff:identity');
      const response = await post(bff, '{ viewer { id } }', { authorization: `Bearer ${token}` });
      expect(response.status).toBe(401);
      expect(response.body.errors?.[0]?.extensions).toMatchObject({
        code: 'UNAUTHENTICATED',
        reason: 'invalid',
      });
    });
  });
});
