import type { EventBus } from './bus.ts';
import { InProcessEventBus } from './in-process.ts';
import { RabbitMqEventBus } from './rabbitmq.ts';

/** RabbitMQ when `amqpUrl` is given, otherwise the in-process bus. */
export function createEventBus(options: { amqpUrl?: string | undefined; exchange?: string }): EventBus {
  if (options.amqpUrl) {
    return new RabbitMqEventBus({
      url: options.amqpUrl,
      ...(options.exchange ? { exchange: options.exchange } : {}),
    });
  }
  return new InProcessEventBus();
}
