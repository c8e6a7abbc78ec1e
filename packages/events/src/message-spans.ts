import {
  type Context,
  extractTraceContext,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracing,
  traceCarrierOf,
  traceIdOf,
} from '@bff/observability';
import type { EventHandler } from './bus.ts';
import type { EventEnvelope } from './envelope.ts';

/**
 * Sends `event` inside a PRODUCER span when `tracing` is given and the event carries a trace
 * context that parses (an event written outside a traced request, or whose context is malformed,
 * starts no trace here: it goes as it is, and its consumers start one). The event travels
 * with the span's own context, so the consumers' spans are its children, as OpenTelemetry's
 * messaging conventions draw it: the request that wrote the row, then `<type> publish` (the
 * bus's send and its confirmation), then each consumer's `<type> process`.
 */
export async function publishTraced(
  tracing: Tracing | undefined,
  system: string,
  event: EventEnvelope,
  send: (event: EventEnvelope) => Promise<void>,
): Promise<void> {
  if (!tracing || !event.trace) return send(event);
  const parent = extractTraceContext({ ...event.trace });
  if (traceIdOf(parent) === undefined) return send(event);
  const { span, context } = tracing.startChild(`${event.type} publish`, parent, SpanKind.PRODUCER, {
    'messaging.system': system,
    'messaging.operation.type': 'send',
    'messaging.destination.name': event.type,
    'messaging.message.id': event.id,
  });
  const trace = traceCarrierOf(context);
  await ending(span, 'publish', () => send(trace ? { ...event, trace } : event));
}

/**
 * Runs `handler` for one delivery of `event` to `consumer`: inside a CONSUMER span whose parent
 * is the event's trace context when `tracing` is given (a malformed or missing context starts
 * a new trace), and with that context handed to the handler either way.
 */
export async function deliverTraced(
  tracing: Tracing | undefined,
  system: string,
  consumer: string,
  event: EventEnvelope,
  handler: EventHandler,
): Promise<void> {
  const parent: Context = extractTraceContext(event.trace ? { ...event.trace } : {});
  if (!tracing) return handler(event, { traceContext: parent });
  const { span, context } = tracing.startChild(`${event.type} process`, parent, SpanKind.CONSUMER, {
    'messaging.system': system,
    'messaging.operation.type': 'process',
    'messaging.destination.name': event.type,
    'messaging.consumer.group.name': consumer,
    'messaging.message.id': event.id,
  });
  await ending(span, 'handler', () => handler(event, { traceContext: context }));
}

/** Runs `work` and ends `span`, marked failed with the error's message (cut short) if it throws. */
async function ending(span: Span, what: string, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: error instanceof Error ? error.message.slice(0, 200) : `${what} failed`,
    });
    throw error;
  } finally {
    span.end();
  }
}
