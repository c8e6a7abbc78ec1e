import {
  type Attributes,
  type Context,
  defaultTextMapGetter,
  defaultTextMapSetter,
  ProxyTracerProvider,
  ROOT_CONTEXT,
  type Span,
  type SpanKind,
  TraceFlags,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  RandomIdGenerator,
  type SpanExporter,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace-base';

export interface TracingOptions {
  /** `service.name` of every span: `web-bff`, `billing`, … */
  serviceName: string;
  /**
   * OTLP/HTTP base endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`, e.g. `http://collector:4318`); spans go
   * to `${endpoint}/v1/traces`. Without it (and without `exporter`) tracing records nothing and
   * costs next to nothing, but trace ids are still propagated so that logs correlate.
   */
  endpoint?: string | undefined;
  /** Share of new traces recorded (head sampling); a trusted parent's decision is followed. @default 1 */
  sampleRatio?: number;
  /** Where spans go instead of OTLP (tests). */
  exporter?: SpanExporter;
}

/** A header bag as Node hands it over, or as we build it for a call. */
export type Carrier = Record<string, string | string[] | undefined>;

/**
 * A trace context at rest or in transit outside a request: with an event in the outbox and on
 * the bus, so that its consumers continue the trace of the request that produced it.
 */
export interface TraceCarrier {
  traceparent: string;
  tracestate?: string;
}

export interface Tracing {
  /** Whether spans are recorded and exported. */
  readonly enabled: boolean;
  readonly tracer: Tracer;
  /**
   * Starts the span of an incoming request. Its parent is the caller's `traceparent` when
   * `trustParent` is true; otherwise a new trace starts (with fresh ids even when tracing is
   * off, so that the request's log line and the upstreams share one trace id).
   */
  startIncoming(
    name: string,
    headers: Carrier,
    trustParent: boolean,
    kind: SpanKind,
    attributes?: Attributes,
  ): { span: Span; context: Context };
  /** Starts a child span under `parent`. */
  startChild(
    name: string,
    parent: Context,
    kind: SpanKind,
    attributes?: Attributes,
  ): { span: Span; context: Context };
  /** Writes `traceparent` (and `tracestate`) of `context` into `carrier`. */
  inject(context: Context, carrier: Record<string, string>): void;
  /** Exports what is buffered. */
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

const propagator = new W3CTraceContextPropagator();
const ids = new RandomIdGenerator();

/** Reads a W3C trace context from headers; a malformed one is ignored, as the spec asks. */
export function extractTraceContext(headers: Carrier): Context {
  return propagator.extract(ROOT_CONTEXT, headers, defaultTextMapGetter);
}

/** Writes the trace context of `context` into `carrier` (nothing when it holds no valid span). */
export function injectTraceContext(context: Context, carrier: Record<string, string>): void {
  propagator.inject(context, carrier, defaultTextMapSetter);
}

/** The trace context of `context` to keep or send along, or undefined when it holds no valid span. */
export function traceCarrierOf(context: Context): TraceCarrier | undefined {
  const headers: Record<string, string> = {};
  injectTraceContext(context, headers);
  if (!headers.traceparent) return undefined;
  return headers.tracestate
    ? { traceparent: headers.traceparent, tracestate: headers.tracestate }
    : { traceparent: headers.traceparent };
}

/** W3C caps `tracestate` at 512 characters; a `traceparent` of any version fits in that too. */
const MAX_TRACE_HEADER = 512;

/**
 * The trace context in `value` (AMQP headers, a JSON field: anything a stranger may have
 * written), or undefined: only strings of a sane length survive; their syntax is checked when
 * the context is extracted, which ignores a malformed one. Never throws.
 */
export function sanitizeTraceCarrier(value: unknown): TraceCarrier | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const { traceparent, tracestate } = value as { traceparent?: unknown; tracestate?: unknown };
  if (typeof traceparent !== 'string' || traceparent.length > MAX_TRACE_HEADER) return undefined;
  return typeof tracestate === 'string' && tracestate.length <= MAX_TRACE_HEADER
    ? { traceparent, tracestate }
    : { traceparent };
}

/** The trace id of the span in `context`, or undefined. */
export function traceIdOf(context: Context): string | undefined {
  const spanContext = trace.getSpanContext(context);
  return spanContext && trace.isSpanContextValid(spanContext) ? spanContext.traceId : undefined;
}

export function createTracing(options: TracingOptions): Tracing {
  if (typeof options.serviceName !== 'string' || options.serviceName === '')
    throw new TypeError(
      `createTracing: serviceName must be a non-empty string, received ${JSON.stringify(options.serviceName)}`,
    );
  const ratio = options.sampleRatio ?? 1;
  if (typeof ratio !== 'number' || !(ratio >= 0 && ratio <= 1))
    throw new TypeError(
      `createTracing: sampleRatio must be a number from 0 to 1, received ${JSON.stringify(ratio)}`,
    );
  if (options.endpoint !== undefined && !URL.canParse(options.endpoint))
    throw new TypeError(
      `createTracing: endpoint must be a URL, received ${JSON.stringify(options.endpoint)}`,
    );

  const exporter =
    options.exporter ??
    (options.endpoint
      ? new OTLPTraceExporter({ url: new URL('v1/traces', withSlash(options.endpoint)).toString() })
      : undefined);
  const provider = exporter
    ? new BasicTracerProvider({
        resource: resourceFromAttributes({ 'service.name': options.serviceName }),
        sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) }),
        spanProcessors: [
          new BatchSpanProcessor(exporter, { maxQueueSize: 4096, scheduledDelayMillis: 1000 }),
        ],
      })
    : undefined;
  // Without an exporter, the API's proxy hands out non-recording spans that keep their parent's ids.
  const tracer = provider
    ? provider.getTracer('@bff/observability')
    : new ProxyTracerProvider().getTracer('noop');

  const startChild: Tracing['startChild'] = (name, parent, kind, attributes) => {
    // Below a parent that was not sampled the parent-based sampler records nothing: skip the SDK
    // (span id, sampler, attributes copied for nothing), about 8 times per request for the 90%
    // of requests a 10% ratio does not sample. The non-recording child keeps its parent's ids and
    // trace state, as every span does when tracing is off.
    const parentContext = trace.getSpanContext(parent);
    if (
      provider &&
      parentContext &&
      (parentContext.traceFlags & TraceFlags.SAMPLED) === 0 &&
      trace.isSpanContextValid(parentContext)
    ) {
      const span = trace.wrapSpanContext(parentContext);
      return { span, context: trace.setSpan(parent, span) };
    }
    const span = tracer.startSpan(name, attributes ? { kind, attributes } : { kind }, parent);
    return { span, context: trace.setSpan(parent, span) };
  };

  return {
    enabled: provider !== undefined,
    tracer,
    startIncoming(name, headers, trustParent, kind, attributes) {
      const parent = trustParent ? extractTraceContext(headers) : ROOT_CONTEXT;
      if (!provider && trace.getSpanContext(parent) === undefined) {
        // Tracing is off and no one gave us a trace: make up ids so the logs still correlate.
        const span = trace.wrapSpanContext({
          traceId: ids.generateTraceId(),
          spanId: ids.generateSpanId(),
          traceFlags: TraceFlags.NONE,
        });
        return { span, context: trace.setSpan(ROOT_CONTEXT, span) };
      }
      return startChild(name, parent, kind, attributes);
    },
    startChild,
    inject: injectTraceContext,
    async flush() {
      await provider?.forceFlush();
    },
    async shutdown() {
      await provider?.shutdown();
    },
  };
}

function withSlash(url: string): string {
  return url.endsWith('/') ? url : `${url}/`;
}
