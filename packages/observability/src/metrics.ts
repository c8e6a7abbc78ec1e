import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Seconds: from a cached hit (sub-millisecond) to an operation that used its whole budget. */
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** How a GraphQL operation ended, as a metric label. */
export type OperationOutcome =
  /** Data and no errors. */
  | 'ok'
  /** Data with errors: some field failed. */
  | 'partial'
  /** The client's mistake: refused before or during execution with a 4xx-class code. */
  | 'refused'
  /** Refused by the rate limiter. */
  | 'rate_limited'
  /** The server's or an upstream's fault. */
  | 'error'
  /** The client went away before the answer was sent. */
  | 'cancelled';

/** How an upstream call ended, as a metric label. */
export type UpstreamOutcome = 'ok' | 'refused' | 'error' | 'timeout' | 'circuit_open' | 'cancelled';

/** Circuit breaker states, as Prometheus gauges read them. */
export const BREAKER_STATE_VALUE = { closed: 0, half_open: 1, open: 2 } as const;

export interface MetricsRegistryOptions {
  /** Labels every series of this registry carries, e.g. `{ app: 'web' }`. */
  defaultLabels?: Record<string, string>;
  /** Collect Node's process and event-loop metrics into this registry. @default true */
  processMetrics?: boolean;
}

/**
 * One registry per component (a BFF or a service), never prom-client's global one: `pnpm start`
 * and the tests run several components in one process, and each serves its own `/metrics`.
 */
export function createMetricsRegistry(options: MetricsRegistryOptions = {}): Registry {
  const registry = new Registry();
  if (options.defaultLabels) registry.setDefaultLabels(options.defaultLabels);
  if (options.processMetrics ?? true)
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: 20 });
  return registry;
}

export interface OperationNameLabelsOptions {
  /** Names that may become a label: the persisted documents' and a configured allow-list. */
  allowed?: Iterable<string>;
}

/**
 * Bounds the cardinality of `operation_name`: a client chooses operation names, so only names
 * known in advance become a label; everything else is `other` (and no name at all `anonymous`).
 */
export class OperationNameLabels {
  private readonly allowed: ReadonlySet<string>;
  constructor(options: OperationNameLabelsOptions = {}) {
    this.allowed = new Set(options.allowed ?? []);
  }
  label(name: string | null | undefined): string {
    if (!name) return 'anonymous';
    return this.allowed.has(name) ? name : 'other';
  }
}

/** The metrics every BFF exports. Labels are bounded: app, a known operation name, type, outcome, service, method. */
export class BffMetrics {
  readonly operationDuration: Histogram<'operation_name' | 'operation_type' | 'outcome'>;
  readonly upstreamDuration: Histogram<'service' | 'method' | 'outcome'>;
  readonly upstreamRetries: Counter<'service'>;
  readonly breakerState: Gauge<'service'>;
  readonly rateLimitDecisions: Counter<'decision'>;
  readonly httpRequests: Counter<'status_class'>;
  readonly responseCache: Counter<'outcome'>;
  readonly responseCacheInvalidations: Counter<'source'>;
  readonly responseCacheStoreFailures: Counter;
  readonly liveConnections: Gauge;
  readonly liveSubscriptions: Gauge;
  readonly liveRefusals: Counter<'code'>;
  readonly liveEnded: Counter<'reason'>;
  readonly liveEventsDelivered: Counter;

