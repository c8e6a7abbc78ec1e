// `pnpm persisted:build`: regenerates each mobile app's manifest of trusted documents from the
// `.graphql` files in apps/<app>/operations. Commit the result with the operations.
// `--check` writes nothing and fails when a committed manifest is out of date.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { buildManifest, writeManifest } from '@bff/persisted-operations';

const check = process.argv.includes('--check');
let stale = 0;
for (const app of ['ios', 'android']) {
  const root = fileURLToPath(new URL(`../apps/${app}/`, import.meta.url));
  const manifest = await buildManifest(`${root}operations`);
  const file = `${root}persisted-operations.json`;
  if (check) {
    const committed = await readFile(file, 'utf8').catch(() => '');
    if (committed !== `${JSON.stringify(manifest, null, 2)}\n`) {
      console.error(`${app}: apps/${app}/persisted-operations.json is out of date; run pnpm persisted:build`);
      stale++;
    }
    continue;
  }
  await writeManifest(manifest, file);
  console.log(`${app}: ${manifest.operations.length} operations -> apps/${app}/persisted-operations.json`);
  for (const operation of manifest.operations)
    console.log(`  ${operation.id.slice(0, 12)}  ${operation.type} ${operation.name}`);
}
if (stale > 0) process.exit(1);
