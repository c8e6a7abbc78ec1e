// One role of the benchmark in its own process: `node --import tsx bench/proc.ts <role> '<json>'`.
// Prints `READY <json>` once listening, and stops on SIGTERM. A BFF role runs the web app, or,
// given `iosEntry` (the catalogue workload), the iOS app found there: this checkout's or a
// `bff@<revision>` worktree's.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { WebBffOptions } from '@bff/web-app';
import type { startIosBff as StartIosBff } from '../apps/ios/src/index.ts';

const [role = '', raw = '{}'] = process.argv.slice(2);
const config = JSON.parse(raw) as {
  latencyMs?: number;
  identityUrl: string;
  billingUrl: string;
  productAddr: string;
  /** The fake upstreams' OTLP/HTTP receiver, for `bff-observed`. */
  otlpEndpoint?: string;
  /**
   * A BFF role serves the iOS app of this module (a bundle of `apps/ios/src/index.ts`, or that
   * file) instead of the web app, with the app version policy of `iosSupported`.
   */
  iosEntry?: string;
  iosSupported?: string;
  /** The web app's module (a bundle of `apps/web/src/index.ts`); `@bff/web-app` without it. */
  webEntry?: string;
};

/**
 * Starts the iOS BFF of `entry` in production, as apps/ios/src/main.ts does: its trusted documents
 * enforced (startIosBff loads its manifest) and the app version policy of its deployment, whose
 * `MIN_APP_VERSION` is kept equal to releases/supported.json. The app is imported by path so that
 * a worktree's runs with the worktree's own packages.
 */
async function startIos(entry: string, supportedPath: string, options: Parameters<typeof StartIosBff>[0]) {
  const { startIosBff } = (await import(pathToFileURL(entry).href)) as { startIosBff: typeof StartIosBff };
  const supported = JSON.parse(readFileSync(supportedPath, 'utf8')) as {
    minimumVersion: string;
  };
  return startIosBff({
    ...options,
    appVersion: { minimum: supported.minimumVersion, storeUrl: 'https://apps.apple.com/app/id0000000000' },
  });
}

/**
 * The request log's sink for `bff-observed`: what pino writes to when it is given no stream (its
 * default, standard output in production), a SonicBoom with the same options (asynchronous,
 * `minLength` 0: `fs.write` on libuv's pool, lines written while one is in flight are coalesced),
 * only opened on /dev/null instead of fd 1 (BENCH_OBSERVED_LOG=<file> to read the lines). The
 * SonicBoom is the one Fastify's own pino loads, reached through the packages that depend on it.
 */
function productionLikeLogSink(): { write(line: string): void } {
  const require = createRequire(import.meta.url);
  const fromFastify = createRequire(createRequire(require.resolve('@bff/bff-server')).resolve('fastify'));
  const pino = fromFastify('pino') as {
    destination(options: { dest: string }): { write(line: string): void };
  };
  return pino.destination({ dest: process.env.BENCH_OBSERVED_LOG || '/dev/null' });
}

