import fc from 'fast-check';
import {
  buildSchema,
  type GraphQLObjectType,
  getNamedType,
  getNullableType,
  isListType,
  isObjectType,
  Kind,
  parse,
  type SelectionSetNode,
  type ValueNode,
} from 'graphql';
import { describe, expect, it } from 'vitest';
import { operationCost } from '../src/index.ts';

const schema = buildSchema(`
  type Query { viewer: User products(first: Int): ProductConnection! productsByIds(ids: [ID!]!): [Product]! }
  type User { name: String! invoices(first: Int): InvoiceConnection! }
  type InvoiceConnection { edges: [InvoiceEdge!]! }
  type InvoiceEdge { node: Invoice! }
  type Invoice { id: ID! lines: [Line!]! }
  type Line { product: Product }
  type ProductConnection { edges: [ProductEdge!]! pageInfo: PageInfo! }
  type ProductEdge { node: Product! }
  type PageInfo { hasNextPage: Boolean! }
  type Product { id: ID! price: Money! }
  type Money { amountMinor: Int! }
`);

const cost = (source: string, variables: Record<string, unknown> = {}, defaultListSize = 10) => {
  const document = parse(source);
  const operation = document.definitions.find((d) => d.kind === 'OperationDefinition');
  if (operation?.kind !== 'OperationDefinition') throw new Error('no operation');
  return operationCost(schema, document, operation, variables, defaultListSize);
};

describe('operationCost', () => {
  it('charges objects, not scalars', () => {
    expect(cost('{ viewer { name } }')).toBe(1);
  });

  it('multiplies by the page a connection asks for, literal or variable', () => {
    // products 1 + edges 20 + node 20 + price 20
    expect(cost('{ products(first: 20) { edges { node { price { amountMinor } } } } }')).toBe(61);
    expect(cost('query($n: Int) { products(first: $n) { edges { node { id } } } }', { n: 50 })).toBe(101);
  });

  it('multiplies nested lists: unknown sizes count as the default list size', () => {
    // viewer 1 + invoices 1 + edges 20 + node 20 + lines 200 + product 200
    expect(cost('{ viewer { invoices(first: 20) { edges { node { lines { product { id } } } } } } }')).toBe(
      442,
    );
  });

  it('counts list arguments by their length', () => {
    expect(cost('query($ids: [ID!]!) { productsByIds(ids: $ids) { id } }', { ids: ['a', 'b', 'c'] })).toBe(3);
  });

  it('follows fragments where they are spread', () => {
    const inline = cost('{ products(first: 5) { edges { node { price { amountMinor } } } } }');
    const viaFragment = cost(
      '{ products(first: 5) { edges { ...E } } } fragment E on ProductEdge { node { price { amountMinor } } }',
    );
    expect(viaFragment).toBe(inline);
  });
});

/**
 * The definition, walked literally: every spread is followed again at every place. Exponential
 * on purpose; the oracle for small documents.
 */
function literalCost(source: string, variables: Record<string, unknown>, defaultListSize: number): number {
  const document = parse(source);
  const fragments = new Map(
    document.definitions.flatMap((d) => (d.kind === Kind.FRAGMENT_DEFINITION ? [[d.name.value, d]] : [])),
  );
  const operation = document.definitions.find((d) => d.kind === Kind.OPERATION_DEFINITION);
  if (operation?.kind !== Kind.OPERATION_DEFINITION) throw new Error('no operation');
  const sizeOf = (node: ValueNode | undefined): number | undefined => {
    if (node?.kind === Kind.INT) return Number(node.value);
    if (node?.kind === Kind.LIST) return node.values.length;
    if (node?.kind === Kind.VARIABLE) {
      const value = variables[node.name.value];
      if (typeof value === 'number') return value;
      if (Array.isArray(value)) return value.length;
    }
    return undefined;
  };
  const walk = (
    set: SelectionSetNode,
    parent: GraphQLObjectType | undefined,
    multiplier: number,
    pending: number | undefined,
  ): number => {
    let total = 0;
    for (const selection of set.selections) {
      if (selection.kind === Kind.FRAGMENT_SPREAD) {
        const fragment = fragments.get(selection.name.value);
        if (!fragment) continue;
        const type = schema.getType(fragment.typeCondition.name.value);
        total += walk(fragment.selectionSet, isObjectType(type) ? type : parent, multiplier, pending);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const type = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : parent;
        total += walk(selection.selectionSet, isObjectType(type) ? type : parent, multiplier, pending);
      } else if (selection.selectionSet) {
        const field = parent?.getFields()[selection.name.value];
        const size = sizeOf(
          selection.arguments?.find((a) => ['first', 'last', 'ids'].includes(a.name.value))?.value,
        );
        const list = field ? isListType(getNullableType(field.type)) : false;
        const count = list ? multiplier * Math.max(1, pending ?? size ?? defaultListSize) : multiplier;
        const named = field ? getNamedType(field.type) : undefined;
        total +=
          count +
          walk(
            selection.selectionSet,
            isObjectType(named) ? named : undefined,
            count,
            list ? undefined : size,
          );
      }
    }
    return total;
  };
  return walk(operation.selectionSet, schema.getQueryType() ?? undefined, 1, undefined);
}

