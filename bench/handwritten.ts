// The hand-written aggregator: the least work that produces the same answer. node:http,
// undici pools and one gRPC channel, upstream calls level by level with Promise.all, the
// response built as plain objects in the query's field order and JSON.stringify'd.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadProductService } from '@bff/schema';
import * as grpc from '@grpc/grpc-js';
import { Pool } from 'undici';
import type { WorkloadName } from './workloads.ts';

interface Line {
  productId: string;
  quantity: number;
  amountMinor: number;
  currency: string;
}
interface Invoice {
  id: string;
  status: string;
  issuedAt: string;
  totalMinor: number;
  currency: string;
  lines: Line[];
}
interface Product {
  id: string;
  name: string;
  description: string;
  price: { amountMinor: number; currency: string };
}

const formatters = new Map<string, Intl.NumberFormat>();
function formatted(amountMinor: number, currency: string): string {
  let f = formatters.get(currency);
  if (!f) {
    f = new Intl.NumberFormat('en-US', { style: 'currency', currency });
    formatters.set(currency, f);
  }
  return f.format(amountMinor / 100);
}

export async function startHandwritten(upstreams: {
  identityUrl: string;
  billingUrl: string;
  productAddr: string;
}) {
  const identity = new Pool(upstreams.identityUrl, { connections: 64 });
  const billing = new Pool(upstreams.billingUrl, { connections: 64 });
  const products = new (loadProductService())(upstreams.productAddr, grpc.credentials.createInsecure());
  const getJson = async <T>(pool: Pool, path: string): Promise<T> => {
    const response = await pool.request({ method: 'GET', path });
    return (await response.body.json()) as T;
  };
  const getProducts = (ids: string[]) =>
    new Promise<Product[]>((resolve, reject) =>
      (
        products as unknown as {
          getProducts: (
            r: unknown,
            o: unknown,
            cb: (e: Error | null, v: { products: Product[] }) => void,
          ) => void;
        }
      ).getProducts({ ids }, { deadline: Date.now() + 5_000 }, (error, value) =>
        error ? reject(error) : resolve(value.products),
      ),
    );

  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
  });
  async function handle(req: IncomingMessage, res: ServerResponse) {
    for await (const _ of req) {
      // the body names the workload through its operation; the query is fixed per workload
    }
    const workload = (req.headers['x-workload'] as WorkloadName | undefined) ?? 'medium';
    const token = (req.headers.authorization ?? '').slice(7);
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as {
      sub: string;
      email: string;
      name: string;
    };
    let body: unknown;
    if (workload === 'small') {
      const page = await getJson<{ invoices: Invoice[] }>(
        billing,
        `/v1/invoices?userId=${claims.sub}&first=4`,
      );
      body = {
        data: {
          viewer: {
            id: claims.sub,
            name: claims.name,
            email: claims.email,
            invoices: {
              edges: page.invoices.map((i) => ({
                node: {
                  id: i.id,
                  status: i.status,
                  issuedAt: i.issuedAt,
                  total: {
                    amountMinor: i.totalMinor,
                    currency: i.currency,
                    formatted: formatted(i.totalMinor, i.currency),
                  },
                },
              })),
            },
          },
        },
      };
    } else {
      const first = workload === 'medium' ? 20 : Number(req.headers['x-first'] ?? 64);
      const [users, page] = await Promise.all([
        getJson<{ users: { avatarUrl: string }[] }>(identity, `/v1/users?ids=${claims.sub}`),
        getJson<{ invoices: Invoice[] }>(billing, `/v1/invoices?userId=${claims.sub}&first=${first}`),
      ]);
      const ids = [...new Set(page.invoices.flatMap((i) => i.lines.map((l) => l.productId)))];
      const byId = new Map((await getProducts(ids)).map((p) => [p.id, p]));
      const product = (id: string) => {
        const p = byId.get(id);
        if (!p) return null;
        return workload === 'medium'
          ? { id: p.id, name: p.name, price: { formatted: formatted(p.price.amountMinor, p.price.currency) } }
          : {
              id: p.id,
              name: p.name,
              description: p.description,
              price: { formatted: formatted(p.price.amountMinor, p.price.currency) },
            };
      };
      body = {
        data: {
          viewer: {
            name: claims.name,
            avatarUrl: users.users[0]?.avatarUrl ?? null,
            invoices: {
              edges: page.invoices.map((i) => ({
                node: {
                  id: i.id,
                  status: i.status,
                  issuedAt: i.issuedAt,
                  total: { formatted: formatted(i.totalMinor, i.currency) },
                  lines: i.lines.map((l) => ({
                    quantity: l.quantity,
                    amount: { formatted: formatted(l.amountMinor, l.currency) },
                    product: product(l.productId),
                  })),
                },
              })),
            },
          },
        },
      };
    }
    const text = JSON.stringify(body);
    res.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
    });
    res.end(text);
  }
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      products.close();
      await identity.close();
      await billing.close();
    },
  };
}
