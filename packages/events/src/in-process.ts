import type { Tracing } from '@bff/observability';
import type { EventBus, EventHandler, SubscribeOptions, Subscription } from './bus.ts';
import { deliverTraced } from './consumer-span.ts';
import type { EventEnvelope } from './envelope.ts';
import { topicMatches } from './topic.ts';

interface Consumer {
  patterns: readonly string[];
  handlers: EventHandler[];
  next: number;
  maxAttempts: number;
  tracing: Tracing | undefined;
}

export interface InProcessEventBusOptions {
  /** Pause before a failed event is redelivered, multiplied by the attempt number, in ms. @default 50 */
  retryDelayMs?: number;
  /** Records a CONSUMER span around each delivery (unless a subscription brings its own). */
  tracing?: Tracing;
}

/**
 * The embedded default: delivers within this process, asynchronously, with the same contract
 * as the RabbitMQ bus (retries, then a dead-letter list), so code written against one behaves
 * the same on the other. Not durable: events in flight are lost if the process dies, which
 * the outbox covers for publishers.
 */
export class InProcessEventBus implements EventBus {
  private readonly consumers = new Map<string, Consumer>();
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

  async publish(event: EventEnvelope): Promise<void> {
    if (this.closed) throw new Error('event bus is closed');
    const copy = JSON.stringify(event);
    for (const [name, consumer] of this.consumers) {
      if (!consumer.patterns.some((p) => topicMatches(p, event.type))) continue;
      // Each consumer gets its own copy, as each queue would.
      this.track(this.deliver(name, consumer, JSON.parse(copy) as EventEnvelope));
    }
  }

  async subscribe(
    consumer: string,
    patterns: readonly string[],
    handler: EventHandler,
    options: SubscribeOptions = {},
  ): Promise<Subscription> {
    let entry = this.consumers.get(consumer);
    if (!entry) {
      entry = {
        patterns,
        handlers: [],
        next: 0,
        maxAttempts: options.maxAttempts ?? 5,
        tracing: options.tracing ?? this.tracing,
      };
      this.consumers.set(consumer, entry);
    }
    entry.handlers.push(handler);
    const owner = entry;
    return {
      unsubscribe: async () => {
        owner.handlers = owner.handlers.filter((h) => h !== handler);
        if (owner.handlers.length === 0) this.consumers.delete(consumer);
      },
    };
  }

  /** Waits for every delivery under way (tests use it to observe effects). */
  async drain(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.drain();
    this.consumers.clear();
  }

  private track(p: Promise<void>) {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private async deliver(name: string, consumer: Consumer, event: EventEnvelope): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    for (let attempt = 1; ; attempt++) {
      const handler = consumer.handlers[consumer.next++ % Math.max(consumer.handlers.length, 1)];
      if (!handler) return;
      try {
        await deliverTraced(consumer.tracing, 'in-process', name, event, handler);
        return;
      } catch (error) {
        if (attempt >= consumer.maxAttempts || this.closed) {
          this.deadLetters.push({ consumer: name, event, error });
          return;
        }
        await new Promise((resolve) => setTimeout(resolve, this.retryDelayMs * attempt));
      }
    }
  }
}
