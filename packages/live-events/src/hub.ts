import type { EventBus, EventEnvelope, Subscription } from '@bff/events';

/** One event as a listener receives it. */
export interface LiveMessage<TBatch> {
  event: EventEnvelope;
  /**
   * Made once for this event in this process and shared by every listener it reaches (for the
   * BFF: one set of loaders, so that N subscribers to one product cost one upstream read).
   */
  batch: TBatch;
}

export interface LiveEventsOptions<TBatch> {
  bus: EventBus;
  /** Names the bus subscription in logs and spans. */
  name: string;
  /**
   * The topics an event of each type concerns, from its payload (e.g. `product:p-0001`). Only
   * these event types are subscribed to; an event whose function returns no topic reaches no one.
   */
  topics: Readonly<Record<string, (payload: unknown) => readonly string[]>>;
  /** Made once per event that reaches at least one listener. */
  batchOf: (event: EventEnvelope) => TBatch;
  /**
   * What an event is about (e.g. `product:p-0001`), for conflation: while a listener has not
   * taken an event, a later one with the same key takes its place (keeping its place in line),
   * so a burst of changes to one entity costs one slot and the listener sees the latest. For
   * subscribers that read the entity's current state on each event, nothing is lost. None:
   * every event takes a slot of its own.
   */
  keyOf?: (event: EventEnvelope) => string | undefined;
  /**
   * Events waiting for one listener (delivered, not yet taken; after conflation) before it is
   * ended with a `LiveEndedError` (`overflow`): a subscriber that cannot keep up costs at most
   * this many, or one per topic it listens to if that is more (so a burst touching every one of
   * its topics never ends it). @default 32
   */
  maxQueued?: number;
  /** Events waiting in the broker for this process before the oldest is dropped. @default 10000 */
  maxQueuedInBroker?: number;
  /** Told what was dropped: a handler failure, a malformed message. */
  onError?: (error: unknown, event: EventEnvelope | undefined) => void;
}

export interface LiveListenOptions {
  /** Overrides `maxQueued` for this listener. */
  maxQueued?: number;
}

/** Why a listener ended before its subscriber asked: it must resubscribe and refetch. */
export type LiveEndReason =
  /** It did not take its events fast enough (`maxQueued`). */
  | 'overflow'
  /** Events may have been missed (the bus reconnected): what it shows may be stale. */
  | 'gap'
  /** The process is shutting down. */
  | 'shutdown';

export class LiveEndedError extends Error {
  constructor(
    readonly reason: LiveEndReason,
    message: string,
  ) {
    super(message);
    this.name = 'LiveEndedError';
  }
}

/**
 * Domain events for live subscribers: one transient bus subscription per process (each replica
 * hears every event once, on RabbitMQ through an exclusive, auto-deleted, length-capped queue of
 * its own), fanned out in process by topic to listeners, each an async iterator with a bounded
 * queue. At most once, like the transient subscription beneath it: a listener that falls behind,
 * or every listener when the bus had a gap, is ended with a `LiveEndedError` rather than left
 * holding a partial stream.
 */
export class LiveEvents<TBatch> {
  private readonly options: LiveEventsOptions<TBatch>;
  private readonly maxQueued: number;
  private readonly byTopic = new Map<string, Set<Listener<TBatch>>>();
  private readonly all = new Set<Listener<TBatch>>();
  private subscription: Subscription | undefined;
  private closed = false;
  private delivered = 0;

  constructor(options: LiveEventsOptions<TBatch>) {
    if (!options.bus || typeof options.bus.subscribe !== 'function')
      throw new TypeError('LiveEvents: bus must be an EventBus');
    if (typeof options.name !== 'string' || options.name.length === 0)
      throw new TypeError(
        `LiveEvents: name must be a non-empty string, received ${JSON.stringify(options.name)}`,
      );
    if (Object.keys(options.topics ?? {}).length === 0)
      throw new TypeError('LiveEvents: topics must name at least one event type');
    const maxQueued = options.maxQueued ?? 32;
    assertCount('maxQueued', maxQueued);
    if (options.maxQueuedInBroker !== undefined) assertCount('maxQueuedInBroker', options.maxQueuedInBroker);
    this.options = options;
    this.maxQueued = maxQueued;
  }

  /** Listeners now. */
  get listeners(): number {
    return this.all.size;
  }

  /** Events handed to listeners since the start (an event reaching three listeners counts three). */
  get deliveries(): number {
    return this.delivered;
  }

  /** Subscribes to the bus; resolves once events flow. */
  async start(): Promise<void> {
    if (this.subscription || this.closed) return;
    this.subscription = await this.options.bus.subscribe(
      this.options.name,
      Object.keys(this.options.topics),
      async (event) => this.dispatch(event),
      {
        transient: true,
        ...(this.options.maxQueuedInBroker === undefined
          ? {}
          : { maxQueued: this.options.maxQueuedInBroker }),
        onGap: () => this.endAll('gap', 'events may have been missed: resubscribe, then refetch'),
        ...(this.options.onError ? { onError: this.options.onError } : {}),
      },
    );
  }

