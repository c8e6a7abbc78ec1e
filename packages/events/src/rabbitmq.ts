import { sanitizeTraceCarrier, type Tracing } from '@bff/observability';
import { type Channel, type ChannelModel, type ConfirmChannel, type ConsumeMessage, connect } from 'amqplib';
import type { EventBus, EventHandler, PublishOptions, SubscribeOptions, Subscription } from './bus.ts';
import { type EventEnvelope, parseEnvelope } from './envelope.ts';
import { deliverTraced, publishTraced } from './message-spans.ts';
import {
  callSafely,
  type DurableMode,
  reportDropped,
  subscriptionMode,
  type TransientMode,
} from './subscription-mode.ts';

export interface RabbitMqEventBusOptions {
  /** `amqp://user:pass@host:port/vhost` */
  url: string;
  /** Durable topic exchange events are published to. @default 'bff.events' */
  exchange?: string;
  /**
   * Put before every durable queue's name (`<prefix><consumer>` and its dead-letter queue), so
   * that deployments or test runs sharing one broker keep their queues apart (a queue is bound to
   * one dead-letter exchange; two exchanges cannot share it). Letters, digits and `._-`. @default ''
   */
  queuePrefix?: string;
  /** Deadline for connecting and for each publisher confirm, in ms. @default 5000 */
  timeoutMs?: number;
  /** Heartbeat in seconds, so a silently dead connection is noticed. @default 10 */
  heartbeatSeconds?: number;
  /** Longest pause between reconnect attempts, in ms. @default 5000 */
  maxReconnectDelayMs?: number;
  /** Pause before a failed event is redelivered, multiplied by the attempt number, in ms. @default 200 */
  retryDelayMs?: number;
  /** Records a CONSUMER span around each delivery (unless a subscription brings its own). */
  tracing?: Tracing;
}

interface ConsumerState {
  consumer: string;
  patterns: readonly string[];
  handler: EventHandler;
  mode: DurableMode | TransientMode;
  channel: Channel | undefined;
  /** Transient: the server-named queue on the current connection. */
  queue: string | undefined;
  /** Transient: a queue was bound before, so binding a new one means events may have been missed. */
  bound: boolean;
  active: boolean;
}

const ATTEMPT_HEADER = 'x-bff-attempt';

/**
 * RabbitMQ event bus: a durable topic exchange, a durable queue per named consumer with a
 * dead-letter queue beside it, persistent messages, publisher confirms and manual acks.
 * Reconnects by itself after the broker or the network goes away, and resumes consuming.
 *
 * A transient subscription has a server-named, exclusive, auto-deleted queue of its own, capped
 * at `maxQueued` (oldest dropped first) and without a dead-letter queue: the broker deletes it
 * with the connection, so after a reconnect a new one is declared and bound, and `onGap` said.
 */
export class RabbitMqEventBus implements EventBus {
  private readonly url: string;
  private readonly exchange: string;
  private readonly queuePrefix: string;
  private readonly deadLetterExchange: string;
  private readonly timeoutMs: number;
  private readonly heartbeat: number;
  private readonly maxReconnectDelayMs: number;
  private readonly retryDelayMs: number;
  private readonly tracing: Tracing | undefined;
  private model: ChannelModel | undefined;
  private publisher: ConfirmChannel | undefined;
  private opening: Promise<ConfirmChannel> | undefined;
  private readonly consumers = new Set<ConsumerState>();
  private reconnectTimer: NodeJS.Timeout | undefined;
  private reconnectAttempt = 0;
  private closed = false;

