// The gRPC server's connection age (how clients find replicas started after they connected):
// a client's connection is asked to go away once it is older than `maxConnectionAgeMs`, the
// client connects again, and no call fails on the way. Bad values are refused before anything
// starts, naming the option and the value. Connections are counted by a TCP relay the test owns.

import type { AddressInfo } from 'node:net';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { InProcessEventBus } from '@bff/events';
import { throwawayDatabase } from '@bff/testkit';
import { createProductClient } from '@bff/upstream-clients';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningProductService, startProductService } from '../src/index.ts';

/** A TCP relay to `target` that counts the connections it accepted. */
async function countingRelay(target: { host: string; port: number }) {
  let accepted = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    accepted += 1;
    const upstream = connect(target.port, target.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    get accepted() {
      return accepted;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

describe('Product service connection age', () => {
  const database = throwawayDatabase('pglite', 'product');
  const bus = new InProcessEventBus();
  let service: RunningProductService;
  beforeAll(async () => {
    service = await startProductService({
      port: 0,
      database: database.options,
      bus,
      logger: pino({ level: 'silent' }),
      maxConnectionAgeMs: 300,
      maxConnectionAgeGraceMs: 2_000,
    });
  });
  afterAll(async () => {
    await service?.close();
    await bus.close();
    await database.drop();
  });

  it('asks an aged connection to go away; the client connects again and no call fails', async () => {
    const relay = await countingRelay({ host: '127.0.0.1', port: service.port });
    const client = createProductClient({ address: relay.address });
    try {
      let calls = 0;
      // Calls one after another until the client has had to connect three times (the age is
      // 300 ms ±10%): a wait for that condition, bounded generously for a loaded machine.
      const giveUpAt = Date.now() + 30_000;
      while (relay.accepted < 3 && Date.now() < giveUpAt) {
        const [product] = await client.getProducts(['p-0001']);
        expect(product?.id).toBe('p-0001');
        calls += 1;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(relay.accepted).toBeGreaterThanOrEqual(3);
      expect(calls).toBeGreaterThan(3);
    } finally {
      client.close();
      await relay.close();
    }
  });
});

describe('Product service connection age options', () => {
  it.each([
    ['maxConnectionAgeMs', 99],
    ['maxConnectionAgeMs', 86_400_001],
    ['maxConnectionAgeMs', 1.5],
    ['maxConnectionAgeMs', Number.NaN],
    ['maxConnectionAgeMs', '300000'],
    ['maxConnectionAgeGraceMs', -1],
    ['maxConnectionAgeGraceMs', 3_600_001],
    ['maxConnectionAgeGraceMs', Number.POSITIVE_INFINITY],
  ] as const)('refuses %s = %s before starting anything, naming both', async (name, value) => {
    const database = throwawayDatabase('pglite', 'product');
    const bus = new InProcessEventBus();
    const outcome = await startProductService({
      port: 0,
      database: database.options,
      bus,
      logger: pino({ level: 'silent' }),
      [name]: value as never,
    }).then(
      async (started) => {
        await started.close(); // accepted by mistake: leave nothing running
        return undefined;
      },
      (error: unknown) => error,
    );
    await bus.close();
    expect(outcome).toBeInstanceOf(TypeError);
    expect((outcome as TypeError).message).toBe(
      `startProductService: ${name} must be a whole number of ms from ${name === 'maxConnectionAgeMs' ? '100 to 86400000' : '0 to 3600000'}, received ${JSON.stringify(value)}`,
    );
  });
});
