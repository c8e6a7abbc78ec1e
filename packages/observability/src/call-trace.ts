import { type Context, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { Tracing } from './tracing.ts';

/** One outgoing call (one try) as the tracer sees it: the headers that carry the trace, and its end. */
export interface TracedTry {
  /** `traceparent` (and `tracestate`): send them with the call, as HTTP headers or gRPC metadata. */
  headers: Record<string, string>;
  /** Ends the span; an outcome other than `ok` or `refused` marks it as an error. */
  end(outcome: string): void;
}

/** Starts the client span of one try of `operation` on `service`, under `parent`. */
export function startTry(tracing: Tracing, parent: Context, service: string, operation: string): TracedTry {
  const { span, context } = tracing.startChild(`${service} ${operation}`, parent, SpanKind.CLIENT, {
    'peer.service': service,
    'rpc.method': operation,
  });
  const headers: Record<string, string> = {};
  tracing.inject(context, headers);
  return {
    headers,
    end(outcome) {
      span.setAttribute('bff.outcome', outcome);
      if (outcome !== 'ok' && outcome !== 'refused')
        span.setStatus({ code: SpanStatusCode.ERROR, message: outcome });
      span.end();
    },
  };
}