  /**
   * Every event about any of `topics` from now on, until the iterator is returned (the
   * subscriber left) or it ends with a `LiveEndedError`. Throws after `close()`.
   */
  listen(
    topics: readonly string[],
    options: LiveListenOptions = {},
  ): AsyncIterableIterator<LiveMessage<TBatch>> {
    if (this.closed) throw new LiveEndedError('shutdown', 'live events are closed');
    const unique = [...new Set(topics)];
    const maxQueued = Math.max(options.maxQueued ?? this.maxQueued, unique.length);
    assertCount('maxQueued', maxQueued);
    const listener: Listener<TBatch> = new Listener(maxQueued, () => {
      this.all.delete(listener);
      for (const topic of unique) {
        const set = this.byTopic.get(topic);
        set?.delete(listener);
        if (set?.size === 0) this.byTopic.delete(topic);
      }
    });
    this.all.add(listener);
    for (const topic of unique) {
      let set = this.byTopic.get(topic);
      if (!set) {
        set = new Set();
        this.byTopic.set(topic, set);
      }
      set.add(listener);
    }
    return listener;
  }

  /** Ends every listener (`shutdown`) and leaves the bus. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.endAll('shutdown', 'the server is shutting down: resubscribe, then refetch');
    await this.subscription?.unsubscribe().catch(() => {});
  }

  private dispatch(event: EventEnvelope): void {
    const topicsOf = this.options.topics[event.type];
    if (!topicsOf) return;
    const reached = new Set<Listener<TBatch>>();
    for (const topic of topicsOf(event.payload)) {
      const set = this.byTopic.get(topic);
      if (set) for (const listener of set) reached.add(listener);
    }
    if (reached.size === 0) return;
    const message: LiveMessage<TBatch> = { event, batch: this.options.batchOf(event) };
    const key = this.options.keyOf?.(event);
    for (const listener of reached) {
      listener.push(message, key);
      this.delivered++;
    }
  }

  private endAll(reason: LiveEndReason, message: string): void {
    for (const listener of [...this.all]) listener.end(new LiveEndedError(reason, message));
  }
}

/** One subscriber's stream: a bounded queue read as an async iterator. */
class Listener<TBatch> implements AsyncIterableIterator<LiveMessage<TBatch>> {
  /** Waiting events in arrival order, by conflation key (or a key of their own). */
  private queue = new Map<string | number, LiveMessage<TBatch>>();
  private unkeyed = 0;
  private waiting:
    | { resolve: (result: IteratorResult<LiveMessage<TBatch>>) => void; reject: (error: unknown) => void }
    | undefined;
  /** Set once: `done` when returned, the error to throw once when ended. */
  private ending: LiveEndedError | 'done' | undefined;

  constructor(
    private readonly maxQueued: number,
    private readonly detach: () => void,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  push(message: LiveMessage<TBatch>, key: string | undefined): void {
    if (this.ending) return;
    if (this.waiting) {
      const { resolve } = this.waiting;
      this.waiting = undefined;
      resolve({ value: message, done: false });
      return;
    }
    const slot = key ?? this.unkeyed++;
    if (this.queue.has(slot)) {
      // The same entity again before the last was taken: the latest takes its place.
      this.queue.set(slot, message);
      return;
    }
    if (this.queue.size >= this.maxQueued) {
      this.end(
        new LiveEndedError(
          'overflow',
          `more than ${this.maxQueued} events were waiting: resubscribe, then refetch`,
        ),
      );
      return;
    }
    this.queue.set(slot, message);
  }

  /** Ends the stream with `error`: what was queued is dropped, the next read throws it. */
  end(error: LiveEndedError): void {
    if (this.ending) return;
    this.ending = error;
    this.queue.clear();
    this.detach();
    if (this.waiting) {
      const { reject } = this.waiting;
      this.waiting = undefined;
      this.ending = 'done';
      reject(error);
    }
  }

  async next(): Promise<IteratorResult<LiveMessage<TBatch>>> {
    const first = this.queue.entries().next();
    if (!first.done) {
      this.queue.delete(first.value[0]);
      return { value: first.value[1], done: false };
    }
    const ending = this.ending;
    if (ending === 'done') return { value: undefined, done: true };
    if (ending) {
      this.ending = 'done';
      throw ending;
    }
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
    });
  }

  async return(): Promise<IteratorResult<LiveMessage<TBatch>>> {
    if (this.ending !== 'done') {
      this.ending = 'done';
      this.queue.clear();
      this.detach();
    }
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.resolve({ value: undefined, done: true });
    return { value: undefined, done: true };
  }

  async throw(error?: unknown): Promise<IteratorResult<LiveMessage<TBatch>>> {
    await this.return();
    throw error;
  }
}

function assertCount(name: string, value: unknown): void {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1)
    throw new TypeError(`LiveEvents: ${name} must be a positive whole number, received ${String(value)}`);
}
