// The fast route (packages/bff-server/src/fast-route.ts) answers documents Apollo has already
// validated without Apollo's request pipeline. A differential: each app runs twice, with the
// route and without it (`fastRoute: false`), and generated requests (valid operations with wrong
// variables now and then, tokens good and bad, `Accept` and content types, GETs with and without
// a preflight header, persisted hashes with generated variables) go to both, each one twice (the
// first teaches the route its document, the second takes it). Every answer must match: status,
// the headers a client or cache reads, and the body byte for byte.
//
// Replay: FAST_ROUTE_SEED=<seed> pnpm vitest run test/apps/fast-route.property.test.ts
import { loadManifest } from '@bff/persisted-operations';
import type { AppName } from '@bff/resolvers';
import fc from 'fast-check';
import {
  buildClientSchema,
  getIntrospectionQuery,
  type IntrospectionQuery,
  Kind,
  type OperationDefinitionNode,
  parse,
} from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HostileRequest, hostileValueArb, validOperationArb } from '../support/hostile-arbitraries.ts';
import {
  appNames,
  persistedOperationApps,
  type System,
  startApp,
  startSystem,
  type TestApp,
} from '../support/system.ts';

const SEED = Number(process.env.FAST_ROUTE_SEED ?? 20_261_130);
const RUNS = Number(process.env.FAST_ROUTE_RUNS ?? 40);
console.info(
  `fast route differential: seed ${SEED} (FAST_ROUTE_SEED replays it), ${RUNS} runs per app and mode`,
);

/** The headers compared: what a client, a browser or a cache in between reads. */
const COMPARED_HEADERS = [
  'content-type',
  'cache-control',
  'vary',
  'allow',
  'ratelimit-limit',
  'ratelimit-remaining',
  'retry-after',
  'set-cookie',
  'www-authenticate',
];

interface Reply {
  status: number;
  headers: Record<string, string | null>;
  body: string;
}

async function sendTo(url: string, request: HostileRequest): Promise<Reply> {
  const response = await fetch(`${url}/graphql${request.search === undefined ? '' : `?${request.search}`}`, {
    method: request.method,
    headers: request.headers,
    ...(request.body === undefined ? {} : { body: request.body }),
    signal: AbortSignal.timeout(15_000),
  });
  const headers: Record<string, string | null> = {};
  for (const name of COMPARED_HEADERS) headers[name] = response.headers.get(name);
  // The remaining max age of a cached answer counts whole seconds: two servers may be a second apart.
  headers['cache-control'] = headers['cache-control']?.replace(/max-age=\d+/, 'max-age=N') ?? null;
  headers.age = response.headers.has('age') ? 'present' : null;
  return { status: response.status, headers, body: await response.text() };
}

let system: System;
const tokens: Partial<Record<AppName, string>> = {};
beforeAll(async () => {
  system = await startSystem();
  for (const app of appNames) tokens[app] = await system.token('ada@example.com', app);
});
afterAll(async () => {
  await system?.close();
});

