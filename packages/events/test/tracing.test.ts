// One trace from the request that wrote an outbox row to the consumer of its event: the row
// keeps the request's trace context, the bus carries it (AMQP headers on RabbitMQ), the
// bus's send is a PRODUCER span under it and the handler a CONSUMER span under that. Hostile
// trace headers start a new trace instead.
import { randomBytes } from 'node:crypto';
import { type Database, migrate, openDatabase } from '@bff/db';
import { createTracing, SpanKind, type Tracing, traceIdOf } from '@bff/observability';
import { realServer, waitFor } from '@bff/testkit';
import { InMemorySpanExporter, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { connect } from 'amqplib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type EventBus,
  type EventEnvelope,
  enqueueEvent,
  InProcessEventBus,
  newEvent,
  OutboxRelay,
  outboxMigrations,
  parseEnvelope,
  RabbitMqEventBus,
  readOutboxBacklog,
} from '../src/index.ts';

const PARENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const traceparent = `00-${PARENT_TRACE}-00f067aa0ba902b7-01`;

/** Whether `ancestor` is `span`'s parent, grandparent, …, among `spans`. */
function descendsFrom(span: ReadableSpan, ancestor: ReadableSpan, spans: readonly ReadableSpan[]): boolean {
  const byId = new Map(spans.map((s) => [s.spanContext().spanId, s]));
  let parentId = span.parentSpanContext?.spanId;
  for (let depth = 0; parentId && depth < 20; depth++) {
    if (parentId === ancestor.spanContext().spanId) return true;
    parentId = byId.get(parentId)?.parentSpanContext?.spanId;
  }
  return false;
}

interface Traced {
  producer: Tracing;
  producerSpans: InMemorySpanExporter;
  consumer: Tracing;
  consumerSpans: InMemorySpanExporter;
}

function tracings(): Traced {
  const producerSpans = new InMemorySpanExporter();
  const consumerSpans = new InMemorySpanExporter();
  return {
    producer: createTracing({ serviceName: 'producer', exporter: producerSpans }),
    producerSpans,
    consumer: createTracing({ serviceName: 'consumer', exporter: consumerSpans }),
    consumerSpans,
  };
}

/** A traced request that writes one event into the outbox; returns its span once ended. */
async function tracedRequestWrites(db: Database, t: Traced, type: string): Promise<EventEnvelope> {
  const request = t.producer.startIncoming('POST /things', { traceparent }, true, SpanKind.SERVER);
  const event = await db.transaction((tx) =>
    enqueueEvent(tx, 'test', type, 1, { n: 1 }, { traceContext: request.context }),
  );
  request.span.end();
  return event;
}

/**
 * Checks the spans of `event`: the request that wrote the row, then the bus's PRODUCER span
 * (`<type> publish`) as its child, then the CONSUMER span as the producer's child, one trace.
 */
async function expectLinked(t: Traced, event: EventEnvelope, handlerTraceId: string | undefined) {
  const spans = async () => {
    await t.producer.flush();
    await t.consumer.flush();
    return [...t.producerSpans.getFinishedSpans(), ...t.consumerSpans.getFinishedSpans()];
  };
  const ofEvent = (kind: SpanKind) => (all: readonly ReadableSpan[]) =>
    all.find((s) => s.kind === kind && s.attributes['messaging.message.id'] === event.id);
  const consumed = await waitFor('the consumer span', async () => ofEvent(SpanKind.CONSUMER)(await spans()));
  const all = await spans();
  const request = all.find((s) => s.name === 'POST /things');
  const published = ofEvent(SpanKind.PRODUCER)(all);
  expect(request?.spanContext().traceId).toBe(PARENT_TRACE);
  expect(published?.name).toBe(`${event.type} publish`);
  expect(published?.attributes['messaging.operation.type']).toBe('send');
  expect(published?.parentSpanContext?.spanId).toBe(request?.spanContext().spanId);
  expect(consumed.parentSpanContext?.spanId).toBe(published?.spanContext().spanId);
  for (const span of [published, consumed]) expect(span?.spanContext().traceId).toBe(PARENT_TRACE);
  expect(descendsFrom(consumed, request as ReadableSpan, all)).toBe(true);
  expect(handlerTraceId).toBe(PARENT_TRACE);
}

let db: Database;
beforeAll(async () => {
  db = await openDatabase({ schema: 'trace_test' });
  await migrate(db, [outboxMigrations]);
});
afterAll(async () => {
  await db?.close();
});

