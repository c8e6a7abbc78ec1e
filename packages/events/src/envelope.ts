import { randomUUID } from 'node:crypto';
import { sanitizeTraceCarrier, type TraceCarrier } from '@bff/observability';

/** A versioned JSON envelope: what travels on the bus and sits in the outbox. */
export interface EventEnvelope<P = unknown> {
  /** Unique per event; consumers deduplicate on it. */
  id: string;
  /** Dotted name, `<service>.<entity>.<verb>`, also the routing key. */
  type: string;
  /** Version of the payload's shape for this type. */
  version: number;
  /** ISO-8601 time of the state change. */
  occurredAt: string;
  /** The service that emitted it. */
  source: string;
  payload: P;
  /**
   * The trace context of the request that produced the event (W3C `traceparent`/`tracestate`),
   * so that its consumers continue that trace. Absent for events written outside a traced
   * request, and for rows written before it existed.
   */
  trace?: TraceCarrier;
}

export function newEvent<P>(source: string, type: string, version: number, payload: P): EventEnvelope<P> {
  return { id: randomUUID(), type, version, occurredAt: new Date().toISOString(), source, payload };
}

/** Parses and checks an envelope received from the wire; throws a TypeError naming the bad field. */
export function parseEnvelope(raw: string | Buffer): EventEnvelope {
  const value: unknown = JSON.parse(raw.toString());
  if (typeof value !== 'object' || value === null) throw new TypeError('event envelope: expected an object');
  const e = value as Record<string, unknown>;
  for (const field of ['id', 'type', 'occurredAt', 'source'] as const) {
    if (typeof e[field] !== 'string') throw new TypeError(`event envelope: ${field} must be a string`);
  }
  if (!Number.isInteger(e.version)) throw new TypeError('event envelope: version must be an integer');
  // A trace context is a hint, never a reason to refuse an event: a malformed one is dropped.
  if ('trace' in e) {
    const trace = sanitizeTraceCarrier(e.trace);
    if (trace) e.trace = trace;
    else delete e.trace;
  }
  return value as EventEnvelope;
}
