import { randomBytes } from 'node:crypto';
import { type Database, migrate, openDatabase } from '@bff/db';
import { realServer, TcpProxy, waitFor } from '@bff/testkit';
import { connect } from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  consumeOnce,
  type EventEnvelope,
  enqueueEvent,
  newEvent,
  OutboxRelay,
  outboxMigrations,
  RabbitMqEventBus,
} from '../src/index.ts';

const url = process.env.AMQP_URL;
const available = await realServer('RabbitMQ', url);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe.runIf(available)('RabbitMqEventBus against the real RabbitMQ', () => {
  const run = randomBytes(4).toString('hex');
  const exchange = `bff.test.${run}`;
  const queues: string[] = [];
  const buses: RabbitMqEventBus[] = [];
  const proxies: TcpProxy[] = [];
  const consumer = (name: string) => {
    const queue = `test.${run}.${name}`;
    queues.push(queue, `${queue}.dead-letter`);
    return queue;
  };
  const bus = (via?: TcpProxy) => {
    const target = new URL(url as string);
    if (via) {
      target.hostname = '127.0.0.1';
      target.port = String(via.port);
    }
    const created = new RabbitMqEventBus({
      url: target.toString(),
      exchange,
      timeoutMs: 2_000,
      retryDelayMs: 20,
      maxReconnectDelayMs: 300,
    });
    buses.push(created);
    return created;
  };
  const proxy = async () => {
    const target = new URL(url as string);
    const created = await new TcpProxy(target.hostname, Number(target.port || 5672)).start();
    proxies.push(created);
    return created;
  };

  afterEach(async () => {
    for (const b of buses.splice(0)) await b.close();
    for (const p of proxies.splice(0)) await p.close();
  });
  afterAll(async () => {
    const model = await connect(url as string);
    const channel = await model.createChannel();
    for (const queue of queues) await channel.deleteQueue(queue);
    await channel.deleteExchange(exchange);
    await channel.deleteExchange(`${exchange}.dead-letter`);
    await model.close();
  });

  it('delivers a published event to every matching consumer, once each', async () => {
    const b = bus();
    const got: Record<string, EventEnvelope[]> = { a: [], b: [], other: [] };
    await b.subscribe(consumer('a'), ['billing.invoice.*'], async (e) => void got.a?.push(e));
    await b.subscribe(consumer('b'), ['billing.#'], async (e) => void got.b?.push(e));
    await b.subscribe(consumer('other'), ['identity.#'], async (e) => void got.other?.push(e));
    const event = newEvent('billing', 'billing.invoice.created', 1, { invoiceId: 'i-1' });
    await b.publish(event);
    await waitFor('both consumers', () => got.a?.length === 1 && got.b?.length === 1);
    await sleep(200);
    expect(got.a).toEqual([event]);
    expect(got.b).toEqual([event]);
    expect(got.other).toEqual([]);
  });

  it('retries a failing handler and dead-letters the event after maxAttempts', async () => {
    const b = bus();
    const queue = consumer('always-fails');
    let attempts = 0;
    await b.subscribe(
      queue,
      ['test.poison'],
      async () => {
        attempts++;
        throw new Error('handler failure');
      },
      { maxAttempts: 3 },
    );
    const event = newEvent('test', 'test.poison', 1, {});
    await b.publish(event);
    const model = await connect(url as string);
    try {
      const channel = await model.createChannel();
      const dead = await waitFor('the dead-lettered message', async () => {
        const message = await channel.get(`${queue}.dead-letter`, { noAck: true });
        return message === false ? undefined : message;
      });
      expect(JSON.parse(dead.content.toString()).id).toBe(event.id);
      expect(attempts).toBe(3);
    } finally {
      await model.close();
    }
  });

  it('fails a publish while the connection is cut, and reconnects and resumes consuming after', async () => {
    const p = await proxy();
    const b = bus(p);
    const got: string[] = [];
    await b.subscribe(consumer('resumes'), ['test.resume'], async (e) => void got.push(e.id));
    const before = newEvent('test', 'test.resume', 1, {});
    await b.publish(before);
    await waitFor('the first event', () => got.includes(before.id));

    p.cut();
    await expect(b.publish(newEvent('test', 'test.resume', 1, {}))).rejects.toThrow();
    p.restore();

    const after = newEvent('test', 'test.resume', 1, {});
    await waitFor('a publish to succeed again', async () => {
      await b.publish(after);
      return true;
    });
    await waitFor('the consumer to resume', () => got.includes(after.id));
  });

  describe('with the outbox (PGlite)', () => {
    let db: Database;
    beforeAll(async () => {
      db = await openDatabase({ schema: 'outbox_test' });
      await migrate(db, [outboxMigrations]);
    });
    afterAll(async () => {
      await db.close();
    });

    it('keeps events written while the broker is unreachable and publishes them all once it is back', async () => {
      const p = await proxy();
      const publisher = bus(p);
      const receiver = bus();
      const got: string[] = [];
      await receiver.subscribe(consumer('outbox'), ['test.outbox'], async (e) => void got.push(e.id));
      const relay = new OutboxRelay({ db, bus: publisher, pollIntervalMs: 50 });
      relay.start();
      try {
        p.cut();
        const ids: string[] = [];
        for (let i = 0; i < 5; i++) {
          const event = await db.transaction((tx) => enqueueEvent(tx, 'test', 'test.outbox', 1, { i }));
          ids.push(event.id);
          relay.notify();
        }
        await waitFor('a failed publish attempt', async () => {
          const r = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM outbox WHERE attempts > 0');
          return (r.rows[0]?.n ?? 0) > 0;
        });
        expect(got).toEqual([]);
        p.restore();
        await waitFor('every event', () => ids.every((id) => got.includes(id)), 20_000);
        await sleep(300);
        expect([...got].sort()).toEqual([...ids].sort()); // each exactly once
        const pending = await db.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM outbox WHERE published_at IS NULL',
        );
        expect(pending.rows[0]?.n).toBe(0);
      } finally {
        await relay.stop();
      }
    });

    it('processes a redelivered event once: the handler’s effect is not applied twice', async () => {
      await db.exec('CREATE TABLE IF NOT EXISTS effects (event_id uuid, n serial)');
      const b = bus();
      const queue = consumer('dedupe');
      let deliveries = 0;
      await b.subscribe(queue, ['test.dedupe'], async (event) => {
        deliveries++;
        await consumeOnce(db, queue, event, async (tx) => {
          await tx.query('INSERT INTO effects (event_id) VALUES ($1)', [event.id]);
        });
        // The first delivery commits, then "loses" its ack: the broker delivers it again.
        if (deliveries === 1) throw new Error('ack lost');
      });
      const event = newEvent('test', 'test.dedupe', 1, {});
      await b.publish(event);
      await waitFor('the redelivery', () => deliveries >= 2);
      await sleep(100);
      const effects = await db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM effects WHERE event_id = $1',
        [event.id],
      );
      expect(effects.rows[0]?.n).toBe(1);
    });
  });
});
