import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { type CacheOutcome, MemoryResponseCacheStore, type ResponseCacheStore } from '../src/index.ts';
import {
  BROKEN_PRODUCT,
  createShop,
  delegatingStore,
  LOCALES,
  type ManualClock,
  manualClock,
  PRODUCT_IDS,
  ShopDatabase,
  type ShopResponse,
  USER_IDS,
} from './shop.ts';

// ---------------------------------------------------------------------------------------------
// Random operations over the shop: a few root fields, each with a random subset of its fields,
// maybe aliased, its argument inline or a variable.

interface Root {
  field: 'product' | 'products' | 'me';
  id: string;
  viaVariable: boolean;
  alias: boolean;
  fields: readonly string[];
  stock: boolean;
}

interface Operation {
  roots: readonly Root[];
  named: boolean;
  /** Variables written in reverse order: the same request to the cache. */
  reverseVariables: boolean;
}

const productFields = fc
  .tuple(
    fc.subarray(['id', 'name', 'price', 'priceLabel'], { minLength: 1 }),
    fc.nat(2).map((n) => n === 0),
  )
  .map(([fields, note]) => (note ? [...fields, 'viewerNote'] : fields));

const rootArb = (ids: readonly string[], fields: readonly Root['field'][]): fc.Arbitrary<Root> =>
  fc
    .record({
      field: fc.constantFrom(...fields),
      id: fc.constantFrom(...ids),
      viaVariable: fc.boolean(),
      alias: fc.boolean(),
      fields: productFields,
      meFields: fc.subarray(['id', 'name', 'orders'], { minLength: 1 }),
      // A maxAge 0 field makes the whole answer uncacheable: now and then.
      stock: fc.nat(7).map((n) => n === 0),
    })
    .map(({ meFields, ...root }) => (root.field === 'me' ? { ...root, fields: meFields } : root));

const operationArb = (
  ids: readonly string[],
  fields: readonly Root['field'][] = ['product', 'product', 'products', 'me'],
): fc.Arbitrary<Operation> =>
  fc.record({
    roots: fc.array(rootArb(ids, fields), { minLength: 1, maxLength: 3 }),
    named: fc.boolean(),
    reverseVariables: fc.boolean(),
  });

/** The operation's text and variables; `ids` replaces the values of its variables, root by root. */
function render(
  operation: Operation,
  ids: readonly string[] = [],
): { query: string; variables: Record<string, unknown>; isPrivate: boolean } {
  const definitions: string[] = [];
  const variables: [string, unknown][] = [];
  let isPrivate = false;
  const selections = operation.roots.map((root, i) => {
    // Roots after the first are aliased: two unaliased `product`s with different ids conflict.
    const alias = root.alias || i > 0 ? `r${i}: ` : '';
    if (root.field === 'me') {
      isPrivate = true;
      const fields = root.fields.map((field) =>
        field === 'orders' ? 'orders { id productId owner }' : field,
      );
      return `${alias}me { ${fields.join(' ')} }`;
    }
    if (root.fields.includes('viewerNote')) isPrivate = true;
    const fields = [...root.fields, ...(root.stock ? ['stock'] : [])].join(' ');
    if (root.field === 'products') return `${alias}products { ${fields} }`;
    let argument = JSON.stringify(root.id);
    if (root.viaVariable) {
      definitions.push(`$v${i}: ID!`);
      variables.push([`v${i}`, ids[i] ?? root.id]);
      argument = `$v${i}`;
    }
    return `${alias}product(id: ${argument}) { ${fields} }`;
  });
  if (operation.reverseVariables) variables.reverse();
  const head = `query${operation.named ? ' Pick' : ''}${definitions.length ? `(${definitions.join(', ')})` : ''}`;
  return {
    query: `${head} { ${selections.join(' ')} }`,
    variables: Object.fromEntries(variables),
    isPrivate,
  };
}

const viewerArb = fc.constantFrom<string | undefined>(...USER_IDS, undefined);
const localeArb = fc.constantFrom(LOCALES[0], LOCALES[0], ...LOCALES);

/** No other viewer's id appears in an answer made for `viewer` (ids are in every private value). */
function assertOnlyOwnData(text: string, viewer: string | undefined): void {
  for (const other of USER_IDS) {
    if (other !== viewer)
      expect(text, `an answer for ${viewer ?? 'nobody'} holds ${other}'s data`).not.toMatch(
        new RegExp(`\\b${other}\\b`),
      );
  }
}

/** One shop reused by every run, pointed at a fresh database, store and clock per run. */
function reusableShops() {
  let store: ResponseCacheStore = new MemoryResponseCacheStore();
  let clock: ManualClock = manualClock();
  const viaCurrent: ManualClock = { now: () => clock.now(), advance: (ms) => clock.advance(ms) };
  // No clock skew: one process, one clock; the tightest setting for stale writes.
  const cached = createShop({
    store: delegatingStore(() => store),
    clock: viaCurrent,
    plugin: { clockSkewMs: 0, coalesceWaitMs: 60_000 },
  });
  const reference = createShop({ cache: false });
  return {
    cached,
    reference,
    get store() {
      return store;
    },
    reset(next: { store: ResponseCacheStore; clock: ManualClock; db: ShopDatabase }) {
      store = next.store;
      clock = next.clock;
      cached.db = next.db;
      reference.db = next.db;
    },
  };
}