  constructor(
    readonly registry: Registry,
    sources: {
      /** Each upstream's breaker state (BREAKER_STATE_VALUE), read at scrape time. */
      breakers?: () => Iterable<readonly [string, number]>;
      /** Each upstream's retries so far (a monotonic count), read at scrape time. */
      retries?: () => Iterable<readonly [string, number]>;
      /** Response cache store calls that failed or timed out so far, read at scrape time. */
      cacheStoreFailures?: () => number;
      /** Open WebSocket connections and active subscriptions, read at scrape time. */
      live?: () => { connections: number; subscriptions: number; delivered: number };
    } = {},
  ) {
    this.operationDuration = new Histogram({
      name: 'graphql_operation_duration_seconds',
      help: 'GraphQL operations from receipt to answer, by known operation name, type and outcome.',
      labelNames: ['operation_name', 'operation_type', 'outcome'],
      buckets: DURATION_BUCKETS,
      registers: [registry],
    });
    this.upstreamDuration = new Histogram({
      name: 'bff_upstream_request_duration_seconds',
      help: 'Calls to upstream services (every try), by service, method and outcome.',
      labelNames: ['service', 'method', 'outcome'],
      buckets: DURATION_BUCKETS,
      registers: [registry],
    });
    const { breakers, retries } = sources;
    this.upstreamRetries = new Counter({
      name: 'bff_upstream_retries_total',
      help: 'Tries of an upstream call after the first.',
      labelNames: ['service'],
      registers: [registry],
      ...(retries
        ? {
            collect(this: Counter<'service'>) {
              // The source counts since start; a counter set from it stays monotonic.
              this.reset();
              for (const [service, count] of retries()) this.inc({ service }, count);
            },
          }
        : {}),
    });
    this.breakerState = new Gauge({
      name: 'bff_circuit_breaker_state',
      help: 'Circuit breaker per upstream service: 0 closed, 1 half-open, 2 open.',
      labelNames: ['service'],
      registers: [registry],
      ...(breakers
        ? {
            collect(this: Gauge<'service'>) {
              for (const [service, state] of breakers()) this.set({ service }, state);
            },
          }
        : {}),
    });
    this.rateLimitDecisions = new Counter({
      name: 'bff_rate_limit_decisions_total',
      help: 'Rate-limit decisions per request: allowed, limited, or skipped (store unavailable).',
      labelNames: ['decision'],
      registers: [registry],
    });
    this.httpRequests = new Counter({
      name: 'bff_http_requests_total',
      help: 'HTTP requests answered by the public listener, by status class (every request, GraphQL or not).',
      labelNames: ['status_class'],
      registers: [registry],
    });
    this.responseCache = new Counter({
      name: 'bff_response_cache_requests_total',
      help: 'What the response cache did per GraphQL request: hit, coalesced, miss (stored), stale (not stored: its data changed while it ran), skip (not stored: errors or store failure), none (not cacheable), invalidate (a mutation dropped entries).',
      labelNames: ['outcome'],
      registers: [registry],
    });
    this.responseCacheInvalidations = new Counter({
      name: 'bff_response_cache_invalidated_entries_total',
      help: 'Cached responses dropped because what they showed changed: by a domain event, by a mutation through this BFF, or all of them after a gap in the event stream.',
      labelNames: ['source'],
      registers: [registry],
    });
    const { live } = sources;
    this.liveConnections = new Gauge({
      name: 'bff_subscription_connections',
      help: 'Open WebSocket (graphql-transport-ws) connections.',
      registers: [registry],
      ...(live
        ? {
            collect(this: Gauge) {
              this.set(live().connections);
            },
          }
        : {}),
    });
    this.liveSubscriptions = new Gauge({
      name: 'bff_subscriptions_active',
      help: 'GraphQL subscriptions being served.',
      registers: [registry],
      ...(live
        ? {
            collect(this: Gauge) {
              this.set(live().subscriptions);
            },
          }
        : {}),
    });
    this.liveRefusals = new Counter({
      name: 'bff_subscription_refusals_total',
      help: 'Subscriptions and connections refused, by error code (or close code for connections).',
      labelNames: ['code'],
      registers: [registry],
    });
    this.liveEnded = new Counter({
      name: 'bff_subscriptions_ended_total',
      help: 'Subscriptions the server ended before their client left: overflow (a slow client), gap (events may have been missed), shutdown, expired (the token), slow_socket.',
      labelNames: ['reason'],
      registers: [registry],
    });
    this.liveEventsDelivered = new Counter({
      name: 'bff_subscription_events_delivered_total',
      help: 'Domain events handed to subscriptions (one event reaching three subscriptions counts three).',
      registers: [registry],
      ...(live
        ? {
            collect(this: Counter) {
              this.reset();
              this.inc(live().delivered);
            },
          }
        : {}),
    });
    const { cacheStoreFailures } = sources;
    this.responseCacheStoreFailures = new Counter({
      name: 'bff_response_cache_store_failures_total',
      help: 'Response cache store calls that failed or timed out (served from the upstreams instead).',
      registers: [registry],
      ...(cacheStoreFailures
        ? {
            collect(this: Counter) {
              this.reset();
              this.inc(cacheStoreFailures());
            },
          }
        : {}),
    });
  }
}

/** The metrics every domain service exports. */
export class ServiceMetrics {
  readonly requestDuration: Histogram<'method' | 'outcome'>;

  constructor(readonly registry: Registry) {
    this.requestDuration = new Histogram({
      name: 'service_request_duration_seconds',
      help: 'Requests handled by the service (HTTP route or gRPC method), by outcome.',
      labelNames: ['method', 'outcome'],
      buckets: DURATION_BUCKETS,
      registers: [registry],
    });
  }

  /**
   * Exports the outbox's backlog and the age of its oldest unpublished row, read when Prometheus
   * scrapes (one query per scrape, not per event).
   */
  observeOutbox(read: () => Promise<{ backlog: number; oldestAgeSeconds: number }>): void {
    // One read serves both gauges of a scrape; a failed read keeps the last values (a database
    // that is down must not take the process metrics down with it).
    let known = { backlog: 0, oldestAgeSeconds: 0 };
    let pending: Promise<{ backlog: number; oldestAgeSeconds: number }> | undefined;
    const sample = () => {
      pending ??= read()
        .then(
          (value) => (known = value),
          () => known,
        )
        .finally(() => {
          pending = undefined;
        });
      return pending;
    };
    new Gauge({
      name: 'outbox_backlog_rows',
      help: 'Outbox rows not yet published to the bus.',
      registers: [this.registry],
      async collect() {
        this.set((await sample()).backlog);
      },
    });
    new Gauge({
      name: 'outbox_oldest_age_seconds',
      help: 'Age of the oldest outbox row not yet published (0 when none is waiting).',
      registers: [this.registry],
      async collect() {
        this.set((await sample()).oldestAgeSeconds);
      },
    });
  }
}

/** The outcome label of an HTTP status. */
export function statusClass(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : 'other';
}

/** How a request to a domain service ended, as a metric label. */
export type ServiceOutcome =
  /** Answered (2xx, 3xx; gRPC OK). */
  | 'ok'
  /** Refused as the caller's mistake (4xx; gRPC client-fault codes). */
  | 'refused'
  /** The service's fault (5xx, anything else). */
  | 'error';

/** The outcome label of an HTTP status answered by a domain service. */
export function requestOutcome(status: number): ServiceOutcome {
  if (status >= 200 && status < 400) return 'ok';
  if (status >= 400 && status < 500) return 'refused';
  return 'error';
}