/** Valid selections of one type, small enough for the literal walk, with fragments over them. */
const selectionOf = (typeName: string, depth: number): fc.Arbitrary<string> => {
  const type = schema.getType(typeName);
  if (!isObjectType(type) || depth <= 0) return fc.constant('__typename');
  const fields = Object.values(type.getFields());
  const one: fc.Arbitrary<string> = fc.oneof(
    ...fields.map((field) => {
      const named = getNamedType(field.type);
      const args = field.args.some((a) => a.name === 'first')
        ? fc.option(
            fc.integer({ min: -2, max: 30 }).map((n) => `(first: ${n})`),
            { nil: '' },
          )
        : field.args.some((a) => a.name === 'ids')
          ? fc.array(fc.constant('"x"'), { maxLength: 4 }).map((ids) => `(ids: [${ids.join(', ')}])`)
          : fc.constant('');
      if (!isObjectType(named)) return fc.constant(field.name);
      return fc
        .tuple(args, selectionOf(named.name, depth - 1), fc.boolean())
        .map(
          ([a, inner, wrap]) => `${field.name}${a} { ${wrap ? `... on ${named.name} { ${inner} }` : inner} }`,
        );
    }),
  );
  return fc.array(one, { minLength: 1, maxLength: 3 }).map((parts) => parts.join(' '));
};

describe('operationCost on any document', () => {
  it('equals the literal walk, with fragments spread at any place', () => {
    fc.assert(
      fc.property(
        selectionOf('Query', 5),
        selectionOf('ProductEdge', 2),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 20 }),
        (query, edge, spreads, defaultListSize) => {
          // The edge fragment spread `spreads` times wherever an edge is selected.
          const withFragment = query.replaceAll('edges {', `edges { ${'...E '.repeat(spreads)}`);
          const fragment = withFragment.includes('...E') ? ` fragment E on ProductEdge { ${edge} }` : '';
          const source = `{ ${withFragment} }${fragment}`;
          expect(cost(source, {}, defaultListSize)).toBe(literalCost(source, {}, defaultListSize));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('summarises a fragment spread 4^20 times once: the cost is exact and found at once', () => {
    // Twenty fragments, each spreading the next four times: 4^19 copies of the last one.
    const levels = 20;
    let source = '{ ...F0 }';
    for (let i = 0; i < levels; i++) {
      const next =
        i + 1 < levels ? `...F${i + 1} `.repeat(4) : 'products(first: 1) { edges { node { id } } }';
      source += ` fragment F${i} on Query { ${next} }`;
    }
    // One copy costs products 1 + edges 1 + node 1.
    expect(cost(source)).toBe(3 * 4 ** (levels - 1));
  });

  it('a cost past any limit stays a number (never NaN) when lists are huge', () => {
    const huge = cost('query($n: Int) { products(first: $n) { edges { node { price { amountMinor } } } } }', {
      n: Number.MAX_SAFE_INTEGER,
    });
    expect(huge).toBeGreaterThan(1e15);
    expect(Number.isNaN(huge)).toBe(false);
  });

  it('ignores variables inherited from Object.prototype', () => {
    expect(cost('query { products(first: $toString) { edges { node { id } } } }', {})).toBe(
      cost('{ products { edges { node { id } } } }'),
    );
  });
});
