// What subscriptions cost a replica: memory per idle subscription (and that it does not grow
// faster than the count), and a client that stops reading is cut off, without the server's
// memory growing with the events it was sent meanwhile. Figures are printed; assertions are on
// shapes (leaks, unbounded growth) and outcomes, never on durations.
import { once } from 'node:events';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { BffErrorCode } from '@bff/error-codes';
import { InProcessEventBus, newEvent } from '@bff/events';
import { waitFor } from '@bff/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { type IdleSubscribers, spawnIdleSubscribers } from '../support/idle-subscribers.ts';
import { collect, subscriptionClient, wsUrl } from '../support/subscription-client.ts';
import { type System, startApp, startSystem, type TestApp } from '../support/system.ts';

/** vitest.config.ts runs workers with --expose-gc; elsewhere the flag is set at run time. */
const collectGarbage: () => void =
  (globalThis as { gc?: () => void }).gc ??
  (() => {
    setFlagsFromString('--expose-gc');
    return runInNewContext('gc') as () => void;
  })();

/** Heap and RSS once garbage is collected (twice: what finalizers and weak maps let go needs a second pass). */
async function settledMemory(): Promise<{ heap: number; rss: number }> {
  collectGarbage();
  await new Promise((resolve) => setTimeout(resolve, 20));
  collectGarbage();
  const { heapUsed, rss } = process.memoryUsage();
  return { heap: heapUsed, rss };
}

const KiB = (bytes: number) => `${Math.round(bytes / 1024)} KiB`;
const statsOf = (app: TestApp) =>
  app.bff.subscriptionStats?.() ?? { connections: -1, subscriptions: -1, delivered: -1 };

