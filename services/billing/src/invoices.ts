import { randomUUID } from 'node:crypto';
import type {
  BillingAccount,
  BillingInvoice,
  BillingInvoiceLine,
  BillingInvoicePage,
  BillingInvoiceStatus,
} from '@bff/contracts';
import type { Database, Queryable } from '@bff/db';
import type { DemoInvoice } from '@bff/demo-data';
import { enqueueEvent } from '@bff/events';
import type { Context } from '@bff/observability';

// The records this store returns are what Billing answers: their types are the REST contract's.
export type InvoiceStatus = BillingInvoiceStatus;
export type InvoiceLine = BillingInvoiceLine;
export type Invoice = BillingInvoice;
export type Account = BillingAccount;

interface InvoiceRow {
  id: string;
  user_id: string;
  account_id: string;
  status: InvoiceStatus;
  currency: string;
  total_minor: number;
  issued_at: Date;
  paid_at: Date | null;
}

interface LineRow {
  invoice_id: string;
  product_id: string;
  quantity: number;
  unit_price_minor: number;
  amount_minor: number;
  currency: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (value: string) => UUID.test(value);

const INVOICE_COLUMNS = 'id, user_id, account_id, status, currency, total_minor, issued_at, paid_at';

export class BadCursorError extends Error {}

function encodeCursor(row: InvoiceRow): string {
  return Buffer.from(JSON.stringify({ t: row.issued_at.toISOString(), id: row.id })).toString('base64url');
}

/** What `encodeCursor` writes: toISOString of a year from 1 to 9999. */
const CANONICAL_INSTANT = /^(?!0000)\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/**
 * Only what `encodeCursor` wrote comes back in: the instant in exactly its canonical form.
 * Date.parse alone is not enough: it reads "1" or "+275760-09-13T00:00:00.000Z", which
 * PostgreSQL then refuses, and the request would fail as a 500 instead of a 400.
 */
function decodeCursor(cursor: string): { t: string; id: string } {
  try {
    const value = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as { t?: unknown; id?: unknown };
    if (
      typeof value.t === 'string' &&
      CANONICAL_INSTANT.test(value.t) &&
      !Number.isNaN(Date.parse(value.t)) &&
      new Date(value.t).toISOString() === value.t &&
      typeof value.id === 'string' &&
      isUuid(value.id)
    ) {
      return { t: value.t, id: value.id };
    }
  } catch {
    // fall through
  }
  throw new BadCursorError();
}

/** Billing's SQL for accounts and invoices. */
export class BillingStore {
  constructor(private readonly db: Database) {}

  async accountsByUserIds(userIds: readonly string[]): Promise<Account[]> {
    const wanted = [...new Set(userIds.filter(isUuid).map((id) => id.toLowerCase()))];
    if (wanted.length === 0) return [];
    const result = await this.db.query<{ id: string; user_id: string; currency: string; created_at: Date }>(
      'SELECT id, user_id, currency, created_at FROM accounts WHERE user_id = ANY($1::uuid[])',
      [wanted],
    );
    const byUser = new Map(
      result.rows.map((r) => [
        r.user_id,
        { id: r.id, userId: r.user_id, currency: r.currency.trim(), createdAt: r.created_at.toISOString() },
      ]),
    );
    return wanted.flatMap((id) => byUser.get(id) ?? []);
  }

  /** Invoices for `ids` in request order; unknown and malformed ids are left out. */
  async invoicesByIds(ids: readonly string[], q: Queryable = this.db): Promise<Invoice[]> {
    const wanted = [...new Set(ids.filter(isUuid).map((id) => id.toLowerCase()))];
    if (wanted.length === 0) return [];
    const rows = await q.query<InvoiceRow>(
      `SELECT ${INVOICE_COLUMNS} FROM invoices WHERE id = ANY($1::uuid[])`,
      [wanted],
    );
    const invoices = await this.withLines(rows.rows, q);
    const byId = new Map(invoices.map((i) => [i.id, i]));
    return wanted.flatMap((id) => byId.get(id) ?? []);
  }

  /** One page of a user's invoices, newest first. Throws BadCursorError for a cursor it did not issue. */
  async invoicesForUser(
    userId: string,
    first: number,
    after: string | undefined,
  ): Promise<BillingInvoicePage> {
    if (!isUuid(userId)) return { invoices: [], pageInfo: { hasNextPage: false, endCursor: null } };
    const params: unknown[] = [userId, first + 1];
    let seek = '';
    if (after) {
      const cursor = decodeCursor(after);
      params.push(cursor.t, cursor.id);
      seek = 'AND (issued_at, id) < ($3::timestamptz, $4::uuid)';
    }
    const rows = await this.db.query<InvoiceRow>(
      `SELECT ${INVOICE_COLUMNS} FROM invoices WHERE user_id = $1 ${seek} ORDER BY issued_at DESC, id DESC LIMIT $2`,
      params,
    );
    const page = rows.rows.slice(0, first);
    const last = page.at(-1);
    const cursors = new Map(page.map((row) => [row.id, encodeCursor(row)]));
    return {
      invoices: (await this.withLines(page)).map((i) => ({ ...i, cursor: cursors.get(i.id) as string })),
      pageInfo: { hasNextPage: rows.rows.length > first, endCursor: last ? encodeCursor(last) : null },
    };
  }

