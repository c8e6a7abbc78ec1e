import { readFileSync } from 'node:fs';
import { ApolloServer } from '@apollo/server';
import fc from 'fast-check';
import {
  buildSchema,
  type GraphQLField,
  type GraphQLObjectType,
  getNamedType,
  isAbstractType,
  isCompositeType,
  isLeafType,
  isObjectType,
  parse,
} from 'graphql';
import { describe, expect, it } from 'vitest';
import { cacheControlDirectiveTypeDefs, cachePolicyOf } from '../src/index.ts';

const typeDefs = [
  cacheControlDirectiveTypeDefs,
  readFileSync(new URL('./catalogue.graphql', import.meta.url), 'utf8'),
];
const schema = buildSchema(typeDefs.join('\n'));
const policy = (query: string, operationName?: string) => cachePolicyOf(schema, parse(query), operationName);

describe('cachePolicyOf: Apollo rules, computed from the document', () => {
  it.each([
    // root fields
    ['a hinted root field', '{ product(id: 1) { id } }', 120, 'PUBLIC'],
    ['a root scalar without a hint defaults to 0', '{ unhintedScalar }', 0, 'PUBLIC'],
    ['a hinted root scalar', '{ hintedScalar }', 30, 'PUBLIC'],
    ['a root field takes its return type hint', '{ unhinted { id } }', 300, 'PUBLIC'],
    ['a root field with inheritMaxAge still defaults to 0', '{ inherits { stars } }', 0, 'PUBLIC'],
    // field hint over type hint
    ['a field hint overrides a longer type hint', '{ products { id } }', 60, 'PUBLIC'],
    ['a field hint overrides a shorter type hint', '{ brand { name } }', 900, 'PUBLIC'],
    // scalars inherit; composites default to 0
    ['scalars without hints inherit the parent', '{ product(id: 1) { id name } }', 120, 'PUBLIC'],
    ['a scalar hint restricts', '{ product(id: 1) { name stock } }', 5, 'PUBLIC'],
    ['a composite field with a hint', '{ product(id: 1) { price { cents } } }', 20, 'PUBLIC'],
    ['a composite field without any hint is 0', '{ product(id: 1) { reviews { stars } } }', 0, 'PUBLIC'],
    ['a composite field takes its type hint', '{ product(id: 1) { brand { name } } }', 120, 'PUBLIC'],
    // inheritMaxAge
    ['inheritMaxAge on a field', '{ product(id: 1) { reviewsInherited { stars } } }', 120, 'PUBLIC'],
    ['inheritMaxAge on a type', '{ product(id: 1) { banner { text } } }', 120, 'PUBLIC'],
    [
      'below an inheriting type, composites default again',
      '{ product(id: 1) { banner { product { id } } } }',
      120,
      'PUBLIC',
    ],
    [
      'inheritMaxAge on a field yields to its type maxAge',
      '{ product(id: 1) { seller { name } } }',
      40,
      'PUBLIC',
    ],
    ['a root type with inheritMaxAge still defaults to 0', '{ banner { text } }', 0, 'PUBLIC'],
    // scope
    ['PRIVATE on a root field', '{ viewer { id name } }', 100, 'PRIVATE'],
    ['PRIVATE anywhere makes it all PRIVATE', '{ products { id } viewer { id } }', 60, 'PRIVATE'],
    ['a scope-only field hint keeps the inherited maxAge', '{ product(id: 1) { myRating } }', 120, 'PRIVATE'],
    ['PRIVATE from a type, field maxAge wins', '{ viewer { invoices { total } } }', 10, 'PRIVATE'],
    ['PRIVATE survives a maxAge of 0', '{ viewer { id } unhintedScalar }', 0, 'PRIVATE'],
    // fragments, aliases, directives
    ['named fragments', '{ products { ...P } } fragment P on Product { stock }', 5, 'PUBLIC'],
    [
      'nested named fragments',
      '{ products { ...P } } fragment P on Product { ...Q } fragment Q on Product { price { cents } }',
      20,
      'PUBLIC',
    ],
    ['aliases', '{ a: products { id } b: product(id: 2) { x: stock } }', 5, 'PUBLIC'],
    ['@skip and @include count as selected', '{ products { id stock @skip(if: true) } }', 5, 'PUBLIC'],
    [
      'a root-level inline fragment is still root',
      '{ ... on Query { unhintedScalar } products { id } }',
      0,
      'PUBLIC',
    ],
    [
      'an inline fragment on a union',
      '{ search(text: "x") { ... on Product { name } ... on Article { title } } }',
      15,
      'PUBLIC',
    ],
    [
      'a fragment that cannot match adds nothing',
      '{ products { ... on Article { title } id } }',
      60,
      'PUBLIC',
    ],
    // abstract types: every possible type counts (deliberately stricter than Apollo)
    ['an interface may be a PRIVATE type', '{ node(id: 1) { id } }', 90, 'PRIVATE'],
    [
      'a field on an interface counts every implementation',
      '{ node(id: 1) { id ... on Article { title } } }',
      15,
      'PRIVATE',
    ],
    ['a union field hint overrides its members', '{ search(text: "x") { __typename } }', 50, 'PUBLIC'],
    // never cached
    ['a mutation', 'mutation { updatePrice(id: 1, cents: 2) { id } }', 0, 'PUBLIC'],
    ['introspection', '{ __schema { queryType { name } } }', 0, 'PUBLIC'],
    [
      'introspection beside cacheable fields',
      '{ products { id } __type(name: "Product") { name } }',
      0,
      'PUBLIC',
    ],
    ['only __typename', '{ __typename }', 0, 'PUBLIC'],
  ] as const)('%s', (_, query, maxAge, scope) => {
    expect(policy(query)).toEqual({ maxAge, scope });
  });

  it('__typename adds nothing', () => {
    expect(policy('{ products { __typename id } }')).toEqual({ maxAge: 60, scope: 'PUBLIC' });
  });

  it('picks the operation by name, and gives 0 when it cannot', () => {
    const doc =
      'query A { products { id } } query B { viewer { id } } mutation C { updatePrice(id: 1, cents: 1) { id } }';
    expect(policy(doc, 'A')).toEqual({ maxAge: 60, scope: 'PUBLIC' });
    expect(policy(doc, 'B')).toEqual({ maxAge: 100, scope: 'PRIVATE' });
    expect(policy(doc, 'C').maxAge).toBe(0);
    expect(policy(doc, 'Nope').maxAge).toBe(0);
    expect(policy(doc).maxAge).toBe(0); // ambiguous
  });

  it('memoises per (schema, operation) and survives fragment cycles and bombs', () => {
    const document = parse('{ products { ...P } } fragment P on Product { related { ...P } stock }');
    const first = cachePolicyOf(schema, document);
    expect(first).toEqual({ maxAge: 5, scope: 'PUBLIC' });
    expect(cachePolicyOf(schema, document)).toBe(first);
    // Each fragment spreads the next twice: 2^30 paths if expanded naively.
    const levels = Array.from({ length: 30 }, (_, i) =>
      i === 29
        ? `fragment F${i} on Product { stock }`
        : `fragment F${i} on Product { related { ...F${i + 1} } r2: related { ...F${i + 1} } }`,
    );
    expect(policy(`{ products { ...F0 } } ${levels.join(' ')}`)).toEqual({ maxAge: 5, scope: 'PUBLIC' });
  });

  it('reads type hints from type extensions too', () => {
    const extended = buildSchema(
      `${cacheControlDirectiveTypeDefs}\ntype Query { t: T @cacheControl(inheritMaxAge: true) s: T }\ntype T { a: Int }\nextend type T @cacheControl(maxAge: 7)`,
    );
    expect(cachePolicyOf(extended, parse('{ s { a } }'))).toEqual({ maxAge: 7, scope: 'PUBLIC' });
  });
});

