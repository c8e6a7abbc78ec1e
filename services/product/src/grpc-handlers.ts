import {
  type Context,
  type ServiceMetrics,
  type ServiceOutcome,
  SpanKind,
  SpanStatusCode,
  type Tracing,
  traceIdOf,
} from '@bff/observability';
import type { ProductServiceHandlers } from '@bff/schema';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Product, ProductStore } from './store.ts';

const SERVICE_NAME = 'bff.product.v1.ProductService';

/** Codes that say the caller asked for something wrong, not that the service failed. */
const CLIENT_FAULTS: ReadonlySet<grpc.status> = new Set([
  grpc.status.INVALID_ARGUMENT,
  grpc.status.NOT_FOUND,
  grpc.status.OUT_OF_RANGE,
  grpc.status.FAILED_PRECONDITION,
  grpc.status.ALREADY_EXISTS,
  grpc.status.UNAUTHENTICATED,
  grpc.status.PERMISSION_DENIED,
]);

/** The outcome label of a gRPC status: OK is ok, a client fault refused, anything else an error. */
export function grpcOutcome(code: grpc.status): ServiceOutcome {
  if (code === grpc.status.OK) return 'ok';
  return CLIENT_FAULTS.has(code) ? 'refused' : 'error';
}

/** What every call is observed with: one log line, one histogram sample, one SERVER span. */
export interface CallObservers {
  log: Logger;
  metrics: ServiceMetrics;
  tracing: Tracing;
}

/** The first text value of `key` in the call's metadata (binary values are not trace context). */
function metadataText(metadata: grpc.Metadata, key: string): string | undefined {
  const value = metadata.get(key).find((v): v is string => typeof v === 'string');
  return value;
}

const MAX_BATCH = 500;
const MAX_PAGE_SIZE = 100;
const DEFAULT_PAGE_SIZE = 20;
const CURRENCY = /^[A-Z]{3}$/;

class StatusError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

const invalid = (message: string) => new StatusError(grpc.status.INVALID_ARGUMENT, message);

/** C0/C1 controls and DEL: PostgreSQL refuses NUL in text outright, which would be an INTERNAL. */
const CONTROL = /\p{Cc}/u;
const MAX_ID = 64;

/** A product id as the catalogue holds them: 1 to 64 characters, no control characters. */
function checkId(id: string, field: string): string {
  if (id.length === 0 || id.length > MAX_ID)
    throw invalid(`${field}: each id must be 1 to ${MAX_ID} characters`);
  if (CONTROL.test(id)) throw invalid(`${field}: ids must not contain control characters`);
  return id;
}

/** Free text (a search, a category): at most `max` characters, no control characters. */
function checkText(text: string, field: string, max: number): string {
  if (text.length > max) throw invalid(`${field}: at most ${max} characters`);
  if (CONTROL.test(text)) throw invalid(`${field}: must not contain control characters`);
  return text;
}

function encodeToken(afterId: string): string {
  return Buffer.from(JSON.stringify({ v: 1, after: afterId })).toString('base64url');
}

function decodeToken(token: string): string {
  if (token.length <= 400 && /^[A-Za-z0-9_-]+$/.test(token)) {
    try {
      const value = JSON.parse(Buffer.from(token, 'base64url').toString()) as {
        v?: unknown;
        after?: unknown;
      };
      if (
        value.v === 1 &&
        typeof value.after === 'string' &&
        value.after.length > 0 &&
        value.after.length <= MAX_ID &&
        !CONTROL.test(value.after)
      )
        return value.after;
    } catch {
      // fall through
    }
  }
  throw invalid('page_token is not a token this service issued');
}

type Handler<Req, Res> = grpc.handleUnaryCall<Req, Res>;

/**
 * Wraps a handler so that a StatusError becomes its gRPC status and anything else INTERNAL, and
 * observes the call: a SERVER span (child of the caller's `traceparent` metadata, trusted as
 * the service is internal) whose context the handler gets, one log line and one sample.
 */
