// A fourth client is one folder: a scratch copy of the repository with a new app folder is found
// by discovery, the schema checks and codegen, with no list edited anywhere.
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkSchemas, SchemaCheckCode, updateSnapshots } from '@bff/schema-checks';
import { generate } from '@graphql-codegen/cli';
import { afterEach, describe, expect, it } from 'vitest';
import { codegenConfigFor, generatedFiles, generatedFilesFor } from '../codegen.ts';
import { discoverApps, findApp, loadAppModule, portVariable } from '../scripts/app-discovery.ts';
import { repoSchemaCheckOptions } from '../scripts/schema-layout.ts';

const repo = fileURLToPath(new URL('../', import.meta.url));
const scratchDirs: string[] = [];

afterEach(async () => {
  await Promise.all(scratchDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

/** A copy of what discovery, the checks and codegen read, without node_modules. */
async function scratchRepo(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'app-discovery-'));
  scratchDirs.push(root);
  const copy = (path: string) => cp(join(repo, path), join(root, path), { recursive: true });
  await copy('schema/graphql');
  await copy('schema/snapshots');
  await copy('schema/intended-breaking-changes.json');
  for (const app of discoverApps(repo)) {
    await copy(`${app.folder}/package.json`);
    await copy(`${app.folder}/schema`);
    if (app.persistedOperations) {
      await copy(`${app.folder}/releases`);
      await copy(`${app.folder}/persisted-operations.json`);
    }
  }
  return root;
}

/** The fourth client: a desktop app, one folder with its package.json `bff` field and its SDL. */
async function addDesktopApp(root: string, bff: unknown = { name: 'desktop', title: 'Desktop', port: 4003 }) {
  const dir = join(root, 'apps/desktop');
  await mkdir(join(dir, 'schema'), { recursive: true });
  await writeFile(
    join(dir, 'package.json'),
    JSON.stringify({ name: '@bff/desktop-app', type: 'module', exports: { '.': './src/index.ts' }, bff }),
  );
  await writeFile(
    join(dir, 'schema/desktop.graphql'),
    'extend type Product {\n  "True when fewer than 10 are left."\n  lowStock: Boolean!\n}\n',
  );
  return dir;
}

describe('app discovery', () => {
  it('finds the three apps of this repository from their package.json, by default port', () => {
    const apps = discoverApps(repo);
    expect(apps.map(({ name, port, persistedOperations }) => ({ name, port, persistedOperations }))).toEqual([
      { name: 'web', port: 4000, persistedOperations: false },
      { name: 'ios', port: 4001, persistedOperations: true },
      { name: 'android', port: 4002, persistedOperations: true },
    ]);
    expect(findApp('android', apps)).toMatchObject({
      folder: 'apps/android',
      manifestPath: join(repo, 'apps/android/persisted-operations.json'),
      releasesDir: join(repo, 'apps/android/releases'),
    });
    expect(findApp('web', apps).manifestPath).toBeUndefined();
    expect(() => findApp('desktop', apps)).toThrow('no app named "desktop"; apps: web, ios, android');
    expect(portVariable({ name: 'web' })).toBe('WEB_PORT');
    expect(portVariable({ name: 'smart-tv' })).toBe('SMART_TV_PORT');
  });

  it('loads each app’s entry: a startBff and a policy, by convention', async () => {
    for (const app of discoverApps(repo)) {
      const module = await loadAppModule(app);
      expect(typeof module.startBff, app.name).toBe('function');
      expect(module.policy.products.max, app.name).toBeGreaterThan(0);
    }
  });

  it('finds a fourth app folder, which the schema checks and codegen then cover unedited', async () => {
    const root = await scratchRepo();
    await addDesktopApp(root);

    expect(discoverApps(root).map((app) => app.name)).toEqual(['web', 'ios', 'android', 'desktop']);

    // Schema checks: the new app has no snapshot yet; --update writes it; then everything passes.
    const options = repoSchemaCheckOptions(root);
    expect(options.apps.map((app) => app.name)).toEqual(['web', 'ios', 'android', 'desktop']);
    const first = await checkSchemas(options);
    expect(first.problems.filter((p) => p.level === 'error')).toEqual([
      expect.objectContaining({ app: 'desktop', code: SchemaCheckCode.SnapshotMissing }),
    ]);
    expect((await updateSnapshots(options)).ok).toBe(true);
    expect(await readFile(join(root, 'schema/snapshots/desktop.graphql'), 'utf8')).toContain(
      'lowStock: Boolean!',
    );
    expect((await checkSchemas(options)).problems).toEqual([]);

    // Codegen: a resolver types file for the new app, generated from the base and its SDL.
    const files = generatedFilesFor(root);
    expect(Object.keys(files).sort()).toEqual(
      [...Object.keys(generatedFiles), 'apps/desktop/src/generated/resolvers-types.ts'].sort(),
    );
    expect(files['apps/desktop/src/generated/resolvers-types.ts']).toEqual([
      'schema/graphql/base.graphql',
      'apps/desktop/schema/*.graphql',
    ]);
    const desktopFile = 'apps/desktop/src/generated/resolvers-types.ts';
    const config = codegenConfigFor(root);
    const desktopOutput = Object.entries(config.generates).find(([path]) => path === desktopFile)?.[1];
    if (!desktopOutput) throw new Error(`codegen does not generate ${desktopFile}`);
    const outputs: { filename: string; content: string }[] = await generate(
      { ...config, generates: { [desktopFile]: desktopOutput } },
      false,
    );
    expect(outputs.map((output) => output.filename)).toEqual([
      'apps/desktop/src/generated/resolvers-types.ts',
    ]);
    expect(outputs[0]?.content).toMatch(/lowStock\?: Resolver</);
  });

  it('refuses a malformed descriptor or two apps on one port, naming the file', async () => {
    const root = await scratchRepo();
    const dir = await addDesktopApp(root, { name: 'Desktop App', port: 4003 });
    expect(() => discoverApps(root)).toThrow(
      `${join(dir, 'package.json')}: "bff".name must be lower case letters, digits and -, received "Desktop App"`,
    );
    await addDesktopApp(root, { name: 'desktop', port: 4003, persistedOperations: 'yes' });
    expect(() => discoverApps(root)).toThrow(
      /"bff".persistedOperations must be true or false, received "yes"/,
    );
    await addDesktopApp(root, { name: 'desktop', port: 4001 });
    expect(() => discoverApps(root)).toThrow('apps/desktop and apps/ios both declare bff.port 4001');
    await addDesktopApp(root, { name: 'desktop', port: 4003, colour: 'blue' });
    expect(() => discoverApps(root)).toThrow(/unknown field\(s\) colour/);
  });

  it('ignores a folder under apps/ without a bff field (not an app)', async () => {
    const root = await scratchRepo();
    await mkdir(join(root, 'apps/notes'));
    await writeFile(join(root, 'apps/notes/package.json'), JSON.stringify({ name: 'notes' }));
    expect(discoverApps(root).map((app) => app.name)).toEqual(['web', 'ios', 'android']);
  });
});
