import type { Registry } from 'prom-client';
import { createMetricsRegistry, ServiceMetrics } from './metrics.ts';
import { type RunningMetricsServer, startMetricsServer } from './metrics-server.ts';
import { createTracing, type Tracing, type TracingOptions } from './tracing.ts';

export interface ServiceTelemetryOptions {
  /** The service's name: the `service` label of every series and the spans' `service.name`. */
  service: string;
  /** Serve the registry on a listener of its own; none when absent (the registry still fills). */
  metrics?: { port: number; host?: string } | undefined;
  /**
   * A Tracing the caller owns, or the options to create one that this telemetry owns (and shuts
   * down on close). @default off: nothing recorded, trace ids still propagated
   */
  tracing?: Tracing | TracingOptions | undefined;
}

/** What a domain service observes itself with. */
export interface ServiceTelemetry {
  readonly registry: Registry;
  readonly metrics: ServiceMetrics;
  readonly tracing: Tracing;
  /** `http://host:port` of the metrics listener (scrape `${metricsUrl}/metrics`), when there is one. */
  readonly metricsUrl: string | undefined;
  /** Closes the metrics listener and shuts down the tracing it created (flushing its spans). */
  close(): Promise<void>;
}

const isTracing = (value: Tracing | TracingOptions): value is Tracing =>
  typeof (value as Partial<Tracing>).startIncoming === 'function';

/**
 * A domain service's registry (process metrics included, every series labelled with the
 * service), its request metrics, its tracing, and its metrics listener when a port is given.
 */
export async function startServiceTelemetry(options: ServiceTelemetryOptions): Promise<ServiceTelemetry> {
  const given = options.tracing;
  if (given !== undefined && (typeof given !== 'object' || given === null))
    throw new TypeError(
      `startServiceTelemetry: tracing must be a Tracing or TracingOptions, received ${String(given)}`,
    );
  const registry = createMetricsRegistry({ defaultLabels: { service: options.service } });
  const metrics = new ServiceMetrics(registry);
  const owned = given === undefined || !isTracing(given);
  const tracing =
    given === undefined
      ? createTracing({ serviceName: options.service })
      : isTracing(given)
        ? given
        : createTracing(given);
  let server: RunningMetricsServer | undefined;
  try {
    if (options.metrics)
      server = await startMetricsServer({
        registry,
        port: options.metrics.port,
        ...(options.metrics.host ? { host: options.metrics.host } : {}),
      });
  } catch (error) {
    if (owned) await tracing.shutdown();
    throw error;
  }
  let closing: Promise<void> | undefined;
  return {
    registry,
    metrics,
    tracing,
    metricsUrl: server?.url,
    close: () => {
      closing ??= (async () => {
        await server?.close();
        if (owned) await tracing.shutdown();
      })();
      return closing;
    },
  };
}