function unary<Req, Res>(
  observers: CallObservers,
  method: string,
  fn: (request: Req, traceContext: Context) => Promise<Res>,
): Handler<Req, Res> {
  const { log, metrics, tracing } = observers;
  return (call, callback) => {
    const started = performance.now();
    const traceparent = metadataText(call.metadata, 'traceparent');
    const tracestate = metadataText(call.metadata, 'tracestate');
    const { span, context } = tracing.startIncoming(
      `${SERVICE_NAME}/${method}`,
      { traceparent, tracestate },
      true,
      SpanKind.SERVER,
      { 'rpc.system': 'grpc', 'rpc.service': SERVICE_NAME, 'rpc.method': method },
    );
    const finish = (code: grpc.status, error?: unknown) => {
      const durationMs = performance.now() - started;
      const outcome = grpcOutcome(code);
      metrics.requestDuration.observe({ method, outcome }, durationMs / 1000);
      span.setAttribute('rpc.grpc.status_code', code);
      if (outcome === 'error') span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
      log[outcome === 'error' ? 'error' : 'info'](
        {
          method,
          code: grpc.status[code],
          outcome,
          durationMs: Math.round(durationMs * 100) / 100,
          traceId: traceIdOf(context),
          ...(error === undefined ? {} : { err: error }),
        },
        'call completed',
      );
    };
    let promise: Promise<Res>;
    try {
      promise = fn(call.request, context);
    } catch (error) {
      promise = Promise.reject(error);
    }
    promise.then(
      (response) => {
        callback(null, response);
        finish(grpc.status.OK);
      },
      (error: unknown) => {
        if (error instanceof StatusError) {
          callback({ code: error.code, details: error.message });
          finish(error.code);
          return;
        }
        callback({ code: grpc.status.INTERNAL, details: 'internal error' });
        finish(grpc.status.INTERNAL, error);
      },
    );
  };
}

/**
 * The ProductService implementation: validation and mapping; the SQL is in the store. Requests
 * are typed as proto-loader decodes them and responses as the contract accepts them (types
 * generated from product.proto).
 */
export function productHandlers(
  store: ProductStore,
  observers: CallObservers,
  onEvent: () => void,
): ProductServiceHandlers {
  return {
    GetProducts: unary(observers, 'GetProducts', async (request) => {
      const ids = request.ids;
      if (ids.length > MAX_BATCH) throw invalid(`ids: at most ${MAX_BATCH} per call, received ${ids.length}`);
      for (const id of ids) checkId(id, 'ids');
      const found = await store.byIds(ids);
      const seen = new Set<string>();
      const products: Product[] = [];
      for (const id of ids) {
        const product = found.get(id);
        if (product && !seen.has(id)) {
          seen.add(id);
          products.push(product);
        }
      }
      return { products };
    }),
    GetProduct: unary(observers, 'GetProduct', async (request) => {
      if (!request.id) throw invalid('id is required');
      checkId(request.id, 'id');
      const product = (await store.byIds([request.id])).get(request.id);
      if (!product) throw new StatusError(grpc.status.NOT_FOUND, `product ${request.id} not found`);
      return product;
    }),
    ListProducts: unary(observers, 'ListProducts', async (request) => {
      const pageSize = request.pageSize === 0 ? DEFAULT_PAGE_SIZE : request.pageSize;
      if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE_SIZE) {
        throw invalid(`page_size must be between 1 and ${MAX_PAGE_SIZE}, received ${request.pageSize}`);
      }
      checkText(request.query, 'query', 200);
      checkText(request.category, 'category', 64);
      if (request.pageToken && request.afterId) throw invalid('give page_token or after_id, not both');
      if (request.afterId) checkId(request.afterId, 'after_id');
      const afterId = request.pageToken ? decodeToken(request.pageToken) : request.afterId || undefined;
      const page = await store.list({
        limit: pageSize,
        afterId,
        category: request.category || undefined,
        query: request.query.trim() || undefined,
      });
      const last = page.products.at(-1);
      return {
        products: page.products,
        nextPageToken: page.hasMore && last ? encodeToken(last.id) : '',
        totalSize: page.total,
      };
    }),
    UpdatePrice: unary(observers, 'UpdatePrice', async (request, traceContext) => {
      if (!request.id) throw invalid('id is required');
      checkId(request.id, 'id');
      const price = request.price;
      if (!price) throw invalid('price is required');
      if (
        !Number.isSafeInteger(price.amountMinor) ||
        price.amountMinor < 0 ||
        price.amountMinor > 2_147_483_647
      ) {
        throw invalid(
          `price.amount_minor must be a whole number from 0 to 2147483647, received ${price.amountMinor}`,
        );
      }
      if (!CURRENCY.test(price.currency)) {
        throw invalid(
          `price.currency must be an ISO 4217 code such as USD, received ${JSON.stringify(price.currency)}`,
        );
      }
      const product = await store.updatePrice(request.id, price, traceContext);
      if (!product) throw new StatusError(grpc.status.NOT_FOUND, `product ${request.id} not found`);
      onEvent();
      return product;
    }),
  };
}
