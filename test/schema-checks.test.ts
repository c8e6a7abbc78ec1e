// The schema checks (`pnpm schema:check`) against a scratch copy of the repository's SDL,
// snapshots and shipped releases: each test edits its own copy, never the real files.
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBffSchema } from '@bff/bff-server';
import { buildManifest, validateManifest, writeManifest } from '@bff/persisted-operations';
import {
  checkSchemas,
  loadAppSchema,
  printAppSchema,
  SchemaCheckCode,
  type SchemaCheckReport,
  updateSnapshots,
} from '@bff/schema-checks';
import { afterEach, describe, expect, it } from 'vitest';
import { discoverApps } from '../scripts/app-discovery.ts';
import { repoSchemaCheckOptions } from '../scripts/schema-layout.ts';

const repo = fileURLToPath(new URL('../', import.meta.url));
const scratchDirs: string[] = [];

/** A copy of everything the check reads, with snapshots matching the current schema. */
async function scratchRepo() {
  const root = await mkdtemp(join(tmpdir(), 'schema-checks-'));
  scratchDirs.push(root);
  const copy = (path: string) => cp(join(repo, path), join(root, path), { recursive: true });
  await copy('schema/graphql');
  await copy('schema/intended-breaking-changes.json');
  for (const app of discoverApps(repo)) {
    await copy(`${app.folder}/package.json`);
    await copy(`${app.folder}/schema`);
    if (app.persistedOperations) {
      await copy(`${app.folder}/releases`);
      await copy(`${app.folder}/persisted-operations.json`);
    }
  }
  const options = repoSchemaCheckOptions(root);
  // Snapshots of the schema as it is now, so each test sees only its own edit.
  const initial = await updateSnapshots(options);
  expect(initial.problems.filter((p) => p.level === 'error')).toEqual([]);
  const edit = async (path: string, change: (text: string) => string) => {
    const file = join(root, path);
    const before = await readFile(file, 'utf8');
    const after = change(before);
    expect(after, `the edit of ${path} changes it`).not.toBe(before);
    await writeFile(file, after);
  };
  return { root, options, edit };
}

const errors = (report: SchemaCheckReport) =>
  report.problems.filter((p) => p.level === 'error').map((p) => p.message);
const notices = (report: SchemaCheckReport) =>
  report.problems.filter((p) => p.level === 'notice').map((p) => p.message);

