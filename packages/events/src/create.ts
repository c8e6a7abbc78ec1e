import type { Tracing } from '@bff/observability';
import type { EventBus } from './bus.ts';
import { InProcessEventBus } from './in-process.ts';
import { RabbitMqEventBus } from './rabbitmq.ts';

/** RabbitMQ when `amqpUrl` is given, otherwise the in-process bus. */
export function createEventBus(options: {
  amqpUrl?: string | undefined;
  exchange?: string;
  /** Records a CONSUMER span around each delivery to this process's subscribers. */
  tracing?: Tracing | undefined;
}): EventBus {
  const tracing = options.tracing ? { tracing: options.tracing } : {};
  if (options.amqpUrl) {
    return new RabbitMqEventBus({
      url: options.amqpUrl,
      ...(options.exchange ? { exchange: options.exchange } : {}),
      ...tracing,
    });
  }
  return new InProcessEventBus(tracing);
}
