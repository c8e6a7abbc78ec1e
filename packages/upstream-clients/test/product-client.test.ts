// The gRPC Product client against a stub ProductService (the real proto) on port 0: deadlines,
// reads retried and UpdatePrice never, refusals (INVALID_ARGUMENT, NOT_FOUND) neither retried
// nor held against the service, and an answer that cannot be decoded a coded UpstreamError.
import { loadProductService } from '@bff/schema';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  createProductClient,
  type ProductClient,
  type UpstreamCall,
  UpstreamErrorCode,
} from '../src/index.ts';
import { RecordingGuard, upstreamError } from './stubs.ts';

type Answer = (
  request: Record<string, unknown>,
) => { error: Partial<grpc.StatusObject> } | { value: unknown };
type Method = 'GetProducts' | 'GetProduct' | 'ListProducts' | 'UpdatePrice';

const PRODUCT = {
  id: 'p-1',
  sku: 'SKU-1',
  name: 'Tea',
  description: '',
  category: 'food',
  price: { amountMinor: 450, currency: 'EUR' },
  images: [],
  inventory: 3,
};

/** What each method answers, how often it was called; a method set to `'hang'` never answers. */
const answers = new Map<Method, Answer | 'hang'>();
const received = new Map<Method, number>();
/** The `traceparent` metadata of the last call. */
let lastTraceparent: unknown;

function handler(method: Method): grpc.handleUnaryCall<Record<string, unknown>, unknown> {
  return (call, callback) => {
    received.set(method, (received.get(method) ?? 0) + 1);
    lastTraceparent = call.metadata.get('traceparent')[0];
    const answer = answers.get(method);
    if (answer === 'hang') return;
    if (!answer) {
      callback({ code: grpc.status.UNIMPLEMENTED, details: 'not set' });
      return;
    }
    const outcome = answer(call.request);
    if ('error' in outcome) callback(outcome.error);
    else callback(null, outcome.value);
  };
}

const servers: grpc.Server[] = [];
async function startStub(definition: grpc.ServiceDefinition): Promise<string> {
  const server = new grpc.Server();
  server.addService(definition, {
    GetProducts: handler('GetProducts'),
    GetProduct: handler('GetProduct'),
    ListProducts: handler('ListProducts'),
    UpdatePrice: handler('UpdatePrice'),
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    ),
  );
  servers.push(server);
  return `127.0.0.1:${port}`;
}

let address: string;
let garbledAddress: string;
beforeAll(async () => {
  const definition = loadProductService().service;
  address = await startStub(definition);
  // The same service, but GetProducts answers bytes that are no GetProductsResponse.
  const getProducts = definition.GetProducts as grpc.MethodDefinition<unknown, unknown>;
  garbledAddress = await startStub({
    ...definition,
    GetProducts: { ...getProducts, responseSerialize: () => Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff]) },
  });
});
afterAll(() => {
  for (const server of servers) server.forceShutdown();
});

const clients: ProductClient[] = [];
function client(options: { timeoutMs?: number; address?: string } = {}) {
  const guard = new RecordingGuard();
  const calls: UpstreamCall[] = [];
  const product = createProductClient({
    address: options.address ?? address,
    timeoutMs: options.timeoutMs ?? 5_000,
    guard,
    onCall: (call) => calls.push(call),
  });
  clients.push(product);
  return { product, guard, calls };
}
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
  answers.clear();
  received.clear();
});

