// Sign-in throttles: keys normalised the way Identity matches emails, a budget per account from
// every client, and a budget per client over every account.
import type { BffContext } from '@bff/resolvers';
import { makeExecutableSchema } from '@graphql-tools/schema';
import fc from 'fast-check';
import { type ExecutionResult, graphql } from 'graphql';
import { describe, expect, it } from 'vitest';
import {
  createRateLimiting,
  foldEmail,
  MemoryRateLimitStore,
  type RateLimitStore,
  RedisRateLimitStore,
  rateLimitDirectiveTypeDefs,
} from '../src/index.ts';

const loginSchema = (directives: string, argDirective = '@rateLimitKey(normalize: "email")') =>
  makeExecutableSchema({
    typeDefs: [
      rateLimitDirectiveTypeDefs,
      `type Query { ok: Boolean }
       type Mutation { login(email: String! ${argDirective}, password: String!): Boolean ${directives} }`,
    ],
    resolvers: { Mutation: { login: () => false } },
  });

const context = (clientAddress: string) => ({ viewer: null, clientAddress }) as unknown as BffContext;

function limitedLogin(store: RateLimitStore, directives: string, keyPrefix = 'test:web') {
  const limiting = createRateLimiting({ store, keyPrefix });
  const schema = limiting.transformSchema(loginSchema(directives));
  return (email: string, clientAddress = '198.51.100.7') =>
    graphql({
      schema,
      source: 'mutation($email: String!) { login(email: $email, password: "wrong") }',
      variableValues: { email },
      contextValue: context(clientAddress),
    });
}

const refused = (result: ExecutionResult) => result.errors?.[0]?.extensions?.code === 'RATE_LIMITED';

/** Another spelling of `email` that Identity (`lower(email) = lower($1)`) or a client's keyboard makes the same. */
const spellingOf = (email: string) =>
  fc
    .record({
      cases: fc.array(fc.boolean(), { minLength: email.length, maxLength: email.length }),
      form: fc.constantFrom('NFC', 'NFD', 'NFKC', 'NFKD'),
      fullWidth: fc.boolean(),
      before: fc.constantFrom('', ' ', '  ', '\t', '\u00a0', '\u3000', '\u200b'),
      after: fc.constantFrom('', ' ', '\n', '\u00a0', '\ufeff'),
    })
    .map(({ cases, form, fullWidth, before, after }) => {
      let text = [...email].map((c, i) => (cases[i] ? c.toUpperCase() : c.toLowerCase())).join('');
      // Full-width forms (U+FF01–FF5E) are what an IME types for ASCII.
      if (fullWidth)
        text = text.replace(/[!-~]/g, (c) => String.fromCharCode((c.codePointAt(0) as number) + 0xfee0));
      return `${before}${text.normalize(form as 'NFC')}${after}`;
    });

