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

/**
 * Resolves to acknowledge; throws to have the event redelivered (then dead-lettered). A transient
 * subscription never redelivers: a throw drops the event (see {@link TransientSubscribeOptions}).
 */
export type EventHandler = (event: EventEnvelope, delivery: EventDelivery) => Promise<void>;

interface CommonSubscribeOptions {
  /** How many events a consumer works on at once. @default 8 */
  prefetch?: number;
  /**
   * Records a CONSUMER span around each delivery, a child of the event's trace context.
   * @default the bus's own `tracing`, if it was given one
   */
  tracing?: Tracing;
}

/**
 * A durable, shared subscription (the default): one queue per consumer name that outlives the
 * process, subscribers with the same name share its events, and a failing event is retried, then
 * dead-lettered.
 */
export interface DurableSubscribeOptions extends CommonSubscribeOptions {
  /** Durable and shared, the default. @default false */
  transient?: false;
  /** Deliveries before an event is dead-lettered. @default 5 */
  maxAttempts?: number;
  /** Transient subscriptions only. */
  maxQueued?: never;
  /** Transient subscriptions only. */
  onGap?: never;
  /** Transient subscriptions only. */
  onError?: never;
}

/**
 * A transient subscription: this subscriber alone receives every matching event published while
 * it is subscribed, whatever its name (the name only labels logs and spans), and nothing is left
 * on the broker once it unsubscribes, its bus closes or its process dies. For per-replica state
 * such as a local cache.
 *
 * At most once: an event whose handler throws is dropped (reported to `onError`), never
 * redelivered; events are dropped, oldest first, past `maxQueued` waiting; and on RabbitMQ the
 * events published while the connection is down are lost, which `onGap` reports once the
 * subscription is whole again.
 */
export interface TransientSubscribeOptions extends CommonSubscribeOptions {
  /** Every event to this subscriber, nothing kept once it is gone. */
  transient: true;
  /**
   * Events waiting for this subscriber (beyond the `prefetch` being handled) before the oldest is
   * dropped for each new one, so that a stalled subscriber cannot grow the broker's memory.
   * A positive integer. @default 10_000
   */
  maxQueued?: number;
  /**
   * Called when events may have been missed, so the subscriber can drop what they keep up to date
   * (clear a cache). On RabbitMQ: after the connection came back, once this subscription's new
   * queue is bound and before any event from it reaches the handler. Guaranteed: every event the
   * broker routes after that binding (so every event published after `onGap` was called) is
   * delivered, within the limits above (`maxQueued`, a handler that throws, the next drop).
   * Not guaranteed: events published while the connection was down, or still queued or in the
   * handler's hands when it dropped (the old queue died with it), and any order across the gap.
   * Nothing is said while the connection is down, only once it is back; it may be called again
   * after every later drop. Never on the first connection, never after `unsubscribe()` or
   * `close()`, and never by the in-process bus, where nothing can be lost.
   */
  onGap?: () => void;
  /**
   * Told what this subscription dropped without stopping: the handler threw for `event` (which is
   * not redelivered), a message was not a valid envelope, or `onGap` threw (`event` undefined).
   * @default one line on `console.warn`
   */
  onError?: (error: unknown, event: EventEnvelope | undefined) => void;
  /** Durable subscriptions only: a transient one never redelivers. */
  maxAttempts?: never;
}

export type SubscribeOptions = DurableSubscribeOptions | TransientSubscribeOptions;

export interface Subscription {
  /**
   * Stops delivery to this subscriber. A durable queue stays (and keeps collecting events for its
   * name); a transient one is deleted.
   */
  unsubscribe(): Promise<void>;
}

export interface PublishOptions {
  /**
   * Traces the send as a PRODUCER span under the event's trace context with this Tracing (the
   * publishing service's) instead of the bus's own. An event without a trace context is sent
   * untraced either way.
   */
  tracing?: Tracing | undefined;
}

export interface EventBus {
  /** Resolves once the bus has taken responsibility for the event (the broker confirmed it). */
  publish(event: EventEnvelope, options?: PublishOptions): Promise<void>;
  /**
   * Delivers events whose type matches one of `patterns` (AMQP topic syntax: `*` one word,
   * `#` any number) to the named consumer. Durable consumers with the same name share the work;
   * a transient subscriber (`{ transient: true }`) gets every event for itself.
   */
  subscribe(
    consumer: string,
    patterns: readonly string[],
    handler: EventHandler,
    options?: SubscribeOptions,
  ): Promise<Subscription>;
  close(): Promise<void>;
}
