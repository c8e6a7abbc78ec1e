import type { EventEnvelope } from './envelope.ts';

/** Resolves to acknowledge; throws to have the event redelivered (then dead-lettered). */
export type EventHandler = (event: EventEnvelope) => Promise<void>;

export interface SubscribeOptions {
  /** Deliveries before an event is dead-lettered. @default 5 */
  maxAttempts?: number;
  /** How many events a consumer works on at once. @default 8 */
  prefetch?: number;
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
