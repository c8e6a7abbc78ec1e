// `pnpm bench:ab`: two BFF contenders measured at the same time, side by side, instead of one
// after the other. On this machine the speed of the VM drifts by tens of percent between runs a
// minute apart, which buries a difference of a few percent; run together, both contenders see
// the same drift at every instant. Each slice loads both at once (half the connections each),
// reads each process's CPU time over that same slice and divides by the operations it served.
// The figure is the median of the per-slice ratios, with the pooled ratio beside it.
//
//   BENCH_AB=bff-telemetry-off,bff-observed   the two contenders (baseline first)
//   BENCH_WORKLOADS=medium                    one workload
//   BENCH_AB_SLICES=12 BENCH_SECONDS=5        slices, and seconds per slice
//   BENCH_LATENCIES=0                         upstream latency, ms
import {
  type Child,
  type ContenderName,
  cpuUs,
  load,
  scrape,
  send,
  startChild,
  stopChild,
} from './harness.ts';
import { type WorkloadName, workloadRequests } from './workloads.ts';

const [baseline, candidate] = (process.env.BENCH_AB ?? 'bff-telemetry-off,bff-observed').split(',') as [
  ContenderName,
  ContenderName,
];
const workload = (process.env.BENCH_WORKLOADS ?? 'medium') as WorkloadName;
const slices = Number(process.env.BENCH_AB_SLICES ?? 12);
const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const latencyMs = Number(process.env.BENCH_LATENCIES ?? 0);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 64);
const scrapeEveryMs = Number(process.env.BENCH_SCRAPE_MS ?? 5_000);
if (!baseline || !candidate || !(slices >= 1) || !(seconds >= 1)) {
  console.error('bench:ab: BENCH_AB must name two contenders; BENCH_AB_SLICES and BENCH_SECONDS ≥ 1');
  process.exit(2);
}

const upstreams = await startChild('upstreams', { latencyMs });
const { identityUrl, billingUrl, productAddr, tokens, otlpEndpoint } = upstreams.info as {
  identityUrl: string;
  billingUrl: string;
  productAddr: string;
  tokens: Record<string, string>;
  otlpEndpoint: string;
};
const config = { identityUrl, billingUrl, productAddr, otlpEndpoint };
// The golden bodies: the hand-written aggregator's answers.
const reference = await startChild('handwritten', config);
const golden = new Map<string, string>();
for (const request of workloadRequests(workload, tokens, reference.info.path as string)) {
  golden.set(request.key, (await send(reference.info.url as string, request)).text.trimEnd());
}
await stopChild(reference);

const children: [Child, Child] = [
  await startChild(baseline, config, workload),
  await startChild(candidate, config, workload),
];
const requestsOf = (child: Child) => workloadRequests(workload, tokens, child.info.path as string);
const loadBoth = (secondsEach: number) =>
  Promise.all(
    children.map((child) =>
      load(child.info.url as string, requestsOf(child), golden, {
        seconds: secondsEach,
        connections: Math.max(1, Math.floor(connections / 2)),
      }),
    ),
  );
// Scraped as Prometheus would, whichever has a metrics listener.
const scrapes = children.map((child) => child.info.metricsUrl as string | undefined).filter(Boolean);
const timer = setInterval(() => {
  for (const url of scrapes) void scrape(url as string);
}, scrapeEveryMs);

await loadBoth(2); // warm-up
const ratios: number[] = [];
const totals = { baseline: { cpu: 0, ops: 0 }, candidate: { cpu: 0, ops: 0 } };
let invalid = 0;
for (let slice = 0; slice < slices; slice++) {
  const before = children.map((child) => cpuUs(child.process.pid));
  const runs = await loadBoth(seconds);
  const used = children.map((child, i) => cpuUs(child.process.pid) - (before[i] as number));
  const [a, b] = runs.map((run, i) => ({
    ...run,
    cpuPerOp: (used[i] as number) / Math.max(1, run.requests),
  }));
  if (!a || !b) throw new Error('bench:ab: a load did not report');
  invalid += a.errors + a.mismatches + b.errors + b.mismatches;
  totals.baseline.cpu += used[0] as number;
  totals.baseline.ops += a.requests;
  totals.candidate.cpu += used[1] as number;
  totals.candidate.ops += b.requests;
  const ratio = b.cpuPerOp / a.cpuPerOp;
  ratios.push(ratio);
  console.log(
    `slice ${String(slice + 1).padStart(2)}  ${baseline} ${Math.round(a.cpuPerOp)} µs/op (${a.rps} req/s)  ${candidate} ${Math.round(b.cpuPerOp)} µs/op (${b.rps} req/s)  ${pct(ratio)}`,
  );
}
clearInterval(timer);
for (const child of children) await stopChild(child);
await stopChild(upstreams);

const sorted = [...ratios].sort((x, y) => x - y);
const median =
  sorted.length % 2
    ? (sorted[(sorted.length - 1) / 2] as number)
    : ((sorted[sorted.length / 2 - 1] as number) + (sorted[sorted.length / 2] as number)) / 2;
const pooled =
  totals.candidate.cpu /
  Math.max(1, totals.candidate.ops) /
  (totals.baseline.cpu / Math.max(1, totals.baseline.ops));
console.log(
  `\n${workload}, ${latencyMs} ms upstreams, ${slices} slices of ${seconds} s, both loaded at once: ${candidate} costs ${pct(median)} CPU µs/op against ${baseline} (median of slices; pooled ${pct(pooled)}; slices from ${pct(sorted[0] as number)} to ${pct(sorted[sorted.length - 1] as number)})${invalid ? `  INVALID: ${invalid} errors or wrong bodies` : ''}`,
);
process.exit(invalid ? 1 : 0);

function pct(ratio: number): string {
  const delta = (ratio - 1) * 100;
  return `${delta >= 0 ? '+' : ''}${delta.toFixed(1)}%`;
}