describe('trace context through the outbox and the in-process bus', () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });
  const relayTo = (bus: EventBus) => {
    const relay = new OutboxRelay({ db, bus, pollIntervalMs: 20 });
    relay.start();
    closers.push(() => relay.stop());
    return relay;
  };

  it('links the consumer span to the request that wrote the row', async () => {
    const t = tracings();
    const bus = new InProcessEventBus({ tracing: t.consumer });
    closers.push(async () => {
      await bus.close();
      await t.producer.shutdown();
      await t.consumer.shutdown();
    });
    const seen = new Map<string, string | undefined>();
    await bus.subscribe('traced', ['trace.inprocess'], async (event, delivery) => {
      seen.set(event.id, traceIdOf(delivery.traceContext));
    });
    const event = await tracedRequestWrites(db, t, 'trace.inprocess');
    const stored = await db.query<{ traceparent: string | null }>(
      'SELECT traceparent FROM outbox WHERE id = $1',
      [event.id],
    );
    expect(stored.rows[0]?.traceparent).toMatch(new RegExp(`^00-${PARENT_TRACE}-[0-9a-f]{16}-01$`));
    relayTo(bus).notify();
    await waitFor('the delivery', () => seen.has(event.id));
    await bus.drain();
    await expectLinked(t, event, seen.get(event.id));
  });

  it('publishes a row written without a trace context (as before the column existed) in a new trace', async () => {
    const t = tracings();
    const bus = new InProcessEventBus({ tracing: t.consumer });
    closers.push(async () => {
      await bus.close();
      await t.consumer.shutdown();
      await t.producer.shutdown();
    });
    const seen: EventEnvelope[] = [];
    await bus.subscribe('untraced', ['trace.old'], async (event) => void seen.push(event));
    const old = newEvent('test', 'trace.old', 1, { legacy: true });
    await db.query(
      'INSERT INTO outbox (id, type, version, source, occurred_at, payload) VALUES ($1, $2, 1, $3, $4, $5)',
      [old.id, old.type, old.source, old.occurredAt, JSON.stringify(old.payload)],
    );
    relayTo(bus).notify();
    await waitFor('the old event', () => seen.length === 1);
    expect(seen[0]).toEqual(old);
    await bus.drain();
    await t.consumer.flush();
    const [span] = t.consumerSpans.getFinishedSpans();
    expect(span?.spanContext().traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(span?.parentSpanContext).toBeUndefined();
  });

  it('delivers an event whose trace field is hostile, in a new trace, and parseEnvelope drops the field', async () => {
    const t = tracings();
    const bus = new InProcessEventBus({ tracing: t.consumer });
    closers.push(async () => {
      await bus.close();
      await t.consumer.shutdown();
      await t.producer.shutdown();
    });
    let deliveries = 0;
    await bus.subscribe('hostile', ['trace.hostile'], async () => void deliveries++);
    const hostile = [
      { traceparent: 'garbage' },
      { traceparent: `00-${'0'.repeat(32)}-00f067aa0ba902b7-01` },
      { traceparent: 'x'.repeat(100_000), tracestate: 7 },
    ];
    for (const trace of hostile)
      await bus.publish({ ...newEvent('test', 'trace.hostile', 1, {}), trace } as EventEnvelope);
    await bus.drain();
    expect(deliveries).toBe(3);
    expect(bus.deadLetters).toEqual([]);
    await t.consumer.flush();
    const spans = t.consumerSpans.getFinishedSpans();
    expect(spans).toHaveLength(3);
    for (const span of spans) expect(span.spanContext().traceId).not.toBe('0'.repeat(32));
    const wire = JSON.stringify({ ...newEvent('test', 't', 1, {}), trace: { traceparent: 42 } });
    expect(parseEnvelope(wire)).not.toHaveProperty('trace');
    const huge = JSON.stringify({ ...newEvent('test', 't', 1, {}), trace: { traceparent: 'x'.repeat(600) } });
    expect(parseEnvelope(huge)).not.toHaveProperty('trace');
  });

  it('reads the outbox backlog and the age of its oldest unpublished row in one query', async () => {
    await db.query('UPDATE outbox SET published_at = now() WHERE published_at IS NULL');
    expect(await readOutboxBacklog(db)).toEqual({ backlog: 0, oldestAgeSeconds: 0 });
    for (const age of [120, 30]) {
      const event = newEvent('test', 'trace.backlog', 1, {});
      await db.query(
        `INSERT INTO outbox (id, type, version, source, occurred_at, payload)
         VALUES ($1, $2, 1, 'test', now() - make_interval(secs => $3), '{}')`,
        [event.id, event.type, age],
      );
    }
    const backlog = await readOutboxBacklog(db);
    expect(backlog.backlog).toBe(2);
    expect(backlog.oldestAgeSeconds).toBeGreaterThanOrEqual(120);
    await db.query("UPDATE outbox SET published_at = now() WHERE type = 'trace.backlog'");
  });
});

const url = process.env.AMQP_URL;
const available = await realServer('RabbitMQ', url);