const shops = reusableShops();
afterAll(async () => {
  await Promise.all([shops.cached.server.stop(), shops.reference.server.stop()]);
});

// ---------------------------------------------------------------------------------------------

type Step =
  | { kind: 'query'; operation: number; ids: readonly string[]; viewer: string | undefined; locale: string }
  | { kind: 'setPrice'; id: string; price: number }
  | { kind: 'addOrder'; viewer: string | undefined; productId: string }
  | { kind: 'invalidate'; tag: string }
  | { kind: 'advance'; ms: number };

const tagArb = fc.constantFrom(
  ...PRODUCT_IDS.map((id) => `Product:${id}`),
  ...USER_IDS.map((id) => `Orders:${id}`),
  ...USER_IDS.map((id) => `User:${id}`),
  'Products',
);

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.record({
      kind: fc.constant('query' as const),
      operation: fc.nat(),
      // The same text with other variables, now and then.
      ids: fc.oneof(
        fc.constant<readonly string[]>([]),
        fc.array(fc.constantFrom(...PRODUCT_IDS), { maxLength: 3 }),
      ),
      viewer: viewerArb,
      locale: localeArb,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('setPrice' as const),
      id: fc.constantFrom(...PRODUCT_IDS),
      price: fc.integer({ min: 1, max: 9_999 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('addOrder' as const),
      viewer: viewerArb,
      productId: fc.constantFrom(...PRODUCT_IDS),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('invalidate' as const), tag: tagArb }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('advance' as const),
      ms: fc.oneof(fc.integer({ min: 1, max: 2_000 }), fc.integer({ min: 20_000, max: 70_000 })),
    }),
  },
);

