import { InProcessEventBus, newEvent } from '@bff/events';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { LiveEndedError, LiveEvents, type LiveMessage } from '../src/index.ts';

const topics = {
  'product.price_changed': (payload: unknown) => [`product:${(payload as { productId: string }).productId}`],
};
const priceChanged = (productId: string) => newEvent('product', 'product.price_changed', 1, { productId });

const opened: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const item of opened.splice(0)) await item.close();
});

async function hub(options: { maxQueued?: number } = {}) {
  const bus = new InProcessEventBus();
  let batches = 0;
  const live = new LiveEvents({
    bus,
    name: 'test',
    topics,
    batchOf: () => ({ batch: ++batches }),
    ...options,
  });
  await live.start();
  opened.push(live, bus);
  return { bus, live, batches: () => batches };
}

/**
 * Resolves once everything published so far has been dispatched: the bus may deliver on a later
 * turn, but in order, so a marker published last arrives last.
 */
async function flush<T>(bus: InProcessEventBus, live: LiveEvents<T>): Promise<void> {
  const marker = live.listen(['product:marker']);
  await bus.publish(priceChanged('marker'));
  await marker.next();
  await marker.return?.();
}

/** Takes what is queued now, without waiting for more. */
async function drain<T>(iterator: AsyncIterator<T>, count: number): Promise<T[]> {
  const taken: T[] = [];
  for (let i = 0; i < count; i++) {
    const step = await iterator.next();
    if (step.done) break;
    taken.push(step.value);
  }
  return taken;
}

describe('LiveEvents', () => {
  it('delivers each event once to every listener of its topic, with one batch per event', async () => {
    const { bus, live, batches } = await hub();
    const a = live.listen(['product:p1', 'product:p2', 'product:p1']);
    const b = live.listen(['product:p1']);
    const other = live.listen(['product:p9']);
    await bus.publish(priceChanged('p1'));
    await bus.publish(priceChanged('p2'));
    const [fromA, fromB] = await Promise.all([drain(a, 2), drain(b, 1)]);
    expect(fromA.map((m) => (m.event.payload as { productId: string }).productId)).toEqual(['p1', 'p2']);
    expect(fromB[0]?.batch).toBe(fromA[0]?.batch);
    expect(batches()).toBe(2);
    expect(live.deliveries).toBe(3);
    await other.return?.();
    expect(live.listeners).toBe(2);
  });

  it('ends a listener that falls behind with overflow, and forgets it', async () => {
    const { bus, live } = await hub({ maxQueued: 3 });
    const slow = live.listen(['product:p1']);
    for (let i = 0; i < 5; i++) await bus.publish(priceChanged('p1'));
    await flush(bus, live);
    expect(live.listeners).toBe(0);
    await expect(slow.next()).rejects.toMatchObject({ name: 'LiveEndedError', reason: 'overflow' });
    expect(await slow.next()).toEqual({ value: undefined, done: true });
  });

  it('conflates a burst about one entity into its latest event, keeping its place in line', async () => {
    const bus = new InProcessEventBus();
    const live = new LiveEvents({
      bus,
      name: 'test',
      topics,
      batchOf: () => null,
      maxQueued: 2,
      keyOf: (event) => `product:${(event.payload as { productId: string }).productId}`,
    });
    await live.start();
    opened.push(live, bus);
    const listener = live.listen(['product:p1', 'product:p2']);
    const burst = ['p1', 'p2', 'p1', 'p1', 'p2', 'p1'].map((id, n) =>
      newEvent('product', 'product.price_changed', 1, { productId: id, n }),
    );
    for (const event of burst) await bus.publish(event);
    await flush(bus, live);
    // Six events, two entities: nothing overflowed, and each entity's latest came in first-seen order.
    const taken = await drain(listener, 2);
    expect(taken.map((m) => m.event.payload)).toEqual([
      { productId: 'p1', n: 5 },
      { productId: 'p2', n: 4 },
    ]);
    expect(live.listeners).toBe(1);
  });

  it('resolves a pending read as done when the subscriber leaves, and detaches it', async () => {
    const { live } = await hub();
    const listener = live.listen(['product:p1']);
    const pending = listener.next();
    await listener.return?.();
    expect(await pending).toEqual({ value: undefined, done: true });
    expect(live.listeners).toBe(0);
  });

  it('ends every listener with shutdown on close, and refuses new ones', async () => {
    const { live } = await hub();
    const waiting = live.listen(['product:p1']);
    const pending = waiting.next();
    await live.close();
    await expect(pending).rejects.toBeInstanceOf(LiveEndedError);
    expect(() => live.listen(['product:p1'])).toThrow(LiveEndedError);
  });

  it('refuses bad options, naming them', () => {
    const bus = new InProcessEventBus();
    const base = { bus, name: 'x', topics, batchOf: () => 0 };
    expect(() => new LiveEvents({ ...base, maxQueued: 0 })).toThrow(/maxQueued/);
    expect(() => new LiveEvents({ ...base, topics: {} })).toThrow(/topics/);
    expect(() => new LiveEvents({ ...base, name: '' })).toThrow(/name/);
  });

  it('property: listeners hold at most maxQueued, every one gets its topics in order, and none is left attached', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom('p1', 'p2', 'p3'), { maxLength: 40 }),
        fc.array(fc.subarray(['p1', 'p2', 'p3'], { minLength: 1 }), { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 1, max: 6 }),
        async (published, subscribed, maxQueued) => {
          const { bus, live } = await hub({ maxQueued });
          const listeners = subscribed.map((ids) => ({
            ids,
            iterator: live.listen(ids.map((id) => `product:${id}`)),
          }));
          for (const id of published) await bus.publish(priceChanged(id));
          await flush(bus, live);
          for (const { ids, iterator } of listeners) {
            const expected = published.filter((id) => ids.includes(id));
            // A listener may hold one event per topic it listens to, whatever maxQueued says.
            const bound = Math.max(maxQueued, ids.length);
            const got: string[] = [];
            let ended: unknown;
            for (;;) {
              if (got.length === expected.length && expected.length <= bound) break;
              try {
                const step = await iterator.next();
                if (step.done) break;
                got.push(
                  ((step.value as LiveMessage<unknown>).event.payload as { productId: string }).productId,
                );
              } catch (error) {
                ended = error;
                break;
              }
            }
            if (expected.length > bound) {
              // Nothing was read while they were published: it overflowed, and gave nothing stale.
              expect(ended).toMatchObject({ reason: 'overflow' });
              expect(got).toEqual([]);
            } else {
              expect(got).toEqual(expected);
            }
            await iterator.return?.();
          }
          expect(live.listeners).toBe(0);
          await live.close();
        },
      ),
      { numRuns: 60 },
    );
  });
});