afterEach(async () => {
  await Promise.all(scratchDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

describe('schema checks', () => {
  it('builds each app schema exactly as the BFF does', async () => {
    for (const { schemaDir } of discoverApps(repo)) {
      expect(printAppSchema(await loadAppSchema(join(repo, 'schema/graphql/base.graphql'), schemaDir))).toBe(
        printAppSchema(buildBffSchema(schemaDir, {})),
      );
    }
  });

  it('passes on the committed schemas, snapshots and releases', async () => {
    const report = await checkSchemas(repoSchemaCheckOptions(repo));
    expect(errors(report)).toEqual([]);
  });

  it('fails when iOS drops Product.summary, naming the app, the field and the shipped operation', async () => {
    const { options, edit } = await scratchRepo();
    await edit('apps/ios/schema/ios.graphql', (sdl) => sdl.replace(/^.*\n\s*summary: String!\n/m, ''));

    const report = await checkSchemas(options);
    expect(report.ok).toBe(false);
    const found = errors(report);
    expect(found).toContainEqual(expect.stringMatching(/^ios: Product\.summary: .*\(FIELD_REMOVED\)$/));
    expect(found).toContain(
      'ios 4.2.0: operation ProductCard: Cannot query field "summary" on type "Product".',
    );
    expect(found).toContain(
      'ios current: operation ProductCard: Cannot query field "summary" on type "Product".',
    );
    expect(found.filter((message) => !message.startsWith('ios'))).toEqual([]);
    expect(report.problems.map((p) => p.code)).toContain(SchemaCheckCode.InvalidOperation);

    // And the snapshot cannot be updated past it.
    const update = await updateSnapshots(options);
    expect(update.ok).toBe(false);
    expect(errors(await checkSchemas(options))).toEqual(found);
  });

  it('passes when a nullable field is added, saying the snapshot is out of date', async () => {
    const { options, edit } = await scratchRepo();
    await edit('apps/android/schema/android.graphql', (sdl) =>
      sdl.replace('  summary: String!\n', '  summary: String!\n  "New."\n  badge: String\n'),
    );

    const report = await checkSchemas(options);
    expect(errors(report)).toEqual([]);
    expect(report.ok).toBe(true);
    expect(notices(report)).toContainEqual(expect.stringMatching(/^android: the snapshot is out of date/));
  });

  it('passes a stale snapshot of a non-breaking change, and --update brings it up to date', async () => {
    const { root, options, edit } = await scratchRepo();
    await edit('schema/graphql/base.graphql', (sdl) =>
      sdl.replace('"ISO 4217 code."', '"ISO 4217 currency code."'),
    );

    const stale = await checkSchemas(options);
    expect(stale.ok).toBe(true);
    expect(
      stale.problems.filter((p) => p.code === SchemaCheckCode.SnapshotOutdated).map((p) => p.app),
    ).toEqual(discoverApps(repo).map((app) => app.name));

    expect((await updateSnapshots(options)).ok).toBe(true);
    expect(await readFile(join(root, 'schema/snapshots/ios.graphql'), 'utf8')).toContain(
      'ISO 4217 currency code.',
    );
    expect((await checkSchemas(options)).problems).toEqual([]);
  });

  it('passes a breaking change listed as intended; --update then empties the list', async () => {
    const { root, options, edit } = await scratchRepo();
    // Breaking for a client that relies on non-null, though every shipped operation still validates.
    await edit('apps/ios/schema/ios.graphql', (sdl) => sdl.replace('summary: String!', 'summary: String'));
    const unmarked = await checkSchemas(options);
    expect(errors(unmarked)).toEqual([
      expect.stringMatching(/^ios: Product\.summary: .*\(FIELD_TYPE_CHANGED\)$/),
    ]);

    const intendedPath = join(root, 'schema/intended-breaking-changes.json');
    const file = JSON.parse(await readFile(intendedPath, 'utf8'));
    file.changes = [
      {
        app: 'ios',
        coordinate: 'Product.summary',
        change: 'FIELD_TYPE_CHANGED',
        reason: 'app 4.2.0+ handles null',
      },
    ];
    await writeFile(intendedPath, JSON.stringify(file));
    const marked = await checkSchemas(options);
    expect(errors(marked)).toEqual([]);
    expect(notices(marked)).toContainEqual(
      expect.stringMatching(/^ios: Product\.summary: .*intended, app 4\.2\.0\+/),
    );

    expect((await updateSnapshots(options)).ok).toBe(true);
    expect(JSON.parse(await readFile(intendedPath, 'utf8')).changes).toEqual([]);
    expect((await checkSchemas(options)).problems).toEqual([]);
  });

  it('fails on an intended entry that matches no change, so the list cannot rot', async () => {
    const { root, options } = await scratchRepo();
    await writeFile(
      join(root, 'schema/intended-breaking-changes.json'),
      JSON.stringify({ changes: [{ app: 'android', coordinate: 'Product.sku', reason: 'old' }] }),
    );
    expect(errors(await checkSchemas(options))).toEqual([
      expect.stringMatching(/^android: the intended change Product\.sku matches no breaking change/),
    ]);
  });

  it('does not hold the schema to a release below the minimum version, and says it can be retired', async () => {
    const { root, options, edit } = await scratchRepo();
    const oldRelease = join(root, 'apps/android/releases/4.1.0.json');
    const operations = await mkdtemp(join(tmpdir(), 'schema-checks-ops-'));
    scratchDirs.push(operations);
    await writeFile(
      join(operations, 'Legacy.graphql'),
      'query Legacy($id: ID!) { product(id: $id) { id sku } }\n',
    );
    await writeManifest(await buildManifest(operations), oldRelease);
    await edit('schema/graphql/base.graphql', (sdl) => sdl.replace(/^ {2}sku: String!\n/m, ''));
    const intendedPath = join(root, 'schema/intended-breaking-changes.json');
    await writeFile(
      intendedPath,
      JSON.stringify({
        changes: discoverApps(repo).map(({ name: app }) => ({
          app,
          coordinate: 'Product.sku',
          reason: 'unused',
        })),
      }),
    );

    const report = await checkSchemas(options);
    expect(errors(report)).toEqual([]);
    expect(notices(report)).toContainEqual(
      expect.stringMatching(
        /^android 4\.1\.0: below the minimum supported version 4\.2\.0, not checked; delete /,
      ),
    );

    // Supported again (the minimum lowered), the old release's operation fails by name.
    await writeFile(join(root, 'apps/android/releases/supported.json'), '{ "minimumVersion": "4.0.0" }\n');
    expect(errors(await checkSchemas(options))).toEqual([
      'android 4.1.0: operation Legacy: Cannot query field "sku" on type "Product".',
    ]);
  });

  it('validates a manifest against the schema, naming the operation (as pnpm persisted:build does)', async () => {
    const operations = await mkdtemp(join(tmpdir(), 'schema-checks-ops-'));
    scratchDirs.push(operations);
    await writeFile(join(operations, 'Good.graphql'), 'query Good { products { totalCount } }\n');
    await writeFile(join(operations, 'Bad.graphql'), 'query Bad($id: ID!) { product(id: $id) { colour } }\n');
    const schema = await loadAppSchema(
      join(repo, 'schema/graphql/base.graphql'),
      join(repo, 'apps/ios/schema'),
    );
    expect(validateManifest(await buildManifest(operations), schema)).toEqual([
      { name: 'Bad', messages: ['Cannot query field "colour" on type "Product".'] },
    ]);
  });
});