  constructor(options: RabbitMqEventBusOptions) {
    if (typeof options.url !== 'string' || !/^amqps?:\/\//.test(options.url)) {
      throw new TypeError(
        `RabbitMqEventBus: url must be an amqp:// or amqps:// URL, received ${String(options.url)}`,
      );
    }
    this.url = options.url;
    this.exchange = options.exchange ?? 'bff.events';
    this.queuePrefix = options.queuePrefix ?? '';
    if (typeof this.queuePrefix !== 'string' || !/^[\w.-]{0,64}$/.test(this.queuePrefix)) {
      throw new TypeError(
        `RabbitMqEventBus: queuePrefix must be at most 64 of A-Z a-z 0-9 _ . -, received ${JSON.stringify(options.queuePrefix)}`,
      );
    }
    this.deadLetterExchange = `${this.exchange}.dead-letter`;
    this.timeoutMs = options.timeoutMs ?? 5_000;
    this.heartbeat = options.heartbeatSeconds ?? 10;
    this.maxReconnectDelayMs = options.maxReconnectDelayMs ?? 5_000;
    this.retryDelayMs = options.retryDelayMs ?? 200;
    this.tracing = options.tracing;
  }

  async publish(event: EventEnvelope, options?: PublishOptions): Promise<void> {
    return publishTraced(options?.tracing ?? this.tracing, 'rabbitmq', event, (sent) => this.send(sent));
  }

  private async send(event: EventEnvelope): Promise<void> {
    const channel = await this.channel();
    const model = this.model;
    try {
      await this.confirm(channel, this.exchange, event.type, event);
    } catch (error) {
      // A confirm that never came means the connection is not to be trusted: start afresh.
      if (model && this.model === model) {
        this.lost(model);
        void model.close().catch(() => {});
      }
      throw error;
    }
  }

  async subscribe(
    consumer: string,
    patterns: readonly string[],
    handler: EventHandler,
    options: SubscribeOptions = {},
  ): Promise<Subscription> {
    if (!/^[\w.-]+$/.test(consumer))
      throw new TypeError(`subscribe: invalid consumer name ${JSON.stringify(consumer)}`);
    const state: ConsumerState = {
      consumer,
      patterns,
      handler,
      mode: subscriptionMode(consumer, options, this.tracing),
      channel: undefined,
      queue: undefined,
      bound: false,
      active: true,
    };
    this.consumers.add(state);
    try {
      const existing = this.model;
      if (existing) await this.startConsumer(existing, state);
      else await this.channel(); // opening starts every registered consumer
    } catch (error) {
      // Refused means not subscribed: no later reconnect may start it behind the caller's back.
      await this.stopConsumer(state);
      throw error;
    }
    return { unsubscribe: () => this.stopConsumer(state) };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    const model = this.model;
    this.model = undefined;
    this.publisher = undefined;
    await model?.close().catch(() => {});
  }

  private async stopConsumer(state: ConsumerState) {
    state.active = false;
    this.consumers.delete(state);
    const { channel, queue } = state;
    state.channel = undefined;
    state.queue = undefined;
    if (!channel) return;
    // The broker would delete an exclusive queue with its connection anyway; this subscriber
    // goes now, while the bus stays connected.
    if (queue) await this.withDeadline(channel.deleteQueue(queue)).catch(() => {});
    await this.withDeadline(channel.close()).catch(() => {});
  }