async function start(): Promise<{ info: unknown; close: () => Promise<void> }> {
  switch (role) {
    case 'upstreams': {
      const { startFakeUpstreams } = await import('./fake-upstreams.ts');
      const fakes = await startFakeUpstreams(config.latencyMs ?? 0);
      return { info: fakes, close: fakes.close };
    }
    case 'handwritten': {
      const { startHandwritten } = await import('./handwritten.ts');
      const server = await startHandwritten(config);
      return { info: { url: server.url, path: '/graphql' }, close: server.close };
    }
    case 'naive': {
      const webSchema = readFileSync(
        fileURLToPath(new URL('../apps/web/schema/web.graphql', import.meta.url)),
        'utf8',
      );
      const { startNaive } = await import('./naive.ts');
      const server = await startNaive(config, webSchema);
      return { info: { url: server.url, path: '/' }, close: server.close };
    }
    case 'bff':
    case 'bff-graphql-js':
    case 'bff-cache-off':
    case 'bff-without-plugins':
    case 'bff-telemetry-off':
    case 'bff-observed': {
      // `bff` and `bff-telemetry-off` are the same: no log lines, no trace export (metrics are
      // recorded in-process all the same: they always are). `bff-observed` adds the request log at
      // info, a metrics listener (scraped by the harness every second) and traces sampled at 10%,
      // exported over OTLP/HTTP to the fake upstreams' receiver.
      const observed = role === 'bff-observed';
      // BENCH_OBSERVED_WITHOUT=log,tracing: bff-observed without those parts, to apportion its cost.
      const without = new Set((process.env.BENCH_OBSERVED_WITHOUT ?? '').split(',').filter(Boolean));
      if (observed && !config.otlpEndpoint) throw new Error('bff-observed needs an otlpEndpoint');
      const options: WebBffOptions = {
        port: 0,
        identityUrl: config.identityUrl,
        billingUrl: config.billingUrl,
        productAddr: config.productAddr,
        production: true,
        graphiql: false,
        logLevel: observed && !without.has('log') ? 'info' : false,
        ...(observed
          ? {
              ...(without.has('log') ? {} : { logDestination: productionLikeLogSink() }),
              observability: {
                metricsPort: 0,
                metricsHost: '127.0.0.1',
                ...(without.has('tracing')
                  ? {}
                  : { tracing: { endpoint: config.otlpEndpoint, sampleRatio: 0.1 } }),
              },
            }
          : {}),
        ...(role === 'bff-without-plugins'
          ? { auth: { mode: 'gateway' as const }, rateLimit: { enabled: false } }
          : // Limits checked on every call, set high enough that the load is never refused.
            { rateLimit: { defaults: { max: 1_000_000_000, window: '1m' } } }),
        ...(role === 'bff-graphql-js' ? { executor: 'graphql-js' as const } : {}),
        // The private workloads repeat each user's request within its 30 s max age, so a cache
        // would answer them. They measure aggregation: the response cache stays on, but with a
        // memory store too small to hold any answer, so every request pays the cache's miss path
        // (policy, key, lookup, the entry serialised, the write refused) and is then executed.
        // The catalogue runs with the cache as shipped.
        ...(config.iosEntry ? {} : { responseCache: { maxBytes: 1 } }),
        // `bff-cache-off`, or BENCH_RESPONSE_CACHE=off for every BFF contender: the cache switched
        // off, to tell its cost from the rest's (`BENCH_AB=bff-cache-off,bff`).
        ...(role === 'bff-cache-off' || process.env.BENCH_RESPONSE_CACHE === 'off'
          ? { responseCache: { enabled: false } }
          : {}),
      };
      // Only what this role runs is loaded: the process's memory is the contender's.
      const bff = config.iosEntry
        ? await startIos(config.iosEntry, config.iosSupported ?? '', options)
        : await (
            (config.webEntry
              ? await import(pathToFileURL(config.webEntry).href)
              : await import('@bff/web-app')) as typeof import('@bff/web-app')
          ).startWebBff(options);
      return { info: { url: bff.url, path: '/graphql', metricsUrl: bff.metricsUrl }, close: bff.close };
    }
    default:
      throw new Error(`unknown role ${JSON.stringify(role)}`);
  }
}

// BENCH_ALLOC_PROF=<dir>: sample every allocation, collected objects included (what the
// garbage collector is busy with, unlike --heap-prof's live objects), written when stopped.
const allocations = process.env.BENCH_ALLOC_PROF && role !== 'upstreams' ? new Session() : undefined;
if (allocations) {
  allocations.connect();
  await allocations.post('HeapProfiler.startSampling', {
    samplingInterval: 16_384,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
}
async function writeAllocations() {
  if (!allocations) return;
  const { profile } = await allocations.post('HeapProfiler.stopSampling');
  mkdirSync(process.env.BENCH_ALLOC_PROF as string, { recursive: true });
  writeFileSync(
    `${process.env.BENCH_ALLOC_PROF}/${role}-${process.pid}.heapprofile`,
    JSON.stringify(profile),
  );
}

const running = await start();
process.stdout.write(`READY ${JSON.stringify(running.info)}\n`);
process.on('SIGTERM', () => {
  void writeAllocations()
    .then(() => running.close())
    .finally(() => process.exit(0));
});
