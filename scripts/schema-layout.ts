// Where the schema checks find each app's SDL, releases and snapshot, relative to a repository
// root: the real one for `pnpm schema:check`, a scratch copy in the tests.
import { join } from 'node:path';
import type { AppSchemaSource, SchemaCheckOptions } from '@bff/schema-checks';
import { discoverApps } from './app-discovery.ts';

/**
 * Every app apps/ declares (scripts/app-discovery.ts); only those that ship persisted operations
 * (mobile) have releases and a current manifest to validate.
 */
export function repoSchemaCheckOptions(root: string): SchemaCheckOptions {
  const apps = discoverApps(root).map(
    (app): AppSchemaSource => ({
      name: app.name,
      schemaDir: app.schemaDir,
      ...(app.releasesDir ? { releasesDir: app.releasesDir } : {}),
      ...(app.manifestPath ? { manifestPath: app.manifestPath } : {}),
    }),
  );
  return {
    baseSchemaPath: join(root, 'schema', 'graphql', 'base.graphql'),
    apps,
    snapshotDir: join(root, 'schema', 'snapshots'),
    intendedChangesPath: join(root, 'schema', 'intended-breaking-changes.json'),
  };
}
