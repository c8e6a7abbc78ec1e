// `pnpm persisted:build`: regenerates each mobile app's manifest of trusted documents from the
// `.graphql` files in apps/<app>/operations, after validating every operation against the app's
// schema (base SDL plus apps/<app>/schema), so a document the BFF would refuse never ships.
// Commit the result with the operations.
// `--check` writes nothing and fails when a committed manifest is out of date or invalid.
// The apps are those whose package.json says `"persistedOperations": true` (scripts/app-discovery.ts).
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { buildManifest, validateManifest, writeManifest } from '@bff/persisted-operations';
import { loadAppSchema } from '@bff/schema-checks';
import { discoverApps } from './app-discovery.ts';

const check = process.argv.includes('--check');
const baseSchemaPath = fileURLToPath(new URL('../schema/graphql/base.graphql', import.meta.url));
let failed = 0;
for (const { name: app, folder, schemaDir, operationsDir, manifestPath } of discoverApps()) {
  if (!operationsDir || !manifestPath) continue;
  const manifest = await buildManifest(operationsDir);
  const invalid = validateManifest(manifest, await loadAppSchema(baseSchemaPath, schemaDir));
  if (invalid.length > 0) {
    for (const { name, messages } of invalid) {
      console.error(`${app}: operation ${name} (${folder}/operations): ${messages.join(' ')}`);
    }
    console.error(`${app}: ${folder}/persisted-operations.json not written`);
    failed++;
    continue;
  }
  if (check) {
    const committed = await readFile(manifestPath, 'utf8').catch(() => '');
    if (committed !== `${JSON.stringify(manifest, null, 2)}\n`) {
      console.error(`${app}: ${folder}/persisted-operations.json is out of date; run pnpm persisted:build`);
      failed++;
    }
    continue;
  }
  await writeManifest(manifest, manifestPath);
  console.log(`${app}: ${manifest.operations.length} operations -> ${folder}/persisted-operations.json`);
  for (const operation of manifest.operations)
    console.log(`  ${operation.id.slice(0, 12)}  ${operation.type} ${operation.name}`);
}
if (failed > 0) process.exit(1);
