// `pnpm schema:check`: compares each app's schema with its snapshot in schema/snapshots and
// fails on a breaking change not listed in schema/intended-breaking-changes.json, or on an
// operation of a supported mobile release (apps/<app>/releases) that the schema no longer accepts.
// `--update` rewrites the snapshots (and empties the intended list) once the check passes.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { checkSchemas, updateSnapshots } from '@bff/schema-checks';
import { repoSchemaCheckOptions } from './schema-layout.ts';

const options = repoSchemaCheckOptions(fileURLToPath(new URL('../', import.meta.url)));
const update = process.argv.includes('--update');
const report = update ? await updateSnapshots(options) : await checkSchemas(options);
for (const problem of report.problems) {
  if (problem.level === 'error') console.error(`✗ ${problem.message}`);
  else console.log(`  ${problem.message}`);
}
if (!report.ok) {
  console.error(
    update
      ? 'schema:check --update: nothing written; fix the errors above first (see README, Schema checks)'
      : 'schema:check failed (see README, Schema checks)',
  );
  process.exit(1);
}
// The snapshots are committed .graphql files, so they get the repository's formatting (Biome's),
// which the check ignores when comparing.
if (update) {
  const biome = fileURLToPath(new URL('../node_modules/.bin/biome', import.meta.url));
  execFileSync(biome, ['format', '--write', options.snapshotDir], { stdio: 'inherit' });
}
console.log(
  update
    ? `schema:check --update: snapshots written for ${options.apps.map((app) => app.name).join(', ')}`
    : `schema:check: ${options.apps.map((app) => app.name).join(', ')} pass`,
);
