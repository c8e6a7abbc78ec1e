// `pnpm bench:micro`: the fast-path choices that are one call each, measured side by side in
// this process, as ratios against the baseline each one would replace:
//   1. undici's Pool#request (what the REST clients use) against fetch (what a first version
//      writes), reading the same 10 KB page of invoices from a node:http server in a child
//      process, 16 requests in flight;
//   2. JSON.stringify (what Apollo Server writes responses with) against graphql-jit's compiled
//      serializer for the same medium response;
//   3. what the response cache's miss path (issue 13) adds to the medium answer: the policy
//      (memoised per document), the key (canonical variables, sha256), the lookup, the entry
//      serialised and the write (refused by a store too small, as on the private workloads of
//      `pnpm bench`), against Apollo's serialization of the answer alone;
//   4. what the edge checks of issue 10 add to a request that carries variables: the nesting
//      walk of `variables` and `extensions` (graphql-js coerces the variables again only when
//      graphql-jit has refused them), against graphql-jit running the operation alone.
// Each pair alternates for BENCH_MICRO_ROUNDS (5) rounds; the figure is CPU time per operation
// in this process (the server's is not counted), the best round of each.
import { fork } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { nestingExceeds } from '@bff/bff-server';
import { cachePolicyOf, MemoryResponseCacheStore, responseCacheKey } from '@bff/response-cache';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { getVariableValues, Kind, parse } from 'graphql';
import { compileQuery, isCompiledQuery } from 'graphql-jit';
import { Pool } from 'undici';
import { invoicesByUser, users } from './fixtures.ts';
import { workloads } from './workloads.ts';

const rounds = Number(process.env.BENCH_MICRO_ROUNDS ?? 5);

if (process.argv[2] === 'serve') {
  // The upstream, in its own process: one user's first 20 invoices, as Billing sends them.
  const body = JSON.stringify({
    invoices: (invoicesByUser.get(users[0]?.id as string) ?? []).slice(0, 20),
    pageInfo: { hasNextPage: true, endCursor: 'c' },
  });
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
  server.listen(0, '127.0.0.1', () => {
    process.send?.((server.address() as AddressInfo).port);
  });
  process.on('disconnect', () => process.exit(0));
} else {
  await main();
}

/** CPU µs per operation for `n` operations, `inFlight` at a time. */
async function cpuPerOp(n: number, inFlight: number, op: () => Promise<unknown> | unknown): Promise<number> {
  const started = process.cpuUsage();
  let next = 0;
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (next++ < n) await op();
    }),
  );
  const used = process.cpuUsage(started);
  return (used.user + used.system) / n;
}

async function pair(
  name: string,
  baseline: [string, () => Promise<number>],
  candidate: [string, () => Promise<number>],
) {
  let bestBase = Number.POSITIVE_INFINITY;
  let bestCandidate = Number.POSITIVE_INFINITY;
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? [baseline, candidate] : [candidate, baseline];
    for (const [label, run] of order) {
      const us = await run();
      if (label === baseline[0]) bestBase = Math.min(bestBase, us);
      else bestCandidate = Math.min(bestCandidate, us);
    }
  }
  console.log(
    `| ${name} | ${baseline[0]} ${bestBase.toFixed(1)} µs | ${candidate[0]} ${bestCandidate.toFixed(1)} µs | ${Math.round((bestCandidate / bestBase) * 100)}% |`,
  );
}

