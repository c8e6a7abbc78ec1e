// Subscriptions through the client libraries a frontend would use: graphql-ws's own client, and
// Apollo Client 4 with the usual split link (queries and mutations over HTTP, subscriptions over
// WebSocket, one cache). Whatever the client does when it is done, the server lets go.
import { randomUUID } from 'node:crypto';
import { ApolloClient, gql, HttpLink, InMemoryCache, split } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { getMainDefinition } from '@apollo/client/utilities';
import { waitFor } from '@bff/testkit';
import { createProductClient, type ProductClient } from '@bff/upstream-clients';
import { Kind, OperationTypeNode } from 'graphql';
import { type Client, createClient } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { wsUrl } from '../support/subscription-client.ts';
import { type System, startApp, startSystem, type TestApp } from '../support/system.ts';

const statsOf = (app: TestApp) =>
  app.bff.subscriptionStats?.() ?? { connections: -1, subscriptions: -1, delivered: -1 };

describe('subscriptions through client libraries', () => {
  let system: System;
  let web: TestApp;
  let products: ProductClient;
  let ada: string;
  const clients: Client[] = [];

  beforeAll(async () => {
    system = await startSystem();
    web = await startApp('web', system);
    products = createProductClient({ address: system.productAddr });
    ada = await system.token('ada@example.com', 'web');
  });
  afterAll(async () => {
    for (const client of clients) await client.dispose();
    products?.close();
    await web?.close();
    await system?.close();
  });

  it("graphql-ws's client: subscribes, receives, completes, and the server holds nothing after", async () => {
    const client = createClient({ url: wsUrl(web), webSocketImpl: WebSocket, retryAttempts: 0 });
    clients.push(client);
    const prices = client.iterate<{ productChanged: { id: string; price: { amountMinor: number } } }>({
      query: 'subscription Prices($ids: [ID!]!) { productChanged(ids: $ids) { id price { amountMinor } } }',
      variables: { ids: ['p-0021'] },
    });
    // The first next() sends the subscribe message; the change is made once the server holds it.
    const first = prices.next();
    await waitFor('the subscription is active', () => statsOf(web).subscriptions === 1);
    const before = await products.getProduct('p-0021');
    expect(before, 'p-0021 is in the demo catalogue').not.toBeNull();
    const price = before?.price as { amountMinor: number; currency: string };
    const changed = price.amountMinor + 5;
    await products.updatePrice('p-0021', { amountMinor: changed, currency: price.currency });
    const received = await first;
    expect(received.done).toBe(false);
    expect(received.value).toEqual({
      data: { productChanged: { id: 'p-0021', price: { amountMinor: changed } } },
    });

    // Leaving the iteration (a `for await` that breaks does the same) sends `complete`.
    await prices.return?.();
    await waitFor('the server lets the subscription go', () => statsOf(web).subscriptions === 0);
    await client.dispose();
    await waitFor('and the connection', () => statsOf(web).connections === 0);
  });

  it('Apollo Client 4 with a split link: a query and a mutation over HTTP, invoiceChanged over WebSocket, into one cache', async () => {
    const overHttp: string[] = [];
    const countingFetch: typeof fetch = (input, init) => {
      overHttp.push((JSON.parse(String(init?.body)) as { operationName: string }).operationName);
      return fetch(input, init);
    };
    const wsClient = createClient({
      url: wsUrl(web),
      webSocketImpl: WebSocket,
      connectionParams: { Authorization: `Bearer ${ada}` },
      retryAttempts: 0,
    });
    clients.push(wsClient);
    const link = split(
      ({ query }) => {
        const definition = getMainDefinition(query);
        return (
          definition.kind === Kind.OPERATION_DEFINITION &&
          definition.operation === OperationTypeNode.SUBSCRIPTION
        );
      },
      new GraphQLWsLink(wsClient),
      new HttpLink({
        uri: `${web.url}/graphql`,
        fetch: countingFetch,
        headers: { authorization: `Bearer ${ada}` },
      }),
    );
    const apollo = new ApolloClient({ link, cache: new InMemoryCache() });
    try {
      const me = await apollo.query({ query: gql`query Me { viewer { id name } }` });
      expect(me.error).toBeUndefined();
      expect(me.data).toMatchObject({ viewer: { __typename: 'User', name: expect.any(String) } });

      const updates: { id: string; status: string }[] = [];
      const failures: unknown[] = [];
      const subscription = apollo
        .subscribe<{ invoiceChanged: { id: string; status: string } }>({
          query: gql`subscription InvoiceUpdates { invoiceChanged { id status total { amountMinor } } }`,
        })
        .subscribe({
          next: (result) => {
            if (result.error) failures.push(result.error);
            if (result.data) updates.push(result.data.invoiceChanged);
          },
          error: (error) => failures.push(error),
        });
      await waitFor('the subscription is active', () => statsOf(web).subscriptions === 1);

      const bought = await apollo.mutate<{ purchase: { invoice: { id: string; status: string } } }>({
        mutation: gql`mutation Buy($input: PurchaseInput!) { purchase(input: $input) { invoice { id status } } }`,
        variables: { input: { productId: 'p-0004', quantity: 1, idempotencyKey: randomUUID() } },
      });
      expect(bought.error).toBeUndefined();
      const id = bought.data?.purchase.invoice.id as string;
      await waitFor('the invoice arrives over WebSocket', () => updates.length >= 1);
      expect(updates[0]).toMatchObject({ __typename: 'Invoice', id, status: 'OPEN' });

      // Paid outside this client (at Billing): only the subscription can tell it, and it updates the cache.
      const paid = await fetch(`${system.billingUrl}/v1/invoices/${id}/pay`, { method: 'POST' });
      expect(paid.status).toBe(200);
      await waitFor('the payment arrives over WebSocket', () => updates.length >= 2);
      expect(updates.map((update) => update.status)).toEqual(['OPEN', 'PAID']);
      expect(
        apollo.readFragment({
          id: apollo.cache.identify({ __typename: 'Invoice', id }) as string,
          fragment: gql`fragment InvoiceStatus on Invoice { status }`,
        }),
      ).toMatchObject({ status: 'PAID' });
      expect(failures).toEqual([]);
      // The query and the mutation went over HTTP; the subscription did not.
      expect(overHttp).toEqual(['Me', 'Buy']);

      subscription.unsubscribe();
      await waitFor('the server lets the subscription go', () => statsOf(web).subscriptions === 0);
    } finally {
      apollo.stop();
      await wsClient.dispose();
    }
    await waitFor('and the connection', () => statsOf(web).connections === 0);
  });
});
