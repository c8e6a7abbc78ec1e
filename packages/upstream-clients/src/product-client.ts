import { isIPv4, isIPv6 } from 'node:net';
import {
  type GetProductsResponse__Output,
  type ListProductsRequest,
  type ListProductsResponse__Output,
  loadProductService,
  type Money__Output,
  type PricedProduct,
  type Product__Output,
} from '@bff/schema';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProtoPath } from 'grpc-health-check';
import type { CancelSignal } from './cancellation.ts';
import { type CallGuard, UpstreamError, UpstreamErrorCode } from './errors.ts';
import { type CallOptions, outcomeOf, type UpstreamCall, type UpstreamOutcome } from './rest.ts';

/**
 * A product as the client hands it out: the `bff.product.v1.Product` proto-loader decodes (types
 * generated from schema/product/v1/product.proto), its price always set.
 */
export type ProductRecord = PricedProduct;

/** A page of `ListProducts`: the decoded response, its products as records. */
export interface ProductPage extends Omit<ListProductsResponse__Output, 'products'> {
  products: ProductRecord[];
}

export interface ProductClientOptions {
  /**
   * Where the Product service is: `host:port`, or a gRPC target naming every replica, over which
   * calls are spread round-robin: `dns:///host:port` (every address the name resolves to, looked up
   * again as connections close: a headless Service in Kubernetes), `ipv4:ip:port,ip:port`, or
   * `ipv6:[ip]:port,[ip]:port`. A port is always required.
   */
  address: string;
  /** Longest any call may take, in ms. @default 2000 */
  timeoutMs?: number;
  /** Told about every call (every try, retries included). */
  onCall?: (call: UpstreamCall) => void;
  /** Deadlines, retries and circuit breaking around every call. */
  guard?: CallGuard | undefined;
}

export interface ProductClient {
  /** Known products in request order; unknown ids are left out. */
  getProducts(ids: readonly string[], options?: CallOptions): Promise<ProductRecord[]>;
  /** The product, or null when the id is unknown. */
  getProduct(id: string, options?: CallOptions): Promise<ProductRecord | null>;
  listProducts(request: ListProductsRequest, options?: CallOptions): Promise<ProductPage>;
  updatePrice(id: string, price: Money__Output, options?: CallOptions): Promise<ProductRecord>;
  /** Whether the standard health service says SERVING. */
  ready(options?: CallOptions): Promise<boolean>;
  /** Closes the channel. */
  close(): void;
}

type Unary = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (error: grpc.ServiceError | null, response: unknown) => void,
) => grpc.ClientUnaryCall;

/**
 * The channel's options. Round-robin over every address the target resolves to: with grpc-js's
 * default (pick_first) every client pins all its calls to the first replica it reached, so scaling
 * Product out does nothing. The service config is ours alone: looking it up in DNS (TXT records)
 * is turned off, so no record in a zone we do not own can change the policy.
 */
const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.keepalive_time_ms': 30_000,
  'grpc.keepalive_timeout_ms': 5_000,
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 2_000,
  'grpc.service_config': JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
  'grpc.service_config_disable_resolution': 1,
};

/**
 * A Product client over one long-lived HTTP/2 channel (a connection per replica the address names,
 * calls spread round-robin), every call with a deadline.
 */