describe('createProductClient', () => {
  it('answers a batch read in order, giving an absent price a value', async () => {
    answers.set('GetProducts', () => ({
      value: { products: [PRODUCT, { ...PRODUCT, id: 'p-2', price: null }] },
    }));
    const { product, guard, calls } = client();
    const products = await product.getProducts(['p-1', 'p-2']);
    expect(products.map((p) => p.id)).toEqual(['p-1', 'p-2']);
    expect(products[0]?.price).toEqual({ amountMinor: 450, currency: 'EUR' });
    expect(products[1]?.price).toEqual({ amountMinor: 0, currency: '' });
    expect(guard.calls).toEqual([{ idempotent: true }]);
    expect(calls).toMatchObject([{ service: 'product', operation: 'GetProducts', batchSize: 2, ok: true }]);
  });

  it('sends the caller trace as gRPC metadata and ends the try with its outcome', async () => {
    answers.set('GetProduct', () => ({ error: { code: grpc.status.NOT_FOUND, details: 'no such product' } }));
    const { product, calls } = client();
    const ended: string[] = [];
    const traceparent = `00-${'b'.repeat(32)}-${'c'.repeat(16)}-01`;
    const trace = {
      startTry: (service: string, operation: string) => ({
        headers: { traceparent },
        end: (outcome: string) => ended.push(`${service} ${operation} ${outcome}`),
      }),
    };
    expect(await product.getProduct('p-9', { trace })).toBeNull();
    expect(lastTraceparent).toBe(traceparent);
    expect(ended).toEqual(['product GetProduct refused']);
    expect(calls.map((c) => c.outcome)).toEqual(['refused']);
  });

  it('gives up at the deadline with UPSTREAM_TIMEOUT, and tries a read once more', async () => {
    answers.set('GetProducts', 'hang');
    const { product, calls } = client({ timeoutMs: 100 });
    const error = await upstreamError(product.getProducts(['p-1']));
    expect(error.code).toBe(UpstreamErrorCode.Timeout);
    // Counted at the client: on a loaded machine a try may time out before it reaches the stub.
    expect(calls.map((c) => c.ok)).toEqual([false, false]);
  });

  it('retries a read the service was unavailable for, and answers with the retry', async () => {
    let tries = 0;
    answers.set('ListProducts', () =>
      ++tries === 1
        ? { error: { code: grpc.status.UNAVAILABLE, details: 'restarting' } }
        : { value: { products: [PRODUCT], nextPageToken: '', totalSize: 1 } },
    );
    const { product, guard } = client();
    const page = await product.listProducts({ pageSize: 1 });
    expect(page.products.map((p) => p.id)).toEqual(['p-1']);
    expect(received.get('ListProducts')).toBe(2);
    expect(guard.failures).toBe(1);
  });

  it('never retries UpdatePrice, even when the failure is transient', async () => {
    answers.set('UpdatePrice', () => ({ error: { code: grpc.status.UNAVAILABLE, details: 'down' } }));
    const { product, guard } = client();
    const error = await upstreamError(product.updatePrice('p-1', { amountMinor: 500, currency: 'EUR' }));
    expect(error.code).toBe(UpstreamErrorCode.Unavailable);
    expect(received.get('UpdatePrice')).toBe(1);
    expect(guard.calls).toEqual([{ idempotent: false }]);
  });

  it('refuses INVALID_ARGUMENT as UPSTREAM_INVALID_ARGUMENT: asked once, not counted against the service', async () => {
    answers.set('ListProducts', () => ({
      error: { code: grpc.status.INVALID_ARGUMENT, details: 'page_token is not a token this service issued' },
    }));
    const { product, guard } = client();
    const error = await upstreamError(product.listProducts({ pageToken: 'forged' }));
    expect(error.code).toBe(UpstreamErrorCode.InvalidArgument);
    expect(error.refusal).toBe(true);
    expect(received.get('ListProducts')).toBe(1);
    expect(guard.failures).toBe(0);
  });

  it('answers an unknown product with null: asked once, not counted against the service', async () => {
    answers.set('GetProduct', () => ({ error: { code: grpc.status.NOT_FOUND, details: 'no such product' } }));
    const { product, guard } = client();
    expect(await product.getProduct('p-404')).toBeNull();
    expect(received.get('GetProduct')).toBe(1);
    expect(guard.failures).toBe(0);
  });

  it('makes an INTERNAL failure an UPSTREAM_BAD_RESPONSE, without the service’s own words', async () => {
    answers.set('GetProduct', () => ({
      error: { code: grpc.status.INTERNAL, details: 'pg: relation "products" at 10.0.0.9' },
    }));
    const { product } = client();
    const error = await upstreamError(product.getProduct('p-1'));
    expect(error.code).toBe(UpstreamErrorCode.BadResponse);
    expect(error.message).not.toMatch(/10\.0\.0\.9|relation/);
  });

  it('makes an answer that cannot be decoded an UPSTREAM_BAD_RESPONSE', async () => {
    answers.set('GetProducts', () => ({ value: { products: [PRODUCT] } }));
    const { product } = client({ address: garbledAddress });
    const error = await upstreamError(product.getProducts(['p-1']));
    expect(error.code).toBe(UpstreamErrorCode.BadResponse);
    expect(error.service).toBe('product');
  });

  it('stops when the caller gives up, with UPSTREAM_CANCELLED, not retried', async () => {
    answers.set('GetProducts', 'hang');
    const { product, guard } = client();
    const controller = new AbortController();
    const pending = upstreamError(product.getProducts(['p-1'], { signal: controller.signal }));
    await expect.poll(() => received.get('GetProducts')).toBe(1);
    controller.abort();
    expect((await pending).code).toBe(UpstreamErrorCode.Cancelled);
    expect(received.get('GetProducts')).toBe(1);
    expect(guard.failures).toBe(0);
  });

  it('names a bad timeout', () => {
    expect(() => createProductClient({ address: '127.0.0.1:1', timeoutMs: -5 })).toThrow(
      /timeoutMs must be positive, received -5/,
    );
  });
});

