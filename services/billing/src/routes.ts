import {
  type AccountsQuery,
  type AccountsResponse,
  accountsQuerySchema,
  BILLING_MAX_BATCH,
  type InvoiceParams,
  type InvoiceResponse,
  type InvoicesQuery,
  invoiceParamsSchema,
  invoicesQuerySchema,
  type PurchaseRequest,
  purchaseRequestSchema,
} from '@bff/contracts';
import { ErrorCode, HttpError, requestTraceContext } from '@bff/http-service';
import { startTry, type Tracing } from '@bff/observability';
import { type ProductClient, UpstreamError } from '@bff/upstream-clients';
import type { FastifyInstance } from 'fastify';
import { type IdempotencyKeys, requestHash } from './idempotency.ts';
import { BadCursorError, type BillingStore, isUuid } from './invoices.ts';

const MAX_BATCH = BILLING_MAX_BATCH;
const MAX_PAGE = 100;
const DEFAULT_PAGE = 20;
const MAX_TOTAL_MINOR = 2_147_483_647;

export interface BillingRouteOptions {
  store: BillingStore;
  idempotency: IdempotencyKeys;
  products: ProductClient;
  /** Deadline for the price lookup at purchase time, in ms. */
  productTimeoutMs: number;
  /** Starts the client span of each Product call, under the request's span. */
  tracing: Tracing;
  /** Called after a transaction that enqueued events commits. */
  onEvent: () => void;
}

const idList = (raw: string, name: string): string[] => {
  const ids = raw.split(',').filter(Boolean);
  if (ids.length > MAX_BATCH) {
    throw new HttpError(
      400,
      ErrorCode.BadRequest,
      `${name}: at most ${MAX_BATCH} per request, received ${ids.length}`,
    );
  }
  return ids;
};

export function billingRoutes(app: FastifyInstance, options: BillingRouteOptions) {
  const { store } = options;

  app.get<{ Querystring: InvoicesQuery }>(
    '/v1/invoices',
    { schema: { querystring: invoicesQuerySchema } },
    async (request) => {
      const { userId, ids, first, after } = request.query;
      if ((userId === undefined) === (ids === undefined)) {
        throw new HttpError(400, ErrorCode.BadRequest, 'Give exactly one of userId or ids');
      }
      if (ids !== undefined) {
        if (first !== undefined || after !== undefined) {
          throw new HttpError(
            400,
            ErrorCode.BadRequest,
            'first and after page by userId; they do not apply to ids',
          );
        }
        return { invoices: await store.invoicesByIds(idList(ids, 'ids')) };
      }
      const size = first === undefined ? DEFAULT_PAGE : Number(first);
      if (size < 1 || size > MAX_PAGE) {
        throw new HttpError(
          400,
          ErrorCode.BadRequest,
          `first must be between 1 and ${MAX_PAGE}, received ${first}`,
        );
      }
      try {
        return await store.invoicesForUser(userId as string, size, after);
      } catch (error) {
        if (error instanceof BadCursorError)
          throw new HttpError(400, ErrorCode.BadRequest, 'after is not a cursor this service issued');
        throw error;
      }
    },
  );

  app.get<{ Querystring: AccountsQuery; Reply: AccountsResponse }>(
    '/v1/accounts',
    { schema: { querystring: accountsQuerySchema } },
    async (request) => ({
      accounts: await store.accountsByUserIds(idList(request.query.userIds, 'userIds')),
    }),
  );

  app.post<{ Body: PurchaseRequest; Headers: { 'idempotency-key'?: string } }>(
    '/v1/purchases',
    { schema: { body: purchaseRequestSchema } },
    async (request, reply) => {
      const key = request.headers['idempotency-key'];
      if (key === undefined || key === '') {
        throw new HttpError(400, ErrorCode.IdempotencyKeyMissing, 'The Idempotency-Key header is required');
      }
      if (!/^[\x21-\x7e]{1,255}$/.test(key)) {
        throw new HttpError(
          400,
          ErrorCode.BadRequest,
          'Idempotency-Key must be 1 to 255 printable ASCII characters',
        );
      }
      const { userId, productId, quantity } = request.body;
      if (!isUuid(userId)) throw new HttpError(400, ErrorCode.BadRequest, 'userId must be a UUID');

      const result = await options.idempotency.run(
        key,
        requestHash('POST /v1/purchases', request.body),
        async () => {
          const [account] = await store.accountsByUserIds([userId]);
          if (!account)
            throw new HttpError(404, ErrorCode.AccountNotFound, 'No billing account for this user');
          let product: Awaited<ReturnType<ProductClient['getProduct']>>;
          try {
            const traceContext = requestTraceContext(request);
            product = await options.products.getProduct(productId, {
              timeoutMs: options.productTimeoutMs,
              // Each try is a CLIENT span under this request, its traceparent sent as gRPC metadata.
              trace: {
                startTry: (service, operation) => startTry(options.tracing, traceContext, service, operation),
              },
            });
          } catch (error) {
            // The catalogue refusing the id is the caller's mistake, not an outage.
            if (error instanceof UpstreamError && error.refusal) {
              throw new HttpError(400, ErrorCode.BadRequest, 'productId is not a valid product id');
            }
            if (error instanceof UpstreamError) {
              request.log.warn({ err: error }, 'product lookup failed');
              throw new HttpError(
                503,
                ErrorCode.UpstreamUnavailable,
                'The product catalogue is unavailable; retry later',
              );
            }
            throw error;
          }
          if (!product)
            throw new HttpError(422, ErrorCode.ProductNotFound, `Product ${productId} does not exist`);
          if (product.price.amountMinor * quantity > MAX_TOTAL_MINOR) {
            throw new HttpError(
              422,
              ErrorCode.Unprocessable,
              'The invoice total would exceed the largest amount billed',
            );
          }
          const price = product.price;
          return async (tx) => {
            const invoice = await store.createInvoice(
              tx,
              {
                accountId: account.id,
                userId: account.userId,
                currency: price.currency,
                lines: [{ productId, quantity, unitPriceMinor: price.amountMinor, currency: price.currency }],
              },
              requestTraceContext(request),
            );
            return { status: 201, body: { invoice } };
          };
        },
      );
      if (!result.replayed) options.onEvent();
      reply.header('idempotent-replayed', String(result.replayed));
      return reply.code(result.status).send(result.body);
    },
  );

  app.post<{ Params: InvoiceParams; Reply: InvoiceResponse }>(
    '/v1/invoices/:id/pay',
    { schema: { params: invoiceParamsSchema } },
    async (request) => {
      const paid = await store.pay(request.params.id, requestTraceContext(request));
      if (!paid) throw new HttpError(404, ErrorCode.NotFound, 'Invoice not found');
      if (paid.invoice.status === 'VOID')
        throw new HttpError(409, ErrorCode.InvoiceVoid, 'A void invoice cannot be paid');
      if (paid.changed) options.onEvent();
      return { invoice: paid.invoice };
    },
  );
}
