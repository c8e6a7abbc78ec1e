import type { Database, Queryable } from '@bff/db';
import { enqueueEvent } from '@bff/events';
import type { Context } from '@bff/observability';
import type { Image__Output, Money__Output, PricedProduct } from '@bff/schema';

/** A catalogue product: the contract's message (types generated from product.proto), price set. */
export type Product = PricedProduct;

interface ProductRow {
  id: string;
  sku: string;
  name: string;
  description: string;
  category: string;
  price_minor: number;
  currency: string;
  images: Image__Output[];
  inventory: number;
}

const COLUMNS = 'id, sku, name, description, category, price_minor, currency, images, inventory';

function toProduct(row: ProductRow): Product {
  return {
    id: row.id,
    sku: row.sku,
    name: row.name,
    description: row.description,
    category: row.category,
    price: { amountMinor: row.price_minor, currency: row.currency.trim() },
    images: [...row.images].sort((a, b) => a.width - b.width),
    inventory: row.inventory,
  };
}

/** The Product service's SQL, and nothing else. */
export class ProductStore {
  constructor(private readonly db: Database) {}

  async byIds(ids: readonly string[]): Promise<Map<string, Product>> {
    const result = await this.db.query<ProductRow>(
      `SELECT ${COLUMNS} FROM products WHERE id = ANY($1::text[])`,
      [[...new Set(ids)]],
    );
    return new Map(result.rows.map((row) => [row.id, toProduct(row)]));
  }

  async list(filter: {
    limit: number;
    afterId: string | undefined;
    category: string | undefined;
    query: string | undefined;
  }): Promise<{ products: Product[]; hasMore: boolean; total: number }> {
    const params: unknown[] = [];
    const where: string[] = [];
    if (filter.category) {
      params.push(filter.category);
      where.push(`category = $${params.length}`);
    }
    if (filter.query) {
      params.push(`%${filter.query.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
      where.push(
        `(name ILIKE $${params.length} OR sku ILIKE $${params.length} OR description ILIKE $${params.length})`,
      );
    }
    const filterSql = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const count = await this.db.query<{ total: number }>(
      `SELECT count(*)::int AS total FROM products ${filterSql}`,
      params,
    );
    const pageParams = [...params];
    const pageWhere = [...where];
    if (filter.afterId) {
      pageParams.push(filter.afterId);
      pageWhere.push(`id > $${pageParams.length}`);
    }
    pageParams.push(filter.limit + 1);
    const rows = await this.db.query<ProductRow>(
      `SELECT ${COLUMNS} FROM products ${pageWhere.length ? `WHERE ${pageWhere.join(' AND ')}` : ''}
        ORDER BY id LIMIT $${pageParams.length}`,
      pageParams,
    );
    const hasMore = rows.rows.length > filter.limit;
    return {
      products: rows.rows.slice(0, filter.limit).map(toProduct),
      hasMore,
      total: count.rows[0]?.total ?? 0,
    };
  }

  /**
   * Changes the price and records `product.price_changed` in the same transaction, carrying
   * `traceContext` (the calling request's) to its consumers. Null if unknown.
   */
  async updatePrice(id: string, price: Money__Output, traceContext?: Context): Promise<Product | null> {
    return this.db.transaction(async (tx) => {
      const before = await tx.query<ProductRow>(`SELECT ${COLUMNS} FROM products WHERE id = $1 FOR UPDATE`, [
        id,
      ]);
      const old = before.rows[0];
      if (!old) return null;
      const updated = await tx.query<ProductRow>(
        `UPDATE products SET price_minor = $2, currency = $3, updated_at = now() WHERE id = $1 RETURNING ${COLUMNS}`,
        [id, price.amountMinor, price.currency],
      );
      const row = updated.rows[0] as ProductRow;
      if (old.price_minor !== row.price_minor || old.currency.trim() !== row.currency.trim()) {
        await enqueueEvent(
          tx,
          'product',
          'product.price_changed',
          1,
          {
            productId: id,
            previous: { amountMinor: old.price_minor, currency: old.currency.trim() },
            current: price,
          },
          { traceContext },
        );
      }
      return toProduct(row);
    });
  }
}

/** Inserts the demo catalogue when the table is empty. */
export async function seedProducts(
  tx: Queryable,
  products: readonly {
    id: string;
    sku: string;
    name: string;
    description: string;
    category: string;
    priceMinor: number;
    currency: string;
    images: readonly { width: number; url: string }[];
    inventory: number;
  }[],
): Promise<number> {
  const existing = await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM products');
  if ((existing.rows[0]?.n ?? 0) > 0) return 0;
  for (const p of products) {
    await tx.query(
      `INSERT INTO products (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`,
      [
        p.id,
        p.sku,
        p.name,
        p.description,
        p.category,
        p.priceMinor,
        p.currency,
        JSON.stringify(p.images),
        p.inventory,
      ],
    );
  }
  return products.length;
}
