CREATE TABLE users (
  id            uuid PRIMARY KEY,
  email         text NOT NULL,
  name          text NOT NULL,
  avatar_url    text,
  roles         text[] NOT NULL DEFAULT '{customer}',
  password_hash text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);
-- Case-insensitive uniqueness: Ada@Example.com and ada@example.com are one account.
CREATE UNIQUE INDEX users_email_lower ON users (lower(email));

-- Token signing keys. The newest key without retired_at signs; retired keys stay published
-- in the JWKS for a grace period so tokens they signed keep verifying, then are deleted.
CREATE TABLE signing_keys (
  kid         text PRIMARY KEY,
  alg         text NOT NULL,
  private_jwk jsonb NOT NULL,
  public_jwk  jsonb NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  retired_at  timestamptz
);
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys ((retired_at IS NULL)) WHERE retired_at IS NULL;
