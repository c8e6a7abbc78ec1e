import type { GraphQLRequestListener } from '@apollo/server';
import type { FastifyRequest } from 'fastify';
import { buildSchema, parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { createFastRoute } from '../src/fast-route.ts';
import { graphqlJsExecutor } from '../src/jit-executor.ts';

const schema = buildSchema('type Query { hello: String, n(x: Int): Int } type Mutation { bump: Int }');

function route(options: { maxDocuments?: number; maxChars?: number } = {}) {
  return createFastRoute({
    schema,
    plugin: {},
    execute: graphqlJsExecutor(schema),
    formatError: undefined,
    includeStacktraceInErrorResponses: false,
    logger: console,
    cache: () => {
      throw new Error('not used');
    },
    ...options,
  });
}

/** Teaches the route a document as Apollo's pipeline would, after validating it. */
async function teach(fast: ReturnType<typeof route>, source: string, byHash?: string) {
  const listener = (await fast.learner.requestDidStart?.({} as never)) as GraphQLRequestListener<never>;
  await listener.didResolveOperation?.({
    request: byHash ? {} : { query: source },
    source,
    queryHash: byHash ?? `hash-of-${source}`,
    document: parse(source),
  } as never);
}

const post = (body: unknown, headers: Record<string, string> = {}) =>
  ({
    method: 'POST',
    url: '/graphql',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  }) as unknown as FastifyRequest;
const get = (search: string, headers: Record<string, string> = {}) =>
  ({ method: 'GET', url: `/graphql?${search}`, headers, body: undefined }) as unknown as FastifyRequest;

describe('the fast route', () => {
  it('names a bad bound', () => {
    expect(() => route({ maxDocuments: 0 })).toThrow(
      /maxDocuments must be a positive whole number, received 0/,
    );
    expect(() => route({ maxChars: 1.5 })).toThrow(/maxChars must be a positive whole number, received 1.5/);
  });

  it('takes a known document in the shapes clients send, and leaves everything else to Apollo', async () => {
    const fast = route();
    expect(fast.plan(post({ query: '{ hello }' }))).toBeUndefined();
    await teach(fast, '{ hello }');
    await teach(fast, 'mutation { bump }');
    expect(fast.plan(post({ query: '{ hello }' }))?.operation.operation).toBe('query');
    expect(fast.plan(post({ query: '{ hello }', variables: null, operationName: null }))).toBeDefined();
    expect(
      fast.plan(post({ query: '{ hello }' }, { 'content-type': 'application/json; charset=utf-8' })),
    ).toBeDefined();
    expect(fast.plan(get('query=%7B%20hello%20%7D', { 'apollo-require-preflight': 'true' }))).toBeDefined();
    // Apollo's to answer: its checks, its refusals, its negotiation.
    for (const request of [
      post({ query: '{ hello }' }, { 'content-type': 'text/plain' }),
      post({ query: '{ hello }' }, { 'content-type': 'application/json; charset=latin1' }),
      post({ query: '{ hello }' }, { accept: 'text/html' }),
      post({ query: '{ hello }', variables: '{}' }),
      post({ query: '{ hello }', variables: [] }),
      post({ query: '{ hello }', operationName: 1 }),
      post({ query: '{ hello }', operationName: 'Nope' }),
      // An empty name names no operation: Apollo refuses it, even once a nameless request was served.
      post({ query: '{ hello }', operationName: '' }),
      post({ query: '{ hello }', extensions: 'x' }),
      post([{ query: '{ hello }' }]),
      post({ query: '{  hello }' }),
      get('query=%7B%20hello%20%7D'),
      get('query=%7B%20hello%20%7D&query=%7B%20hello%20%7D', { 'apollo-require-preflight': 'true' }),
      get('query=%7B%20hello%20%7D&variables=%5B%5D', { 'apollo-require-preflight': 'true' }),
      get('query=mutation%20%7B%20bump%20%7D', { 'apollo-require-preflight': 'true' }),
    ]) {
      expect(fast.plan(request), JSON.stringify({ ...request, raw: undefined })).toBeUndefined();
    }
    expect(fast.plan(post({ query: 'mutation { bump }' }))?.operation.operation).toBe('mutation');
    // Stopping: everything goes to Apollo, which refuses it once stopped.
    fast.stop();
    expect(fast.plan(post({ query: '{ hello }' }))).toBeUndefined();
  });

  it('negotiates the answer type as Apollo does', async () => {
    const fast = route();
    await teach(fast, '{ hello }');
    const typeFor = (accept?: string) =>
      fast.plan(post({ query: '{ hello }' }, accept === undefined ? {} : { accept }))?.contentType;
    expect(typeFor()).toBe('application/json; charset=utf-8');
    expect(typeFor('')).toBe('application/json; charset=utf-8');
    expect(typeFor('*/*')).toBe('application/json; charset=utf-8');
    expect(typeFor('application/graphql-response+json')).toBe(
      'application/graphql-response+json; charset=utf-8',
    );
    // Nothing acceptable: Apollo's 406, so not the route's.
    expect(typeFor('application/json;q=0')).toBeUndefined();
    expect(typeFor('text/html')).toBeUndefined();
  });

  it('takes a persisted hash alone once Apollo has served it, never a registration', async () => {
    const fast = route();
    const extensions = { persistedQuery: { version: 1, sha256Hash: 'abc' } };
    expect(fast.plan(post({ extensions }))).toBeUndefined();
    await teach(fast, '{ hello }', 'abc');
    expect(fast.plan(post({ extensions }))?.byHash).toBe(true);
    expect(fast.plan(post({ query: '{ hello }', extensions }))).toBeUndefined();
    expect(
      fast.plan(post({ extensions: { persistedQuery: { version: 2, sha256Hash: 'abc' } } })),
    ).toBeUndefined();
    // The text alone was not taught: the hash and the text are known apart, as Apollo keys them.
    expect(fast.plan(post({ query: '{ hello }' }))).toBeUndefined();
  });

  it('keeps documents within its bounds, least recently used out first', async () => {
    const byCount = route({ maxDocuments: 2 });
    for (const source of ['{ hello }', '{ n }', '{ n(x: 1) }']) await teach(byCount, source);
    expect(byCount.knownDocuments).toBe(2);
    expect(byCount.plan(post({ query: '{ hello }' }))).toBeUndefined();
    expect(byCount.plan(post({ query: '{ n }' }))).toBeDefined();

    const byChars = route({ maxChars: 20 });
    await teach(byChars, '{ hello }'); // 9 characters
    await teach(byChars, '{ n(x: 1) }'); // 11: 20 in all
    expect(byChars.plan(post({ query: '{ hello }' }))).toBeDefined(); // now the most recent
    await teach(byChars, '{ n }'); // 5 more: the least recently used goes
    expect(byChars.plan(post({ query: '{ n(x: 1) }' }))).toBeUndefined();
    expect(byChars.plan(post({ query: '{ hello }' }))).toBeDefined();
    await teach(byChars, `{ ${'hello '.repeat(5)}}`); // longer than the whole budget: not kept
    expect(byChars.knownDocuments).toBe(2);
  });
});
