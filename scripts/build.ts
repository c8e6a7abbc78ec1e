// `pnpm build`: compiles each of the six processes (the BFFs under apps/, the services under
// services/) into one self-contained ES module with esbuild, `dist/<process>/main.mjs`, with the
// files it reads at run time copied beside it. An image then holds that folder and Node, nothing
// else: no TypeScript, no tsx, no pnpm, no dev dependencies (`deploy/Dockerfile`).
//
//   pnpm build                     every process into dist/
//   pnpm build web billing         some of them
//   pnpm build --out /tmp/dist     elsewhere
//
// Why a bundle and not tsc: every workspace package exports its TypeScript source
// (`"exports": "./src/index.ts"`), so tsc's output could not be run without rewriting every
// package.json or a resolve hook at run time; and a bundle starts faster (one file to read and
// compile instead of ~1,800 modules) and is smaller than the production node_modules.
//
// Files read at run time are found three ways, and a new way fails the build instead of the pod:
// - `new URL('<literal>', import.meta.url)` in any bundled module (SDL, migrations, the .proto,
//   PGlite's wasm): rewritten to `./assets/<where it was>` and the file or folder copied there;
// - `__dirname` in the CommonJS packages of DIRNAME_PACKAGES (they load .proto files): given the
//   folder the package's copy has under assets/;
// - the GraphiQL page's UMD builds, which `packages/bff-server/src/graphiql.ts` finds with
//   `require.resolve('<package>/package.json')`: copied into node_modules/ beside the bundle.
// Any other `__dirname`, `__filename` or `import.meta.url` in a bundled module must be listed
// in ACKNOWLEDGED with the reason it does not read a file, or the build fails naming it.
import {
  cpSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build, type Metafile, type Plugin } from 'esbuild';
import { discoverApps, REPO_ROOT } from './app-discovery.ts';

/** One process the build produces. */
export interface ProcessTarget {
  /** `web`, `ios`, `android` (the app's `bff.name`), `identity`, `billing`, `product`. */
  name: string;
  kind: 'bff' | 'service';
  /** The package folder, relative to the root (`apps/web`). */
  folder: string;
  /** Absolute path of the container entry point (`src/main.ts`). */
  entry: string;
}

/** What a build produced for one process. */
export interface BuildReport {
  name: string;
  /** Absolute path of `dist/<name>`. */
  outDir: string;
  /** Absolute path of the bundle, `dist/<name>/main.mjs`. */
  main: string;
  /** Bytes of the bundle alone. */
  bundleBytes: number;
  /** Bytes of everything under `dist/<name>` (the image's application layer). */
  totalBytes: number;
  /** Files under `dist/<name>`. */
  files: number;
  /** Modules bundled (workspace sources and dependencies). */
  modules: number;
  /** The run-time files copied, relative to `dist/<name>`. */
  assets: string[];
}

export interface BuildOptions {
  /** Where `dist/<name>` folders go. @default `<root>/dist` */
  outDir?: string;
  /** Minify the bundle (smaller, but stack traces lose their names). @default false */
  minify?: boolean;
  /** Write `main.mjs.map` beside the bundle (Node reads it with --enable-source-maps). @default false */
  sourcemap?: boolean;
}

/**
 * CommonJS packages that read files next to their own code through `__dirname`. Each module of
 * theirs that says `__dirname` is given the folder its copy has under `assets/node_modules/`,
 * and the package's non-code files (its .proto files) are copied there.
 */
const DIRNAME_PACKAGES: Readonly<Record<string, string>> = {
  'grpc-health-check':
    'loads proto/health/v1/health.proto when imported (Product serves the gRPC health service)',
  '@grpc/grpc-js': 'channelz and ORCA load their .proto files from proto/ when first used',
};

/**
 * Modules that mention `__dirname`, `__filename` or `import.meta.url` without reading a file
 * through them in anything the processes run, by package (or workspace file) and why.
 */