describe('subscription capacity', () => {
  const bus = new InProcessEventBus();
  let system: System;

  beforeAll(async () => {
    system = await startSystem({ bus });
  });
  afterAll(async () => {
    await system?.close();
    await bus.close();
  });

  describe('idle subscriptions', () => {
    /** Subscriptions per connection: the same share in every round, so connections scale with them. */
    const PER_CONNECTION = 20;
    let app: TestApp;
    let subscribers: IdleSubscribers;
    let nextId = 1;

    beforeAll(async () => {
      app = await startApp('web', system, {
        subscriptions: { maxPerConnection: PER_CONNECTION },
        // Every client here shares one address, and each id counts toward productChanged's
        // 600 a minute: the limiter would refuse the rounds' subscriptions (and its counters
        // would be measured with them).
        rateLimit: { enabled: false },
      });
      // The clients live in a process of their own: measured here, their sockets and buffers
      // would count as the server's (and a baseline of raw connections would only approximate them).
      subscribers = spawnIdleSubscribers();
    });
    afterAll(async () => {
      await subscribers?.stop();
      await app?.close();
    });

    /** Opens `count` idle subscriptions, measures what the server holds for them, then closes them. */
    async function round(count: number) {
      const connections = count / PER_CONNECTION;
      const before = await settledMemory();
      const opened = await subscribers.open({
        url: wsUrl(app),
        connections,
        perConnection: PER_CONNECTION,
        firstId: nextId,
      });
      nextId += count;
      expect(opened.unexpected).toEqual([]);
      await waitFor(
        `${count} subscriptions are held`,
        () => statsOf(app).subscriptions === count && statsOf(app).connections === connections,
        30_000,
      );
      const held = await settledMemory();
      const closed = await subscribers.closeAll();
      expect(closed.unexpected).toEqual([]);
      await waitFor(
        'every connection and subscription is let go',
        () => statsOf(app).connections === 0 && statsOf(app).subscriptions === 0,
        30_000,
      );
      const after = await settledMemory();
      const figures = {
        heap: held.heap - before.heap,
        rss: held.rss - before.rss,
        perSubscription: (held.heap - before.heap) / count,
        leftAfterClose: after.heap - before.heap,
      };
      console.info(
        `${count} idle subscriptions on ${connections} connections: ${KiB(figures.heap)} heap, ${KiB(figures.rss)} RSS (${Math.round(figures.perSubscription)} bytes per subscription); ${KiB(figures.leftAfterClose)} heap left once closed`,
      );
      return figures;
    }

    it('holds 1,000 idle subscriptions at no more per subscription than 100 cost, and lets them all go', async () => {
      // Not measured: the first subscriptions pay for code and caches every later one shares.
      await subscribers.open({
        url: wsUrl(app),
        connections: 5,
        perConnection: PER_CONNECTION,
        firstId: 9_000,
      });
      await waitFor('the first subscriptions are held', () => statsOf(app).subscriptions === 100, 30_000);
      await subscribers.closeAll();
      await waitFor('and let go', () => statsOf(app).connections === 0, 30_000);
      const small = await round(100);
      const large = await round(1_000);
      // A leak's shape: a cost per subscription that climbs with their number.
      expect(large.perSubscription).toBeGreaterThan(0);
      expect(large.perSubscription).toBeLessThanOrEqual(3 * Math.max(small.perSubscription, 1));
      // And once every client is gone, what they cost is given back (but for noise and caches).
      expect(large.leftAfterClose).toBeLessThan(large.heap / 2);
    });
  });

  describe('a client that stops reading', () => {
    const PRODUCT = 'p-0031';
    const PRODUCT_CHANGED = /* GraphQL */ `
      subscription Price($ids: [ID!]!) { productChanged(ids: $ids) { id price { amountMinor currency } } }
    `;
    let app: TestApp;

    beforeAll(async () => {
      app = await startApp('web', system, {
        subscriptions: { maxQueuedEvents: 8, maxBufferedBytes: 64 * 1024, keepAliveMs: 1_000 },
      });
    });
    afterAll(async () => {
      await app?.close();
    });

    /** `count` price changes of PRODUCT on the services' bus, letting the bus deliver every hundred. */
    async function publishPriceChanges(count: number) {
      for (let i = 0; i < count; i++) {
        await bus.publish(
          newEvent('product', 'product.price_changed', 1, {
            productId: PRODUCT,
            previous: { amountMinor: 1_000 + i, currency: 'EUR' },
            current: { amountMinor: 1_001 + i, currency: 'EUR' },
          }),
        );
        if (i % 100 === 99) await bus.drain();
      }
      await bus.drain();
    }

    /** A raw graphql-transport-ws client subscribed to PRODUCT, as a client that will stop reading. */
    async function rawSubscriber() {
      const socket = new WebSocket(wsUrl(app), 'graphql-transport-ws');
      const messages: { type: string; payload?: { data?: unknown; errors?: unknown[] } }[] = [];
      let closed: { code: number; reason: string } | undefined;
      socket.on('message', (data) => messages.push(JSON.parse(String(data))));
      socket.on('close', (code, reason) => {
        closed = { code, reason: String(reason) };
      });
      socket.on('error', () => {}); // the close tells what happened
      await once(socket, 'open');
      socket.send(JSON.stringify({ type: 'connection_init', payload: {} }));
      await waitFor('the connection is acknowledged', () =>
        messages.some((message) => message.type === 'connection_ack'),
      );
      socket.send(
        JSON.stringify({
          id: 'slow',
          type: 'subscribe',
          payload: { query: PRODUCT_CHANGED, variables: { ids: [PRODUCT] } },
        }),
      );
      return {
        socket,
        messages,
        get closed() {
          return closed;
        },
        results: () => messages.filter((message) => message.type === 'next'),
      };
    }

    /** A fresh client stops reading; `events` changes follow; the server must let it go. */
    async function slowConsumerRound(events: number) {
      const slow = await rawSubscriber();
      await waitFor('the subscription is active', () => statsOf(app).subscriptions === 1);
      // One change read, so the subscription is known live end to end before the client stops.
      await publishPriceChanges(1);
      await waitFor('the first change arrives', () => slow.results().length === 1);
      const before = await settledMemory();
      slow.socket.pause();
      const pausedAt = performance.now();
      // When the server lets go of each, watched while the changes are published.
      const subscriptionEnded = waitFor(
        'the server ends the subscription',
        () => statsOf(app).subscriptions === 0 && performance.now(),
        20_000,
      );
      const connectionClosed = waitFor(
        'the server closes the connection',
        () => statsOf(app).connections === 0 && performance.now(),
        20_000,
      );
      subscriptionEnded.catch(() => {}); // awaited below; not unhandled meanwhile
      connectionClosed.catch(() => {});
      await publishPriceChanges(events);
      const published = await settledMemory();
      const subscriptionEndedMs = (await subscriptionEnded) - pausedAt;
      const connectionClosedMs = (await connectionClosed) - pausedAt;
      // Reading again: what the server had sent, then the close.
      slow.socket.resume();
      await waitFor('the client sees the connection closed', () => slow.closed, 20_000);
      const results = slow.results();
      const ended = results
        .flatMap(
          (result) => (result.payload?.errors ?? []) as { extensions?: { code?: string; reason?: string } }[],
        )
        .find((error) => error.extensions?.code === BffErrorCode.SubscriptionEnded);
      const figures = {
        events,
        heapGrowth: published.heap - before.heap,
        rssGrowth: published.rss - before.rss,
        received: results.length,
        endedReason: ended?.extensions?.reason,
        completed: slow.messages.some((message) => message.type === 'complete'),
        close: slow.closed,
      };
      console.info(
        `slow consumer, ${events} changes published after it stopped reading: subscription ended after ${Math.round(subscriptionEndedMs)} ms (${figures.endedReason ? `SUBSCRIPTION_ENDED ${figures.endedReason}` : 'no SUBSCRIPTION_ENDED'}${figures.completed ? ', completed' : ''}), connection closed after ${Math.round(connectionClosedMs)} ms (client saw ${figures.close?.code} ${figures.close?.reason ?? ''}); it had been sent ${figures.received} results; heap ${KiB(figures.heapGrowth)}, RSS ${KiB(figures.rssGrowth)} more after publishing than before it stopped reading`,
      );
      return figures;
    }

    it('cuts off a subscriber that stops reading, holding no more memory for ten times the events', async () => {
      const few = await slowConsumerRound(2_000);
      const many = await slowConsumerRound(20_000);
      for (const round of [few, many]) {
        // Let go: its waiting changes to the one product are conflated into the latest (so its
        // queue never grows), and the socket is cut when it stops answering pings; or it was told
        // (the overflow result, the slow-consumer close) if one of those came first.
        expect(round.endedReason === 'overflow' || round.close !== undefined, JSON.stringify(round)).toBe(
          true,
        );
        expect(round.received).toBeGreaterThanOrEqual(1);
      }
      // Were the events held for it, 18,000 more would show (at 100 bytes each, 1.7 MiB more).
      expect(many.heapGrowth - few.heapGrowth).toBeLessThan(18_000 * 100);
      expect(statsOf(app)).toMatchObject({ connections: 0, subscriptions: 0 });
    });

    it('keeps serving a subscriber that reads while one beside it stops', async () => {
      const reader = subscriptionClient(app);
      const healthy = collect(reader.client, PRODUCT_CHANGED, { ids: [PRODUCT] });
      const slow = await rawSubscriber();
      await waitFor('both subscriptions are active', () => statsOf(app).subscriptions === 2);
      slow.socket.pause();
      // One change at a time, each read by the healthy subscriber before the next, until the
      // server has let the other go: what the healthy one misses is the server's doing.
      let published = 0;
      while (statsOf(app).connections > 1 && published < 10_000) {
        await publishPriceChanges(1);
        published++;
        await waitFor(`change ${published} is read`, () => healthy.results.length === published, 20_000);
      }
      expect(statsOf(app)).toMatchObject({ connections: 1, subscriptions: 1 });
      await publishPriceChanges(1);
      published++;
      await waitFor('and the next', () => healthy.results.length === published, 20_000);
      console.info(
        `beside a client that stopped reading: the reading one got all ${published} changes while the other was cut off`,
      );
      expect(healthy.errors).toEqual([]);
      expect(healthy.results.every((result) => result.errors === undefined)).toBe(true);
      slow.socket.resume();
      await waitFor('the stopped client sees the close', () => slow.closed, 20_000);
      healthy.stop();
      await reader.client.dispose();
      await waitFor('the server holds nothing', () => statsOf(app).connections === 0);
    });
  });
});