describe('createResponseCachePlugin: properties', () => {
  // Sequential: the cache must be invisible. Whatever happened before (writes through the
  // server, invalidations straight on the store, time passing), an answer is exactly what a
  // server without the cache answers from the same data at that moment.
  it("one request at a time: every answer is byte for byte a fresh execution's, whoever asks", async () => {
    const seen = new Map<CacheOutcome, number>();
    await fc.assert(
      fc.asyncProperty(
        fc.array(operationArb([...PRODUCT_IDS, ...PRODUCT_IDS, 'nope', BROKEN_PRODUCT]), {
          minLength: 1,
          maxLength: 3,
        }),
        fc.array(stepArb, { minLength: 10, maxLength: 30, size: 'max' }),
        async (operations, steps) => {
          const clock = manualClock();
          const db = new ShopDatabase();
          shops.reset({ db, clock, store: new MemoryResponseCacheStore({ now: clock.now }) });
          for (const step of steps) {
            switch (step.kind) {
              case 'query': {
                const operation = operations[step.operation % operations.length] as Operation;
                const { query, variables, isPrivate } = render(operation, step.ids);
                const request = { query, variables, viewer: step.viewer, locale: step.locale };
                const answer = await shops.cached.run(request);
                const fresh = await shops.reference.run(request);
                expect(answer.text, `${query} for ${step.viewer} (${answer.outcome})`).toBe(fresh.text);
                assertOnlyOwnData(answer.text, step.viewer);
                if (isPrivate) expect(answer.headers.get('cache-control')).not.toMatch(/public/);
                if (answer.outcome) seen.set(answer.outcome, (seen.get(answer.outcome) ?? 0) + 1);
                break;
              }
              case 'setPrice': {
                const answer = await shops.cached.run({
                  query: 'mutation($id: ID!, $price: Int!) { setPrice(id: $id, price: $price) { price } }',
                  variables: { id: step.id, price: step.price },
                });
                expect(answer.body).toEqual({ data: { setPrice: { price: step.price } } });
                break;
              }
              case 'addOrder': {
                await shops.cached.run({
                  query: 'mutation($p: ID!) { addOrder(productId: $p) { id } }',
                  variables: { p: step.productId },
                  viewer: step.viewer,
                });
                break;
              }
              case 'invalidate':
                await shops.store.invalidate([step.tag]);
                break;
              case 'advance':
                clock.advance(step.ms);
                break;
            }
          }
        },
      ),
      { numRuns: 100 },
    );
    // Not vacuous: the cache answered, and refused, along the way.
    expect(seen.get('hit') ?? 0).toBeGreaterThan(20);
    expect(seen.get('miss') ?? 0).toBeGreaterThan(20);
    expect(seen.get('stale') ?? 0).toBeGreaterThan(0);
  });

  // Concurrent, with every store round trip, resolver and start delayed by fast-check's scheduler:
  // linearizability per read. A read may show version k of the data if the write that made k
  // began before the read ended, and the write that replaced k had not finished when the read
  // began (a write is done when its answer arrives, its invalidation included).
  it("concurrent reads and writes: every answer shows a state the data was in while it ran, and only its viewer's", async () => {
    type Request =
      | { kind: 'query'; operation: number; viewer: string | undefined; locale: string }
      | { kind: 'setPrice'; id: string; price: number }
      | { kind: 'addOrder'; viewer: string; productId: string };
    const requestArb: fc.Arbitrary<Request> = fc.oneof(
      {
        weight: 3,
        arbitrary: fc.record({
          kind: fc.constant('query' as const),
          operation: fc.nat(),
          viewer: viewerArb,
          locale: localeArb,
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('setPrice' as const),
          id: fc.constantFrom(...PRODUCT_IDS),
          price: fc.integer({ min: 1, max: 9_999 }),
        }),
      },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('addOrder' as const),
          viewer: fc.constantFrom(...USER_IDS),
          productId: fc.constantFrom(...PRODUCT_IDS),
        }),
      },
    );
    const seen = new Map<CacheOutcome, number>();

    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.array(
          operationArb([...PRODUCT_IDS, 'nope'], ['product', 'product', 'products', 'products', 'me']),
          {
            minLength: 1,
            maxLength: 2,
          },
        ),
        fc.array(fc.tuple(requestArb, fc.nat(12)), { minLength: 2, maxLength: 10, size: 'max' }),
        async (s, operations, requests) => {
          // Time is a counter every reader of the clock moves on: strictly increasing, shared.
          let ticks = 1_700_000_000_000;
          const clock: ManualClock = { now: () => ticks++, advance: (ms) => (ticks += ms) };
          const db = new ShopDatabase();
          const memory = new MemoryResponseCacheStore({ now: clock.now });
          // Every store call is a round trip whose request and reply the scheduler delays.
          const hop = (label: string) => s.schedule(Promise.resolve(), label);
          const store = delegatingStore(() => memory, {
            get: async (key) => {
              await hop('get');
              const value = await memory.get(key);
              await hop('get reply');
              return value;
            },
            set: async (...args) => {
              await hop('set');
              const outcome = await memory.set(...args);
              // A write's reply may come back late (a busy link): the widest window for races.
              for (let step = 0; step < 4; step++) await hop('set reply');
              return outcome;
            },
            invalidate: async (tags) => {
              await hop('invalidate');
              const dropped = await memory.invalidate(tags);
              await hop('invalidate reply');
              return dropped;
            },
          });
          shops.reset({ db, clock, store });

          let order = 0;
          const runs = requests.map(async ([request, delay], i) => {
            // Requests start at random moments: each waits a random number of scheduled steps.
            for (let step = 0; step <= delay; step++) await hop(`launch ${i}`);
            const start = order++;
            const pause = () => hop(`resolver of ${i}`);
            let response: ShopResponse;
            if (request.kind === 'query') {
              const { query, variables } = render(
                operations[request.operation % operations.length] as Operation,
              );
              response = await shops.cached.run({
                query,
                variables,
                viewer: request.viewer,
                locale: request.locale,
                pause,
              });
            } else if (request.kind === 'setPrice') {
              response = await shops.cached.run({
                query: 'mutation($id: ID!, $price: Int!) { setPrice(id: $id, price: $price) { price } }',
                variables: { id: request.id, price: request.price },
                pause,
              });
            } else {
              response = await shops.cached.run({
                query: 'mutation($p: ID!) { addOrder(productId: $p) { id owner } }',
                variables: { p: request.productId },
                viewer: request.viewer,
                pause,
              });
            }
            return { request, start, end: order++, response };
          });
          const done = await s.waitFor(Promise.all(runs));

          // Version k was made by the write that lived from writers[k].start to writers[k].end.
          const writers = new Map<number, { start: number; end: number }>();
          for (const { response, start, end } of done) {
            expect(response.body.errors).toBeUndefined();
            for (const version of response.record.versions) writers.set(version, { start, end });
          }
          const latest = db.history.length - 1;
          for (const { request, start, end, response } of done) {
            if (request.kind !== 'query') continue;
            if (response.outcome) seen.set(response.outcome, (seen.get(response.outcome) ?? 0) + 1);
            assertOnlyOwnData(response.text, request.viewer);
            // The states it may show: made before it ended, and not yet replaced when it started.
            const { query, variables } = render(
              operations[request.operation % operations.length] as Operation,
            );
            const allowed: string[] = [];
            for (let version = 0; version <= latest; version++) {
              const madeBy = writers.get(version);
              const replacedBy = writers.get(version + 1);
              if (madeBy && madeBy.start > end) continue;
              if (replacedBy && replacedBy.end < start) continue;
              const fresh = await shops.reference.run({
                query,
                variables,
                viewer: request.viewer,
                locale: request.locale,
                snapshot: db.history[version],
              });
              allowed.push(fresh.text);
            }
            expect(
              allowed,
              `${query} for ${request.viewer} (${response.outcome}), ran ${start}–${end}\n${s
                .report()
                .map((task) => task.label)
                .join(', ')}`,
            ).toContain(response.text);
          }
        },
      ),
      { numRuns: 200 },
    );
    expect(seen.get('hit') ?? 0).toBeGreaterThan(0);
    expect(seen.get('coalesced') ?? 0).toBeGreaterThan(0);
  });
});
