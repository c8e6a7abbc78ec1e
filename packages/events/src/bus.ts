import type { Context, Tracing } from '@bff/observability';
import type { EventEnvelope } from './envelope.ts';

/** What a handler knows about one delivery besides the event. */
export interface EventDelivery {
  /**
   * The trace context of this delivery: the consumer span (a child of the producing request's
   * context) when the bus traces, otherwise the event's own context. Pass it on to continue the trace.
   */
  traceContext: Context;
}

/** Resolves to acknowledge; throws to have the event redelivered (then dead-lettered). */
export type EventHandler = (event: EventEnvelope, delivery: EventDelivery) => Promise<void>;

export interface SubscribeOptions {
  /** Deliveries before an event is dead-lettered. @default 5 */
  maxAttempts?: number;
  /** How many events a consumer works on at once. @default 8 */
  prefetch?: number;
  /**
   * Records a CONSUMER span around each delivery, a child of the event's trace context.
   * @default the bus's own `tracing`, if it was given one
   */
  tracing?: Tracing;
}

export interface Subscription {
  /** Stops delivery to this consumer; the durable queue stays. */
  unsubscribe(): Promise<void>;
}

export interface EventBus {
  /** Resolves once the bus has taken responsibility for the event (the broker confirmed it). */
  publish(event: EventEnvelope): Promise<void>;
  /**
   * Delivers events whose type matches one of `patterns` (AMQP topic syntax: `*` one word,
   * `#` any number) to the named consumer. Consumers with the same name share the work.
   */
  subscribe(
    consumer: string,
    patterns: readonly string[],
    handler: EventHandler,
    options?: SubscribeOptions,
  ): Promise<Subscription>;
  close(): Promise<void>;
}
