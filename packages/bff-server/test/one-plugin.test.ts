// asOnePlugin: several Apollo plugins as one request listener must behave exactly as the plugins
// did side by side: the same hooks called in the same order with the same outcome. Checked over
// generated sets of plugins (which hooks each has, how long each takes, which ones throw or
// answer) against a real ApolloServer, and on the cases that matter by hand.
import {
  ApolloServer,
  type ApolloServerPlugin,
  type GraphQLRequestListener,
  HeaderMap,
} from '@apollo/server';
import fc from 'fast-check';
import { GraphQLError } from 'graphql';
import { describe, expect, it } from 'vitest';
import { asOnePlugin } from '../src/one-plugin.ts';

const typeDefs = 'type Query { hello: String }';
const resolvers = { Query: { hello: () => 'world' } };

type Timing = 'sync' | 'tick' | 'immediate';
type Outcome = 'ok' | 'throw' | 'answer';
interface HookSpec {
  timing: Timing;
  outcome: Outcome;
}
interface PluginSpec {
  startTiming: Timing;
  listener: boolean;
  didResolveOperation?: HookSpec | undefined;
  responseForOperation?: HookSpec | undefined;
  willSendResponse?: HookSpec | undefined;
  didEncounterErrors?: HookSpec | undefined;
}

const wait = (timing: Timing) =>
  timing === 'sync'
    ? undefined
    : timing === 'tick'
      ? Promise.resolve()
      : new Promise<void>((resolve) => setImmediate(resolve));

/** A plugin that does what its spec says and writes each hook's start and end into `log`. */
function pluginOf(spec: PluginSpec, index: number, log: string[]): ApolloServerPlugin {
  const hook = (name: string, hookSpec: HookSpec) => async (): Promise<never | undefined> => {
    log.push(`${index}:${name}:start`);
    await wait(hookSpec.timing);
    log.push(`${index}:${name}:end`);
    if (hookSpec.outcome === 'throw')
      throw new GraphQLError(`plugin ${index} refused in ${name}`, {
        extensions: { code: 'REFUSED', http: { status: 400 } },
      });
    if (hookSpec.outcome === 'answer' && name === 'responseForOperation')
      return {
        http: { headers: new HeaderMap() },
        body: { kind: 'single', singleResult: { data: { hello: `from ${index}` } } },
      } as never;
    return name === 'responseForOperation' ? (null as never) : undefined;
  };
  return {
    async requestDidStart() {
      log.push(`${index}:requestDidStart:start`);
      await wait(spec.startTiming);
      log.push(`${index}:requestDidStart:end`);
      if (!spec.listener) return;
      const listener: Record<string, unknown> = {};
      for (const name of [
        'didResolveOperation',
        'responseForOperation',
        'willSendResponse',
        'didEncounterErrors',
      ] as const) {
        const hookSpec = spec[name];
        if (hookSpec) listener[name] = hook(name, hookSpec);
      }
      return listener as GraphQLRequestListener<never>;
    },
  };
}

const timing = fc.constantFrom<Timing>('sync', 'tick', 'immediate');
const hookSpec = (outcomes: Outcome[]) =>
  fc.option(fc.record({ timing, outcome: fc.constantFrom(...outcomes) }), { nil: undefined });
const pluginSpec: fc.Arbitrary<PluginSpec> = fc.record({
  startTiming: timing,
  listener: fc.boolean(),
  didResolveOperation: hookSpec(['ok', 'ok', 'throw']),
  responseForOperation: hookSpec(['ok', 'answer']),
  willSendResponse: hookSpec(['ok']),
  didEncounterErrors: hookSpec(['ok']),
});

async function run(plugins: (log: string[]) => ApolloServerPlugin[], query: string) {
  const log: string[] = [];
  const server = new ApolloServer({ typeDefs, resolvers, plugins: plugins(log) });
  await server.start();
  try {
    const response = await server.executeOperation({ query }).catch((error: Error) => error);
    // What had happened when the answer came: a hook still running when another's rejection
    // ended the request finishes later, under either arrangement, at a moment neither promises.
    const seen = [...log];
    return response instanceof Error
      ? { log: seen, thrown: response.message }
      : { log: seen, body: JSON.stringify(response.body), status: response.http.status };
  } finally {
    await server.stop();
  }
}

describe('asOnePlugin', () => {
  it('behaves as the plugins side by side: the same hooks, in the same order, with the same answer', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(pluginSpec, { minLength: 1, maxLength: 5 }),
        fc.constantFrom('{ hello }', '{ nope }'),
        async (specs, query) => {
          const apart = await run((log) => specs.map((spec, i) => pluginOf(spec, i, log)), query);
          const together = await run(
            (log) => [asOnePlugin(specs.map((spec, i) => pluginOf(spec, i, log)))],
            query,
          );
          expect(together).toEqual(apart);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('serves the first listener that answers, asking no later one', async () => {
    const log: string[] = [];
    const specs: PluginSpec[] = [0, 1, 2].map((i) => ({
      startTiming: 'sync',
      listener: true,
      responseForOperation: { timing: 'tick', outcome: i === 0 ? 'ok' : 'answer' },
    }));
    const server = new ApolloServer({
      typeDefs,
      resolvers,
      plugins: [asOnePlugin(specs.map((spec, i) => pluginOf(spec, i, log)))],
    });
    await server.start();
    const response = await server.executeOperation({ query: '{ hello }' });
    await server.stop();
    expect(response.body).toMatchObject({ kind: 'single', singleResult: { data: { hello: 'from 1' } } });
    expect(log.filter((line) => line.includes('responseForOperation'))).toEqual([
      '0:responseForOperation:start',
      '0:responseForOperation:end',
      '1:responseForOperation:start',
      '1:responseForOperation:end',
    ]);
  });

  it('starts every listener of a hook before awaiting any, so one that waits holds none back', async () => {
    const log: string[] = [];
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const plugins: ApolloServerPlugin[] = [
      {
        async requestDidStart() {
          return {
            async didResolveOperation() {
              log.push('first waits');
              await held;
              log.push('first done');
            },
          };
        },
      },
      {
        async requestDidStart() {
          return {
            async didResolveOperation() {
              log.push('second runs');
              release();
            },
          };
        },
      },
    ];
    const server = new ApolloServer({ typeDefs, resolvers, plugins: [asOnePlugin(plugins)] });
    await server.start();
    const response = await server.executeOperation({ query: '{ hello }' });
    await server.stop();
    expect(log).toEqual(['first waits', 'second runs', 'first done']);
    expect(response.body).toMatchObject({ kind: 'single', singleResult: { data: { hello: 'world' } } });
  });

  it('passes on unexpectedErrorProcessingRequest to every plugin that has it', async () => {
    const told: number[] = [];
    const plugins: ApolloServerPlugin[] = [0, 1, 2].map((i) =>
      i === 1
        ? {}
        : {
            async unexpectedErrorProcessingRequest() {
              told.push(i);
            },
          },
    );
    await asOnePlugin(plugins).unexpectedErrorProcessingRequest?.({
      requestContext: {} as never,
      error: new Error('x'),
    });
    expect(told).toEqual([0, 2]);
  });

  it('refuses what it does not pass on: a server hook, or a listener with an execution hook', async () => {
    expect(() => asOnePlugin([{}, { async serverWillStart() {} }])).toThrow(/plugin 1 has serverWillStart/);
    const composed = asOnePlugin([
      {
        async requestDidStart() {
          return { async executionDidStart() {} };
        },
      },
    ]);
    await expect(composed.requestDidStart?.({} as never)).rejects.toThrow(/executionDidStart/);
  });
});
