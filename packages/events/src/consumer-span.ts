import {
  type Context,
  extractTraceContext,
  SpanKind,
  SpanStatusCode,
  type Tracing,
} from '@bff/observability';
import type { EventHandler } from './bus.ts';
import type { EventEnvelope } from './envelope.ts';

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
  try {
    await handler(event, { traceContext: context });
  } catch (error) {
    span.setStatus({
      code: SpanStatusCode.ERROR,
      message: error instanceof Error ? error.message.slice(0, 200) : 'handler failed',
    });
    throw error;
  } finally {
    span.end();
  }
}
