import { type Database, migrate, openDatabase } from '@bff/db';
import { waitFor } from '@bff/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  enqueueEvent,
  InProcessEventBus,
  newEvent,
  OutboxRelay,
  outboxMigrations,
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
