import {
  type BillingInvoice,
  type BillingInvoicePage,
  type CallOptions,
  type IdentityUser,
  type ProductPage,
  type ProductRecord,
  UpstreamError,
} from '@bff/upstream-clients';
import DataLoader from 'dataloader';
import type { EntityKind, RequestScope, Upstreams } from './upstreams.ts';

/** Largest batch sent to each service; matches what each batch endpoint accepts (or less). */
export const MAX_BATCH = { identity: 100, billing: 100, product: 200 } as const;

export interface InvoicePageKey {
  userId: string;
  first: number;
  after: string | undefined;
}

export interface ProductPageKey {
  first: number;
  afterId: string | undefined;
  category: string | undefined;
  search: string | undefined;
}

export interface Loaders {
  user: DataLoader<string, IdentityUser | null>;
  product: DataLoader<string, ProductRecord | null>;
  invoice: DataLoader<string, BillingInvoice | null>;
  invoicePage: DataLoader<InvoicePageKey, BillingInvoicePage, string>;
  productPage: DataLoader<ProductPageKey, ProductPage, string>;
}

/** Results in key order, null for a key the service did not return (the batch contract). */
function inKeyOrder<T extends { id: string }>(keys: readonly string[], found: readonly T[]): (T | null)[] {
  const byId = new Map(found.map((item) => [item.id, item]));
  return keys.map((key) => byId.get(key) ?? null);
}

/**
 * Extra calls one batch may spend finding the keys a service refused. Halving finds one bad key
 * among 200 in 16 calls; past the bound, the keys still unresolved share the refusal.
 */
export const MAX_ISOLATION_CALLS = 32;

const isRefusal = (error: unknown) => error instanceof UpstreamError && error.refusal;

/**
 * A batch fetch in key order, where a service's refusal of the input (a malformed id) fails
 * only the keys it is about: the refused batch is split in halves and each half asked again,
 * down to single keys, so the good keys beside a bad one still resolve. Anything else (the
 * service down, slow, failing) fails the whole batch at once, as retrying parts would only
 * add load.
 */
async function isolatingRefusals<T extends { id: string }>(
  keys: readonly string[],
  fetch: (keys: readonly string[]) => Promise<readonly T[]>,
): Promise<(T | null | Error)[]> {
  let calls = 0;
  const attempt = async (part: readonly string[]): Promise<(T | null | Error)[]> => {
    try {
      return inKeyOrder(part, await fetch(part));
    } catch (error) {
      if (!isRefusal(error)) throw error;
      if (part.length === 1 || calls + 2 > MAX_ISOLATION_CALLS) return part.map(() => error as Error);
      calls += 2;
      const middle = Math.ceil(part.length / 2);
      const [left, right] = await Promise.all([
        attempt(part.slice(0, middle)).catch((e: Error) => part.slice(0, middle).map(() => e)),
        attempt(part.slice(middle)).catch((e: Error) => part.slice(middle).map(() => e)),
      ]);
      return [...left, ...right];
    }
  };
  return attempt(keys);
}

/**
 * Runs one batch inside a span of its own when the request is traced: the upstream tries made
 * for the batch (retries, refusal isolation) become its children.
 */
export function tracedBatch(scope: RequestScope, call: CallOptions) {
  return <R>(loader: string, size: number, run: (options: CallOptions) => Promise<R>): Promise<R> => {
    const batch = scope.trace?.batch(loader, size);
    if (!batch) return run(call);
    return run({ ...call, trace: batch.trace }).finally(() => batch.end());
  };
}

/**
 * One set of loaders for one request. Page loaders prime the entity loaders, so a product
 * listed on a page and then asked for by id is not fetched again.
 */
