// A replica started after a client connected gets its share once the servers age the client's
// connections out (grpc.max_connection_age_ms, as the Product service sets it): the closed
// connection makes the client resolve the name again and connect to every address it now has.
//
// A headless Service's DNS name cannot be served from a test, so this file puts a resolver of its
// own behind the `dns:` scheme (grpc-js's experimental registerResolver; each test file runs in a
// process of its own, so no other suite sees it): `dns:///product.test:5003` resolves to the
// replicas listed in `records`, and every lookup is counted. grpc-js's own DNS resolver looks a
// name up at most every 30 s (grpc.dns_min_time_between_resolutions_ms), so in a cluster a new
// pod gets traffic within the connection age plus those 30 s; this resolver answers at once.
import { isIP } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { createProductClient, type ProductClient } from '../src/index.ts';
import { type ProductReplica, startReplica } from './product-replicas.ts';
import { RecordingGuard } from './stubs.ts';

/** The ports each name resolves to, on 127.0.0.1. */
const records = new Map<string, number[]>();
/** How often a client looked a name up. */
let lookups = 0;

class TestDnsResolver implements grpc.experimental.Resolver {
  constructor(
    private readonly target: grpc.experimental.GrpcUri,
    private readonly listener: grpc.experimental.ResolverListener,
  ) {}

  updateResolution(): void {
    const { host = '', port = 0 } = grpc.experimental.splitHostPort(this.target.path) ?? {};
    // grpc-js resolves a server's bind address with the same resolver: an IP address is itself.
    if (!isIP(host)) lookups++;
    const endpoints = isIP(host)
      ? [{ addresses: [{ host, port }] }]
      : (records.get(host) ?? []).map((p) => ({ addresses: [{ host: '127.0.0.1', port: p }] }));
    // Never synchronously (the Resolver contract).
    setImmediate(() => this.listener(grpc.experimental.statusOrFromValue(endpoints), {}, null, ''));
  }

  destroy(): void {}

  static getDefaultAuthority(target: grpc.experimental.GrpcUri): string {
    return target.path;
  }
}
grpc.experimental.registerResolver('dns', TestDnsResolver);

/** The Product service's setting, scaled down: 5 minutes there, half a second here. */
const AGED = { 'grpc.max_connection_age_ms': 500, 'grpc.max_connection_age_grace_ms': 2_000 };

const replicas: ProductReplica[] = [];
const clients: ProductClient[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  for (const replica of replicas.splice(0)) replica.kill();
  records.clear();
});

async function replica(name: string) {
  const started = await startReplica(name, { server: AGED });
  replicas.push(started);
  return started;
}

describe('createProductClient with dns:/// and servers that age connections out', () => {
  it('sends a replica started after it connected its share of the reads', async () => {
    const a = await replica('a');
    const b = await replica('b');
    records.set('product.test', [a.port, b.port]);
    const product = createProductClient({
      address: 'dns:///product.test:5003',
      timeoutMs: 5_000,
      guard: new RecordingGuard(),
    });
    clients.push(product);
    const failures: unknown[] = [];
    const read = async () => {
      try {
        return (await product.getProduct('p-1'))?.name;
      } catch (error) {
        failures.push(error);
        return undefined;
      }
    };

    await expect
      .poll(async () => new Set([await read(), await read()]).size, { timeout: 20_000, interval: 50 })
      .toBe(2);
    const lookupsBefore = lookups;

    // A new pod: the name resolves to it too, but nothing tells the client.
    const c = await replica('c');
    records.set('product.test', [a.port, b.port, c.port]);
    await expect.poll(read, { timeout: 20_000, interval: 50 }).toBe('c');

    // The aged-out connections sent the client back to the resolver (with servers that keep
    // connections open, c never gets a read: nothing asks the resolver again).
    expect(lookups).toBeGreaterThan(lookupsBefore);
    // And no read failed while connections were closed under it.
    expect(failures).toEqual([]);
  });
});
