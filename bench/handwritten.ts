// The hand-written aggregator: the least work that produces the same answer. node:http,
// undici pools and one gRPC channel, upstream calls level by level with Promise.all, the
// response built as plain objects in the query's field order and JSON.stringify'd. The iOS
// catalogue (GET, by persisted hash) is recognised by its hash and answered in its shape directly.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadProductService } from '@bff/schema';
import * as grpc from '@grpc/grpc-js';
import { Pool } from 'undici';
import { CATALOGUE_DOCUMENT, type WorkloadName } from './workloads.ts';

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
  images: { width: number; url: string }[];
}

const formatters = new Map<string, Intl.NumberFormat>();
function formatted(amountMinor: number, currency: string, locale = 'en-US'): string {
  const key = `${locale} ${currency}`;
  let f = formatters.get(key);
  if (!f) {
    f = new Intl.NumberFormat(locale, { style: 'currency', currency });
    formatters.set(key, f);
  }
  return f.format(amountMinor / 100);
}

/** The first language of Accept-Language (by q) that Intl formats for, else en-US; once per header. */
const locales = new Map<string, string>();
function localeOf(header: string | undefined): string {
  if (!header) return 'en-US';
  let locale = locales.get(header);
  if (locale) return locale;
  const tags = header
    .split(',')
    .map((part, index) => {
      const [tag = '', q = 'q=1'] = part.trim().split(';');
      return { tag: tag.trim(), q: Number(q.trim().slice(2)), index };
    })
    .filter((t) => t.tag && t.tag !== '*' && t.q > 0)
    .sort((a, b) => b.q - a.q || a.index - b.index);
  locale = 'en-US';
  for (const { tag } of tags) {
    try {
      const [supported] = Intl.NumberFormat.supportedLocalesOf(tag);
      if (supported) {
        locale = supported;
        break;
      }
    } catch {
      // not a language tag
    }
  }
  locales.set(header, locale);
  return locale;
}

/** iOS thumbnails are 120 pt wide: the narrowest image at least 120 × scale px wide, else the widest. */
function thumbnail(images: Product['images'], scale: number): string | null {
  const width = 120 * scale;
  let best: Product['images'][number] | undefined;
  let widest: Product['images'][number] | undefined;
  for (const image of images) {
    if (!widest || image.width > widest.width) widest = image;
    if (image.width >= width && (!best || image.width < best.width)) best = image;
  }
  return (best ?? widest)?.url ?? null;
}

/** The API's `products` cursor: base64url of `product:<id>`. */
const productCursor = (id: string) => Buffer.from(`product:${id}`).toString('base64url');

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

  const listProducts = (request: { pageSize: number; afterId: string; category: string; query: string }) =>
    new Promise<{ products: Product[]; nextPageToken: string; totalSize: number }>((resolve, reject) =>
      (
        products as unknown as {
          listProducts: (
            r: unknown,
            o: unknown,
            cb: (
              e: Error | null,
              v: { products: Product[]; nextPageToken: string; totalSize: number },
            ) => void,
          ) => void;
        }
      ).listProducts(request, { deadline: Date.now() + 5_000 }, (error, value) =>
        error ? reject(error) : resolve(value),
      ),
    );

  /** `Catalogue` by hash: one ListProducts, shaped as the document asks. Any other GET is refused. */
  async function catalogue(req: IncomingMessage): Promise<{ status: number; body: unknown }> {
    const params = new URL(req.url ?? '/', 'http://x').searchParams;
    const extensions = JSON.parse(params.get('extensions') ?? '{}') as {
      persistedQuery?: { sha256Hash?: string };
    };
    if (extensions.persistedQuery?.sha256Hash !== CATALOGUE_DOCUMENT.id)
      return { status: 400, body: { errors: [{ message: 'PersistedQueryNotFound' }] } };
    const variables = JSON.parse(params.get('variables') ?? '{}') as {
      first?: number | null;
      after?: string | null;
      category?: string | null;
      search?: string | null;
      scale?: number | null;
    };
    const after = variables.after
      ? Buffer.from(variables.after, 'base64url').toString().slice('product:'.length)
      : '';
    const page = await listProducts({
      pageSize: variables.first ?? 12, // the iOS page size when none is asked for
      afterId: after,
      category: variables.category ?? '',
      query: variables.search?.trim() ?? '',
    });
    const scale = variables.scale ?? 2;
    const locale = localeOf(req.headers['accept-language']);
    const edges = page.products.map((p) => ({
      cursor: productCursor(p.id),
      node: {
        id: p.id,
        name: p.name,
        thumbnailUrl: thumbnail(p.images, scale),
        price: { formatted: formatted(p.price.amountMinor, p.price.currency, locale) },
      },
    }));
    return {
      status: 200,
      body: {
        data: {
          products: {
            totalCount: page.totalSize,
            edges,
            pageInfo: { hasNextPage: page.nextPageToken !== '', endCursor: edges.at(-1)?.cursor ?? null },
          },
        },
      },
    };
  }

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
    if (req.method === 'GET') {
      const { status, body } = await catalogue(req);
      const text = JSON.stringify(body);
      res.writeHead(status, {
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(text),
      });
      res.end(text);
      return;
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
