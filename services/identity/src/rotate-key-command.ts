// `pnpm --filter @bff/identity-service rotate-key`: makes a new signing key current, against the
// database the environment names (DATABASE_URL, or PGLITE_DATA_DIR for a kept PGlite store).
import { configOrExit } from '@bff/config';
import { openDatabase } from '@bff/db';
import { readIdentityConfig } from './config.ts';
import { KeyRing } from './keys.ts';

const config = configOrExit(() => readIdentityConfig());
if (!config.DATABASE_URL && !config.PGLITE_DATA_DIR) {
  console.error(
    'rotate-key needs DATABASE_URL or PGLITE_DATA_DIR: an in-memory database has no keys to rotate',
  );
  process.exit(2);
}
const db = await openDatabase({
  url: config.DATABASE_URL,
  dataDir: config.PGLITE_DATA_DIR,
  schema: config.DATABASE_SCHEMA,
});
try {
  const rotated = await new KeyRing(db, config.KEY_GRACE_SECONDS).rotate();
  console.log(JSON.stringify(rotated));
} finally {
  await db.close();
}
