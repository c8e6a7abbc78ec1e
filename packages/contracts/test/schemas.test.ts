// The REST contracts as the services use them: each request schema on a route of the shared
// HTTP service (same Ajv settings: no coercion, extra fields refused), fed what the clients
// send (accepted) and what a hostile or buggy caller might send (400 BAD_REQUEST). The types
// derived from the schemas are checked too (by `pnpm typecheck`).
import { randomUUID } from 'node:crypto';
import { createHttpService } from '@bff/http-service';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import {
  accountsQuerySchema,
  BILLING_MAX_BATCH,
  IDENTITY_AUDIENCE_PATTERN,
  IDENTITY_MAX_BATCH,
  type InvoicesQuery,
  invoiceParamsSchema,
  invoicesQuerySchema,
  type PurchaseRequest,
  purchaseRequestSchema,
  type RegisterUserRequest,
  registerUserRequestSchema,
  type TokenRequest,
  tokenRequestSchema,
  userParamsSchema,
  usersQuerySchema,
} from '../src/index.ts';

let app: ReturnType<typeof createHttpService>;
beforeAll(async () => {
  app = createHttpService({ name: 'contracts', logLevel: false });
  const echo = async (request: { body?: unknown; query?: unknown; params?: unknown }) => ({
    body: request.body ?? null,
    query: request.query,
    params: request.params,
  });
  app.post('/token', { schema: { body: tokenRequestSchema } }, echo);
  app.post('/users', { schema: { body: registerUserRequestSchema } }, echo);
  app.get('/users/:id', { schema: { params: userParamsSchema } }, echo);
  app.get('/users', { schema: { querystring: usersQuerySchema } }, echo);
  app.post('/purchases', { schema: { body: purchaseRequestSchema } }, echo);
  app.get('/invoices', { schema: { querystring: invoicesQuerySchema } }, echo);
  app.post('/invoices/:id/pay', { schema: { params: invoiceParamsSchema } }, echo);
  app.get('/accounts', { schema: { querystring: accountsQuerySchema } }, echo);
  await app.ready();
});
afterAll(async () => {
  await app?.close();
});

const post = (url: string, payload: unknown) =>
  app.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/json' },
    payload: JSON.stringify(payload),
  });
const get = (url: string) => app.inject({ method: 'GET', url });
const query = (params: Record<string, string>) => new URLSearchParams(params).toString();

async function expectAccepted(response: Awaited<ReturnType<typeof get>>, what: string) {
  expect(response.statusCode, `${what}: ${response.body}`).toBe(200);
}
async function expectRefused(response: Awaited<ReturnType<typeof get>>, what: string) {
  expect(response.statusCode, what).toBe(400);
  expect((response.json() as { error: { code: string } }).error.code, what).toBe('BAD_REQUEST');
}

const CONTROLS = ['\u0000', '\u0007', '\n', '\u001f', '\u007f', '\u0085', '\u009f'];

describe('tokenRequestSchema (POST /v1/token)', () => {
  const valid = { email: 'ada@example.com', password: 'demo-password', audience: 'ios' };

  it('accepts the credentials a client sends, for any app name as the audience', async () => {
    // Which audiences are issued is Identity's configuration; the contract takes any app name.
    for (const audience of ['web', 'ios', 'android', 'partner-portal', 'a', `a${'b'.repeat(31)}`]) {
      await expectAccepted(await post('/token', { ...valid, audience }), audience);
    }
    // Any text may be tried as an email: a wrong one is Identity's 401, not a 400.
    await expectAccepted(await post('/token', { ...valid, email: 'not an email' }), 'free-form email');
  });

  it('refuses what the lookup cannot hold or the audience list does not name', async () => {
    const refusals: [string, unknown][] = [
      ['an audience in capitals', { ...valid, audience: 'IOS' }],
      ['an empty audience', { ...valid, audience: '' }],
      ['an audience past 32 characters', { ...valid, audience: `a${'b'.repeat(32)}` }],
      ['an audience starting with a digit', { ...valid, audience: '1app' }],
      ['an audience with a space', { ...valid, audience: 'web app' }],
      ['an audience with a trailing newline', { ...valid, audience: 'web\n' }],
      ['several audiences', { ...valid, audience: ['web', 'ios'] }],
      ['no password', { email: valid.email, audience: 'web' }],
      ['an empty email', { ...valid, email: '' }],
      ['an empty password', { ...valid, password: '' }],
      ['an email past 254 characters', { ...valid, email: `${'a'.repeat(243)}@example.com` }],
      ['a password past 128 characters', { ...valid, password: 'p'.repeat(129) }],
      ['a password as a number', { ...valid, password: 12345678 }],
      ['an extra field', { ...valid, scope: 'admin' }],
      ...CONTROLS.map((c): [string, unknown] => [
        `an email with U+${c.charCodeAt(0).toString(16)}`,
        { ...valid, email: `ada${c}@example.com` },
      ]),
    ];
    for (const [what, body] of refusals) await expectRefused(await post('/token', body), what);
  });
});

