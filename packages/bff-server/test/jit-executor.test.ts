// The graphql-jit gateway in process (Apollo's executeOperation): a fragment tower under a
// field runs on graphql-js instead of freezing the compiler, the compiled-document cache is
// bounded, a refused variable gets graphql-js's BAD_USER_INPUT, and graphql-jit's errors are
// rebuilt as graphql-js's would be, without formatting a stack trace per error.
import { ApolloServer } from '@apollo/server';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { GraphQLError, parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { asGraphQLError, expandedSelections, graphqlJsExecutor, jitGateway } from '../src/jit-executor.ts';

const schema = makeExecutableSchema({
  typeDefs: `type Query { viewer: User product(id: ID!): Product }
             type User { id: ID! name: String! }
             type Product { id: ID! name: String! }`,
  resolvers: {
    Query: {
      viewer: () => ({ id: 'u1', name: 'Ada' }),
      product: (_: unknown, { id }: { id: string }) => {
        if (id === 'down') throw new UpstreamDown();
        // Values a library might throw that are not Errors.
        if (id === 'number') throw 42;
        if (id === 'object') throw { code: 'X' };
        if (id === 'bare') throw Object.create(null);
        return { id, name: `Product ${id}` };
      },
    },
  },
});

/** An upstream failure as the clients raise it: counts how often its stack trace is read. */
class UpstreamDown extends Error {
  static stackReads = 0;
  readonly extensions = { code: 'UPSTREAM_UNAVAILABLE' };
  constructor() {
    super('product unavailable');
    const stack = this.stack;
    Object.defineProperty(this, 'stack', {
      get: () => {
        UpstreamDown.stackReads += 1;
        return stack;
      },
    });
  }
}

/** `levels` fragments on User, each spreading the next `spreads` times, under `viewer`. */
function towerUnderField(levels: number, spreads = 4): string {
  let source = '{ viewer { ...F0 } }';
  for (let i = 0; i < levels; i++) {
    source += ` fragment F${i} on User { ${i + 1 < levels ? `...F${i + 1} `.repeat(spreads) : 'id'} }`;
  }
  return source;
}

async function serverWith(gateway: ReturnType<typeof jitGateway>) {
  const server = new ApolloServer({ gateway });
  await server.start();
  return server;
}

describe('expandedSelections', () => {
  it('counts each spread in place, in linear time, and stops counting past the cap', () => {
    expect(expandedSelections(parse('{ viewer { id name } }'), 100)).toBe(3);
    expect(expandedSelections(parse(towerUnderField(3, 2)), 100)).toBe(1 + 4);
    // 4^39 copies of `id`: counted at once, reported as past the cap.
    expect(expandedSelections(parse(towerUnderField(40)), 5_000)).toBe(5_001);
  });
});

describe('jitGateway', () => {
  it('runs a fragment tower under a field on graphql-js, with the same answer', async () => {
    // 4^19 spreads of `id`: graphql-jit would expand every one while compiling.
    const server = await serverWith(jitGateway(schema));
    try {
      const response = await server.executeOperation({ query: towerUnderField(20) });
      expect(response.body.kind === 'single' && response.body.singleResult).toMatchObject({
        data: { viewer: { id: 'u1' } },
      });
    } finally {
      await server.stop();
    }
  });

  it('keeps at most maxCompiledDocuments compiled, however many distinct documents arrive', async () => {
    const gateway = jitGateway(schema, { maxCompiledDocuments: 10 });
    const server = await serverWith(gateway);
    try {
      for (let i = 0; i < 100; i++) {
        const response = await server.executeOperation({
          query: `{ a${i}: product(id: "p-${i}") { id name } }`,
        });
        expect(response.body.kind === 'single' && response.body.singleResult.data).toEqual({
          [`a${i}`]: { id: `p-${i}`, name: `Product p-${i}` },
        });
      }
      expect(gateway.compiledDocuments).toBe(10);
    } finally {
      await server.stop();
    }
    expect(() => jitGateway(schema, { maxCompiledDocuments: 0 })).toThrow(/maxCompiledDocuments.*received 0/);
  });

  it('answers a variable graphql-jit refuses with graphql-js’s BAD_USER_INPUT', async () => {
    const server = await serverWith(jitGateway(schema));
    try {
      const response = await server.executeOperation({
        query: 'query($id: ID!) { product(id: $id) { id } }',
        variables: { id: { not: 'an id' } },
      });
      expect(response.http.status).toBe(400);
      const result = response.body.kind === 'single' ? response.body.singleResult : undefined;
      expect(result?.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(result?.errors?.[0]?.message).toMatch(/^Variable "\$id" got invalid value/);
    } finally {
      await server.stop();
    }
  });

  it('answers a failing field with the error graphql-js would', async () => {
    const gateway = jitGateway(schema);
    const document = parse('query($a: ID!, $b: ID!) { a: product(id: $a) { id } b: product(id: $b) { id } }');
    const operation = document.definitions[0] as never;
    const run = (engine: 'jit' | 'graphql-js') =>
      (engine === 'jit' ? gateway.run : graphqlJsExecutor(schema))({
        document,
        operationName: null,
        operation,
        variables: { a: 'down', b: 'p1' },
        context: {},
      });
    const jit = await run('jit');
    const reference = await run('graphql-js');
    expect(jit.data).toEqual(reference.data);
    const [rebuilt] = jit.errors ?? [];
    const [expected] = reference.errors ?? [];
    expect(rebuilt).toBeInstanceOf(GraphQLError);
    expect(rebuilt?.toJSON()).toEqual(expected?.toJSON());
    expect(JSON.stringify(rebuilt)).toBe(JSON.stringify(expected));
    expect(Object.keys(rebuilt ?? {})).toEqual(Object.keys(expected ?? {}));
    expect(rebuilt?.name).toBe('GraphQLError');
    expect(rebuilt?.originalError).toBeInstanceOf(UpstreamDown);
    expect(expected?.originalError).toBeInstanceOf(UpstreamDown);
    expect(rebuilt?.stack).toBe(rebuilt?.originalError?.stack);
  });
});

describe('a thrown value that is not an Error', () => {
  it('is answered with a string message, as graphql-js would word it, and a readable stack', async () => {
    const gateway = jitGateway(schema);
    for (const [id, message] of [
      ['number', '42'],
      ['object', '[object Object]'],
      ['bare', 'Unexpected error value'],
    ] as const) {
      const document = parse(`{ product(id: "${id}") { id } }`);
      const result = await gateway.run({
        document,
        operationName: null,
        operation: document.definitions[0] as never,
        variables: {},
        context: {},
      });
      const [error] = result.errors ?? [];
      expect(error?.message, id).toBe(message);
      expect(JSON.parse(JSON.stringify(error)).message, id).toBe(message);
      expect(String(error), id).toContain(message);
      // A stack to read where one can be written (never a throw from reading it).
      expect(id === 'bare' ? error?.stack : typeof error?.stack, id).toBe(
        id === 'bare' ? undefined : 'string',
      );
    }
  });
});

describe('asGraphQLError', () => {
  it('keeps what a graphql-js error of the same parts has, and reads the original stack only when asked', () => {
    const original = new UpstreamDown();
    const jitError = new GraphQLError('product unavailable', {
      path: ['a', 0, 'b'],
      originalError: original,
    });
    UpstreamDown.stackReads = 0;
    const rebuilt = asGraphQLError(jitError);
    expect(UpstreamDown.stackReads).toBe(0);
    expect(rebuilt.toJSON()).toEqual({
      message: 'product unavailable',
      path: ['a', 0, 'b'],
      extensions: { code: 'UPSTREAM_UNAVAILABLE' },
    });
    expect(rebuilt.originalError).toBe(original);
    expect(Object.keys(rebuilt)).toEqual(['message', 'path', 'locations', 'extensions']);
    rebuilt.stack; // read on demand
    expect(UpstreamDown.stackReads).toBe(1);
    rebuilt.stack = 'replaced';
    expect(rebuilt.stack).toBe('replaced');
  });
});
