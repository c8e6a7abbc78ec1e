// Which BFF apps exist: every folder apps/<folder> whose package.json has a `bff` field. The
// start command, the schema checks, codegen, `pnpm persisted:build` and the cross-app suite
// all read this list, so a fourth client is one folder and nothing else to edit.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BffServerOptions, RunningBff } from '@bff/bff-server';
import type { AppPolicy } from '@bff/resolvers';

/** The repository root, whatever the working directory. */
export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));

/**
 * The `bff` field of apps/<folder>/package.json: how an app declares itself.
 *
 * ```json
 * "bff": { "name": "ios", "title": "iOS", "port": 4001, "metricsPort": 9401, "persistedOperations": true }
 * ```
 */
export interface BffAppDescriptor {
  /**
   * The app's name: its tokens' audience (`aud`), its snapshot's file name, its rate-limit key
   * prefix, its `<NAME>_PORT` variable. Lower case letters, digits and `-`.
   */
  name: string;
  /** How people call it in messages (`iOS`). @default name */
  title: string;
  /** The port `pnpm start` gives it; `<NAME>_PORT` overrides it. */
  port: number;
  /** Its Prometheus listener in `pnpm start`; `<NAME>_METRICS_PORT` overrides it. @default port + 5400 */
  metricsPort: number;
  /**
   * A mobile app: it ships trusted documents built from `operations/` into
   * `persisted-operations.json`, and its shipped manifests live in `releases/`. @default false
   */
  persistedOperations: boolean;
}

/** An app found under apps/, with where its files are. */
export interface DiscoveredApp extends BffAppDescriptor {
  /** The npm package name (`@bff/ios-app`). */
  packageName: string;
  /** Absolute path of the app's folder. */
  dir: string;
  /** The folder relative to the root, with `/` (`apps/ios`), for generated file lists and messages. */
  folder: string;
  /** Absolute path of the package entry (`exports["."]`), which exports `startBff` and `policy`. */
  entry: string;
  /** The app's own `.graphql` files, merged with the base SDL. */
  schemaDir: string;
  /** Present when `persistedOperations`: the trusted documents' sources, manifest and releases. */
  operationsDir?: string;
  manifestPath?: string;
  releasesDir?: string;
}

/** The options an app's `startBff` takes: the server's, less what the app itself decides. */
export type AppStartOptions = Omit<BffServerOptions, 'app' | 'schemaDir' | 'resolvers' | 'policy'>;

/** What every app's package entry exports, by convention. */
export interface BffAppModule {
  /** Starts the app's BFF (its schema, resolvers, policy and trusted documents are its own). */
  startBff(options: AppStartOptions): Promise<RunningBff>;
  /** Its page sizes, operation limits and time budget. */
  policy: AppPolicy;
}

const NAME = /^[a-z][a-z0-9-]{0,31}$/;

function descriptorOf(packageJsonPath: string, raw: unknown): BffAppDescriptor {
  const where = `${packageJsonPath}: "bff"`;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new TypeError(`${where} must be an object, received ${JSON.stringify(raw)}`);
  const { name, title, port, metricsPort, persistedOperations, ...unknown } = raw as Record<string, unknown>;
  const extra = Object.keys(unknown);
  if (extra.length > 0)
    throw new TypeError(
      `${where} has unknown field(s) ${extra.join(', ')} (name, title, port, metricsPort, persistedOperations)`,
    );
  if (typeof name !== 'string' || !NAME.test(name))
    throw new TypeError(
      `${where}.name must be lower case letters, digits and -, received ${JSON.stringify(name)}`,
    );
  if (title !== undefined && (typeof title !== 'string' || title.trim() === ''))
    throw new TypeError(`${where}.title must be a non-empty string, received ${JSON.stringify(title)}`);
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65_535)
    throw new TypeError(
      `${where}.port must be a whole number from 1 to 65535, received ${JSON.stringify(port)}`,
    );
  if (
    metricsPort !== undefined &&
    (typeof metricsPort !== 'number' ||
      !Number.isInteger(metricsPort) ||
      metricsPort < 1 ||
      metricsPort > 65_535)
  )
    throw new TypeError(
      `${where}.metricsPort must be a whole number from 1 to 65535, received ${JSON.stringify(metricsPort)}`,
    );
  if (persistedOperations !== undefined && typeof persistedOperations !== 'boolean')
    throw new TypeError(
      `${where}.persistedOperations must be true or false, received ${JSON.stringify(persistedOperations)}`,
    );
  return {
    name,
    title: title ?? name,
    port,
    metricsPort: (metricsPort as number | undefined) ?? port + 5400,
    persistedOperations: persistedOperations ?? false,
  };
}