async function main() {
  const child = fork(fileURLToPath(import.meta.url), ['serve'], { execArgv: ['--import', 'tsx'] });
  const port = await new Promise<number>((resolve) => child.once('message', (m) => resolve(m as number)));
  const origin = `http://127.0.0.1:${port}`;
  const pool = new Pool(origin, { connections: 16 });

  console.log('| choice | baseline, CPU per operation | candidate | candidate / baseline |');
  console.log('| --- | --- | --- | --- |');
  const N = 4_000;
  // Warm both paths first.
  await cpuPerOp(500, 16, () => fetch(`${origin}/v1/invoices`).then((r) => r.json()));
  await cpuPerOp(500, 16, () =>
    pool.request({ method: 'GET', path: '/v1/invoices' }).then((r) => r.body.json()),
  );
  await pair(
    'REST client: 10 KB JSON reads',
    ['fetch', () => cpuPerOp(N, 16, () => fetch(`${origin}/v1/invoices`).then((r) => r.json()))],
    [
      'undici Pool#request',
      () =>
        cpuPerOp(N, 16, () =>
          pool.request({ method: 'GET', path: '/v1/invoices' }).then((r) => r.body.json()),
        ),
    ],
  );

  // The medium response, built from fixture data in the shape the medium query asks for.
  // Only the types matter to a serializer: the base SDL and the web app's own.
  const webSchemaDir = fileURLToPath(new URL('../apps/web/schema/', import.meta.url));
  const schema = makeExecutableSchema({
    typeDefs: [
      readFileSync(fileURLToPath(new URL('../schema/graphql/base.graphql', import.meta.url)), 'utf8'),
      ...readdirSync(webSchemaDir)
        .filter((file) => file.endsWith('.graphql'))
        .map((file) => readFileSync(join(webSchemaDir, file), 'utf8')),
    ],
  });
  // graphql-jit's serializer refuses custom scalars ("unexpected PRIMITIVES type: DateTime"),
  // so it could not serialize our responses at all; to know what it would be worth, it is
  // measured on the medium query without `issuedAt`.
  const query = workloads.medium.query.replace(' issuedAt', '');
  const compiled = compileQuery(schema, parse(query), undefined, {
    customJSONSerializer: true,
  });
  if (!isCompiledQuery(compiled))
    throw new Error(`the medium query did not compile: ${JSON.stringify(compiled.errors)}`);
  const invoices = (invoicesByUser.get(users[0]?.id as string) ?? []).slice(0, 20);
  const { money } = await import('@bff/resolvers');
  const result = {
    data: {
      viewer: {
        name: 'Ada',
        avatarUrl: 'https://example.com/a.png',
        invoices: {
          edges: invoices.map((node) => ({
            node: {
              id: node.id,
              status: node.status,
              total: { formatted: money(node.totalMinor, node.currency, 'en-US').formatted },
              lines: node.lines.map((line) => ({
                quantity: line.quantity,
                amount: { formatted: money(line.amountMinor, line.currency, 'en-US').formatted },
                product: {
                  id: line.productId,
                  name: `Product ${line.productId}`,
                  price: { formatted: money(line.unitPriceMinor, line.currency, 'en-US').formatted },
                },
              })),
            },
          })),
        },
      },
    },
  };
  if (compiled.stringify(result) !== JSON.stringify(result))
    throw new Error('the compiled serializer does not write what JSON.stringify writes');
  await pair(
    'response serialization: medium without its DateTime (11 KB)',
    ['JSON.stringify', () => cpuPerOp(20_000, 1, () => JSON.stringify(result))],
    ['graphql-jit compiled', () => cpuPerOp(20_000, 1, () => compiled.stringify(result))],
  );

  // The cache's miss path on the medium answer, as the plugin runs it (src/plugin.ts).
  const mediumDocument = parse(workloads.medium.query);
  const tooSmall = new MemoryResponseCacheStore({ maxBytes: 1 });
  const tags = invoices.flatMap((invoice) => [
    `Invoice:${invoice.id}`,
    ...invoice.lines.map((line) => `Product:${line.productId}`),
  ]);
  const missPath = async () => {
    const policy = cachePolicyOf(schema, mediumDocument, undefined);
    const key = responseCacheKey({
      app: 'web',
      operationHash: 'f'.repeat(64),
      operationName: undefined,
      variables: {},
      locale: 'en-US',
      viewerId: 'user-1|customer',
      scope: policy.scope,
    }) as string;
    await tooSmall.get(key);
    const answer = JSON.stringify(result);
    await tooSmall.set(key, JSON.stringify({ data: result.data, at: Date.now(), maxAge: 30 }), 30, tags, {
      unchangedSince: Date.now() - 500,
    });
    return answer;
  };
  await pair(
    'response cache miss path on the medium answer (issue 13)',
    ['JSON.stringify alone', () => cpuPerOp(20_000, 1, () => JSON.stringify(result))],
    ['+ policy, key, lookup, entry, refused write', () => cpuPerOp(20_000, 1, missPath)],
  );

  // A request with variables, as the mobile Catalogue operation sends it.
  const catalogue = parse(
    'query Catalogue($first: Int, $after: String, $category: String, $search: String) { products(first: $first, after: $after, category: $category, search: $search) { totalCount } }',
  );
  const operation = catalogue.definitions[0];
  if (operation?.kind !== Kind.OPERATION_DEFINITION) throw new Error('no operation');
  const definitions = operation.variableDefinitions ?? [];
  const variables = { first: 20, after: 'cHJvZHVjdDpwLTAwMjA', category: 'books', search: 'lamp' };
  const extensions = { persistedQuery: { version: 1, sha256Hash: 'a'.repeat(64) } };
  const compiledCatalogue = compileQuery(schema, catalogue);
  if (!isCompiledQuery(compiledCatalogue)) throw new Error('Catalogue did not compile');
  const jitOnly = () => compiledCatalogue.query(undefined, {}, variables);
  await pair(
    'edge checks of a request with 4 variables (issue 10)',
    ['graphql-jit alone', () => cpuPerOp(50_000, 1, jitOnly)],
    [
      '+ nesting walk',
      () =>
        cpuPerOp(50_000, 1, () => {
          if (nestingExceeds(variables, 32) || nestingExceeds(extensions, 32)) throw new Error('too deep');
          return jitOnly();
        }),
    ],
  );
  // What a refused request costs on top: graphql-js's coercion, to answer with its errors.
  await pair(
    'a refused request: graphql-js coercion of 4 variables (issue 10)',
    ['graphql-jit alone', () => cpuPerOp(50_000, 1, jitOnly)],
    [
      '+ graphql-js coercion',
      () =>
        cpuPerOp(50_000, 1, () => {
          if (getVariableValues(schema, definitions, variables).errors) throw new Error('coercion failed');
          return jitOnly();
        }),
    ],
  );

  await pool.close();
  child.disconnect();
}
