import { buildSchema, parse } from 'graphql';
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