// ---- property tests -------------------------------------------------------------------------

interface Selection {
  field: string;
  on?: string; // inline fragment type condition
  args?: string;
  children: Selection[];
}

const hintOf = (node: { astNode?: { directives?: readonly unknown[] } | null | undefined }) => {
  const directive = (
    node.astNode?.directives as
      | { name: { value: string }; arguments: { name: { value: string }; value: { value: string } }[] }[]
      | undefined
  )?.find((d) => d.name.value === 'cacheControl');
  const arg = (name: string) => directive?.arguments.find((a) => a.name.value === name)?.value.value;
  const maxAge = arg('maxAge');
  return {
    maxAge: maxAge === undefined ? undefined : Number(maxAge),
    scope: arg('scope'),
    inherit: arg('inheritMaxAge') !== undefined,
  };
};

/** Random selection trees over the test schema, depth-bounded, recording the fields' hints. */
function selectionsOf(type: GraphQLObjectType, depth: number): fc.Arbitrary<Selection[]> {
  const fields = Object.values(type.getFields());
  const one = fc.constantFrom(...fields).chain((field): fc.Arbitrary<Selection> => {
    const target = getNamedType(field.type);
    const args = field.args.some((a) => a.name === 'id')
      ? '(id: 1)'
      : field.name === 'search'
        ? '(text: "x")'
        : '';
    if (isLeafType(target)) return fc.constant({ field: field.name, args, children: [] });
    if (depth === 0)
      return fc.constant({ field: field.name, args, children: [{ field: '__typename', children: [] }] });
    const possible = isAbstractType(target) ? schema.getPossibleTypes(target) : [target as GraphQLObjectType];
    return fc.constantFrom(...possible).chain((concrete) =>
      selectionsOf(concrete, depth - 1).map((children) => ({
        field: field.name,
        args,
        children: isAbstractType(target) ? [{ field: '', on: concrete.name, children }] : children,
      })),
    );
  });
  return fc.array(one, { minLength: 1, maxLength: 3 });
}