describe('registerUserRequestSchema (POST /v1/users)', () => {
  const valid = { email: 'new.user@example.com', password: 'long-enough', name: 'New User' };

  it('accepts a registration, with or without an https avatar', async () => {
    await expectAccepted(await post('/users', valid), 'plain');
    await expectAccepted(
      await post('/users', { ...valid, avatarUrl: 'https://cdn.example.com/a.png?size=2' }),
      'avatar',
    );
    await expectAccepted(await post('/users', { ...valid, name: 'Zoë Ångström-Ñúñez' }), 'non-ASCII name');
  });

  it('refuses malformed fields and any field a caller could use to raise its privileges', async () => {
    const refusals: [string, unknown][] = [
      ['roles chosen by the caller', { ...valid, roles: ['admin'] }],
      ['an id chosen by the caller', { ...valid, id: 'u-1' }],
      ['an email without @', { ...valid, email: 'new.example.com' }],
      ['an email without a dot after @', { ...valid, email: 'new@example' }],
      ['an email with a space', { ...valid, email: 'new user@example.com' }],
      ['an email with two @', { ...valid, email: 'a@b@example.com' }],
      ['a password of 7 characters', { ...valid, password: '1234567' }],
      ['an empty name', { ...valid, name: '' }],
      ['a name past 100 characters', { ...valid, name: 'n'.repeat(101) }],
      ['an http avatar', { ...valid, avatarUrl: 'http://cdn.example.com/a.png' }],
      ['a javascript: avatar', { ...valid, avatarUrl: 'javascript:alert(1)' }],
      ['an avatar with a space', { ...valid, avatarUrl: 'https://cdn.example.com/a b.png' }],
      ['an avatar past 2000 characters', { ...valid, avatarUrl: `https://x.example/${'a'.repeat(2_000)}` }],
      ['a null avatar', { ...valid, avatarUrl: null }],
      ...CONTROLS.flatMap((c): [string, unknown][] => [
        [`a name with U+${c.charCodeAt(0).toString(16)}`, { ...valid, name: `New${c}User` }],
        [`an email with U+${c.charCodeAt(0).toString(16)}`, { ...valid, email: `new${c}@example.com` }],
        [
          `an avatar with U+${c.charCodeAt(0).toString(16)}`,
          { ...valid, avatarUrl: `https://x.example/${c}` },
        ],
      ]),
    ];
    for (const [what, body] of refusals) await expectRefused(await post('/users', body), what);
  });
});

describe('purchaseRequestSchema (POST /v1/purchases)', () => {
  const valid = { userId: randomUUID(), productId: 'p-0042', quantity: 3 };

  it('accepts a purchase, quantities 1 to 1000', async () => {
    for (const quantity of [1, 3, 1_000]) {
      await expectAccepted(await post('/purchases', { ...valid, quantity }), `quantity ${quantity}`);
    }
  });

  it('refuses quantities out of range or not whole, strings for numbers, and bad product ids', async () => {
    const refusals: [string, unknown][] = [
      ['quantity 0', { ...valid, quantity: 0 }],
      ['quantity -1', { ...valid, quantity: -1 }],
      ['quantity 1001', { ...valid, quantity: 1_001 }],
      ['quantity 1.5', { ...valid, quantity: 1.5 }],
      ['quantity "3"', { ...valid, quantity: '3' }],
      ['no quantity', { userId: valid.userId, productId: valid.productId }],
      ['an empty product id', { ...valid, productId: '' }],
      ['a product id past 64 characters', { ...valid, productId: 'p'.repeat(65) }],
      ['a product id with NUL', { ...valid, productId: 'p-\u00000042' }],
      ['a product id with DEL', { ...valid, productId: 'p-\u007f' }],
      ['a user id past 64 characters', { ...valid, userId: 'u'.repeat(65) }],
      ['a price chosen by the caller', { ...valid, unitPriceMinor: 1 }],
    ];
    for (const [what, body] of refusals) await expectRefused(await post('/purchases', body), what);
  });
});