describe('createProductClient address', () => {
  // What an operator may write in PRODUCT_ADDR: one replica, or a target naming them all.
  it.each([
    ['a name', 'product:5003'],
    ['an IPv4 address', '127.0.0.1:5003'],
    ['a bracketed IPv6 address', '[::1]:5003'],
    ['a fully qualified name with its final dot', 'product-grpc.bff.svc.cluster.local.:5003'],
    ['a Compose-style name with an underscore', 'product_service:5003'],
    ['dns:/// and a short name (the pod’s search domains complete it)', 'dns:///product-grpc:5003'],
    ['dns:/// and a cluster name', 'dns:///product-grpc.bff.svc.cluster.local:5003'],
    ['dns: without slashes', 'dns:product-grpc:5003'],
    ['dns:/// and an IPv6 address', 'dns:///[::1]:5003'],
    ['ipv4: with one address', 'ipv4:127.0.0.1:5003'],
    ['ipv4: with several', 'ipv4:127.0.0.1:5003,127.0.0.1:5004,10.0.0.7:5003'],
    ['ipv4:/// with several', 'ipv4:///127.0.0.1:5003,127.0.0.1:5004'],
    ['ipv6: with several', 'ipv6:[::1]:5003,[fe80::1]:5004'],
    ['the highest port', 'product:65535'],
  ])('takes %s: %s', (_form, address) => {
    const product = createProductClient({ address });
    product.close();
  });

  it.each([
    ['a URL', 'http://product:50051'],
    ['no port', 'product'],
    ['no port after dns:///', 'dns:///product-grpc'],
    ['a port that is no port', 'product:0'],
    ['a port above 65535', 'product:65536'],
    ['a space', 'product :5003'],
    ['a space between addresses', 'ipv4:127.0.0.1:5003, 127.0.0.1:5004'],
    ['a trailing comma', 'ipv4:127.0.0.1:5003,'],
    ['a name after ipv4:', 'ipv4:product:5003'],
    ['an octet above 255', 'ipv4:127.0.0.256:5003'],
    ['an IPv6 address after ipv4:', 'ipv4:[::1]:5003'],
    ['an IPv4 address after ipv6:', 'ipv6:127.0.0.1:5003'],
    ['an unbracketed IPv6 address', 'ipv6:::1:5003'],
    ['an unbracketed IPv6 host', '::1:5003'],
    ['a bracketed name', '[product]:5003'],
    ['a DNS server, which grpc-js would ignore', 'dns://10.96.0.10/product-grpc:5003'],
    ['dns: with two slashes', 'dns://product-grpc:5003'],
    ['several names after dns:', 'dns:///a:5003,b:5003'],
    ['a scheme gRPC resolves that the Product client does not take', 'unix:///var/run/product.sock'],
    ['an unknown scheme', 'xds:///product:5003'],
    ['a label starting with a hyphen', '-product:5003'],
    ['an empty label', 'product..bff:5003'],
    ['a label longer than 63 characters', `${'a'.repeat(64)}:5003`],
    ['nothing', ''],
  ])('refuses %s, naming it: %j', (_problem, address) => {
    expect(() => createProductClient({ address })).toThrow(TypeError);
    expect(() => createProductClient({ address })).toThrow(
      `createProductClient: address must be host:port, dns:///host:port, ipv4:ip:port[,ip:port...] or ipv6:[ip]:port[,[ip]:port...], received ${JSON.stringify(address)}`,
    );
  });

  it('refuses an address that is not a string', () => {
    expect(() => createProductClient({ address: 5003 as unknown as string })).toThrow(/received 5003$/);
  });
});