const render = (selections: Selection[], prefix: string): string =>
  selections
    .map((s, i) => {
      if (s.on) return `... on ${s.on} { ${render(s.children, `${prefix}_${i}`)} }`;
      if (s.field === '__typename') return '__typename';
      const field = `${prefix}_${i}: ${s.field}`;
      const args = s.args ?? '';
      return s.children.length
        ? `${field}${args} { ${render(s.children, `${prefix}_${i}`)} }`
        : `${field}${args}`;
    })
    .join(' ');

/** Every field hint on a selected path: the field's own, else its return type's (what wins in Apollo). */
function hintsOn(
  parent: GraphQLObjectType,
  selections: Selection[],
  out: { maxAge?: number; scope?: string }[],
) {
  for (const s of selections) {
    if (s.on) {
      hintsOn(schema.getType(s.on) as GraphQLObjectType, s.children, out);
      continue;
    }
    if (s.field === '__typename') continue;
    const field = parent.getFields()[s.field] as GraphQLField<unknown, unknown>;
    const fieldHint = hintOf(field);
    const target = getNamedType(field.type);
    const typeHint = isCompositeType(target)
      ? hintOf(target)
      : { maxAge: undefined, scope: undefined, inherit: false };
    const maxAge = fieldHint.inherit ? typeHint.maxAge : (fieldHint.maxAge ?? typeHint.maxAge);
    const scope = fieldHint.scope ?? typeHint.scope;
    out.push({ ...(maxAge === undefined ? {} : { maxAge }), ...(scope ? { scope } : {}) });
    // An abstract type's children are inline fragments, which name their own type.
    hintsOn(isObjectType(target) ? target : parent, s.children, out);
  }
}

describe('cachePolicyOf: properties', () => {
  const query = schema.getQueryType() as GraphQLObjectType;

  it('never exceeds the smallest hint on any selected path, and PRIVATE anywhere is PRIVATE', () => {
    fc.assert(
      fc.property(selectionsOf(query, 3), (selections) => {
        const result = policy(`{ ${render(selections, 'a')} }`);
        const hints: { maxAge?: number; scope?: string }[] = [];
        hintsOn(query, selections, hints);
        for (const hint of hints)
          if (hint.maxAge !== undefined) expect(result.maxAge).toBeLessThanOrEqual(hint.maxAge);
        if (hints.some((h) => h.scope === 'PRIVATE')) expect(result.scope).toBe('PRIVATE');
      }),
      { numRuns: 300 },
    );
  });

  it('selecting more never raises maxAge nor loses PRIVATE', () => {
    fc.assert(
      fc.property(selectionsOf(query, 3), selectionsOf(query, 3), (a, b) => {
        const alone = policy(`{ ${render(a, 'a')} }`);
        const both = policy(`{ ${render(a, 'a')} ${render(b, 'b')} }`);
        expect(both.maxAge).toBeLessThanOrEqual(alone.maxAge);
        if (alone.scope === 'PRIVATE') expect(both.scope).toBe('PRIVATE');
      }),
      { numRuns: 300 },
    );
  });

  it('is never less restrictive than Apollo computes while resolving (and equal without abstract types)', async () => {
    // Every field resolves to something: objects to {}, lists to one item, abstract types to
    // the first possible type, so Apollo's hooks fire on every selected field.
    const server = new ApolloServer({
      typeDefs,
      resolvers: {
        Node: { __resolveType: () => 'Product' },
        SearchResult: { __resolveType: () => 'Product' },
      },
      fieldResolver: (_source, _args, _context, info) => {
        const wrap = (value: unknown) => (info.returnType.toString().startsWith('[') ? [value] : value);
        const named = getNamedType(info.returnType);
        if (isCompositeType(named)) return wrap({});
        if (named.name === 'Int') return wrap(1);
        return wrap('x');
      },
    });
    await server.start();
    try {
      await fc.assert(
        fc.asyncProperty(selectionsOf(query, 2), async (selections) => {
          // Apollo resolves abstract types to Product only; compare only what it executes.
          const onlyProducts = JSON.stringify(selections).match(/"on":"(?!Product")/) === null;
          fc.pre(onlyProducts);
          const text = `{ ${render(selections, 'a')} }`;
          const response = await server.executeOperation({ query: text });
          expect(response.body).toMatchObject({ singleResult: { data: expect.anything() } });
          expect(response.body).not.toMatchObject({ singleResult: { errors: expect.anything() } });
          const header = response.http.headers.get('cache-control') ?? 'no-store';
          const match = /^max-age=(\d+), (public|private)$/.exec(header);
          const apollo = match ? { maxAge: Number(match[1]), scope: match[2]?.toUpperCase() } : { maxAge: 0 };
          const ours = policy(text);
          expect(ours.maxAge).toBeLessThanOrEqual(apollo.maxAge);
          if (apollo.maxAge > 0 && apollo.scope === 'PRIVATE') expect(ours.scope).toBe('PRIVATE');
          if (!/"field":"(node|search)"/.test(JSON.stringify(selections)))
            expect(ours.maxAge).toBe(apollo.maxAge);
        }),
        { numRuns: 150 },
      );
    } finally {
      await server.stop();
    }
  });
});