describe('identity arguments normalised like Identity matches them', () => {
  it('spends one budget for every spelling of an email (regression: Grace@ got five more tries)', async () => {
    const login = limitedLogin(
      new MemoryRateLimitStore(),
      '@rateLimit(max: 5, window: "5m", identityArgs: ["email"])',
    );
    for (let i = 0; i < 5; i++) expect(refused(await login('grace@example.com'))).toBe(false);
    expect(refused(await login('Grace@example.com'))).toBe(true);
    expect(refused(await login(' GRACE@EXAMPLE.COM '))).toBe(true);
    expect(refused(await login('ada@example.com'))).toBe(false);
  });

  it('refuses any spelling once the canonical email has spent its budget', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc
          .constantFrom(
            'grace@example.com',
            'zoë.müller@example.de',
            'straße@example.at',
            'İlkay@example.com',
          )
          .chain((email) => fc.tuple(fc.constant(email), spellingOf(email))),
        async ([email, variant]) => {
          const store = new MemoryRateLimitStore();
          try {
            const login = limitedLogin(store, '@rateLimit(max: 2, window: "1m", identityArgs: ["email"])');
            await login(email);
            await login(email);
            expect(refused(await login(variant)), JSON.stringify(variant)).toBe(true);
          } finally {
            await store.close();
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('folds any two strings JavaScript lower-cases alike (as PostgreSQL lower() does) to one key', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', maxLength: 24 }),
        fc.array(fc.boolean(), { minLength: 1 }),
        (text, cases) => {
          const flipped = [...text]
            .map((c, i) => (cases[i % cases.length] ? c.toUpperCase() : c.toLowerCase()))
            .join('');
          expect(foldEmail(flipped)).toBe(foldEmail(text));
          expect(foldEmail(text.normalize('NFD'))).toBe(foldEmail(text.normalize('NFC')));
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('keeps different accounts apart', () => {
    expect(foldEmail('grace@example.com')).not.toBe(foldEmail('grace@example.org'));
    expect(foldEmail('ada@example.com')).not.toBe(foldEmail('adam@example.com'));
  });

  it('names an unknown normaliser, and a bad custom one, at start-up', () => {
    const limiting = createRateLimiting({ store: new MemoryRateLimitStore(), keyPrefix: 't' });
    expect(() =>
      limiting.transformSchema(
        loginSchema('@rateLimit(max: 1, identityArgs: ["email"])', '@rateLimitKey(normalize: "lowercase")'),
      ),
    ).toThrow(/Mutation\.login\(email\): normalize .* received "lowercase"/);
    expect(() =>
      createRateLimiting({
        store: new MemoryRateLimitStore(),
        keyPrefix: 't',
        normalizers: { lower: 'yes' as never },
      }),
    ).toThrow(/normalizers .*"lower": string/);
  });

  it('uses a custom normaliser given by name', async () => {
    const store = new MemoryRateLimitStore();
    const limiting = createRateLimiting({
      store,
      keyPrefix: 't',
      normalizers: { domainOnly: (value) => value.split('@')[1] ?? value },
    });
    const schema = limiting.transformSchema(
      loginSchema('@rateLimit(max: 1, identityArgs: ["email"])', '@rateLimitKey(normalize: "domainOnly")'),
    );
    const run = (email: string) =>
      graphql({
        schema,
        source: `mutation { login(email: "${email}", password: "x") }`,
        contextValue: context('a'),
      });
    expect(refused(await run('a@example.com'))).toBe(false);
    expect(refused(await run('b@example.com'))).toBe(true);
  });

  it('keeps the email out of the store key', async () => {
    const keys: string[] = [];
    const memory = new MemoryRateLimitStore();
    const spy: RateLimitStore = {
      hit: (key, windowMs, count, max) => {
        keys.push(key);
        return memory.hit(key, windowMs, count, max);
      },
      close: () => memory.close(),
    };
    const login = limitedLogin(
      spy,
      '@rateLimit(max: 5, identityArgs: ["email"]) @credentialRateLimit(accountArgs: ["email"])',
    );
    await login('grace@example.com');
    expect(keys).toHaveLength(3);
    for (const key of keys) {
      expect(key.startsWith('test:web:')).toBe(true);
      expect(key).not.toContain('grace');
    }
  });
});

describe('a client past its sign-in budget', () => {
  it('records nothing per email: it cannot grow the store or spend the accounts it names', async () => {
    const keys = new Set<string>();
    const memory = new MemoryRateLimitStore();
    const spy: RateLimitStore = {
      hit: (key, windowMs, count, max) => {
        keys.add(key);
        return memory.hit(key, windowMs, count, max);
      },
      close: () => memory.close(),
    };
    const login = limitedLogin(
      spy,
      '@rateLimit(max: 5, identityArgs: ["email"]) @credentialRateLimit(accountArgs: ["email"], perClientMax: 3)',
    );
    for (let i = 0; i < 3; i++) expect(refused(await login(`user${i}@example.com`))).toBe(false);
    const before = keys.size;
    for (let i = 3; i < 203; i++) expect(refused(await login(`user${i}@example.com`))).toBe(true);
    // Only the client's own key was consulted for the 200 refused attempts.
    expect(keys.size).toBe(before);
    // And an account it named while refused keeps its whole budget for another client.
    expect(refused(await login('user100@example.com', '203.0.113.9'))).toBe(false);
    await memory.close();
  });
});

describe('@credentialRateLimit', () => {
  it('limits one account across every client address (credential stuffing)', async () => {
    const login = limitedLogin(
      new MemoryRateLimitStore(),
      '@credentialRateLimit(accountArgs: ["email"], perAccountMax: 3, perAccountWindow: "10m", perClientMax: 100)',
    );
    for (let i = 0; i < 3; i++)
      expect(refused(await login('grace@example.com', `203.0.113.${i}`))).toBe(false);
    const fourth = await login('GRACE@example.com', '203.0.113.99');
    expect(fourth.errors?.[0]?.extensions).toMatchObject({
      code: 'RATE_LIMITED',
      limit: 3,
      windowSeconds: 600,
      retryAfter: expect.any(Number),
    });
    const retryAfter = fourth.errors?.[0]?.extensions?.retryAfter as number;
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(600);
    // Another account from a fresh address is untouched.
    expect(refused(await login('ada@example.com', '203.0.113.100'))).toBe(false);
  });

  it('limits one client address across every account (password spraying)', async () => {
    const login = limitedLogin(
      new MemoryRateLimitStore(),
      '@credentialRateLimit(accountArgs: ["email"], perAccountMax: 100, perClientMax: 4, perClientWindow: "1m")',
    );
    for (let i = 0; i < 4; i++)
      expect(refused(await login(`user${i}@example.com`, '198.51.100.1'))).toBe(false);
    const sprayed = await login('someone-else@example.com', '198.51.100.1');
    expect(sprayed.errors?.[0]?.extensions).toMatchObject({
      code: 'RATE_LIMITED',
      limit: 4,
      windowSeconds: 60,
    });
    expect(refused(await login('someone-else@example.com', '198.51.100.2'))).toBe(false);
  });

  it('applies the documented defaults when no numbers are given', async () => {
    const login = limitedLogin(new MemoryRateLimitStore(), '@credentialRateLimit(accountArgs: ["email"])');
    for (let i = 0; i < 10; i++) expect(refused(await login('grace@example.com', `10.0.0.${i}`))).toBe(false);
    const eleventh = await login('grace@example.com', '10.0.0.200');
    expect(eleventh.errors?.[0]?.extensions).toMatchObject({ limit: 10, windowSeconds: 900 });
  });

  it('names a bad account argument or budget at start-up', () => {
    const limiting = createRateLimiting({ store: new MemoryRateLimitStore(), keyPrefix: 't' });
    expect(() =>
      limiting.transformSchema(loginSchema('@credentialRateLimit(accountArgs: ["username"])')),
    ).toThrow(/Mutation\.login: accountArgs .* received \["username"\]/);
    expect(() =>
      limiting.transformSchema(loginSchema('@credentialRateLimit(accountArgs: ["email"], perClientMax: 0)')),
    ).toThrow(/@credentialRateLimit perClient on Mutation\.login: max .* received 0/);
    expect(() =>
      limiting.transformSchema(
        loginSchema('@credentialRateLimit(accountArgs: ["email"], perAccountWindow: "a while")'),
      ),
    ).toThrow(/perAccount on Mutation\.login: window .* "a while"/);
  });

  it('shares the account budget between replicas sharing a store', async () => {
    const store = new MemoryRateLimitStore();
    const directives = '@credentialRateLimit(accountArgs: ["email"], perAccountMax: 2)';
    const one = limitedLogin(store, directives);
    const two = limitedLogin(store, directives);
    await one('grace@example.com', '192.0.2.1');
    await two('Grace@Example.com', '192.0.2.2');
    expect(refused(await one('grace@example.com ', '192.0.2.3'))).toBe(true);
    expect(refused(await two('grace@example.com', '192.0.2.4'))).toBe(true);
  });
});

const redisUrl = process.env.REDIS_URL;
const redis = redisUrl ? new RedisRateLimitStore({ url: redisUrl, timeoutMs: 1_000 }) : undefined;
const redisUp = redis ? await redis.ready(2_000) : false;
if (!redisUp) await redis?.close();

describe.runIf(redisUp)('in Redis, shared by replicas', () => {
  it('refuses the account on a second replica once the first has spent its budget', async () => {
    const prefix = `t${Math.random().toString(36).slice(2, 10)}:web`;
    const second = new RedisRateLimitStore({ url: redisUrl as string, timeoutMs: 1_000 });
    try {
      await second.ready(2_000);
      const directives = '@credentialRateLimit(accountArgs: ["email"], perAccountMax: 2, perClientMax: 50)';
      const one = limitedLogin(redis as RedisRateLimitStore, directives, prefix);
      const two = limitedLogin(second, directives, prefix);
      expect(refused(await one('grace@example.com', '192.0.2.1'))).toBe(false);
      expect(refused(await two('GRACE@example.com', '192.0.2.2'))).toBe(false);
      const third = await one('\u00a0grace@EXAMPLE.com', '192.0.2.3');
      expect(third.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', limit: 2 });
    } finally {
      await second.close();
      await redis?.close();
    }
  });
});