/**
 * Every app under `<root>/apps`, ordered by default port (web, iOS, Android, then any new one).
 * Folders without a package.json, or whose package.json has no `bff` field, are not apps. Throws
 * a TypeError naming the file for a malformed descriptor, and for two apps sharing a name or a port.
 */
export function discoverApps(root: string = REPO_ROOT): DiscoveredApp[] {
  const appsDir = join(root, 'apps');
  const apps: DiscoveredApp[] = [];
  // In name order, so that what this finds and says does not depend on the file system.
  const folders = readdirSync(appsDir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name));
  for (const folder of folders) {
    if (!folder.isDirectory()) continue;
    const dir = join(appsDir, folder.name);
    const packageJsonPath = join(dir, 'package.json');
    let text: string;
    try {
      text = readFileSync(packageJsonPath, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw error;
    }
    const pkg = JSON.parse(text) as { name?: unknown; exports?: unknown; bff?: unknown };
    if (pkg.bff === undefined) continue;
    const descriptor = descriptorOf(packageJsonPath, pkg.bff);
    const exported =
      typeof pkg.exports === 'string'
        ? pkg.exports
        : (pkg.exports as Record<string, unknown> | undefined)?.['.'];
    if (typeof exported !== 'string')
      throw new TypeError(`${packageJsonPath}: "exports" must name the entry ("." : "./src/index.ts")`);
    apps.push({
      ...descriptor,
      packageName: typeof pkg.name === 'string' ? pkg.name : folder.name,
      dir,
      folder: relative(root, dir).split('\\').join('/'),
      entry: resolve(dir, exported),
      schemaDir: join(dir, 'schema'),
      ...(descriptor.persistedOperations
        ? {
            operationsDir: join(dir, 'operations'),
            manifestPath: join(dir, 'persisted-operations.json'),
            releasesDir: join(dir, 'releases'),
          }
        : {}),
    });
  }
  for (const key of ['name', 'port'] as const) {
    const seen = new Map<unknown, DiscoveredApp>();
    for (const app of apps) {
      const other = seen.get(app[key]);
      if (other)
        throw new TypeError(`${other.folder} and ${app.folder} both declare bff.${key} ${String(app[key])}`);
      seen.set(app[key], app);
    }
  }
  return apps.sort((a, b) => a.port - b.port || a.name.localeCompare(b.name));
}

/** The app named `name`; an unknown name throws, listing the apps there are. */
export function findApp(name: string, apps: readonly DiscoveredApp[] = discoverApps()): DiscoveredApp {
  const app = apps.find((candidate) => candidate.name === name);
  if (!app)
    throw new TypeError(`no app named ${JSON.stringify(name)}; apps: ${apps.map((a) => a.name).join(', ')}`);
  return app;
}

/** The environment variable that overrides the app's port in `pnpm start`: `WEB_PORT`, `MY_APP_PORT`. */
export function portVariable(app: Pick<BffAppDescriptor, 'name'>): string {
  return `${app.name.toUpperCase().replaceAll('-', '_')}_PORT`;
}

/** Imports the app's package entry and checks it exports `startBff` and `policy`. */
export async function loadAppModule(app: DiscoveredApp): Promise<BffAppModule> {
  const loaded = (await import(pathToFileURL(app.entry).href)) as Partial<BffAppModule>;
  if (typeof loaded.startBff !== 'function')
    throw new TypeError(`${app.entry} must export a function startBff(options) (the app's start)`);
  if (typeof loaded.policy !== 'object' || loaded.policy === null)
    throw new TypeError(`${app.entry} must export its policy (an AppPolicy)`);
  return loaded as BffAppModule;
}
