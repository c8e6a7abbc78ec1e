import type {
  BillingInvoice,
  BillingInvoicePage,
  IdentityUser,
  ProductPage,
  ProductRecord,
} from '@bff/upstream-clients';
import DataLoader from 'dataloader';
import type { RequestScope, Upstreams } from './upstreams.ts';

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
 * One set of loaders for one request. Page loaders prime the entity loaders, so a product
 * listed on a page and then asked for by id is not fetched again.
 */
export function createLoaders(upstreams: Upstreams, scope: RequestScope = {}): Loaders {
  const call = { signal: scope.signal, deadline: scope.deadline };
  const user = new DataLoader<string, IdentityUser | null>(
    async (ids) => inKeyOrder(ids, await upstreams.identity.getUsers(ids, call)),
    { maxBatchSize: MAX_BATCH.identity },
  );
  const product = new DataLoader<string, ProductRecord | null>(
    async (ids) => inKeyOrder(ids, await upstreams.product.getProducts(ids, call)),
    { maxBatchSize: MAX_BATCH.product },
  );
  const invoice = new DataLoader<string, BillingInvoice | null>(
    async (ids) => inKeyOrder(ids, await upstreams.billing.getInvoices(ids, call)),
    { maxBatchSize: MAX_BATCH.billing },
  );
  // Pages have no batch endpoint: each distinct page is one call, deduplicated per request.
  const invoicePage = new DataLoader<InvoicePageKey, BillingInvoicePage, string>(
    (keys) =>
      Promise.all(
        keys.map(async (key) => {
          try {
            const page = await upstreams.billing.listInvoices(
              key.userId,
              { first: key.first, after: key.after },
              call,
            );
            for (const item of page.invoices) invoice.prime(item.id, item);
            return page;
          } catch (error) {
            return error as Error;
          }
        }),
      ),
    { cacheKeyFn: (key) => JSON.stringify([key.userId, key.first, key.after ?? null]) },
  );
  const productPage = new DataLoader<ProductPageKey, ProductPage, string>(
    (keys) =>
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
              call,
            );
            for (const item of page.products) product.prime(item.id, item);
            return page;
          } catch (error) {
            return error as Error;
          }
        }),
      ),
    {
      cacheKeyFn: (key) =>
        JSON.stringify([key.first, key.afterId ?? null, key.category ?? null, key.search ?? null]),
    },
  );
  return { user, product, invoice, invoicePage, productPage };
}
