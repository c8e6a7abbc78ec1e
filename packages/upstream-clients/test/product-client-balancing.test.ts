// The Product client against several replicas at once (issue #15): calls are spread over every
// address the target names, not pinned to the first one reached, and keep being answered while
// a replica is gone.
import { afterEach, describe, expect, it } from 'vitest';
import { createProductClient, type ProductClient } from '../src/index.ts';
import { type ProductReplica, startReplica } from './product-replicas.ts';
import { RecordingGuard } from './stubs.ts';

const replicas: ProductReplica[] = [];
const clients: ProductClient[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  for (const replica of replicas.splice(0)) replica.kill();
});

async function replica(name: string, port?: number) {
  const started = await startReplica(name, port === undefined ? {} : { port });
  replicas.push(started);
  return started;
}

function client(address: string) {
  // Retries as the BFFs' guard does: a read that met a connection as it died is tried again.
  const product = createProductClient({ address, timeoutMs: 5_000, guard: new RecordingGuard() });
  clients.push(product);
  return product;
}

/** The replica that answered each of `count` reads, one after the other. */
async function answeredBy(product: ProductClient, count: number): Promise<string[]> {
  const names: string[] = [];
  for (let i = 0; i < count; i++) names.push((await product.getProduct(`p-${i}`))?.name ?? 'null');
  return names;
}

describe('createProductClient over several replicas', () => {
  it('spreads reads over every address of an ipv4: target, and keeps answering on the other when one dies', async () => {
    const a = await replica('a');
    const b = await replica('b');
    const product = client(`ipv4:127.0.0.1:${a.port},127.0.0.1:${b.port}`);

    // Both connections open at once; until the second is up, reads go to the first.
    await expect
      .poll(async () => new Set(await answeredBy(product, 2)).size, { timeout: 20_000, interval: 50 })
      .toBe(2);
    const before = { a: a.calls, b: b.calls };
    const names = await answeredBy(product, 20);
    // Round-robin takes turns, so each answers about half (pick_first: one answers all 20). The
    // bound leaves room for a connection that blips on a loaded machine.
    expect(names.filter((n) => n === 'a').length).toBeGreaterThanOrEqual(5);
    expect(names.filter((n) => n === 'b').length).toBeGreaterThanOrEqual(5);
    expect(a.calls - before.a + (b.calls - before.b)).toBe(20);
    expect(await product.ready()).toBe(true);

    a.kill();
    const afterKill = a.calls;
    // Every read is answered, by b alone (a read that met a's connection as it died is retried).
    expect(await answeredBy(product, 20)).toEqual(Array(20).fill('b'));
    expect(a.calls).toBe(afterKill);
    expect(await product.ready()).toBe(true);

    // A replacement at a's address gets its share again once the client has reconnected.
    const replacement = await replica('a2', a.port);
    await expect
      .poll(async () => (await answeredBy(product, 2)).includes('a2'), { timeout: 20_000, interval: 100 })
      .toBe(true);
    expect(replacement.calls).toBeGreaterThan(0);
  });

  it('answers ready() false only when no replica is left', async () => {
    const a = await replica('a');
    const b = await replica('b');
    const product = client(`ipv4:127.0.0.1:${a.port},127.0.0.1:${b.port}`);
    expect(await product.ready()).toBe(true);
    a.kill();
    expect(await product.ready({ timeoutMs: 2_000 })).toBe(true);
    b.kill();
    await expect
      .poll(() => product.ready({ timeoutMs: 500 }), { timeout: 20_000, interval: 100 })
      .toBe(false);
  });
});
