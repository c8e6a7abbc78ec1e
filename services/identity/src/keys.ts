import { randomUUID } from 'node:crypto';
import type { Database, Queryable } from '@bff/db';
import { type CryptoKey, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';

export const SIGNING_ALG = 'ES256';

interface KeyRow {
  kid: string;
  alg: string;
  private_jwk: JWK;
  public_jwk: JWK;
  retired_at: Date | null;
}

/**
 * Signing keys kept in the service's database, so every replica signs with the same current
 * key and publishes the same set.
 */
export class KeyRing {
  private readonly imported = new Map<string, Promise<CryptoKey | Uint8Array>>();

  constructor(
    private readonly db: Database,
    /** Seconds a retired key stays in the JWKS. */
    private readonly graceSeconds: number,
  ) {}

  /** Creates the first key when there is none. */
  async ensureCurrent(): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.keys'))");
      const current = await tx.query('SELECT kid FROM signing_keys WHERE retired_at IS NULL');
      if (current.rowCount === 0) await insertKey(tx);
    });
  }

  /** Makes a new key current and retires the old one (it stays published for the grace period). */
  async rotate(): Promise<{ kid: string; retired: string[] }> {
    return this.db.transaction(async (tx) => {
      await tx.query("SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.keys'))");
      const retired = await tx.query<{ kid: string }>(
        'UPDATE signing_keys SET retired_at = now() WHERE retired_at IS NULL RETURNING kid',
      );
      const kid = await insertKey(tx);
      await this.prune(tx);
      return { kid, retired: retired.rows.map((r) => r.kid) };
    });
  }

  /** The key to sign with now. */
  async current(): Promise<{ kid: string; key: CryptoKey | Uint8Array }> {
    const result = await this.db.query<KeyRow>(
      'SELECT kid, alg, private_jwk, public_jwk, retired_at FROM signing_keys WHERE retired_at IS NULL',
    );
    const row = result.rows[0];
    if (!row) throw new Error('no current signing key');
    let key = this.imported.get(row.kid);
    if (!key) {
      key = importJWK(row.private_jwk, row.alg);
      this.imported.set(row.kid, key);
    }
    return { kid: row.kid, key: await key };
  }

  /** Public keys of the current key and of keys retired less than the grace period ago. */
  async published(): Promise<JWK[]> {
    const result = await this.db.query<KeyRow>(
      `SELECT kid, alg, public_jwk FROM signing_keys
        WHERE retired_at IS NULL OR retired_at > now() - make_interval(secs => $1)
        ORDER BY created_at DESC`,
      [this.graceSeconds],
    );
    return result.rows.map((row) => ({ ...row.public_jwk, kid: row.kid, alg: row.alg, use: 'sig' }));
  }

  /** Deletes keys past their grace period: their private halves have no reason to exist. */
  async prune(tx: Queryable = this.db): Promise<number> {
    const result = await tx.query(
      'DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at <= now() - make_interval(secs => $1)',
      [this.graceSeconds],
    );
    return result.rowCount;
  }
}

async function insertKey(tx: Queryable): Promise<string> {
  const { privateKey, publicKey } = await generateKeyPair(SIGNING_ALG, { extractable: true });
  const kid = randomUUID();
  await tx.query('INSERT INTO signing_keys (kid, alg, private_jwk, public_jwk) VALUES ($1, $2, $3, $4)', [
    kid,
    SIGNING_ALG,
    JSON.stringify(await exportJWK(privateKey)),
    JSON.stringify(await exportJWK(publicKey)),
  ]);
  return kid;
}
