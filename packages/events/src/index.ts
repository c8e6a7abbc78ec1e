/**
 * Domain events: one `EventBus` interface with an in-process implementation (the default) and
 * a RabbitMQ one (`AMQP_URL`), the transactional outbox and its relay, and consumer dedup.
 *
 * Every export here is public API of `@bff/events`.
 */
export type {
  DurableSubscribeOptions,
  EventBus,
  EventDelivery,
  EventHandler,
  PublishOptions,
  SubscribeOptions,
  Subscription,
  TransientSubscribeOptions,
} from './bus.ts';
export { createEventBus } from './create.ts';
export type { EventEnvelope } from './envelope.ts';
export { newEvent, parseEnvelope } from './envelope.ts';
export type { InProcessEventBusOptions } from './in-process.ts';
export { InProcessEventBus } from './in-process.ts';
export type { EnqueueOptions, OutboxBacklog, OutboxRelayOptions } from './outbox.ts';
export {
  consumeOnce,
  enqueueEvent,
  OutboxRelay,
  outboxMigrations,
  readOutboxBacklog,
} from './outbox.ts';
export type { RabbitMqEventBusOptions } from './rabbitmq.ts';
export { RabbitMqEventBus } from './rabbitmq.ts';
export { topicMatches } from './topic.ts';
