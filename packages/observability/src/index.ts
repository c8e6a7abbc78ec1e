/**
 * Seeing what the system does: Prometheus metrics on a listener of their own, W3C trace context
 * and OpenTelemetry spans exported over OTLP (off, and nearly free, without an endpoint), and the
 * pino settings every process logs with.
 *
 * Every export here is public API of `@bff/observability`.
 */

export type { LogFormat, LoggerSettings, LogLevel } from './logging.ts';
export { LOG_LEVELS, loggerOptions, REDACTED_PATHS, redactVariables } from './logging.ts';
export type {
  MetricsRegistryOptions,
  OperationNameLabelsOptions,
  OperationOutcome,
  UpstreamOutcome,
} from './metrics.ts';
export {
  BffMetrics,
  BREAKER_STATE_VALUE,
  createMetricsRegistry,
  OperationNameLabels,
  ServiceMetrics,
  statusClass,
} from './metrics.ts';
export type { MetricsServerOptions, RunningMetricsServer } from './metrics-server.ts';
export { startMetricsServer } from './metrics-server.ts';
export type { Carrier, Tracing, TracingOptions } from './tracing.ts';
export { createTracing, extractTraceContext, injectTraceContext, traceIdOf } from './tracing.ts';