export function createLoaders(upstreams: Upstreams, scope: RequestScope = {}): Loaders {
  const call: CallOptions = { signal: scope.signal, deadline: scope.deadline, trace: scope.trace };
  const traced = tracedBatch(scope, call);
  const log = scope.entities;
  // Each entity found is recorded as read; a key the service had nothing for records nothing.
  const reading =
    <T extends { id: string }>(kind: EntityKind) =>
    (results: (T | null | Error)[]) => {
      if (log)
        for (const item of results) if (item !== null && !(item instanceof Error)) log.read(kind, item.id);
      return results;
    };
  const readUsers = reading<IdentityUser>('User');
  const readProducts = reading<ProductRecord>('Product');
  const readInvoices = reading<BillingInvoice>('Invoice');
  const newUser = () =>
    new DataLoader<string, IdentityUser | null>(
      (ids) =>
        traced('user', ids.length, (options) =>
          isolatingRefusals(ids, (part) => upstreams.identity.getUsers(part, options)).then(readUsers),
        ),
      { maxBatchSize: MAX_BATCH.identity },
    );
  const newProduct = () =>
    new DataLoader<string, ProductRecord | null>(
      (ids) =>
        traced('product', ids.length, (options) =>
          isolatingRefusals(ids, (part) => upstreams.product.getProducts(part, options)).then(readProducts),
        ),
      { maxBatchSize: MAX_BATCH.product },
    );
  const newInvoice = () =>
    new DataLoader<string, BillingInvoice | null>(
      (ids) =>
        traced('invoice', ids.length, (options) =>
          isolatingRefusals(ids, (part) => upstreams.billing.getInvoices(part, options)).then(readInvoices),
        ),
      { maxBatchSize: MAX_BATCH.billing },
    );
  // Pages have no batch endpoint: each distinct page is one call, deduplicated per request.
  const newInvoicePage = () =>
    new DataLoader<InvoicePageKey, BillingInvoicePage, string>(
      (keys) =>
        traced('invoicePage', keys.length, (options) =>
          Promise.all(
            keys.map(async (key) => {
              try {
                const page = await upstreams.billing.listInvoices(
                  key.userId,
                  { first: key.first, after: key.after },
                  options,
                );
                log?.read('Invoices', key.userId);
                for (const item of page.invoices) {
                  loaders.invoice.prime(item.id, item);
                  log?.read('Invoice', item.id);
                }
                return page;
              } catch (error) {
                return error as Error;
              }
            }),
          ),
        ),
      { cacheKeyFn: (key) => JSON.stringify([key.userId, key.first, key.after ?? null]) },
    );
  const newProductPage = () =>
    new DataLoader<ProductPageKey, ProductPage, string>(
      (keys) =>
        traced('productPage', keys.length, (options) =>
          Promise.all(
            keys.map(async (key) => {
              try {
                const page = await upstreams.product.listProducts(
                  {
                    pageSize: key.first,
                    ...(key.afterId ? { afterId: key.afterId } : {}),
                    ...(key.category ? { category: key.category } : {}),
                    ...(key.search ? { query: key.search } : {}),
                  },
                  options,
                );
                for (const item of page.products) {
                  loaders.product.prime(item.id, item);
                  log?.read('Product', item.id);
                }
                return page;
              } catch (error) {
                return error as Error;
              }
            }),
          ),
        ),
      {
        cacheKeyFn: (key) =>
          JSON.stringify([key.first, key.afterId ?? null, key.category ?? null, key.search ?? null]),
      },
    );
  // Made on first use: most operations need two or three of the five.
  let user: Loaders['user'] | undefined;
  let product: Loaders['product'] | undefined;
  let invoice: Loaders['invoice'] | undefined;
  let invoicePage: Loaders['invoicePage'] | undefined;
  let productPage: Loaders['productPage'] | undefined;
  const loaders: Loaders = {
    get user() {
      user ??= newUser();
      return user;
    },
    get product() {
      product ??= newProduct();
      return product;
    },
    get invoice() {
      invoice ??= newInvoice();
      return invoice;
    },
    get invoicePage() {
      invoicePage ??= newInvoicePage();
      return invoicePage;
    },
    get productPage() {
      productPage ??= newProductPage();
      return productPage;
    },
  };
  return loaders;
}
