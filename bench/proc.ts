// One role of the benchmark in its own process: `node --import tsx bench/proc.ts <role> '<json>'`.
// Prints `READY <json>` once listening, and stops on SIGTERM.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { startFakeUpstreams } from './fake-upstreams.ts';
import { startHandwritten } from './handwritten.ts';
import { startNaive } from './naive.ts';

const [role = '', raw = '{}'] = process.argv.slice(2);
const config = JSON.parse(raw) as {
  latencyMs?: number;
  identityUrl: string;
  billingUrl: string;
  productAddr: string;
  /** The fake upstreams' OTLP/HTTP receiver, for `bff-observed`. */
  otlpEndpoint?: string;
};

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
      const fakes = await startFakeUpstreams(config.latencyMs ?? 0);
      return { info: fakes, close: fakes.close };
    }
    case 'handwritten': {
      const server = await startHandwritten(config);
      return { info: { url: server.url, path: '/graphql' }, close: server.close };
    }
    case 'naive': {
      const webSchema = readFileSync(
        fileURLToPath(new URL('../apps/web/schema/web.graphql', import.meta.url)),
        'utf8',
      );
      const server = await startNaive(config, webSchema);
      return { info: { url: server.url, path: '/' }, close: server.close };
    }
    case 'bff':
    case 'bff-graphql-js':
    case 'bff-without-plugins':
    case 'bff-telemetry-off':
    case 'bff-observed': {
      const { startWebBff } = await import('@bff/web-app');
      // `bff` and `bff-telemetry-off` are the same: no log lines, no trace export (metrics are
      // recorded in-process all the same: they always are). `bff-observed` adds the request log at
      // info, a metrics listener (scraped by the harness every second) and traces sampled at 10%,
      // exported over OTLP/HTTP to the fake upstreams' receiver.
      const observed = role === 'bff-observed';
      if (observed && !config.otlpEndpoint) throw new Error('bff-observed needs an otlpEndpoint');
      const bff = await startWebBff({
        port: 0,
        identityUrl: config.identityUrl,
        billingUrl: config.billingUrl,
        productAddr: config.productAddr,
        production: true,
        graphiql: false,
        logLevel: observed ? 'info' : false,
        ...(observed
          ? {
              logDestination: productionLikeLogSink(),
              observability: {
                metricsPort: 0,
                metricsHost: '127.0.0.1',
                tracing: { endpoint: config.otlpEndpoint, sampleRatio: 0.1 },
              },
            }
          : {}),
        ...(role === 'bff-without-plugins'
          ? { auth: { mode: 'gateway' as const }, rateLimit: { enabled: false } }
          : // Limits checked on every call, set high enough that the load is never refused.
            { rateLimit: { defaults: { max: 1_000_000_000, window: '1m' } } }),
        ...(role === 'bff-graphql-js' ? { executor: 'graphql-js' as const } : {}),
      });
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
