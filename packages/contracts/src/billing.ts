/**
 * Billing's REST contract. The request schemas are what its routes validate with; the request
 * types are derived from them (json-schema-to-ts), so the type and the validation cannot drift.
 */
import type { FromSchema } from 'json-schema-to-ts';

/** At most this many ids per batch lookup. */
export const BILLING_MAX_BATCH = 100;

/** No C0/C1 controls or DEL: PostgreSQL refuses a NUL in text, which would surface as a 500. */
const NO_CONTROLS = '^[^\\u0000-\\u001f\\u007f-\\u009f]*$';

/** `GET /v1/invoices` query: exactly one of `userId` (paged by `first`/`after`) or `ids`. */
export const invoicesQuerySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    userId: { type: 'string', maxLength: 64 },
    ids: { type: 'string', minLength: 1, maxLength: 4_000 },
    first: { type: 'string', pattern: '^[0-9]{1,4}$' },
    after: { type: 'string', maxLength: 200, pattern: '^[A-Za-z0-9_-]*$' },
  },
} as const;
export type InvoicesQuery = FromSchema<typeof invoicesQuerySchema>;

/** `GET /v1/accounts` query: comma-separated user ids. */
export const accountsQuerySchema = {
  type: 'object',
  required: ['userIds'],
  additionalProperties: false,
  properties: { userIds: { type: 'string', minLength: 1, maxLength: 4_000 } },
} as const;
export type AccountsQuery = FromSchema<typeof accountsQuerySchema>;

/** `POST /v1/purchases` body (the `Idempotency-Key` header is required too). */
export const purchaseRequestSchema = {
  type: 'object',
  required: ['userId', 'productId', 'quantity'],
  additionalProperties: false,
  properties: {
    userId: { type: 'string', maxLength: 64 },
    productId: { type: 'string', minLength: 1, maxLength: 64, pattern: NO_CONTROLS },
    quantity: { type: 'integer', minimum: 1, maximum: 1_000 },
  },
} as const;
export type PurchaseRequest = FromSchema<typeof purchaseRequestSchema>;

/** `POST /v1/invoices/:id/pay` params. */
export const invoiceParamsSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['id'],
  properties: { id: { type: 'string', maxLength: 64 } },
} as const;
export type InvoiceParams = FromSchema<typeof invoiceParamsSchema>;

export type BillingInvoiceStatus = 'OPEN' | 'PAID' | 'VOID';

export interface BillingInvoiceLine {
  productId: string;
  quantity: number;
  unitPriceMinor: number;
  amountMinor: number;
  currency: string;
}

export interface BillingInvoice {
  id: string;
  userId: string;
  accountId: string;
  status: BillingInvoiceStatus;
  currency: string;
  totalMinor: number;
  issuedAt: string;
  paidAt: string | null;
  lines: BillingInvoiceLine[];
}

export interface BillingAccount {
  id: string;
  userId: string;
  currency: string;
  createdAt: string;
}

/** `GET /v1/invoices?ids=` 200 body: known invoices in request order. */
export interface InvoicesResponse {
  invoices: BillingInvoice[];
}

/** `GET /v1/invoices?userId=` 200 body: one page, newest first. */
export interface BillingInvoicePage {
  invoices: (BillingInvoice & { cursor: string })[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

/** `GET /v1/accounts` 200 body. */
export interface AccountsResponse {
  accounts: BillingAccount[];
}

/** `POST /v1/purchases` 201 (or replayed) and `POST /v1/invoices/:id/pay` 200 body. */
export interface InvoiceResponse {
  invoice: BillingInvoice;
}

/** Every refusal's body. */
export interface BillingErrorBody {
  error?: { code?: string; message?: string };
}