export function createProductClient(options: ProductClientOptions): ProductClient {
  const address = productAddress(options.address);
  const maxTimeout = options.timeoutMs ?? 2_000;
  if (!(maxTimeout > 0))
    throw new TypeError(`createProductClient: timeoutMs must be positive, received ${maxTimeout}`);
  const Service = loadProductService();
  const client = new Service(address, grpc.credentials.createInsecure(), CHANNEL_OPTIONS);
  // The health check rides the same channel: it asks the replicas the calls go to, with the same
  // balancing, keepalive and backoff, instead of opening a second pick_first connection to one of them.
  const health = new (loadHealthService())(address, grpc.credentials.createInsecure(), {
    channelOverride: client.getChannel(),
  });

  /**
   * One logical call: through the guard when there is one (reads are retried, writes never),
   * each try reported and its error turned into an UpstreamError, except NOT_FOUND, which the
   * caller answers.
   */
  function call<T>(
    method: string,
    request: unknown,
    callOptions: CallOptions = {},
    meta: { idempotent: boolean; batchSize?: number } = { idempotent: true },
  ): Promise<T> {
    const cap = Math.min(maxTimeout, callOptions.timeoutMs ?? maxTimeout);
    const once = (timeoutMs: number) =>
      attempt<T>(method, request, { ...callOptions, timeoutMs: Math.min(cap, timeoutMs) }, meta.batchSize);
    if (!options.guard) return once(cap);
    return options.guard.call(once, {
      idempotent: meta.idempotent,
      deadline: callOptions.deadline,
      signal: callOptions.signal,
    });
  }

  async function attempt<T>(
    method: string,
    request: unknown,
    callOptions: CallOptions,
    batchSize?: number,
  ): Promise<T> {
    const started = performance.now();
    const operation = method.charAt(0).toUpperCase() + method.slice(1);
    const traced = callOptions.trace?.startTry('product', operation);
    let outcome: UpstreamOutcome = 'error';
    try {
      const value = await invoke<T>(client, method, request, callOptions, traced?.headers);
      outcome = 'ok';
      return value;
    } catch (error) {
      // getProduct answers NOT_FOUND with null, so it must see the gRPC error itself.
      if ((error as Partial<grpc.ServiceError>).code === grpc.status.NOT_FOUND) {
        outcome = 'refused';
        throw error;
      }
      const upstream = toUpstreamError(error, operation, callOptions.signal);
      outcome = outcomeOf(upstream.code);
      throw upstream;
    } finally {
      traced?.end(outcome);
      options.onCall?.({
        service: 'product',
        operation,
        ...(batchSize === undefined ? {} : { batchSize }),
        startedAt: performance.timeOrigin + started,
        durationMs: performance.now() - started,
        ok: outcome === 'ok',
        outcome,
      });
    }
  }

  function invoke<T>(
    target: grpc.Client,
    method: string,
    request: unknown,
    callOptions: CallOptions,
    traceHeaders?: Record<string, string>,
  ): Promise<T> {
    const timeout = Math.min(maxTimeout, callOptions.timeoutMs ?? maxTimeout);
    const fn = (target as unknown as Record<string, Unary>)[method];
    if (!fn) throw new Error(`no gRPC method ${method}`);
    return new Promise<T>((resolve, reject) => {
      if (callOptions.signal?.aborted) {
        reject(new UpstreamError('product', UpstreamErrorCode.Cancelled, 'product call cancelled'));
        return;
      }
      const metadata = new grpc.Metadata();
      if (traceHeaders) for (const [key, value] of Object.entries(traceHeaders)) metadata.set(key, value);
      const pending = fn.call(
        target,
        request,
        metadata,
        { deadline: Date.now() + timeout },
        (error, response) => {
          callOptions.signal?.removeEventListener('abort', onAbort);
          if (error) reject(error);
          else resolve(response as T);
        },
      );
      const onAbort = () => pending.cancel();
      callOptions.signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  return {
    async getProducts(ids, callOptions) {
      if (ids.length === 0) return [];
      try {
        const response = await call<GetProductsResponse__Output>('getProducts', { ids }, callOptions, {
          idempotent: true,
          batchSize: ids.length,
        });
        return response.products.map(normalize);
      } catch (error) {
        throw toUpstreamError(error, 'GetProducts');
      }
    },
    async getProduct(id, callOptions) {
      try {
        return normalize(await call<Product__Output>('getProduct', { id }, callOptions));
      } catch (error) {
        if ((error as grpc.ServiceError).code === grpc.status.NOT_FOUND) return null;
        throw toUpstreamError(error, 'GetProduct');
      }
    },
    async listProducts(request, callOptions) {
      try {
        const response = await call<ListProductsResponse__Output>('listProducts', request, callOptions);
        return { ...response, products: response.products.map(normalize) };
      } catch (error) {
        throw toUpstreamError(error, 'ListProducts');
      }
    },
    async updatePrice(id, price, callOptions) {
      try {
        return normalize(
          await call<Product__Output>('updatePrice', { id, price }, callOptions, { idempotent: false }),
        );
      } catch (error) {
        throw toUpstreamError(error, 'UpdatePrice');
      }
    },
    async ready(callOptions) {
      try {
        const response = await invoke<{ status: string }>(
          health,
          'check',
          { service: '' },
          callOptions ?? {},
        );
        return response.status === 'SERVING';
      } catch {
        return false;
      }
    },
    // Closing the client closes the channel the health client shares (a second close would
    // tear it down twice).
    close: () => client.close(),
  };
}

const TARGET_FORMS =
  'host:port, dns:///host:port, ipv4:ip:port[,ip:port...] or ipv6:[ip]:port[,[ip]:port...]';

/**
 * The address, checked: `host:port` (a name, an IPv4 address or a bracketed IPv6 one), or a
 * `dns:`, `ipv4:` or `ipv6:` target as gRPC's naming document writes them, every address with a
 * port (grpc-js would otherwise dial 443). A DNS server in the target (`dns://8.8.8.8/host:port`)
 * is refused: grpc-js ignores it unless an environment variable says otherwise, and an option
 * silently ignored is worse than one refused. Anything else, such as an `http://` URL, throws a
 * TypeError naming the value.
 */
function productAddress(address: unknown): string {
  if (typeof address !== 'string' || !isProductTarget(address)) {
    throw new TypeError(
      `createProductClient: address must be ${TARGET_FORMS}, received ${JSON.stringify(address)}`,
    );
  }
  return address;
}

/**
 * The Product targets the client accepts, in words, for a setting's error message: a replica's
 * `host:port`, or a gRPC target naming every replica for the client to balance over (a headless
 * Service's `dns:///host:port`, or `ipv4:`/`ipv6:` address lists).
 */
export const PRODUCT_TARGET_FORMS =
  'host:port, dns:///host:port, ipv4:ip:port[,ip:port] or ipv6:[ip]:port[,[ip]:port]';

/**
 * Whether `address` is a Product target the client accepts: `host:port`, `dns:///host:port`,
 * `ipv4:ip:port[,ip:port]` or `ipv6:[ip]:port[,[ip]:port]` (configs check their variable with it).
 */
export function isProductTarget(address: string): boolean {
  const scheme = /^(dns|ipv4|ipv6):/.exec(address)?.[1];
  if (scheme === undefined) return isHostPort(address, 'any');
  let rest = address.slice(scheme.length + 1);
  if (rest.startsWith('//')) {
    if (!rest.startsWith('///')) return false;
    rest = rest.slice(3);
  }
  if (scheme === 'dns') return isHostPort(rest, 'any');
  return rest.split(',').every((part) => isHostPort(part, scheme === 'ipv4' ? 'ipv4' : 'ipv6'));
}

function isHostPort(text: string, family: 'any' | 'ipv4' | 'ipv6'): boolean {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  if (!match) return false;
  const [, bracketed, plain = '', port] = match;
  if (!(Number(port) >= 1 && Number(port) <= 65_535)) return false;
  if (bracketed !== undefined) return family !== 'ipv4' && isIPv6(bracketed);
  if (family === 'ipv4') return isIPv4(plain);
  return family === 'any' && isHostname(plain);
}

/** RFC 1123 labels (underscores too, as some local names have), with an optional final dot. */
function isHostname(name: string): boolean {
  const labels = (name.endsWith('.') ? name.slice(0, -1) : name).split('.');
  return (
    name.length <= 253 &&
    labels.every((label) => /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/.test(label))
  );
}

let healthService: grpc.ServiceClientConstructor | undefined;

function loadHealthService(): grpc.ServiceClientConstructor {
  if (!healthService) {
    const definition = protoLoader.loadSync(healthProtoPath, { enums: String, defaults: true });
    const loaded = grpc.loadPackageDefinition(definition) as unknown as {
      grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
    };
    healthService = loaded.grpc.health.v1.Health;
  }
  return healthService;
}

/**
 * The decoded message as a record. proto-loader's options (schema/index.ts: int64 as numbers,
 * defaults filled, arrays always present) already give the record's shape, so it is used as it
 * is rather than copied (a copy per product was a tenth of what a product read allocated); only
 * an absent price, which proto3 leaves null, gets a value.
 */
function normalize(p: Product__Output): ProductRecord {
  p.price ??= { amountMinor: 0, currency: '' };
  // The assignment above is what makes the price present; TypeScript does not carry that
  // narrowing from the property to the object.
  return p as ProductRecord;
}

function toUpstreamError(error: unknown, method: string, signal?: CancelSignal): UpstreamError {
  if (error instanceof UpstreamError) return error;
  const code = (error as Partial<grpc.ServiceError>).code;
  if (signal?.aborted) {
    return new UpstreamError('product', UpstreamErrorCode.Cancelled, `product ${method} cancelled`, {
      cause: error,
    });
  }
  switch (code) {
    case grpc.status.DEADLINE_EXCEEDED:
    case grpc.status.CANCELLED:
      return new UpstreamError('product', UpstreamErrorCode.Timeout, `product ${method} timed out`, {
        cause: error,
      });
    case grpc.status.UNAVAILABLE:
      return new UpstreamError('product', UpstreamErrorCode.Unavailable, `product ${method} unavailable`, {
        cause: error,
      });
    // The service refused the request as asked: the caller's fault, so never retried and never
    // held against the service's health (the guard counts only transient errors).
    case grpc.status.INVALID_ARGUMENT:
    case grpc.status.OUT_OF_RANGE:
    case grpc.status.FAILED_PRECONDITION:
    case grpc.status.ALREADY_EXISTS:
      return new UpstreamError(
        'product',
        UpstreamErrorCode.InvalidArgument,
        (error as grpc.ServiceError).details ?? 'invalid argument',
        { cause: error },
      );
    case grpc.status.NOT_FOUND:
      return new UpstreamError('product', UpstreamErrorCode.NotFound, `product ${method}: not found`, {
        cause: error,
      });
    default:
      return new UpstreamError('product', UpstreamErrorCode.BadResponse, `product ${method} failed`, {
        cause: error,
      });
  }
}
