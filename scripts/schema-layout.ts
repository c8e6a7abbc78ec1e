// Where the schema checks find each app's SDL, releases and snapshot, relative to a repository
// root: the real one for `pnpm schema:check`, a scratch copy in the tests.
import { join } from 'node:path';
import type { SchemaCheckOptions } from '@bff/schema-checks';

/** The three BFFs; only the mobile apps ship persisted operations, so only they have releases. */
export function repoSchemaCheckOptions(root: string): SchemaCheckOptions {
  const mobile = (name: string) => ({
    name,
    schemaDir: join(root, 'apps', name, 'schema'),
    releasesDir: join(root, 'apps', name, 'releases'),
    manifestPath: join(root, 'apps', name, 'persisted-operations.json'),
  });
  return {
    baseSchemaPath: join(root, 'schema', 'graphql', 'base.graphql'),
    apps: [{ name: 'web', schemaDir: join(root, 'apps', 'web', 'schema') }, mobile('ios'), mobile('android')],
    snapshotDir: join(root, 'schema', 'snapshots'),
    intendedChangesPath: join(root, 'schema', 'intended-breaking-changes.json'),
  };
}
