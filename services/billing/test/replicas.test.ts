// Billing as production runs it: two replicas on one PostgreSQL schema, each with its own pool,
// outbox relay and RabbitMQ connection, sharing one exchange and the durable `billing.accounts`
// queue. Every outbox row reaches the exchange exactly once, whichever replica's relay takes it,
// even when a replica stops mid-stream or a relay dies holding a lease; every
// `identity.user.registered` opens exactly one account, however the replicas share the events
// and however often the broker delivers them.
import { randomBytes, randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import { type Database, openDatabase } from '@bff/db';
import { demoUsers } from '@bff/demo-data';
import {
  type EventBus,
  type EventEnvelope,
  type EventHandler,
  enqueueEvent,
  newEvent,
  RabbitMqEventBus,
  readOutboxBacklog,
  type SubscribeOptions,
  type Subscription,
} from '@bff/events';
import { realServer, throwawayDatabase, waitFor } from '@bff/testkit';
import type { ProductClient } from '@bff/upstream-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACCOUNTS_CONSUMER, type RunningBillingService, startBillingService } from '../src/index.ts';

const amqpUrl = process.env.AMQP_URL;
const real =
  (await realServer('PostgreSQL', process.env.DATABASE_URL)) && (await realServer('RabbitMQ', amqpUrl));

/** What the broker clean-up and the queue checks need from amqplib. */
interface BrokerChannel {
  checkQueue(queue: string): Promise<{ messageCount: number; consumerCount: number }>;
  deleteQueue(queue: string): Promise<unknown>;
  deleteExchange(exchange: string): Promise<unknown>;
  close(): Promise<void>;
}
interface Broker {
  createChannel(): Promise<BrokerChannel>;
  close(): Promise<void>;
}
/**
 * A channel of its own on the broker. amqplib is a dependency of @bff/events, not of this
 * package, so it is loaded as the event bus loads it (same copy, same version).
 */
async function withBroker<T>(use: (channel: BrokerChannel) => Promise<T>): Promise<T> {
  const fromEvents = createRequire(createRequire(import.meta.url).resolve('@bff/events'));
  const { connect } = fromEvents('amqplib') as { connect(url: string): Promise<Broker> };
  const broker = await connect(amqpUrl as string);
  try {
    const channel = await broker.createChannel();
    try {
      return await use(channel);
    } finally {
      await channel.close().catch(() => {});
    }
  } finally {
    await broker.close();
  }
}

/** Prices every product the same: which replica prices a purchase is what matters here, not the price. */
const products = {
  getProduct: async (id: string) => ({
    id,
    sku: id,
    name: id,
    description: '',
    category: 'test',
    price: { amountMinor: 250, currency: 'USD' },
    images: [],
    inventory: 1,
  }),
  close: () => {},
} as unknown as ProductClient;

/**
 * A replica's own RabbitMQ connection that notes the ids its relay had confirmed and the
 * deliveries its consumers finished, so that the test can tell the two replicas' work apart.
 */
class RecordingBus implements EventBus {
  readonly published: string[] = [];
  readonly handled: string[] = [];

  constructor(private readonly inner: EventBus) {}

  async publish(event: EventEnvelope): Promise<void> {
    await this.inner.publish(event);
    this.published.push(event.id);
  }

  subscribe(
    consumer: string,
    patterns: readonly string[],
    handler: EventHandler,
    options?: SubscribeOptions,
  ): Promise<Subscription> {
    const recorded: EventHandler = async (event, delivery) => {
      await handler(event, delivery);
      this.handled.push(event.id);
    };
    return this.inner.subscribe(consumer, patterns, recorded, options);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

interface Replica {
  bus: RecordingBus;
  service: RunningBillingService;
}

/** Per scenario: its waits are generous for a loaded 2-core machine; a passing run takes seconds. */
const SCENARIO_TIMEOUT_MS = 120_000;

/** How many times each value occurs. */
const tally = (values: Iterable<string>) => {
  const counts = new Map<string, number>();
  for (const value of values) counts.set(value, (counts.get(value) ?? 0) + 1);
  return counts;
};

// The three scenarios run in order on the same two replicas; the last one stops them.
describe.runIf(real)('Billing with two replicas on one database and one broker', () => {
  const run = randomBytes(4).toString('hex');
  const exchange = `bff.billing-replicas.${run}`;
  // Queues of this run's own: parallel suites on the same broker use the same consumer names.
  const queuePrefix = `${run}.`;
  const accountsQueue = `${queuePrefix}${ACCOUNTS_CONSUMER}`;
  const database = throwawayDatabase('postgres', 'billing');
  const buses: EventBus[] = [];
  const replicas: Replica[] = [];
  /** Everything the exchange routed to the observer, in arrival order. */
  const observed: EventEnvelope[] = [];
  /** The test's own pool on the replicas' schema: writes outbox rows, reads outcomes, outlives both. */
  let db: Database;
  /** Publishes what other services would (Identity's events) and the markers; observes the exchange. */
  let harness: RabbitMqEventBus;

  const connectBus = () => {
    const bus = new RabbitMqEventBus({ url: amqpUrl as string, exchange, queuePrefix });
    buses.push(bus);
    return bus;
  };
  const startReplica = async () => {
    const bus = new RecordingBus(connectBus());
    const service = await startBillingService({
      port: 0,
      database: database.options,
      bus,
      products,
      logLevel: false,
    });
    const replica = { bus, service };
    replicas.push(replica);
    return replica;
  };
  /**
   * Publishes a marker on `bus` and waits for it. Messages published on one channel reach a
   * queue in order, so whatever `bus` published before has been observed once the marker is.
   */
  const markerThrough = async (bus: EventBus) => {
    const marker = newEvent('test', 'test.marker', 1, {});
    await bus.publish(marker);
    await waitFor('the marker', () => observed.some((e) => e.id === marker.id), 30_000);
  };
  const backlog = async () => (await readOutboxBacklog(db)).backlog;

  beforeAll(async () => {
    harness = connectBus();
    // Transient: a queue of the observer's own, every event to it, nothing left on the broker.
    await harness.subscribe(
      'test.observer',
      ['billing.#', 'test.marker'],
      async (event) => {
        observed.push(event);
      },
      { transient: true },
    );
    db = await openDatabase({ ...database.options, poolSize: 3 });
    // Replicas start together, as a rollout starts them: migrations and the seed run once.
    await Promise.all([startReplica(), startReplica()]);
  });

  afterAll(async () => {
    try {
      for (const replica of replicas) await replica.service.close();
      for (const bus of buses) await bus.close();
      await db?.close();
    } finally {
      await database.drop();
      await withBroker(async (channel) => {
        for (const queue of [accountsQueue, `${accountsQueue}.dead-letter`]) await channel.deleteQueue(queue);
        await channel.deleteExchange(exchange);
        await channel.deleteExchange(`${exchange}.dead-letter`);
      });
    }
  });

  it(
    'opens exactly one account per registered user, the replicas sharing the durable queue and absorbing redeliveries',
    async () => {
      const USERS = 100;
      const events = Array.from({ length: USERS }, () =>
        newEvent('identity', 'identity.user.registered', 1, { userId: randomUUID() }),
      );
      const userIds = events.map((e) => e.payload.userId);
      const eventIds = new Set(events.map((e) => e.id));
      // Every event twice in a row, as Identity's relay sends one it published but could not mark:
      // the broker hands consecutive messages to alternate consumers, so the copies race.
      for (const event of events) {
        await harness.publish(event);
        await harness.publish(event);
      }
      const handled = () => replicas.flatMap((r) => r.bus.handled.filter((id) => eventIds.has(id)));
      await waitFor('both copies of every event handled', () => handled().length >= 2 * USERS, 45_000, 100);

      const accounts = await db.query<{ user_id: string; n: number }>(
        'SELECT user_id, count(*)::int AS n FROM accounts WHERE user_id = ANY($1::uuid[]) GROUP BY user_id',
        [userIds],
      );
      expect(accounts.rows).toHaveLength(USERS);
      expect(accounts.rows.filter((row) => row.n !== 1)).toEqual([]);
      const processed = await db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM processed_events WHERE consumer = $1 AND event_id = ANY($2::uuid[])',
        [ACCOUNTS_CONSUMER, [...eventIds]],
      );
      expect(processed.rows[0]?.n).toBe(USERS);
      // Shared, not copied: one queue with both replicas on it, each taking part of the work.
      for (const replica of replicas) {
        expect(replica.bus.handled.some((id) => eventIds.has(id))).toBe(true);
      }
      const queues = await withBroker(async (channel) => ({
        main: await channel.checkQueue(accountsQueue),
        dead: await channel.checkQueue(`${accountsQueue}.dead-letter`),
      }));
      expect(queues.main).toMatchObject({ messageCount: 0, consumerCount: 2 });
      expect(queues.dead.messageCount).toBe(0);
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'publishes each purchase’s billing.invoice.created exactly once, whichever replica took it',
    async () => {
      const PURCHASES = 200;
      const users = demoUsers.map((u) => u.id);
      const purchase = async (replica: Replica, key: string, body: unknown) => {
        const response = await fetch(`${replica.service.url}/v1/purchases`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'idempotency-key': key },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(30_000),
        });
        const json = (await response.json()) as { invoice?: { id: string } };
        return {
          status: response.status,
          replayed: response.headers.get('idempotent-replayed'),
          invoiceId: json.invoice?.id,
        };
      };
      // Alternate replicas, as a load balancer would; every tenth purchase also goes to the other
      // replica at the same moment with the same key, as a client retrying through the balancer.
      const outcomes: Awaited<ReturnType<typeof purchase>>[][] = [];
      let next = 0;
      const client = async () => {
        for (let i = next++; i < PURCHASES; i = next++) {
          const key = `${run}-purchase-${i}`;
          const body = { userId: users[i % users.length], productId: `p-${1000 + i}`, quantity: 1 + (i % 3) };
          const [first, other] = i % 2 === 0 ? replicas : [...replicas].reverse();
          if (!first || !other) throw new Error('two replicas expected');
          const sent =
            i % 10 === 0
              ? [purchase(first, key, body), purchase(other, key, body)]
              : [purchase(first, key, body)];
          outcomes.push(await Promise.all(sent));
        }
      };
      await Promise.all(Array.from({ length: 8 }, client));

      expect(outcomes.flat().filter((o) => o.status !== 201)).toEqual([]);
      for (const responses of outcomes) {
        expect(new Set(responses.map((r) => r.invoiceId)).size).toBe(1);
        expect(responses.filter((r) => r.replayed === 'false')).toHaveLength(1);
      }
      const invoiceIds = new Set(outcomes.map((responses) => responses[0]?.invoiceId as string));
      expect(invoiceIds.size).toBe(PURCHASES);

      const created = () =>
        tally(
          observed
            .filter((e) => e.type === 'billing.invoice.created')
            .map((e) => (e.payload as { invoiceId: string }).invoiceId),
        );
      await waitFor(
        'an invoice event for every purchase',
        () => [...invoiceIds].every((id) => created().has(id)),
        45_000,
        100,
      );
      await waitFor('every outbox row marked published', async () => (await backlog()) === 0, 30_000, 100);
      // Anything either relay sent before the markers (a second copy included) has arrived now.
      for (const replica of replicas) await markerThrough(replica.bus);
      const counts = created();
      expect([...invoiceIds].filter((id) => counts.get(id) !== 1)).toEqual([]);
      expect(counts.size).toBe(PURCHASES);
      const rows = await db.query<{ n: number; unpublished: number }>(
        `SELECT count(*)::int AS n, count(*) FILTER (WHERE published_at IS NULL)::int AS unpublished
         FROM outbox WHERE type = 'billing.invoice.created'`,
      );
      expect(rows.rows[0]).toEqual({ n: PURCHASES, unpublished: 0 });
    },
    SCENARIO_TIMEOUT_MS,
  );

  it(
    'publishes every row once while both relays run, one replica stops mid-stream and a dead relay’s lease runs out',
    async () => {
      const [a, b] = replicas;
      if (!a || !b) throw new Error('two replicas expected');
      const TYPE = 'billing.replica-test.streamed';
      const streamed: string[] = [];
      /** Commits `count` rows, `perTransaction` at a time, as requests on any replica would. */
      const enqueue = async (count: number, lease?: { seconds: number }, perTransaction = 10) => {
        const ids: string[] = [];
        let leasedUntil: Date | undefined;
        for (let start = 0; start < count; start += perTransaction) {
          await db.transaction(async (tx) => {
            const batch: string[] = [];
            for (let n = start; n < Math.min(count, start + perTransaction); n++) {
              batch.push((await enqueueEvent(tx, 'billing', TYPE, 1, { n: streamed.length + n })).id);
            }
            if (lease) {
              // Claimed by a relay that then died: nobody releases these; its lease has to run out.
              const claimed = await tx.query<{ locked_until: Date }>(
                `UPDATE outbox SET locked_until = now() + make_interval(secs => $2)
                WHERE id = ANY($1::uuid[]) RETURNING locked_until`,
                [batch, lease.seconds],
              );
              leasedUntil = claimed.rows[0]?.locked_until;
            }
            ids.push(...batch);
          });
        }
        streamed.push(...ids);
        return { ids, leasedUntil };
      };
      const streamIds = () => new Set(streamed);
      const published = (replica: Replica) => replica.bus.published.filter((id) => streamIds().has(id));

      // Rows keep coming until replica a's relay has published some of them: it is mid-stream.
      await waitFor(
        'replica a’s relay to take part in the stream',
        async () => {
          await enqueue(30);
          return published(a).length > 0;
        },
        30_000,
        0,
      );
      // a stops (its relay finishes its batch, then a last flush) while rows are still written.
      await Promise.all([
        enqueue(150),
        (async () => {
          await a.service.close();
          await a.bus.close();
        })(),
      ]);
      const afterA = await enqueue(100);
      const dead = await enqueue(20, { seconds: 2 }, 20);

      await waitFor(
        'every streamed row observed',
        () => {
          const seen = new Set(observed.map((e) => e.id));
          return streamed.every((id) => seen.has(id));
        },
        45_000,
        100,
      );
      await waitFor('every outbox row marked published', async () => (await backlog()) === 0, 30_000, 100);
      // Once b has stopped, every publish of either relay was confirmed, so it is in the observer's
      // queue ahead of a marker sent now: no late second copy can follow it.
      await b.service.close();
      await markerThrough(harness);

      const seen = tally(observed.map((e) => e.id));
      expect(streamed.filter((id) => seen.get(id) !== 1)).toEqual([]);
      // Each row confirmed by exactly one relay: none by both, none twice by one.
      const byA = published(a);
      const byB = published(b);
      expect(new Set([...byA, ...byB]).size).toBe(streamed.length);
      expect(byA.length + byB.length).toBe(streamed.length);
      // The survivor published what came after a stopped, the dead relay's rows only once their lease was out.
      expect(afterA.ids.filter((id) => !byB.includes(id))).toEqual([]);
      expect(dead.ids.filter((id) => !byB.includes(id))).toEqual([]);
      expect(dead.leasedUntil).toBeInstanceOf(Date);
      const early = await db.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM outbox WHERE id = ANY($1::uuid[]) AND published_at < $2',
        [dead.ids, dead.leasedUntil],
      );
      expect(early.rows[0]?.n).toBe(0);
      // And over the whole run: every row the outbox ever held published, and observed exactly once.
      const all = await db.query<{ id: string; published_at: Date | null }>(
        'SELECT id, published_at FROM outbox',
      );
      expect(all.rows.filter((row) => row.published_at === null || seen.get(row.id) !== 1)).toEqual([]);
    },
    SCENARIO_TIMEOUT_MS,
  );
});