describe.runIf(available)('trace context through the outbox and the real RabbitMQ', () => {
  const run = randomBytes(4).toString('hex');
  const exchange = `bff.test.trace.${run}`;
  const queues: string[] = [];
  const closers: (() => Promise<void>)[] = [];
  const consumer = (name: string) => {
    const queue = `test.${run}.${name}`;
    queues.push(queue, `${queue}.dead-letter`);
    return queue;
  };
  const bus = (tracing?: Tracing) => {
    const created = new RabbitMqEventBus({
      url: url as string,
      exchange,
      timeoutMs: 2_000,
      retryDelayMs: 20,
      ...(tracing ? { tracing } : {}),
    });
    closers.push(() => created.close());
    return created;
  };
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await close();
  });
  afterAll(async () => {
    const model = await connect(url as string);
    const channel = await model.createChannel();
    for (const queue of queues) await channel.deleteQueue(queue);
    await channel.deleteExchange(exchange);
    await channel.deleteExchange(`${exchange}.dead-letter`);
    await model.close();
  });

  it('sends the row’s trace context as AMQP headers and links the consumer span to the request', async () => {
    const t = tracings();
    closers.push(async () => {
      await t.producer.shutdown();
      await t.consumer.shutdown();
    });
    // As the services wire it: a bus without tracing, the relay traced as the service is.
    const publisher = bus();
    const receiver = bus(t.consumer);
    const seen = new Map<string, string | undefined>();
    const queue = consumer('traced');
    await receiver.subscribe(queue, ['trace.amqp'], async (event, delivery) => {
      seen.set(event.id, traceIdOf(delivery.traceContext));
    });
    // A second queue read raw shows what travels on the wire.
    const rawQueue = consumer('raw');
    const model = await connect(url as string);
    closers.push(() => model.close());
    const channel = await model.createChannel();
    await channel.assertQueue(rawQueue, { durable: true });
    await channel.bindQueue(rawQueue, exchange, 'trace.amqp');

    const event = await tracedRequestWrites(db, t, 'trace.amqp');
    const relay = new OutboxRelay({ db, bus: publisher, pollIntervalMs: 20, tracing: t.producer });
    relay.start();
    closers.push(() => relay.stop());
    await waitFor('the delivery', () => seen.has(event.id), 20_000);
    await expectLinked(t, event, seen.get(event.id));

    const raw = await waitFor('the raw message', async () => {
      const message = await channel.get(rawQueue, { noAck: true });
      return message === false ? undefined : message;
    });
    expect(String(raw.properties.headers?.traceparent)).toMatch(new RegExp(`^00-${PARENT_TRACE}-`));
    expect(JSON.parse(raw.content.toString())).not.toHaveProperty('trace');
  });

  it('ignores hostile trace headers: the event is handled once, in a new trace, never dead-lettered', async () => {
    const t = tracings();
    closers.push(async () => {
      await t.consumer.shutdown();
      await t.producer.shutdown();
    });
    const receiver = bus(t.consumer);
    const queue = consumer('hostile');
    const handled: string[] = [];
    await receiver.subscribe(queue, ['trace.hostile'], async (event) => void handled.push(event.id));
    const model = await connect(url as string);
    closers.push(() => model.close());
    const channel = await model.createChannel();
    const hostileHeaders: Record<string, unknown>[] = [
      { traceparent: 'garbage', tracestate: '\u0000\u0001' },
      { traceparent: 12345 },
      { traceparent: Buffer.from([0xff, 0x00, 0x01]) },
      { traceparent: { nested: ['x'] } },
      { traceparent: `00-${'0'.repeat(32)}-00f067aa0ba902b7-01` },
      { traceparent: 'x'.repeat(60_000) },
    ];
    const ids: string[] = [];
    for (const headers of hostileHeaders) {
      const event = newEvent('test', 'trace.hostile', 1, {});
      ids.push(event.id);
      channel.publish(exchange, event.type, Buffer.from(JSON.stringify(event)), {
        headers,
        persistent: true,
      });
    }
    await waitFor('every hostile event', () => ids.every((id) => handled.includes(id)), 20_000);
    expect([...handled].sort()).toEqual([...ids].sort());
    const dead = await channel.checkQueue(`${queue}.dead-letter`);
    expect(dead.messageCount).toBe(0);
    await waitFor('the consumer spans', async () => {
      await t.consumer.flush();
      return t.consumerSpans.getFinishedSpans().length === ids.length;
    });
    for (const span of t.consumerSpans.getFinishedSpans()) {
      expect(span.spanContext().traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(span.spanContext().traceId).not.toBe('0'.repeat(32));
      expect(span.parentSpanContext).toBeUndefined();
    }
  });
});
