import type {
  BillingErrorBody,
  BillingInvoice as ContractInvoice,
  BillingInvoicePage as ContractInvoicePage,
  InvoiceResponse,
  InvoicesResponse,
  PurchaseRequest,
} from '@bff/contracts';
import { UpstreamError, UpstreamErrorCode } from './errors.ts';
import { type CallOptions, isJsonObject, type RestClientOptions, RestTransport, unexpected } from './rest.ts';

export type { BillingInvoiceLine } from '@bff/contracts';

/**
 * An invoice as the client hands it out: Billing's contract type without `accountId`, which
 * nothing past the client reads (and the bench's fake Billing does not send).
 */
export type BillingInvoice = Omit<ContractInvoice, 'accountId'>;

export interface BillingInvoicePage extends Omit<ContractInvoicePage, 'invoices'> {
  invoices: (BillingInvoice & { cursor: string })[];
}

/** A refusal from Billing that the caller should pass on to its client in its own terms. */
export class BillingRejection extends Error {
  override readonly name = 'BillingRejection';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface BillingClient {
  /** Known invoices in request order; unknown ids are left out. At most 100 ids. */
  getInvoices(ids: readonly string[], options?: CallOptions): Promise<BillingInvoice[]>;
  /** One page of a user's invoices, newest first. A bad cursor is a BillingRejection. */
  listInvoices(
    userId: string,
    page: { first: number; after?: string | undefined },
    options?: CallOptions,
  ): Promise<BillingInvoicePage>;
  /** Creates (or replays) a purchase. Refusals are BillingRejections. Never retried here. */
  purchase(
    input: { userId: string; productId: string; quantity: number; idempotencyKey: string },
    options?: CallOptions,
  ): Promise<{ invoice: BillingInvoice; replayed: boolean }>;
  /** Pays an invoice; paying a paid one is harmless. Refusals are BillingRejections. */
  payInvoice(id: string, options?: CallOptions): Promise<BillingInvoice>;
  ready(options?: CallOptions): Promise<boolean>;
  close(): Promise<void>;
}

type ErrorBody = BillingErrorBody;

function rejection(status: number, body: unknown): BillingRejection {
  const error = (body as ErrorBody).error;
  return new BillingRejection(
    status,
    error?.code ?? 'BAD_REQUEST',
    error?.message ?? `billing answered ${status}`,
  );
}

/**
 * A query-string value, percent-encoded. A lone surrogate (which `encodeURIComponent` refuses)
 * is written as URLSearchParams writes it, as U+FFFD: the upstream reads what it always read.
 */
function queryValue(value: string): string {
  try {
    return encodeURIComponent(value);
  } catch {
    return new URLSearchParams({ v: value }).toString().slice(2);
  }
}

const hasInvoices = (body: unknown) => isJsonObject(body) && Array.isArray(body.invoices);
const hasInvoice = (body: unknown) => isJsonObject(body) && isJsonObject(body.invoice);

export function createBillingClient(options: RestClientOptions): BillingClient {
  const rest = new RestTransport('billing', options);
  return {
    async getInvoices(ids, callOptions) {
      if (ids.length === 0) return [];
      const response = await rest.request<InvoicesResponse>(
        'GET',
        `/v1/invoices?ids=${ids.map(encodeURIComponent).join(',')}`,
        { ...callOptions, operation: 'GET /v1/invoices?ids', batchSize: ids.length, accepts: hasInvoices },
      );
      if (response.status !== 200) unexpected('billing', 'GET /v1/invoices?ids', response);
      return response.body.invoices;
    },
    async listInvoices(userId, page, callOptions) {
      // Each value percent-encoded as a URL query reads it (a URLSearchParams per call cost a
      // measurable share of a small operation's CPU for the same text, `+` aside).
      const query = `userId=${queryValue(userId)}&first=${page.first}${
        page.after ? `&after=${queryValue(page.after)}` : ''
      }`;
      const response = await rest.request<BillingInvoicePage>('GET', `/v1/invoices?${query}`, {
        ...callOptions,
        operation: 'GET /v1/invoices?userId',
        accepts: hasInvoices,
      });
      if (response.status === 400) throw rejection(400, response.body);
      if (response.status !== 200) unexpected('billing', 'GET /v1/invoices?userId', response);
      return response.body;
    },
    async purchase(input, callOptions) {
      const response = await rest.request<InvoiceResponse>('POST', '/v1/purchases', {
        ...callOptions,
        operation: 'POST /v1/purchases',
        accepts: hasInvoice,
        headers: { 'idempotency-key': input.idempotencyKey },
        body: {
          userId: input.userId,
          productId: input.productId,
          quantity: input.quantity,
        } satisfies PurchaseRequest,
      });
      if (response.status === 201 || response.status === 200) {
        return { invoice: response.body.invoice, replayed: false };
      }
      if (response.status === 409 && (response.body as ErrorBody).error?.code === 'IDEMPOTENCY_KEY_IN_USE') {
        throw new UpstreamError(
          'billing',
          UpstreamErrorCode.Unavailable,
          'billing purchase still in progress',
        );
      }
      throw rejection(response.status, response.body);
    },
    async payInvoice(id, callOptions) {
      const response = await rest.request<InvoiceResponse>(
        'POST',
        `/v1/invoices/${encodeURIComponent(id)}/pay`,
        {
          ...callOptions,
          operation: 'POST /v1/invoices/:id/pay',
          accepts: hasInvoice,
        },
      );
      if (response.status === 200) return response.body.invoice;
      throw rejection(response.status, response.body);
    },
    ready: (callOptions) => rest.ready(callOptions),
    close: () => rest.close(),
  };
}
