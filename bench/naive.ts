// What a team writes first: Apollo Server's standalone server with its defaults over the same
// schema, and resolvers that call the upstreams where they need data, with fetch, no DataLoader.
import { readFileSync } from 'node:fs';
import { ApolloServer } from '@apollo/server';
import { startStandaloneServer } from '@apollo/server/standalone';
import { baseSchemaPath, loadProductService } from '@bff/schema';
import { makeExecutableSchema } from '@graphql-tools/schema';
import * as grpc from '@grpc/grpc-js';

type Ctx = { user: { id: string; email: string; name: string } | null };

export async function startNaive(
  upstreams: { identityUrl: string; billingUrl: string; productAddr: string },
  webSchema: string,
) {
  const products = new (loadProductService())(upstreams.productAddr, grpc.credentials.createInsecure());
  const getProduct = (id: string) =>
    new Promise<unknown>((resolve, reject) =>
      (
        products as unknown as {
          getProducts: (
            r: unknown,
            o: unknown,
            cb: (e: Error | null, v: { products: unknown[] }) => void,
          ) => void;
        }
      ).getProducts({ ids: [id] }, { deadline: Date.now() + 5_000 }, (error, value) =>
        error ? reject(error) : resolve(value.products[0] ?? null),
      ),
    );
  const money = (amountMinor: number, currency: string) => ({ amountMinor, currency });
  const schema = makeExecutableSchema<Ctx>({
    typeDefs: [readFileSync(baseSchemaPath, 'utf8'), webSchema],
    resolvers: {
      Query: { viewer: (_: unknown, __: unknown, ctx: Ctx) => ctx.user },
      User: {
        avatarUrl: async (user: { id: string }) => {
          const response = await fetch(`${upstreams.identityUrl}/v1/users?ids=${user.id}`);
          return ((await response.json()) as { users: { avatarUrl: string }[] }).users[0]?.avatarUrl ?? null;
        },
        invoices: async (user: { id: string }, args: { first?: number }) => {
          const response = await fetch(
            `${upstreams.billingUrl}/v1/invoices?userId=${user.id}&first=${args.first ?? 20}`,
          );
          const page = (await response.json()) as { invoices: { cursor: string }[]; pageInfo: unknown };
          return {
            edges: page.invoices.map((node) => ({ cursor: node.cursor, node })),
            pageInfo: page.pageInfo,
          };
        },
      },
      Invoice: { total: (i: { totalMinor: number; currency: string }) => money(i.totalMinor, i.currency) },
      InvoiceLine: {
        product: (line: { productId: string }) => getProduct(line.productId),
        amount: (line: { amountMinor: number; currency: string }) => money(line.amountMinor, line.currency),
        unitPrice: (line: { unitPriceMinor: number; currency: string }) =>
          money(line.unitPriceMinor, line.currency),
      },
      Money: {
        formatted: (m: { amountMinor: number; currency: string }) =>
          new Intl.NumberFormat('en-US', { style: 'currency', currency: m.currency }).format(
            m.amountMinor / 100,
          ),
      },
    },
  });
  const server = new ApolloServer<Ctx>({ schema });
  const { url } = await startStandaloneServer(server, {
    listen: { port: 0, host: '127.0.0.1' },
    context: async ({ req }) => {
      const token = (req.headers.authorization ?? '').slice(7);
      if (!token) return { user: null };
      const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as {
        sub: string;
        email: string;
        name: string;
      };
      return { user: { id: claims.sub, email: claims.email, name: claims.name } };
    },
  });
  return {
    url: url.replace(/\/$/, ''),
    async close() {
      await server.stop();
      products.close();
    },
  };
}