const ACKNOWLEDGED: Readonly<Record<string, string>> = {
  '@electric-sql/pglite':
    "Emscripten's createRequire and default script folder: PGlite hands it the wasm and data files itself",
  undici: '__filename only marks its own frames in stack traces',
  ioredis: '__dirname only trims stack traces with showFriendlyErrorStack, which is off',
  '@graphql-tools/merge': '__dirname appears in a doc comment',
  pino: 'transports (LOG_FORMAT=pretty) start a worker from a file: images log JSON (LOG_FORMAT=json)',
  'thread-stream': 'used by pino transports only (see pino)',
  'packages/bff-server/src/graphiql.ts':
    'require.resolve() of the UMD builds: copied to node_modules/ beside the bundle (GRAPHIQL_FILES)',
};

/** The GraphiQL page's files, as `packages/bff-server/src/graphiql.ts` reads them. */
const GRAPHIQL_FILES: Readonly<Record<string, readonly string[]>> = {
  react: ['umd/react.production.min.js'],
  'react-dom': ['umd/react-dom.production.min.js'],
  graphiql: ['dist/index.umd.js', 'dist/style.css'],
};
const GRAPHIQL_SOURCE = join('packages', 'bff-server', 'src', 'graphiql.ts');

/** Not copied with a folder of run-time files: sources, tests and dependencies are not assets. */
const NOT_ASSETS =
  /(^|[/\\])(node_modules|test|__tests__)([/\\]|$)|\.(m?[jt]s|cjs|cts|mts|map|md|tsbuildinfo)$|(^|[/\\])LICENSE/;

/** The BFFs (every app under apps/) and the services (every services/<name>/src/main.ts). */
export function processTargets(root: string = REPO_ROOT): ProcessTarget[] {
  const bffs: ProcessTarget[] = discoverApps(root).map((app) => ({
    name: app.name,
    kind: 'bff',
    folder: app.folder,
    entry: join(app.dir, 'src', 'main.ts'),
  }));
  const services: ProcessTarget[] = readdirSync(join(root, 'services'), { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(root, 'services', d.name, 'src', 'main.ts')))
    .map((d) => ({
      name: d.name,
      kind: 'service' as const,
      folder: `services/${d.name}`,
      entry: join(root, 'services', d.name, 'src', 'main.ts'),
    }))
    .sort((a, b) => a.name.localeCompare(b.name));
  return [...bffs, ...services];
}

/** `@scope/name` or `name` and the path inside it, for a file under some node_modules. */
function packageOf(file: string): { name: string; inside: string } | undefined {
  const marker = `${sep}node_modules${sep}`;
  const at = file.lastIndexOf(marker);
  if (at < 0) return undefined;
  const parts = file.slice(at + marker.length).split(sep);
  const scoped = parts[0]?.startsWith('@');
  const name = (scoped ? parts.slice(0, 2) : parts.slice(0, 1)).join('/');
  return { name, inside: parts.slice(scoped ? 2 : 1).join('/') };
}

/** Where a file of the repository or of a package goes under `assets/`. */
function assetPath(root: string, absolute: string): string {
  const pkg = packageOf(absolute);
  if (pkg) return `assets/node_modules/${pkg.name}/${pkg.inside}`.replace(/\/$/, '');
  const inRepo = relative(root, absolute);
  if (inRepo.startsWith('..')) throw new Error(`build: ${absolute} is outside the repository`);
  return `assets/${inRepo.split(sep).join('/')}`;
}

/** Who a bundled module is, for ACKNOWLEDGED and the error messages. */
function ownerOf(root: string, file: string): string {
  return packageOf(file)?.name ?? relative(root, file).split(sep).join('/');
}

