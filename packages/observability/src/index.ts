/**
 * Seeing what the system does: Prometheus metrics on a listener of their own, W3C trace context
 * and OpenTelemetry spans exported over OTLP (off, and nearly free, without an endpoint), and the
 * pino settings every process logs with.
 *
 * Every export here is public API of `@bff/observability`.
 */

export type { Attributes, Context, Span } from '@opentelemetry/api';
export { SpanKind, SpanStatusCode } from '@opentelemetry/api';
export type { SpanExporter } from '@opentelemetry/sdk-trace-base';
export type { Registry } from 'prom-client';
export type { TracedTry } from './call-trace.ts';
export { startTry } from './call-trace.ts';
export { telemetryEnv } from './config.ts';
export type { LogFormat, LoggerSettings, LogLevel } from './logging.ts';
export { LOG_LEVELS, loggerOptions, REDACTED_PATHS, redactVariables } from './logging.ts';
export type {
  MetricsRegistryOptions,
  OperationNameLabelsOptions,
  OperationOutcome,
  ServiceOutcome,
  UpstreamOutcome,
} from './metrics.ts';
export {
  BffMetrics,
  BREAKER_STATE_VALUE,
  createMetricsRegistry,
  OperationNameLabels,
  requestOutcome,
  ServiceMetrics,
  statusClass,
} from './metrics.ts';
export type { MetricsServerOptions, RunningMetricsServer } from './metrics-server.ts';
export { startMetricsServer } from './metrics-server.ts';
export type { ServiceTelemetry, ServiceTelemetryOptions } from './service-telemetry.ts';
export { startServiceTelemetry } from './service-telemetry.ts';
export type { Carrier, TraceCarrier, Tracing, TracingOptions } from './tracing.ts';
export {
  createTracing,
  extractTraceContext,
  injectTraceContext,
  sanitizeTraceCarrier,
  traceCarrierOf,
  traceIdOf,
} from './tracing.ts';
