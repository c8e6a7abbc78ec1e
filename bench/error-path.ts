// The cost of a failing upstream: the large workload's requests, one at a time, with Product
// answering and with Product down (its address a closed port: every `product` field under every
// invoice line fails, 192 errors per answer). Prints the CPU per request of this one process,
// which runs the fake upstreams, the web BFF (from source) and the client: compare the two lines
// of one run, not runs. A BFF whose upstream fails should not spend more per request than when it
// succeeds. Measured 2026-12-01 (source, this process): Product down cost 18.5-19.3 ms per
// request before graphql-jit's errors were rebuilt without the Error constructor, as much as a
// successful one (16.0-20.8 ms); after, 9.9-10.6 ms.
//
//   pnpm --filter @bff/bench bench:error-path        (ERROR_PATH_REQUESTS, default 300;
//                                                     ERROR_PATH_WARMUP, default 100)
import { startWebBff } from '@bff/web-app';
import { startFakeUpstreams } from './fake-upstreams.ts';
import { workloadRequests } from './workloads.ts';

const count = (name: string, fallback: number) => {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isSafeInteger(value) || value < 1)
    throw new TypeError(`${name} must be a positive whole number, received ${process.env[name]}`);
  return value;
};
const requests = count('ERROR_PATH_REQUESTS', 300);
const warmup = count('ERROR_PATH_WARMUP', 100);

const fakes = await startFakeUpstreams(0);
for (const productDown of [false, true, false, true]) {
  const bff = await startWebBff({
    port: 0,
    identityUrl: fakes.identityUrl,
    billingUrl: fakes.billingUrl,
    productAddr: productDown ? '127.0.0.1:9' : fakes.productAddr,
    production: true,
    graphiql: false,
    logLevel: false,
    rateLimit: { defaults: { max: 1_000_000_000, window: '1m' } },
    responseCache: { maxBytes: 1 },
  });
  const rotation = workloadRequests('large', fakes.tokens, '/graphql');
  let withErrors = 0;
  const send = async (count: number) => {
    for (let i = 0; i < count; i++) {
      const request = rotation[i % rotation.length] as (typeof rotation)[number];
      const response = await fetch(bff.url + request.path, {
        method: request.method,
        headers: request.headers,
        body: request.body ?? null,
      });
      if ((await response.text()).includes('"errors"')) withErrors++;
    }
  };
  await send(warmup);
  withErrors = 0;
  const before = process.cpuUsage();
  await send(requests);
  const cpu = process.cpuUsage(before);
  console.log(
    `product ${productDown ? 'down' : 'up  '}  ${Math.round((cpu.user + cpu.system) / requests)} µs CPU per request (this process)  answers with errors: ${withErrors}/${requests}`,
  );
  await bff.close();
}
await fakes.close();