  /**
   * Creates an OPEN invoice and records `billing.invoice.created`, inside the caller's
   * transaction; the event carries `traceContext` (the purchasing request's) to its consumers.
   */
  async createInvoice(
    tx: Queryable,
    input: { accountId: string; userId: string; currency: string; lines: Omit<InvoiceLine, 'amountMinor'>[] },
    traceContext?: Context,
  ): Promise<Invoice> {
    const id = randomUUID();
    const lines = input.lines.map((l) => ({ ...l, amountMinor: l.unitPriceMinor * l.quantity }));
    const total = lines.reduce((sum, l) => sum + l.amountMinor, 0);
    await tx.query(
      `INSERT INTO invoices (id, account_id, user_id, status, currency, total_minor) VALUES ($1, $2, $3, 'OPEN', $4, $5)`,
      [id, input.accountId, input.userId, input.currency, total],
    );
    for (const [n, line] of lines.entries()) {
      await tx.query(
        `INSERT INTO invoice_lines (invoice_id, line_no, product_id, quantity, unit_price_minor, currency, amount_minor)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [id, n + 1, line.productId, line.quantity, line.unitPriceMinor, line.currency, line.amountMinor],
      );
    }
    const [invoice] = await this.invoicesByIds([id], tx);
    if (!invoice) throw new Error('invoice vanished inside its own transaction');
    await enqueueEvent(
      tx,
      'billing',
      'billing.invoice.created',
      1,
      {
        invoiceId: invoice.id,
        userId: invoice.userId,
        currency: invoice.currency,
        totalMinor: invoice.totalMinor,
        lines: invoice.lines.map((l) => ({
          productId: l.productId,
          quantity: l.quantity,
          unitPriceMinor: l.unitPriceMinor,
        })),
      },
      { traceContext },
    );
    return invoice;
  }

  /**
   * Marks an OPEN invoice PAID and records `billing.invoice.paid`. Paying a PAID invoice
   * changes nothing and emits nothing. Returns null for an unknown id. The event carries
   * `traceContext` (the paying request's) to its consumers.
   */
  async pay(id: string, traceContext?: Context): Promise<{ invoice: Invoice; changed: boolean } | null> {
    if (!isUuid(id)) return null;
    return this.db.transaction(async (tx) => {
      const updated = await tx.query<InvoiceRow>(
        `UPDATE invoices SET status = 'PAID', paid_at = date_trunc('milliseconds', now())
          WHERE id = $1 AND status = 'OPEN' RETURNING ${INVOICE_COLUMNS}`,
        [id],
      );
      const [invoice] = await this.invoicesByIds([id], tx);
      if (!invoice) return null;
      if (updated.rowCount === 0) return { invoice, changed: false };
      await enqueueEvent(
        tx,
        'billing',
        'billing.invoice.paid',
        1,
        {
          invoiceId: invoice.id,
          userId: invoice.userId,
          currency: invoice.currency,
          totalMinor: invoice.totalMinor,
          paidAt: invoice.paidAt,
        },
        { traceContext },
      );
      return { invoice, changed: true };
    });
  }

  private async withLines(rows: InvoiceRow[], q: Queryable = this.db): Promise<Invoice[]> {
    if (rows.length === 0) return [];
    const lines = await q.query<LineRow>(
      `SELECT invoice_id, product_id, quantity, unit_price_minor, amount_minor, currency
         FROM invoice_lines WHERE invoice_id = ANY($1::uuid[]) ORDER BY invoice_id, line_no`,
      [rows.map((r) => r.id)],
    );
    const byInvoice = new Map<string, InvoiceLine[]>();
    for (const l of lines.rows) {
      const list = byInvoice.get(l.invoice_id) ?? [];
      list.push({
        productId: l.product_id,
        quantity: l.quantity,
        unitPriceMinor: l.unit_price_minor,
        amountMinor: l.amount_minor,
        currency: l.currency.trim(),
      });
      byInvoice.set(l.invoice_id, list);
    }
    return rows.map((r) => ({
      id: r.id,
      userId: r.user_id,
      accountId: r.account_id,
      status: r.status,
      currency: r.currency.trim(),
      totalMinor: r.total_minor,
      issuedAt: r.issued_at.toISOString(),
      paidAt: r.paid_at?.toISOString() ?? null,
      lines: byInvoice.get(r.id) ?? [],
    }));
  }
}

/** Opens an account for a user; a second call for the same user changes nothing. */
export async function openAccount(tx: Queryable, userId: string): Promise<void> {
  await tx.query('INSERT INTO accounts (id, user_id) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING', [
    randomUUID(),
    userId,
  ]);
}

/** Accounts for the demo users and their invoices, when the database is empty. */
export async function seedBilling(
  tx: Queryable,
  userIds: readonly string[],
  invoices: readonly DemoInvoice[],
): Promise<number> {
  const existing = await tx.query<{ n: number }>('SELECT count(*)::int AS n FROM accounts');
  if ((existing.rows[0]?.n ?? 0) > 0) return 0;
  for (const userId of userIds) await openAccount(tx, userId);
  for (const invoice of invoices) {
    const total = invoice.lines.reduce((sum, l) => sum + l.unitPriceMinor * l.quantity, 0);
    await tx.query(
      `INSERT INTO invoices (id, account_id, user_id, status, currency, total_minor, issued_at, paid_at)
       SELECT $1, id, user_id, $3, $4, $5, $6::timestamptz, CASE WHEN $3 = 'PAID' THEN $6::timestamptz + interval '2 days' END
         FROM accounts WHERE user_id = $2`,
      [invoice.id, invoice.userId, invoice.status, invoice.currency, total, invoice.issuedAt],
    );
    for (const [n, line] of invoice.lines.entries()) {
      await tx.query(
        `INSERT INTO invoice_lines (invoice_id, line_no, product_id, quantity, unit_price_minor, currency, amount_minor)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [
          invoice.id,
          n + 1,
          line.productId,
          line.quantity,
          line.unitPriceMinor,
          invoice.currency,
          line.unitPriceMinor * line.quantity,
        ],
      );
    }
  }
  return userIds.length + invoices.length;
}
