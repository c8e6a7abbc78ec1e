import { ErrorCode, HttpError } from '@bff/http-service';
import { type ProductClient, UpstreamError } from '@bff/upstream-clients';
import type { FastifyInstance } from 'fastify';
import { type IdempotencyKeys, requestHash } from './idempotency.ts';
import { BadCursorError, type BillingStore, isUuid } from './invoices.ts';

const MAX_BATCH = 100;
const MAX_PAGE = 100;
const DEFAULT_PAGE = 20;
const MAX_TOTAL_MINOR = 2_147_483_647;
/** No C0/C1 controls or DEL: PostgreSQL refuses a NUL in text, which would surface as a 500. */
const NO_CONTROLS = '^[^\\u0000-\\u001f\\u007f-\\u009f]*$';

export interface BillingRouteOptions {
  store: BillingStore;
  idempotency: IdempotencyKeys;
  products: ProductClient;
  /** Deadline for the price lookup at purchase time, in ms. */
  productTimeoutMs: number;
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

  app.get<{ Querystring: { userId?: string; ids?: string; first?: string; after?: string } }>(
    '/v1/invoices',
    {
      schema: {
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            userId: { type: 'string', maxLength: 64 },
            ids: { type: 'string', minLength: 1, maxLength: 4_000 },
            first: { type: 'string', pattern: '^[0-9]{1,4}$' },
            after: { type: 'string', maxLength: 200, pattern: '^[A-Za-z0-9_-]*$' },
          },
        },
      },
    },
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

  app.get<{ Querystring: { userIds: string } }>(
    '/v1/accounts',
    {
      schema: {
        querystring: {
          type: 'object',
          required: ['userIds'],
          additionalProperties: false,
          properties: { userIds: { type: 'string', minLength: 1, maxLength: 4_000 } },
        },
      },
    },
    async (request) => ({
      accounts: await store.accountsByUserIds(idList(request.query.userIds, 'userIds')),
    }),
  );

  app.post<{
    Body: { userId: string; productId: string; quantity: number };
    Headers: { 'idempotency-key'?: string };
  }>(
    '/v1/purchases',
    {
      schema: {
        body: {
          type: 'object',
          required: ['userId', 'productId', 'quantity'],
          additionalProperties: false,
          properties: {
            userId: { type: 'string', maxLength: 64 },
            productId: { type: 'string', minLength: 1, maxLength: 64, pattern: NO_CONTROLS },
            quantity: { type: 'integer', minimum: 1, maximum: 1_000 },
          },
        },
      },
    },
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
            product = await options.products.getProduct(productId, { timeoutMs: options.productTimeoutMs });
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
            const invoice = await store.createInvoice(tx, {
              accountId: account.id,
              userId: account.userId,
              currency: price.currency,
              lines: [{ productId, quantity, unitPriceMinor: price.amountMinor, currency: price.currency }],
            });
            return { status: 201, body: { invoice } };
          };
        },
      );
      if (!result.replayed) options.onEvent();
      reply.header('idempotent-replayed', String(result.replayed));
      return reply.code(result.status).send(result.body);
    },
  );

  app.post<{ Params: { id: string } }>(
    '/v1/invoices/:id/pay',
    { schema: { params: { type: 'object', properties: { id: { type: 'string', maxLength: 64 } } } } },
    async (request) => {
      const paid = await store.pay(request.params.id);
      if (!paid) throw new HttpError(404, ErrorCode.NotFound, 'Invoice not found');
      if (paid.invoice.status === 'VOID')
        throw new HttpError(409, ErrorCode.InvoiceVoid, 'A void invoice cannot be paid');
      if (paid.changed) options.onEvent();
      return { invoice: paid.invoice };
    },
  );
}
