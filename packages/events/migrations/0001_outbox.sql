-- Transactional outbox: rows are written in the same transaction as the state change they
-- describe, then published by the relay. `locked_until` is a short lease so that several
-- replicas can run relays without publishing the same row at the same moment.
CREATE TABLE outbox (
  seq          bigserial PRIMARY KEY,
  id           uuid NOT NULL UNIQUE,
  type         text NOT NULL,
  version      integer NOT NULL,
  source       text NOT NULL,
  occurred_at  timestamptz NOT NULL,
  payload      jsonb NOT NULL,
  published_at timestamptz,
  locked_until timestamptz,
  attempts     integer NOT NULL DEFAULT 0,
  last_error   text
);
CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;

-- Delivery is at least once: a consumer records each event id it has handled, in the same
-- transaction as the handler's effects, and skips ids it has seen.
CREATE TABLE processed_events (
  consumer     text NOT NULL,
  event_id     uuid NOT NULL,
  processed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, event_id)
);
