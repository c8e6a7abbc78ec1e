import { type Database, migrate, openDatabase } from '@bff/db';
import { waitFor } from '@bff/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type EventEnvelope,
  enqueueEvent,
  InProcessEventBus,
  newEvent,
  OutboxRelay,
  outboxMigrations,
  type SubscribeOptions,
  topicMatches,
} from '../src/index.ts';

describe('topicMatches (AMQP topic rules)', () => {
  it.each([
    ['billing.invoice.*', 'billing.invoice.paid', true],
    ['billing.invoice.*', 'billing.invoice', false],
    ['billing.#', 'billing.invoice.paid', true],
    ['billing.#', 'billing', true],
    ['#', 'anything.at.all', true],
    ['*.user.registered', 'identity.user.registered', true],
    ['identity.user.registered', 'identity.user.deleted', false],
    ['#.paid', 'billing.invoice.paid', true],
  ])('%s against %s is %s', (pattern, key, expected) => {
    expect(topicMatches(pattern, key)).toBe(expected);
  });
});

describe('InProcessEventBus', () => {
  it('delivers to matching consumers asynchronously, one copy each', async () => {
    const bus = new InProcessEventBus();
    const a: unknown[] = [];
    const b: unknown[] = [];
    await bus.subscribe('a', ['x.*'], async (e) => void a.push(e));
    await bus.subscribe('b', ['y.#'], async (e) => void b.push(e));
    const event = newEvent('test', 'x.happened', 1, { n: 1 });
    await bus.publish(event);
    expect(a).toEqual([]); // not synchronous: a publisher is never blocked by its consumers
    await bus.drain();
    expect(a).toEqual([event]);
    expect(a[0]).not.toBe(event);
    expect(b).toEqual([]);
    await bus.close();
  });

  it('retries a failing handler, then dead-letters it', async () => {
    const bus = new InProcessEventBus(1);
    let attempts = 0;
    await bus.subscribe(
      'flaky',
      ['t'],
      async () => {
        attempts++;
        throw new Error('nope');
      },
      { maxAttempts: 4 },
    );
    await bus.publish(newEvent('test', 't', 1, {}));
    await bus.drain();
    expect(attempts).toBe(4);
    expect(bus.deadLetters.map((d) => d.consumer)).toEqual(['flaky']);
    await bus.close();
  });
});

