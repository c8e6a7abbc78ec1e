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
  type SubscribeOptions,
  type TransientSubscribeOptions,
} from '../src/index.ts';

const url = process.env.AMQP_URL;
const available = await realServer('RabbitMQ', url);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('RabbitMqEventBus options', () => {
  it.each([
    [{ transient: true, maxQueued: -1 }, /maxQueued must be a positive integer, received -1/],
    [
      { transient: true, maxAttempts: 2 },
      /maxAttempts does not apply to a transient subscription.*received 2/,
    ],
    [{ onGap: () => {} }, /onGap applies only to a transient subscription .*received a function/],
  ])('refuses %o when subscribing, before connecting', async (options, message) => {
    // Nothing listens on port 1: the options are refused before any connection is tried.
    const bus = new RabbitMqEventBus({ url: 'amqp://127.0.0.1:1', timeoutMs: 500 });
    try {
      const subscribing = bus.subscribe('bff.cache', ['t'], async () => {}, options as SubscribeOptions);
      await expect(subscribing).rejects.toThrow(TypeError);
      await expect(subscribing).rejects.toThrow(message);
    } finally {
      await bus.close();
    }
  });
});

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

  describe('transient subscriptions', () => {
    // Not a queue name: transient queues are named by the broker. Two replicas share this one.
    const name = `test.${run}.replica-cache`;
    const transient = (
      extra: Omit<TransientSubscribeOptions, 'transient'> = {},
    ): TransientSubscribeOptions => ({
      transient: true,
      ...extra,
    });

    /**
     * Whether the exchange routes `type` to any queue: a mandatory publish comes back when none
     * is bound. A transient queue keeps its bindings until it is deleted, so `false` means gone.
     */
    const routingProbe = async () => {
      const model = await connect(url as string);
      const channel = await model.createConfirmChannel();
      const returned = new Set<string>();
      channel.on('return', (message) => returned.add(String(message.properties.messageId)));
      const routes = async (type: string) => {
        const probe = newEvent('test', type, 1, { probe: true });
        await new Promise<void>((resolve, reject) =>
          channel.publish(
            exchange,
            type,
            Buffer.from(JSON.stringify(probe)),
            { mandatory: true, messageId: probe.id },
            (error: unknown) => (error ? reject(error) : resolve()),
          ),
        );
        // The broker sends basic.return before the confirm of the same message.
        return !returned.has(probe.id);
      };
      return { routes, close: () => model.close() };
    };

    it('gives every replica every event once, whatever the consumer name', async () => {
      const replicas = [bus(), bus()] as const;
      const got: string[][] = [[], [], []];
      await replicas[0].subscribe(name, ['test.fanout.*'], async (e) => void got[0]?.push(e.id), transient());
      await replicas[1].subscribe(name, ['test.fanout.*'], async (e) => void got[1]?.push(e.id), transient());
      // A second subscriber of the same name in the same process is independent too.
      await replicas[0].subscribe(name, ['test.fanout.*'], async (e) => void got[2]?.push(e.id), transient());
      const publisher = bus();
      const events = [1, 2, 3].map((n) => newEvent('test', 'test.fanout.changed', 1, { n }));
      for (const event of events) await publisher.publish(event);
      // Published last, so once every subscriber has it, what it got before is all it will get.
      const last = newEvent('test', 'test.fanout.done', 1, {});
      await publisher.publish(last);
      await waitFor('every subscriber to get the last event', () => got.every((g) => g.includes(last.id)));
      const expected = [...events, last].map((e) => e.id).sort();
      for (const g of got) expect([...g].sort()).toEqual(expected);
    });

    it('leaves no queue behind after unsubscribe, or after the bus closes', async () => {
      const probe = await routingProbe();
      try {
        const a = bus();
        const b = bus();
        const leaving = await a.subscribe(name, ['test.gone.a'], async () => {}, transient());
        await b.subscribe(name, ['test.gone.b'], async () => {}, transient());
        expect(await probe.routes('test.gone.a')).toBe(true);
        expect(await probe.routes('test.gone.b')).toBe(true);

        await leaving.unsubscribe();
        expect(await probe.routes('test.gone.a')).toBe(false);

        await b.close();
        await waitFor(
          'the queue to go with its connection',
          async () => !(await probe.routes('test.gone.b')),
        );
        expect(await probe.routes('test.gone.a')).toBe(false);
      } finally {
        await probe.close();
      }
    });

    it('drops an event whose handler throws instead of redelivering it', async () => {
      const b = bus();
      const calls: string[] = [];
      const dropped: (string | undefined)[] = [];
      const failing = newEvent('test', 'test.throws', 1, {});
      const next = newEvent('test', 'test.throws', 1, {});
      await b.subscribe(
        name,
        ['test.throws'],
        async (e) => {
          calls.push(e.id);
          if (e.id === failing.id) throw new Error('handler failure');
        },
        // One at a time: a redelivered event would come back before the next one.
        transient({ prefetch: 1, onError: (_error, event) => void dropped.push(event?.id) }),
      );
      await b.publish(failing);
      await b.publish(next);
      await waitFor('the next event', () => calls.includes(next.id));
      expect(calls).toEqual([failing.id, next.id]);
      expect(dropped).toEqual([failing.id]);
    });

    it('keeps at most maxQueued events behind a stalled handler, dropping the oldest', async () => {
      const b = bus();
      let release = () => {};
      const stalled = new Promise<void>((resolve) => {
        release = resolve;
      });
      const got: number[] = [];
      await b.subscribe(
        name,
        ['test.capped'],
        async (e) => {
          const { n } = e.payload as { n: number };
          got.push(n);
          if (n === 0) await stalled;
        },
        transient({ maxQueued: 3, prefetch: 1 }),
      );
      await b.publish(newEvent('test', 'test.capped', 1, { n: 0 }));
      await waitFor('the handler to stall on the first event', () => got.length === 1);
      // Each publish resolves once the broker has queued it: 1 to 4 are dropped as 4 to 7 arrive.
      for (let n = 1; n <= 7; n++) await b.publish(newEvent('test', 'test.capped', 1, { n }));
      release();
      await waitFor('the newest event', () => got.includes(7));
      expect(got).toEqual([0, 5, 6, 7]);
    });

    it('after a reconnect, binds a new queue, calls onGap once, and delivers what is published after it', async () => {
      const p = await proxy();
      const replica = bus(p);
      const publisher = bus();
      const got: string[] = [];
      let gaps = 0;
      await replica.subscribe(
        name,
        ['test.gap'],
        async (e) => void got.push(e.id),
        transient({ onGap: () => void gaps++ }),
      );
      const before = newEvent('test', 'test.gap', 1, {});
      await publisher.publish(before);
      await waitFor('the first event', () => got.includes(before.id));

      p.cut();
      // Published (confirmed) while the replica is cut off: its queue is gone or going, so lost.
      const during = newEvent('test', 'test.gap', 1, {});
      await publisher.publish(during);
      p.restore();

      await waitFor('onGap', () => gaps > 0);
      const after = newEvent('test', 'test.gap', 1, {});
      await publisher.publish(after);
      await waitFor('the event published after onGap', () => got.includes(after.id));
      expect(got).toEqual([before.id, after.id]);
      expect(gaps).toBe(1);
    });
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
