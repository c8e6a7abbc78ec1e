// A list field must be sized by an argument the cost rule reads, or say how with @listSize:
// otherwise a client asking for 10,000 items is charged for the default.
import { buildSchema, parse } from 'graphql';
import { describe, expect, it } from 'vitest';
import { assertCostCoversListArguments, operationCost } from '../src/index.ts';

const LIST_SIZE = 'directive @listSize(assumedSize: Int, slicingArguments: [String!]) on FIELD_DEFINITION';
const PRODUCT = 'type Product { id: ID! price: Money! } type Money { amountMinor: Int! }';
const schemaOf = (query: string) => buildSchema(`${LIST_SIZE} ${PRODUCT} type Query { ${query} }`);

const cost = (
  schema: ReturnType<typeof buildSchema>,
  source: string,
  variables: Record<string, unknown> = {},
) => {
  const document = parse(source);
  const operation = document.definitions.find((d) => d.kind === 'OperationDefinition');
  if (operation?.kind !== 'OperationDefinition') throw new Error('no operation');
  return operationCost(schema, document, operation, variables, 10);
};

describe('assertCostCoversListArguments', () => {
  it('refuses a list field sized by a list argument the cost rule does not read, naming both', () => {
    const schema = schemaOf('search(terms: [String!]!): [Product!]!');
    expect(() => assertCostCoversListArguments(schema)).toThrow('Query.search(terms) returns a list');
  });

  it('refuses an Int named like a page size, on a list or a connection', () => {
    expect(() => assertCostCoversListArguments(schemaOf('recent(limit: Int): [Product!]!'))).toThrow(
      'Query.recent(limit)',
    );
    const connection = buildSchema(`${PRODUCT}
      type Query { page(pageSize: Int, after: String): ProductConnection }
      type ProductConnection { edges: [ProductEdge!]! }
      type ProductEdge { node: Product! }`);
    expect(() => assertCostCoversListArguments(connection)).toThrow('Query.page(pageSize)');
  });

  it('accepts first, last and ids, and arguments that cannot size a list', () => {
    const schema = schemaOf(`
      products(first: Int, last: Int, after: String, category: String): [Product!]!
      productsByIds(ids: [ID!]!): [Product]!
      product(id: ID!, scale: Int): Product
      tagged(tags: [String!]): Product
    `);
    expect(() => assertCostCoversListArguments(schema)).not.toThrow();
  });

  it('accepts a field that declares @listSize, when its slicing arguments are its own', () => {
    expect(() =>
      assertCostCoversListArguments(
        schemaOf('search(terms: [String!]!): [Product!]! @listSize(assumedSize: 50)'),
      ),
    ).not.toThrow();
    expect(() =>
      assertCostCoversListArguments(
        schemaOf('recent(limit: Int): [Product!]! @listSize(slicingArguments: ["limit"], assumedSize: 20)'),
      ),
    ).not.toThrow();
    expect(() =>
      assertCostCoversListArguments(
        schemaOf('recent(limit: Int): [Product!]! @listSize(slicingArguments: ["take"])'),
      ),
    ).toThrow('Query.recent @listSize slices by take');
  });
});

describe('operationCost with @listSize', () => {
  const schema = schemaOf(`
    search(terms: [String!]!): [Product!]! @listSize(assumedSize: 50)
    recent(limit: Int): [Product!]! @listSize(slicingArguments: ["limit"], assumedSize: 20)
    plain(first: Int): [Product!]!
  `);

  it('sizes the list from its slicing arguments, literal or variable', () => {
    // recent 7 + price 7
    expect(cost(schema, '{ recent(limit: 7) { price { amountMinor } } }')).toBe(14);
    expect(cost(schema, 'query($n: Int) { recent(limit: $n) { id } }', { n: 300 })).toBe(300);
  });

  it('assumes assumedSize when no slicing argument is given, not the default', () => {
    expect(cost(schema, '{ recent { id } }')).toBe(20);
    expect(cost(schema, '{ search(terms: ["a", "b"]) { id } }')).toBe(50);
  });

  it('keeps first/last/ids and the default for fields without it', () => {
    expect(cost(schema, '{ plain(first: 3) { id } }')).toBe(3);
    expect(cost(schema, '{ plain { id } }')).toBe(10);
  });
});