describe.each(appNames)('the %s BFF, with and without the fast route', (app) => {
  describe.each(['production', 'development'] as const)('in %s', (mode) => {
    let fast: TestApp;
    let apollo: TestApp;
    beforeAll(async () => {
      const common = {
        production: mode === 'production',
        graphiql: false,
        // One client address sends everything: the default limit would refuse most of it.
        rateLimit: { defaults: { max: 1_000_000, window: '1m' } },
      };
      [fast, apollo] = await Promise.all([
        startApp(app, system, common),
        startApp(app, system, { ...common, fastRoute: false }),
      ]);
    }, 60_000);
    afterAll(async () => {
      await Promise.all([fast?.close(), apollo?.close()]);
    });

    it('answers generated requests as Apollo does, byte for byte', async () => {
      const introspection = await fetch(`${mode === 'production' ? await devUrl(app) : fast.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: getIntrospectionQuery() }),
      });
      const schema = buildClientSchema(((await introspection.json()) as { data: IntrospectionQuery }).data);
      const manifestPath = persistedOperationApps.find((candidate) => candidate.name === app)?.manifestPath;
      const manifest = manifestPath ? await loadManifest(manifestPath) : undefined;
      const persisted = (manifest?.operations ?? []).map((operation) => ({
        id: operation.id,
        variables: variableNames(operation.body),
      }));
      const token = tokens[app] as string;

      /** Mostly what clients send (so that the route is taken), now and then something else. */
      const usually = <T>(usual: T, ...others: T[]): fc.Arbitrary<T> =>
        fc.oneof({ weight: 3 * others.length, arbitrary: fc.constant(usual) }, fc.constantFrom(...others));
      const tokenArb = fc.constantFrom<string | undefined>(undefined, token, 'not.a.token', `${token}x`);
      const acceptArb = usually<string | undefined>(
        undefined,
        'application/json',
        'application/graphql-response+json',
        'application/graphql-response+json, application/json;q=0.9',
        '*/*',
        'text/html',
        '',
        'application/json;q=0',
      );
      const contentTypeArb = usually(
        'application/json',
        'application/json; charset=utf-8',
        'Application/JSON',
        'application/json; charset=latin1',
      );
      const operationArb = fc.oneof(
        {
          // Trusted-only apps refuse these in production before any route: fewer of them there.
          weight: persisted.length > 0 && mode === 'production' ? 1 : 3,
          arbitrary: validOperationArb(schema).map((o) => ({ ...o, hash: undefined as string | undefined })),
        },
        ...(persisted.length > 0
          ? [
              {
                weight: 3,
                arbitrary: fc.constantFrom(...persisted).chain((p) =>
                  fc
                    .dictionary(
                      fc.constantFrom(...(p.variables.length > 0 ? p.variables : ['x'])),
                      fc.oneof(fc.integer({ min: -1, max: 6 }), hostileValueArb),
                      { maxKeys: 3 },
                    )
                    .map((variables) => ({
                      query: undefined as string | undefined,
                      variables,
                      hash: p.id,
                    })),
                ),
              },
            ]
          : []),
      );
      const requestArb = fc
        .record({
          operation: operationArb,
          method: fc.constantFrom<'GET' | 'POST'>('POST', 'POST', 'GET'),
          token: tokenArb,
          accept: acceptArb,
          contentType: contentTypeArb,
          preflight: usually(true, false),
          operationName: usually<string | null | undefined>(undefined, null, 'Nope', ''),
          dropVariables: fc.boolean(),
        })
        .map(
          ({
            operation,
            method,
            token: bearer,
            accept,
            contentType,
            preflight,
            operationName,
            dropVariables,
          }) => {
            const fields: Record<string, unknown> = {};
            if (operation.query !== undefined) fields.query = operation.query;
            if (operation.hash !== undefined)
              fields.extensions = { persistedQuery: { version: 1, sha256Hash: operation.hash } };
            if (!dropVariables) fields.variables = operation.variables;
            if (operationName !== undefined) fields.operationName = operationName;
            const headers: Record<string, string> = {};
            if (bearer) headers.authorization = `Bearer ${bearer}`;
            if (accept !== undefined) headers.accept = accept;
            if (method === 'POST') {
              headers['content-type'] = contentType;
              return { method, headers, body: JSON.stringify(fields) } satisfies HostileRequest;
            }
            if (preflight) headers['apollo-require-preflight'] = 'true';
            const search = Object.entries(fields)
              .filter(([, value]) => value !== null)
              .map(
                ([name, value]) =>
                  `${name}=${encodeURIComponent(typeof value === 'string' ? value : JSON.stringify(value))}`,
              )
              .join('&');
            return { method, headers, search } satisfies HostileRequest;
          },
        );

      const servedBefore = fast.bff.fastRouteStats?.().served ?? 0;
      let sent = 0;
      const details = await fc.check(
        fc.asyncProperty(fc.array(requestArb, { minLength: 1, maxLength: 3 }), async (requests) => {
          for (const request of requests) {
            // Twice each: the first may teach the route the document, the second then takes it.
            for (let round = 0; round < 2; round += 1) {
              const viaFast = await sendTo(fast.url, request);
              const viaApollo = await sendTo(apollo.url, request);
              sent += 1;
              const [a, b] = [normalize(viaFast, mode), normalize(viaApollo, mode)];
              if (JSON.stringify(a) !== JSON.stringify(b))
                throw new Error(
                  `fast route vs Apollo, round ${round + 1} of ${JSON.stringify(request)}:\n  fast:   ${JSON.stringify(a)}\n  Apollo: ${JSON.stringify(b)}`,
                );
            }
          }
        }),
        // Bounded (shrinking included) on a loaded machine; the runs made are checked below.
        {
          seed: SEED,
          numRuns: RUNS,
          interruptAfterTimeLimit: 45_000,
          markInterruptAsFailure: false,
          examples: [
            // Found by review: once a nameless request had been served, an empty operationName was
            // served too (Apollo refuses it: it names no operation).
            [
              [
                {
                  method: 'POST',
                  headers: { 'content-type': 'application/json' },
                  body: '{"query":"query Q { __typename }"}',
                },
                {
                  method: 'POST',
                  headers: { 'content-type': 'application/json' },
                  body: '{"query":"query Q { __typename }","operationName":""}',
                },
              ],
            ],
          ],
        },
      );
      if (details.failed) {
        const error =
          details.errorInstance instanceof Error
            ? details.errorInstance.message
            : String(details.errorInstance);
        throw new Error(
          `fast route differs from Apollo (seed ${details.seed}, path ${details.counterexamplePath?.slice(0, 80)}):\n${error}`,
        );
      }
      expect(details.numRuns, 'runs made before the time limit').toBeGreaterThanOrEqual(Math.min(RUNS, 10));
      // A differential that seldom took the route would prove little.
      const served = (fast.bff.fastRouteStats?.().served ?? 0) - servedBefore;
      console.info(`${app} (${mode}): the fast route answered ${served} of ${sent} requests`);
      expect(served, 'requests the fast route answered').toBeGreaterThan(sent / 6);
      expect(apollo.bff.fastRouteStats).toBeUndefined();
    }, 180_000);
  });
});

/** A production app has no introspection: its development twin answers it (the same schema). */
const devApps = new Map<AppName, Promise<TestApp>>();
async function devUrl(app: AppName): Promise<string> {
  let started = devApps.get(app);
  if (!started) {
    started = startApp(app, system, { graphiql: false });
    devApps.set(app, started);
  }
  return (await started).url;
}
afterAll(async () => {
  for (const started of devApps.values()) await (await started).close();
});

/**
 * Compared without what differs between any two requests (the request id an internal error
 * carries) and, in development, without stack traces: they name the functions that ran, which
 * the two routes do not share. The body's bytes are compared otherwise.
 */
function normalize(reply: Reply, mode: 'production' | 'development'): Reply {
  let body = reply.body.replace(/"requestId":"[^"]*"/g, '"requestId":"…"');
  if (mode === 'development') {
    try {
      const parsed = JSON.parse(body) as { errors?: { extensions?: Record<string, unknown> }[] };
      for (const error of parsed.errors ?? []) {
        if (Array.isArray(error.extensions?.stacktrace)) error.extensions.stacktrace = ['…'];
      }
      body = JSON.stringify(parsed);
    } catch {
      // Not JSON: compared as it is.
    }
  }
  return { ...reply, body };
}

function variableNames(body: string): string[] {
  const names: string[] = [];
  for (const definition of parse(body).definitions) {
    if (definition.kind !== Kind.OPERATION_DEFINITION) continue;
    for (const variable of (definition as OperationDefinitionNode).variableDefinitions ?? [])
      names.push(variable.variable.name.value);
  }
  return names;
}
