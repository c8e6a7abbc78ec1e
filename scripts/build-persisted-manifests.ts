// `pnpm persisted:build`: regenerates each mobile app's manifest of trusted documents from the
// `.graphql` files in apps/<app>/operations, after validating every operation against the app's
// schema (base SDL plus apps/<app>/schema), so a document the BFF would refuse never ships.
// Commit the result with the operations.
// `--check` writes nothing and fails when a committed manifest is out of date or invalid.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { buildManifest, validateManifest, writeManifest } from '@bff/persisted-operations';
import { loadAppSchema } from '@bff/schema-checks';

const check = process.argv.includes('--check');
const baseSchemaPath = fileURLToPath(new URL('../schema/graphql/base.graphql', import.meta.url));
let failed = 0;
for (const app of ['ios', 'android']) {
  const root = fileURLToPath(new URL(`../apps/${app}/`, import.meta.url));
  const manifest = await buildManifest(`${root}operations`);
  const invalid = validateManifest(manifest, await loadAppSchema(baseSchemaPath, `${root}schema`));
  if (invalid.length > 0) {
    for (const { name, messages } of invalid) {
      console.error(`${app}: operation ${name} (apps/${app}/operations): ${messages.join(' ')}`);
    }
    console.error(`${app}: apps/${app}/persisted-operations.json not written`);
    failed++;
    continue;
  }
  const file = `${root}persisted-operations.json`;
  if (check) {
    const committed = await readFile(file, 'utf8').catch(() => '');
    if (committed !== `${JSON.stringify(manifest, null, 2)}\n`) {
      console.error(`${app}: apps/${app}/persisted-operations.json is out of date; run pnpm persisted:build`);
      failed++;
    }
    continue;
  }
  await writeManifest(manifest, file);
  console.log(`${app}: ${manifest.operations.length} operations -> apps/${app}/persisted-operations.json`);
  for (const operation of manifest.operations)
    console.log(`  ${operation.id.slice(0, 12)}  ${operation.type} ${operation.name}`);
}
if (failed > 0) process.exit(1);