  private withDeadline<T>(operation: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${this.timeoutMs} ms`)), this.timeoutMs);
    });
    return Promise.race([operation, deadline]).finally(() => clearTimeout(timer));
  }

  /** The publishing channel, connecting first when there is none. */
  private channel(): Promise<ConfirmChannel> {
    if (this.closed) return Promise.reject(new Error('event bus is closed'));
    if (this.publisher) return Promise.resolve(this.publisher);
    this.opening ??= this.open().finally(() => {
      this.opening = undefined;
    });
    return this.opening;
  }

  private async open(): Promise<ConfirmChannel> {
    const url = new URL(this.url);
    if (!url.searchParams.has('heartbeat')) url.searchParams.set('heartbeat', String(this.heartbeat));
    const model = await connect(url.toString(), { timeout: this.timeoutMs });
    try {
      model.on('error', () => {}); // 'close' follows and handles it
      model.on('close', () => this.lost(model));
      const publisher = await model.createConfirmChannel();
      publisher.on('error', () => {});
      await publisher.assertExchange(this.exchange, 'topic', { durable: true });
      await publisher.assertExchange(this.deadLetterExchange, 'direct', { durable: true });
      for (const state of this.consumers) await this.startConsumer(model, state);
      if (this.closed) throw new Error('event bus is closed');
      this.model = model;
      this.publisher = publisher;
      this.reconnectAttempt = 0;
      return publisher;
    } catch (error) {
      await model.close().catch(() => {});
      throw error;
    }
  }

  private lost(model: ChannelModel) {
    if (this.model !== model) return;
    this.model = undefined;
    this.publisher = undefined;
    for (const state of this.consumers) {
      state.channel = undefined;
      state.queue = undefined;
    }
    if (!this.closed && this.consumers.size > 0) this.scheduleReconnect();
  }

  private scheduleReconnect() {
    if (this.reconnectTimer || this.closed) return;
    const delay = Math.min(this.maxReconnectDelayMs, 100 * 2 ** this.reconnectAttempt++);
    this.reconnectTimer = setTimeout(
      () => {
        this.reconnectTimer = undefined;
        if (this.model || this.closed) return;
        this.channel().catch(() => this.scheduleReconnect());
      },
      delay * (0.8 + Math.random() * 0.4),
    );
    this.reconnectTimer.unref();
  }

  private async startConsumer(model: ChannelModel, state: ConsumerState) {
    if (!state.active) return;
    const { mode } = state;
    if (mode.transient) await this.startTransientConsumer(model, state, mode);
    else await this.startDurableConsumer(model, state, mode);
  }

  private async startDurableConsumer(model: ChannelModel, state: ConsumerState, mode: DurableMode) {
    const channel = await model.createChannel();
    channel.on('error', () => {});
    const queue = `${this.queuePrefix}${state.consumer}`;
    const deadLetterQueue = `${queue}.dead-letter`;
    await channel.assertExchange(this.exchange, 'topic', { durable: true });
    await channel.assertExchange(this.deadLetterExchange, 'direct', { durable: true });
    await channel.assertQueue(deadLetterQueue, { durable: true });
    await channel.bindQueue(deadLetterQueue, this.deadLetterExchange, queue);
    await channel.assertQueue(queue, {
      durable: true,
      deadLetterExchange: this.deadLetterExchange,
      deadLetterRoutingKey: queue,
    });
    for (const pattern of state.patterns) await channel.bindQueue(queue, this.exchange, pattern);
    await channel.prefetch(mode.prefetch);
    await channel.consume(queue, (message) => {
      if (message) void this.handle(channel, state, mode, message);
    });
    state.channel = channel;
  }

  private async startTransientConsumer(model: ChannelModel, state: ConsumerState, mode: TransientMode) {
    const channel = await model.createChannel();
    channel.on('error', () => {});
    let queue: string | undefined;
    try {
      await channel.assertExchange(this.exchange, 'topic', { durable: true });
      ({ queue } = await channel.assertQueue('', {
        exclusive: true,
        autoDelete: true,
        durable: false,
        maxLength: mode.maxQueued,
        overflow: 'drop-head',
      }));
      for (const pattern of state.patterns) await channel.bindQueue(queue, this.exchange, pattern);
      // Manual acks with a prefetch, not noAck: with noAck the broker would push everything to
      // this process at once, and the length cap could never drop anything.
      await channel.prefetch(mode.prefetch);
      if (state.active && !this.closed) {
        // Bound: from here on nothing is missed. Said before the first event from the new queue.
        if (state.bound && mode.onGap)
          callSafely(mode.onGap, (error) => reportDropped(mode, error, undefined));
        state.bound = true;
        await channel.consume(queue, (message) => {
          if (message) void this.handleTransient(channel, state, mode, message);
        });
        if (state.active) {
          state.channel = channel;
          state.queue = queue;
          return;
        }
      }
    } catch (error) {
      await this.discardQueue(model, channel, queue);
      throw error;
    }
    await this.discardQueue(model, channel, queue); // unsubscribed, or the bus closed, meanwhile
  }

  /**
   * Deletes a transient queue that will not be consumed: an exclusive queue otherwise lives as
   * long as the connection, collecting events. Through a fresh channel if `channel` has failed.
   */
  private async discardQueue(model: ChannelModel, channel: Channel, queue: string | undefined) {
    if (queue) {
      const deleted = await this.withDeadline(channel.deleteQueue(queue)).then(
        () => true,
        () => false,
      );
      if (!deleted && this.model === model) {
        await this.withDeadline(
          model.createChannel().then(async (other) => {
            other.on('error', () => {});
            await other.deleteQueue(queue);
            await other.close();
          }),
        ).catch(() => {});
      }
    }
    await this.withDeadline(channel.close()).catch(() => {});
  }

  /** At most once: acked whatever happens, so that a failing handler cannot loop. */
  private async handleTransient(
    channel: Channel,
    state: ConsumerState,
    mode: TransientMode,
    message: ConsumeMessage,
  ) {
    try {
      if (!state.active || this.closed) return; // prefetched before unsubscribe: dropped
      let event: EventEnvelope;
      try {
        event = parseEnvelope(message.content);
      } catch (error) {
        reportDropped(mode, error, undefined);
        return;
      }
      delete event.trace;
      const trace = sanitizeTraceCarrier(message.properties.headers);
      if (trace) event.trace = trace;
      try {
        await deliverTraced(mode.tracing, 'rabbitmq', state.consumer, event, state.handler);
      } catch (error) {
        reportDropped(mode, error, event);
      }
    } finally {
      try {
        channel.ack(message);
      } catch {
        // Channel gone: the queue went with it.
      }
    }
  }

  private async handle(channel: Channel, state: ConsumerState, mode: DurableMode, message: ConsumeMessage) {
    let event: EventEnvelope;
    try {
      event = parseEnvelope(message.content);
    } catch {
      channel.nack(message, false, false); // poison: straight to the dead-letter queue
      return;
    }
    // The trace context travels as message headers, where any publisher may have written
    // anything: what is not a sane string is dropped, and the delivery starts a new trace.
    delete event.trace;
    const trace = sanitizeTraceCarrier(message.properties.headers);
    if (trace) event.trace = trace;
    try {
      await deliverTraced(mode.tracing, 'rabbitmq', state.consumer, event, state.handler);
      channel.ack(message);
      return;
    } catch {
      // fall through to retry or dead-letter
    }
    const attempt = Number(message.properties.headers?.[ATTEMPT_HEADER] ?? 1);
    try {
      if (attempt >= mode.maxAttempts) {
        channel.nack(message, false, false);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, this.retryDelayMs * attempt));
      // Requeue a copy carrying the attempt count (a plain nack-requeue cannot count), then ack.
      const publisher = await this.channel();
      await this.confirm(publisher, '', `${this.queuePrefix}${state.consumer}`, event, attempt + 1);
      channel.ack(message);
    } catch {
      // Channel gone: the broker redelivers the unacked message after reconnect.
    }
  }

  private confirm(
    channel: ConfirmChannel,
    exchange: string,
    routingKey: string,
    event: EventEnvelope,
    attempt?: number,
  ): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`publisher confirm timed out after ${this.timeoutMs} ms`)),
        this.timeoutMs,
      );
      // The trace context goes in the headers, as AMQP tracing expects, not in the body.
      const { trace, ...body } = event;
      const headers: Record<string, string | number> = {
        ...(trace ? { traceparent: trace.traceparent } : {}),
        ...(trace?.tracestate ? { tracestate: trace.tracestate } : {}),
        ...(attempt ? { [ATTEMPT_HEADER]: attempt } : {}),
      };
      try {
        channel.publish(
          exchange,
          routingKey,
          Buffer.from(JSON.stringify(body)),
          {
            persistent: true,
            contentType: 'application/json',
            messageId: event.id,
            type: event.type,
            timestamp: Math.floor(Date.parse(event.occurredAt) / 1000),
            ...(Object.keys(headers).length > 0 ? { headers } : {}),
          },
          (error: unknown) => {
            clearTimeout(timer);
            if (error) reject(error instanceof Error ? error : new Error('message was nacked by the broker'));
            else resolve();
          },
        );
      } catch (error) {
        clearTimeout(timer);
        reject(error);
      }
    });
  }
}
