CREATE TABLE products (
  id          text PRIMARY KEY,
  sku         text NOT NULL UNIQUE,
  name        text NOT NULL,
  description text NOT NULL,
  category    text NOT NULL,
  price_minor integer NOT NULL CHECK (price_minor >= 0),
  currency    char(3) NOT NULL,
  images      jsonb NOT NULL DEFAULT '[]',
  inventory   integer NOT NULL DEFAULT 0 CHECK (inventory >= 0),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX products_category ON products (category, id);