const NEW_URL = /new URL\(\s*(["'])([^"'`]+)\1\s*,\s*import\.meta\.url\s*\)/g;
const DIRNAME = /\b__(dirname|filename)\b/;

/** The esbuild plugin that rewrites run-time file references and records what to copy. */
function runtimeFilesPlugin(root: string, copies: Map<string, string>, problems: string[]): Plugin {
  return {
    name: 'runtime-files',
    setup(pluginBuild) {
      pluginBuild.onLoad({ filter: /\.(m?[jt]s|cjs|cts|mts)$/ }, (args) => {
        const source = readFileSync(args.path, 'utf8');
        if (!source.includes('import.meta.url') && !DIRNAME.test(source)) return undefined;
        const owner = ownerOf(root, args.path);
        let contents = source.replace(NEW_URL, (whole, _quote: string, target: string) => {
          const absolute = fileURLToPath(new URL(target, pathToFileURL(args.path)));
          if (!existsSync(absolute)) {
            // A reference to a file the package does not ship is a browser or optional path.
            if (packageOf(args.path)) return whole;
            problems.push(
              `${owner}: new URL(${JSON.stringify(target)}, import.meta.url) names a missing file`,
            );
            return whole;
          }
          const to = assetPath(root, absolute);
          copies.set(absolute, to);
          return `new URL(${JSON.stringify(`./${to}${target.endsWith('/') ? '/' : ''}`)}, import.meta.url)`;
        });
        const pkg = packageOf(args.path);
        if (pkg && DIRNAME_PACKAGES[pkg.name] && /\b__dirname\b/.test(contents)) {
          const packageRoot = args.path.slice(0, args.path.length - pkg.inside.length);
          copies.set(packageRoot, assetPath(root, packageRoot));
          const folder = `${assetPath(root, dirname(args.path))}`;
          // esbuild wraps a CommonJS module in a function: this var is the module's own.
          contents = `var __dirname = __bundleDir + ${JSON.stringify(`/${folder}`)};\n${contents}`;
        } else if (ACKNOWLEDGED[owner] === undefined) {
          // What is left once every `new URL(literal, import.meta.url)` is accounted for.
          const rest = source.replace(NEW_URL, '');
          if (rest.includes('import.meta.url') || DIRNAME.test(rest))
            problems.push(
              `${owner} (${relative(root, args.path)}) uses __dirname, __filename or import.meta.url in a way ` +
                'the build does not rewrite: copy what it reads (DIRNAME_PACKAGES) or say why not (ACKNOWLEDGED)',
            );
        }
        const loader = /\.[mc]?ts$/.test(args.path) ? 'ts' : 'js';
        return { contents, loader };
      });
    },
  };
}

// The bundle is ESM, but bundled CommonJS modules call require() for Node's own modules and
// may read __dirname: both are made from the bundle's own URL.
const BANNER = [
  "import { createRequire as __createRequire } from 'node:module';",
  "import { fileURLToPath as __fileURLToPath } from 'node:url';",
  'const require = __createRequire(import.meta.url);',
  'const __filename = __fileURLToPath(import.meta.url);',
  "const __bundleDir = __fileURLToPath(new URL('.', import.meta.url)).replace(/\\/$/, '');",
  'const __dirname = __bundleDir;',
].join('\n');

function treeSize(dir: string): { bytes: number; files: number } {
  let bytes = 0;
  let files = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    bytes += statSync(join(entry.parentPath, entry.name)).size;
    files += 1;
  }
  return { bytes, files };
}

function listFiles(dir: string, under: string): string[] {
  if (!existsSync(join(dir, under))) return [];
  return readdirSync(join(dir, under), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)).split(sep).join('/'))
    .sort();
}