describe('invoicesQuerySchema (GET /v1/invoices)', () => {
  it('accepts the queries the billing client builds: a user’s page, or ids', async () => {
    await expectAccepted(await get(`/invoices?${query({ userId: randomUUID(), first: '20' })}`), 'page');
    await expectAccepted(
      await get(`/invoices?${query({ userId: randomUUID(), first: '1', after: 'MjAyNC0x_-Q' })}`),
      'next page',
    );
    await expectAccepted(await get(`/invoices?ids=${[randomUUID(), randomUUID()].join(',')}`), 'ids');
  });

  it('keeps every parameter a string (numbers are digit patterns, parsed by the route)', async () => {
    const response = await get(`/invoices?${query({ userId: 'u', first: '0020' })}`);
    expect((response.json() as { query: unknown }).query).toEqual({ userId: 'u', first: '0020' });
  });

  it('refuses malformed paging, empty ids and unknown parameters', async () => {
    const refusals: [string, string][] = [
      ['first as words', query({ userId: 'u', first: 'ten' })],
      ['first of five digits', query({ userId: 'u', first: '12345' })],
      ['a negative first', query({ userId: 'u', first: '-1' })],
      ['an empty first', query({ userId: 'u', first: '' })],
      ['first given twice', 'userId=u&first=1&first=2'],
      ['a cursor with other characters', query({ userId: 'u', after: 'abc=' })],
      ['a cursor with a slash', query({ userId: 'u', after: '../x' })],
      ['a cursor past 200 characters', query({ userId: 'u', after: 'c'.repeat(201) })],
      ['empty ids', query({ ids: '' })],
      ['a user id past 64 characters', query({ userId: 'u'.repeat(65) })],
      ['an unknown parameter', query({ userId: 'u', limit: '5' })],
    ];
    for (const [what, search] of refusals) await expectRefused(await get(`/invoices?${search}`), what);
  });
});

describe('accountsQuerySchema (GET /v1/accounts)', () => {
  it('requires userIds and nothing else', async () => {
    await expectAccepted(await get(`/accounts?userIds=${randomUUID()}`), 'one user');
    await expectRefused(await get('/accounts'), 'no userIds');
    await expectRefused(await get('/accounts?userIds='), 'empty userIds');
    await expectRefused(await get(`/accounts?userIds=${randomUUID()}&currency=EUR`), 'extra parameter');
  });
});

describe('usersQuerySchema (GET /v1/users)', () => {
  it('requires ids and nothing else', async () => {
    await expectAccepted(await get(`/users?ids=${randomUUID()}`), 'one user');
    await expectRefused(await get('/users'), 'no ids');
    await expectRefused(await get(`/users?ids=${randomUUID()}&fields=email`), 'extra parameter');
  });
});

describe('id parameters and batches', () => {
  it('refuses an id past 64 characters in a path', async () => {
    await expectAccepted(await get(`/users/${'u'.repeat(64)}`), '64 characters');
    await expectRefused(await get(`/users/${'u'.repeat(65)}`), 'user id');
    expect((await post(`/invoices/${'i'.repeat(64)}/pay`, {})).statusCode).toBe(200);
    await expectRefused(await post(`/invoices/${'i'.repeat(65)}/pay`, {}), 'invoice id');
  });

  it('lets a full batch of UUIDs through each comma-separated list, and refuses an oversized list', async () => {
    const ids = (n: number) => Array.from({ length: n }, () => randomUUID()).join(',');
    await expectAccepted(await get(`/users?ids=${ids(IDENTITY_MAX_BATCH)}`), 'users batch');
    await expectAccepted(await get(`/invoices?ids=${ids(BILLING_MAX_BATCH)}`), 'invoices batch');
    await expectAccepted(await get(`/accounts?userIds=${ids(BILLING_MAX_BATCH)}`), 'accounts batch');
    // Past 4,000 characters the list is refused before the route splits it.
    await expectRefused(await get(`/users?ids=${ids(120)}`), 'users list too long');
    await expectRefused(await get(`/invoices?ids=${ids(120)}`), 'invoices list too long');
    await expectRefused(await get('/users?ids='), 'empty users list');
  });
});

describe('the types derived from the schemas', () => {
  it('match the schemas: required fields, numbers and optional paging', () => {
    expectTypeOf<TokenRequest>().toEqualTypeOf<{ email: string; password: string; audience: string }>();
    expectTypeOf<PurchaseRequest>().toEqualTypeOf<{ userId: string; productId: string; quantity: number }>();
    expectTypeOf<RegisterUserRequest>().toEqualTypeOf<{
      email: string;
      password: string;
      name: string;
      avatarUrl?: string;
    }>();
    expectTypeOf<InvoicesQuery>().toEqualTypeOf<{
      userId?: string;
      ids?: string;
      first?: string;
      after?: string;
    }>();
    expect(new RegExp(IDENTITY_AUDIENCE_PATTERN).test('ios')).toBe(true);
  });
});