describe('InProcessEventBus transient subscriptions', () => {
  const ids = (events: readonly EventEnvelope[]) => events.map((e) => e.id);

  it('gives every transient subscriber every event, even under one name, while a durable pair shares', async () => {
    const bus = new InProcessEventBus();
    const replicas: EventEnvelope[][] = [[], []];
    const durable: EventEnvelope[][] = [[], []];
    for (const got of replicas) {
      await bus.subscribe('bff.cache', ['product.#'], async (e) => void got.push(e), { transient: true });
    }
    for (const got of durable)
      await bus.subscribe('billing.work', ['product.#'], async (e) => void got.push(e));
    const events = [1, 2, 3, 4].map((n) => newEvent('test', 'product.price_changed', 1, { n }));
    for (const event of events) await bus.publish(event);
    await bus.drain();
    for (const got of replicas) expect(ids(got)).toEqual(ids(events));
    expect(replicas[0]?.[0]).not.toBe(replicas[1]?.[0]); // a copy each
    expect([...ids(durable[0] ?? []), ...ids(durable[1] ?? [])].sort()).toEqual(ids(events).sort());
    expect(durable[0]?.length).toBeGreaterThan(0);
    expect(durable[1]?.length).toBeGreaterThan(0);
    await bus.close();
  });

  it('drops an event whose handler throws, once, and tells onError; later events still arrive', async () => {
    const bus = new InProcessEventBus(1);
    const calls: string[] = [];
    const dropped: { error: unknown; event: EventEnvelope | undefined }[] = [];
    const failing = newEvent('test', 't.x', 1, {});
    const next = newEvent('test', 't.x', 1, {});
    await bus.subscribe(
      'bff.cache',
      ['t.x'],
      async (e) => {
        calls.push(e.id);
        if (e.id === failing.id) throw new Error('handler failure');
      },
      { transient: true, onError: (error, event) => void dropped.push({ error, event }) },
    );
    await bus.publish(failing);
    await bus.publish(next);
    await bus.drain();
    expect(calls).toEqual([failing.id, next.id]);
    expect(dropped.map((d) => [String(d.error), d.event?.id])).toEqual([
      ['Error: handler failure', failing.id],
    ]);
    expect(bus.deadLetters).toEqual([]);
    await bus.close();
  });

  it('keeps at most maxQueued events waiting behind a stalled handler, dropping the oldest', async () => {
    const bus = new InProcessEventBus();
    let release = () => {};
    const stalled = new Promise<void>((resolve) => {
      release = resolve;
    });
    const got: number[] = [];
    await bus.subscribe(
      'bff.cache',
      ['t.capped'],
      async (e) => {
        const { n } = e.payload as { n: number };
        got.push(n);
        if (n === 0) await stalled;
      },
      { transient: true, maxQueued: 3, prefetch: 1 },
    );
    await bus.publish(newEvent('test', 't.capped', 1, { n: 0 }));
    await waitFor('the handler to stall on the first event', () => got.length === 1);
    for (let n = 1; n <= 7; n++) await bus.publish(newEvent('test', 't.capped', 1, { n }));
    release();
    await bus.drain();
    expect(got).toEqual([0, 5, 6, 7]);
    await bus.close();
  });

  it('stops delivering to one subscriber after unsubscribe, and never calls onGap', async () => {
    const bus = new InProcessEventBus();
    const kept: string[] = [];
    const left: string[] = [];
    let gaps = 0;
    const onGap = () => void gaps++;
    await bus.subscribe('bff.cache', ['t.#'], async (e) => void kept.push(e.id), { transient: true, onGap });
    const leaving = await bus.subscribe('bff.cache', ['t.#'], async (e) => void left.push(e.id), {
      transient: true,
      onGap,
    });
    const first = newEvent('test', 't.a', 1, {});
    await bus.publish(first);
    await bus.drain();
    await leaving.unsubscribe();
    const second = newEvent('test', 't.a', 1, {});
    await bus.publish(second);
    await bus.drain();
    expect(kept).toEqual([first.id, second.id]);
    expect(left).toEqual([first.id]);
    expect(gaps).toBe(0);
    await bus.close();
  });

  it.each([
    [{ transient: true, maxQueued: 0 }, /maxQueued must be a positive integer, received 0/],
    [{ transient: true, maxQueued: 2.5 }, /maxQueued .* received 2\.5/],
    [{ transient: true, maxQueued: '10' }, /maxQueued .* received "10"/],
    [{ transient: true, prefetch: 0 }, /prefetch .* received 0/],
    [
      { transient: true, maxAttempts: 3 },
      /maxAttempts does not apply to a transient subscription.*received 3/,
    ],
    [{ maxQueued: 10 }, /maxQueued applies only to a transient subscription .*received 10/],
    [{ onGap: () => {} }, /onGap applies only to a transient subscription .*received a function/],
    [{ transient: 'yes' }, /transient must be a boolean, received "yes"/],
  ])('refuses %o with a TypeError naming it', async (options, message) => {
    const bus = new InProcessEventBus();
    const subscribing = bus.subscribe('bff.cache', ['t'], async () => {}, options as SubscribeOptions);
    await expect(subscribing).rejects.toThrow(TypeError);
    await expect(subscribing).rejects.toThrow(message);
    await bus.close();
  });
});

describe('OutboxRelay', () => {
  // Opened once, in a hook: starting PGlite on a loaded machine can take most of a test's budget.
  let db: Database;
  beforeAll(async () => {
    db = await openDatabase({ schema: 'relay' });
    await migrate(db, [outboxMigrations]);
  });
  afterAll(async () => {
    await db?.close();
  });

  it('publishes committed events in order, and never those of a rolled-back transaction', async () => {
    const bus = new InProcessEventBus();
    const got: number[] = [];
    await bus.subscribe('order', ['t.#'], async (e) => void got.push((e.payload as { n: number }).n));
    const relay = new OutboxRelay({ db, bus, pollIntervalMs: 20, batchSize: 3 });
    relay.start();
    for (let n = 0; n < 10; n++) await db.transaction((tx) => enqueueEvent(tx, 'test', 't.e', 1, { n }));
    await db
      .transaction(async (tx) => {
        await enqueueEvent(tx, 'test', 't.e', 1, { n: 99 });
        throw new Error('roll back');
      })
      .catch(() => {});
    await waitFor('ten events', async () => {
      await bus.drain();
      return got.length >= 10;
    });
    await relay.stop();
    await bus.drain();
    expect(got).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    await bus.close();
  });

  it('rejects a bad poll interval at construction, naming it', async () => {
    expect(() => new OutboxRelay({ db, bus: new InProcessEventBus(), pollIntervalMs: 0 })).toThrow(
      /pollIntervalMs.*0/,
    );
  });
});
