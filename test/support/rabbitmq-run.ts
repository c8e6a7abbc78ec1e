// One test run's own corner of the machine's RabbitMQ: an exchange and queue names of its own, so
// that parallel suites (and parallel CI runs) on one broker never share or delete each other's.
import { randomBytes } from 'node:crypto';
import { RabbitMqEventBus } from '@bff/events';

export interface RabbitMqRun {
  /** A new bus connection on this run's exchange (each replica or service gets its own, as pods would). */
  bus(): RabbitMqEventBus;
  /** Closes every bus made, then deletes this run's durable queues and its exchanges. */
  cleanUp(): Promise<void>;
}

/** `label` names the run's exchange (`bff.<label>.<random>`). */
export function rabbitMqRun(amqpUrl: string, label: string): RabbitMqRun {
  const run = randomBytes(4).toString('hex');
  const exchange = `bff.${label}.${run}`;
  const buses: RabbitMqEventBus[] = [];
  return {
    bus() {
      // Queues of this run's own: parallel suites on the same broker use the same consumer names.
      const created = new RabbitMqEventBus({ url: amqpUrl, exchange, queuePrefix: `${run}.` });
      buses.push(created);
      return created;
    },
    async cleanUp() {
      for (const created of buses) await created.close();
      // The services' durable queues of this run (the BFFs' are transient and already gone).
      const { connect } = await import('amqplib');
      const model = await connect(amqpUrl);
      const channel = await model.createChannel();
      for (const queue of ['billing.accounts', 'billing.accounts.dead-letter'])
        await channel.deleteQueue(`${run}.${queue}`).catch(() => {});
      for (const name of [exchange, `${exchange}.dead-letter`])
        await channel.deleteExchange(name).catch(() => {});
      await model.close();
    },
  };
}
