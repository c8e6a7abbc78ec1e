import type { Tracing } from '@bff/observability';
import type { EventBus, EventHandler, PublishOptions, SubscribeOptions, Subscription } from './bus.ts';
import type { EventEnvelope } from './envelope.ts';
import { deliverTraced, publishTraced } from './message-spans.ts';
import { reportDropped, subscriptionMode, type TransientMode } from './subscription-mode.ts';
import { topicMatches } from './topic.ts';

/** Durable subscribers of one name: they take turns, as consumers of one queue do. */
interface SharedConsumer {
  transient: false;
  name: string;
  patterns: readonly string[];
  handlers: EventHandler[];
  next: number;
  maxAttempts: number;
  tracing: Tracing | undefined;
}

/** One transient subscriber, with its own bounded queue, as on the broker. */
interface TransientConsumer {
  transient: true;
  name: string;
  patterns: readonly string[];
  handler: EventHandler;
  mode: TransientMode;
  /** Events not yet handed to the handler; the oldest is dropped past `maxQueued`. */
  waiting: EventEnvelope[];
  running: number;
  active: boolean;
}

export interface InProcessEventBusOptions {
  /** Pause before a failed event is redelivered, multiplied by the attempt number, in ms. @default 50 */
  retryDelayMs?: number;
  /** Records a CONSUMER span around each delivery (unless a subscription brings its own). */
  tracing?: Tracing;
}

/**
 * The embedded default: delivers within this process, asynchronously, with the same contract
 * as the RabbitMQ bus (retries, then a dead-letter list; transient subscribers each get every
 * event, at most `maxQueued` waiting), so code written against one behaves the same on the
 * other. Not durable: events in flight are lost if the process dies, which the outbox covers
 * for publishers.
 */
export class InProcessEventBus implements EventBus {
  /** Every consumer, in subscription order. */
  private readonly consumers = new Set<SharedConsumer | TransientConsumer>();
  private readonly shared = new Map<string, SharedConsumer>();
  private readonly inFlight = new Set<Promise<void>>();
  private closed = false;
  /** Events that failed `maxAttempts` times, by consumer. */
  readonly deadLetters: { consumer: string; event: EventEnvelope; error: unknown }[] = [];

  private readonly retryDelayMs: number;
  private readonly tracing: Tracing | undefined;

  /** `options` may be the retry delay alone, in ms. */
  constructor(options: InProcessEventBusOptions | number = {}) {
    const { retryDelayMs = 50, tracing } = typeof options === 'number' ? { retryDelayMs: options } : options;
    if (!(retryDelayMs >= 0))
      throw new TypeError(`InProcessEventBus: retryDelayMs must be 0 or more, received ${retryDelayMs}`);
    this.retryDelayMs = retryDelayMs;
    this.tracing = tracing;
  }

  async publish(event: EventEnvelope, options?: PublishOptions): Promise<void> {
    if (this.closed) throw new Error('event bus is closed');
    const tracing = options?.tracing ?? this.tracing;
    return publishTraced(tracing, 'in-process', event, async (sent) => this.send(sent));
  }

  private send(event: EventEnvelope): void {
    const copy = JSON.stringify(event);
    for (const consumer of this.consumers) {
      if (!consumer.patterns.some((p) => topicMatches(p, event.type))) continue;
      // Each consumer gets its own copy, as each queue would.
      const own = JSON.parse(copy) as EventEnvelope;
      if (consumer.transient) this.enqueue(consumer, own);
      else this.track(this.deliver(consumer, own));
    }
  }

  async subscribe(
    consumer: string,
    patterns: readonly string[],
    handler: EventHandler,
    options: SubscribeOptions = {},
  ): Promise<Subscription> {
    const mode = subscriptionMode(consumer, options, this.tracing);
    if (mode.transient) return this.subscribeTransient(consumer, patterns, handler, mode);
    let entry = this.shared.get(consumer);
    if (!entry) {
      entry = {
        transient: false,
        name: consumer,
        patterns,
        handlers: [],
        next: 0,
        maxAttempts: mode.maxAttempts,
        tracing: mode.tracing,
      };
      this.shared.set(consumer, entry);
      this.consumers.add(entry);
    }
    entry.handlers.push(handler);
    const owner = entry;
    return {
      unsubscribe: async () => {
        owner.handlers = owner.handlers.filter((h) => h !== handler);
        if (owner.handlers.length === 0 && this.shared.get(consumer) === owner) {
          this.shared.delete(consumer);
          this.consumers.delete(owner);
        }
      },
    };
  }

  /** Waits for every delivery under way (tests use it to observe effects). */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  async close(): Promise<void> {
    this.closed = true;
    // Transient queues go with the bus, as on the broker: what waits is dropped.
    for (const consumer of this.consumers) if (consumer.transient) this.stop(consumer);
    await this.drain();
    this.consumers.clear();
    this.shared.clear();
  }

  private subscribeTransient(
    name: string,
    patterns: readonly string[],
    handler: EventHandler,
    mode: TransientMode,
  ): Subscription {
    if (this.closed) throw new Error('event bus is closed');
    const consumer: TransientConsumer = {
      transient: true,
      name,
      patterns,
      handler,
      mode,
      waiting: [],
      running: 0,
      active: true,
    };
    this.consumers.add(consumer);
    return {
      unsubscribe: async () => {
        this.stop(consumer);
        this.consumers.delete(consumer);
      },
    };
  }

  private stop(consumer: TransientConsumer) {
    consumer.active = false;
    consumer.waiting.length = 0;
  }

  private enqueue(consumer: TransientConsumer, event: EventEnvelope) {
    consumer.waiting.push(event);
    if (consumer.waiting.length > consumer.mode.maxQueued) consumer.waiting.shift();
    this.pump(consumer);
  }

  /** Starts deliveries until `prefetch` are under way, as the broker would send them. */
  private pump(consumer: TransientConsumer) {
    while (consumer.active && consumer.running < consumer.mode.prefetch) {
      const event = consumer.waiting.shift();
      if (!event) return;
      consumer.running++;
      this.track(
        this.deliverTransient(consumer, event).finally(() => {
          consumer.running--;
          this.pump(consumer);
        }),
      );
    }
  }

  private track(p: Promise<void>) {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private async deliverTransient(consumer: TransientConsumer, event: EventEnvelope): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (!consumer.active) return;
    try {
      await deliverTraced(consumer.mode.tracing, 'in-process', consumer.name, event, consumer.handler);
    } catch (error) {
      reportDropped(consumer.mode, error, event); // at most once: never redelivered
    }
  }

  private async deliver(consumer: SharedConsumer, event: EventEnvelope): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    for (let attempt = 1; ; attempt++) {
      const handler = consumer.handlers[consumer.next++ % Math.max(consumer.handlers.length, 1)];
      if (!handler) return;
      try {
        await deliverTraced(consumer.tracing, 'in-process', consumer.name, event, handler);
        return;
      } catch (error) {
        if (attempt >= consumer.maxAttempts || this.closed) {
          this.deadLetters.push({ consumer: consumer.name, event, error });
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, this.retryDelayMs * attempt));
      }
    }
  }
}
