CREATE TABLE accounts (
  id         uuid PRIMARY KEY,
  user_id    uuid NOT NULL UNIQUE,
  currency   char(3) NOT NULL DEFAULT 'USD',
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE invoices (
  id          uuid PRIMARY KEY,
  account_id  uuid NOT NULL REFERENCES accounts (id),
  user_id     uuid NOT NULL,
  status      text NOT NULL CHECK (status IN ('OPEN', 'PAID', 'VOID')),
  currency    char(3) NOT NULL,
  total_minor integer NOT NULL CHECK (total_minor >= 0),
  -- Millisecond precision, so a cursor carrying a JavaScript timestamp finds its row exactly.
  issued_at   timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
  paid_at     timestamptz
);
CREATE INDEX invoices_by_user ON invoices (user_id, issued_at DESC, id DESC);

CREATE TABLE invoice_lines (
  invoice_id       uuid NOT NULL REFERENCES invoices (id) ON DELETE CASCADE,
  line_no          integer NOT NULL,
  product_id       text NOT NULL,
  quantity         integer NOT NULL CHECK (quantity > 0),
  unit_price_minor integer NOT NULL CHECK (unit_price_minor >= 0),
  currency         char(3) NOT NULL,
  amount_minor     integer NOT NULL CHECK (amount_minor >= 0),
  PRIMARY KEY (invoice_id, line_no)
);

-- Idempotency-Key records for POST /v1/purchases. A row is claimed (locked_until in the
-- future) while the first request works; its response is stored when it succeeds and replayed
-- for the same key and body.
CREATE TABLE idempotency_keys (
  key             text PRIMARY KEY,
  request_hash    text NOT NULL,
  locked_until    timestamptz,
  response_status integer,
  response_body   jsonb,
  created_at      timestamptz NOT NULL DEFAULT now(),
  completed_at    timestamptz
);
