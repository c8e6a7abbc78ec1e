-- The trace context of the request that wrote the row (W3C traceparent/tracestate), published
-- with the event so that its consumers continue that trace. Nullable: rows written outside a
-- traced request, and rows written before this column existed, publish without one.
ALTER TABLE outbox ADD COLUMN traceparent text, ADD COLUMN tracestate text;