/** Builds one process into `<outDir>/<name>`, replacing what was there. */
export async function buildProcess(
  target: ProcessTarget,
  options: BuildOptions = {},
  root: string = REPO_ROOT,
): Promise<BuildReport> {
  const outDir = resolve(options.outDir ?? join(root, 'dist'), target.name);
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const copies = new Map<string, string>();
  const problems: string[] = [];
  const main = join(outDir, 'main.mjs');
  const result = await build({
    absWorkingDir: root,
    entryPoints: [target.entry],
    outfile: main,
    bundle: true,
    platform: 'node',
    format: 'esm',
    // The images run Node 24; the test suite runs the same files on Node 20 here.
    target: 'node20',
    banner: { js: BANNER },
    minify: options.minify ?? false,
    sourcemap: options.sourcemap ? 'linked' : false,
    legalComments: 'none',
    metafile: true,
    logLevel: 'error',
    plugins: [runtimeFilesPlugin(root, copies, problems)],
  });
  if (problems.length > 0)
    throw new Error(`build ${target.name}: files read at run time:\n  ${problems.join('\n  ')}`);
  for (const [from, to] of copies) {
    cpSync(from, join(outDir, to), {
      recursive: true,
      filter: (source) => source === from || !NOT_ASSETS.test(relative(from, source)),
    });
  }
  copyGraphiql(result.metafile, root, outDir);
  writeFileSync(
    join(outDir, 'package.json'),
    `${JSON.stringify({ name: `bff-${target.name}`, private: true, type: 'module', main: 'main.mjs' }, null, 2)}\n`,
  );
  const size = treeSize(outDir);
  return {
    name: target.name,
    outDir,
    main,
    bundleBytes: statSync(main).size,
    totalBytes: size.bytes,
    files: size.files,
    modules: Object.keys(result.metafile.inputs).length,
    assets: [...listFiles(outDir, 'assets'), ...listFiles(outDir, 'node_modules')],
  };
}

/** The GraphiQL UMD builds, where graphiql.ts's require.resolve finds them from the bundle. */
function copyGraphiql(metafile: Metafile, root: string, outDir: string): void {
  const inputs = Object.keys(metafile.inputs).map((input) => resolve(root, input));
  const graphiql = join(root, GRAPHIQL_SOURCE);
  if (!inputs.includes(graphiql)) return;
  const from = createRequire(graphiql);
  for (const [name, files] of Object.entries(GRAPHIQL_FILES)) {
    const packageDir = dirname(from.resolve(`${name}/package.json`));
    for (const file of ['package.json', ...files]) {
      const to = join(outDir, 'node_modules', name, file);
      mkdirSync(dirname(to), { recursive: true });
      cpSync(join(packageDir, file), to);
    }
  }
}

/** Builds every process (or those named). */
export async function buildProcesses(
  names: readonly string[] = [],
  options: BuildOptions = {},
  root: string = REPO_ROOT,
): Promise<BuildReport[]> {
  const targets = processTargets(root);
  const unknown = names.filter((name) => !targets.some((t) => t.name === name));
  if (unknown.length > 0)
    throw new TypeError(
      `build: no process named ${unknown.join(', ')}; processes: ${targets.map((t) => t.name).join(', ')}`,
    );
  const chosen = names.length === 0 ? targets : targets.filter((t) => names.includes(t.name));
  const reports: BuildReport[] = [];
  // One after another: the onLoad plugin runs on this one thread, and together they were no faster.
  for (const target of chosen) reports.push(await buildProcess(target, options, root));
  return reports;
}

function megabytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

async function main(argv: string[]): Promise<void> {
  const names: string[] = [];
  const options: BuildOptions = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--out') {
      const value = argv[++i];
      if (!value) throw new TypeError('build: --out needs a folder');
      options.outDir = resolve(value);
    } else if (arg === '--minify') options.minify = true;
    else if (arg === '--sourcemap') options.sourcemap = true;
    else if (arg.startsWith('-'))
      throw new TypeError(`build: unknown option ${arg} (--out DIR, --minify, --sourcemap)`);
    else names.push(arg);
  }
  const started = performance.now();
  const reports = await buildProcesses(names, options);
  for (const r of reports)
    console.log(
      `${r.name.padEnd(9)} ${relative(process.cwd(), r.main)}  bundle ${megabytes(r.bundleBytes)}, ` +
        `folder ${megabytes(r.totalBytes)} in ${r.files} files (${r.modules} modules bundled)`,
    );
  console.log(`built ${reports.length} processes in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
