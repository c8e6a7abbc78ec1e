// One role of the benchmark in its own process: `node --import tsx bench/proc.ts <role> '<json>'`.
// Prints `READY <json>` once listening, and stops on SIGTERM.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
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
};

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
    case 'bff-without-plugins': {
      const { startWebBff } = await import('@bff/web-app');
      const bff = await startWebBff({
        port: 0,
        identityUrl: config.identityUrl,
        billingUrl: config.billingUrl,
        productAddr: config.productAddr,
        production: true,
        graphiql: false,
        logLevel: false,
        ...(role === 'bff-without-plugins'
          ? { auth: { mode: 'gateway' as const }, rateLimit: { enabled: false } }
          : // Limits checked on every call, set high enough that the load is never refused.
            { rateLimit: { defaults: { max: 1_000_000_000, window: '1m' } } }),
        ...(role === 'bff-graphql-js' ? { executor: 'graphql-js' as const } : {}),
      });
      return { info: { url: bff.url, path: '/graphql' }, close: bff.close };
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
