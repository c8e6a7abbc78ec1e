// The contract operations through a real GraphQL client library, as a frontend would run them.
import { randomUUID } from 'node:crypto';
import { Client, fetchExchange, gql } from '@urql/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type System, startApp, startSystem, type TestApp } from '../support/system.ts';

const ViewerInvoices = gql`
  query ViewerInvoices($first: Int, $after: String) {
    viewer {
      id
      name
      invoices(first: $first, after: $after) {
        edges {
          cursor
          node {
            id
            status
            issuedAt
            total { amountMinor currency formatted }
            lines { quantity amount { formatted } product { id name price { formatted } } }
          }
        }
        pageInfo { hasNextPage endCursor }
      }
    }
  }
`;

const Catalogue = gql`
  query Catalogue($first: Int, $after: String, $category: String, $search: String) {
    products(first: $first, after: $after, category: $category, search: $search) {
      totalCount
      edges { cursor node { id sku name category inStock price { formatted } } }
      pageInfo { hasNextPage endCursor }
    }
  }
`;

const Purchase = gql`
  mutation Purchase($input: PurchaseInput!) {
    purchase(input: $input) { invoice { id status total { amountMinor } } }
  }
`;

const Pay = gql`
  mutation Pay($id: ID!) {
    payInvoice(id: $id) { id status paidAt }
  }
`;

describe('an urql client against the web BFF', () => {
  let system: System;
  let app: TestApp;
  let client: Client;
  beforeAll(async () => {
    system = await startSystem();
    app = await startApp('web', system);
    const token = await system.token('grace@example.com', 'web');
    client = new Client({
      url: `${app.url}/graphql`,
      exchanges: [fetchExchange],
      requestPolicy: 'network-only',
      // Authenticated BFF traffic goes as POST with a JSON body: never cached by an intermediary,
      // and not a "simple" request, so CSRF prevention lets it through without extra headers.
      preferGetMethod: false,
      fetchOptions: () => ({ headers: { authorization: `Bearer ${token}`, 'accept-language': 'en-GB' } }),
    });
  });
  afterAll(async () => {
    await app?.close();
    await system?.close();
  });

  it('pages through the viewer’s invoices', async () => {
    const first = await client.query(ViewerInvoices, { first: 2 }).toPromise();
    expect(first.error).toBeUndefined();
    expect(first.data.viewer.name).toBe('Grace Hopper');
    expect(first.data.viewer.invoices.edges).toHaveLength(2);
    const next = await client
      .query(ViewerInvoices, { first: 2, after: first.data.viewer.invoices.pageInfo.endCursor })
      .toPromise();
    const ids = [...first.data.viewer.invoices.edges, ...next.data.viewer.invoices.edges].map(
      (e: { node: { id: string } }) => e.node.id,
    );
    expect(new Set(ids).size).toBe(4);
  });

  it('searches the catalogue', async () => {
    const result = await client
      .query(Catalogue, { first: 5, category: 'kitchen', search: 'kettle' })
      .toPromise();
    expect(result.error).toBeUndefined();
    for (const edge of result.data.products.edges) {
      expect(edge.node.category).toBe('kitchen');
      expect(edge.node.name.toLowerCase()).toContain('kettle');
    }
  });

  it('buys and pays, and a repeated purchase returns the same invoice', async () => {
    const input = { productId: 'p-0033', quantity: 1, idempotencyKey: randomUUID() };
    const bought = await client.mutation(Purchase, { input }).toPromise();
    expect(bought.error).toBeUndefined();
    const again = await client.mutation(Purchase, { input }).toPromise();
    expect(again.data.purchase.invoice.id).toBe(bought.data.purchase.invoice.id);
    const paid = await client.mutation(Pay, { id: bought.data.purchase.invoice.id }).toPromise();
    expect(paid.data.payInvoice.status).toBe('PAID');
  });

  it('surfaces coded errors to the client', async () => {
    const result = await client.query(Catalogue, { first: 1000 }).toPromise();
    expect(result.error?.graphQLErrors[0]?.extensions.code).toBe('BAD_USER_INPUT');
  });
});
