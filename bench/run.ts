// `pnpm bench`: the BFF as shipped, the BFF without authentication and rate limiting, the BFF
// with its request log, metrics scrapes and 10% of traces exported, a hand-written aggregator and
// a naive Apollo Server, over the same fake upstreams, side by side.
// BENCH_SECONDS (10), BENCH_CONNECTIONS (64), BENCH_LATENCIES ("0,2"), BENCH_WORKLOADS
// ("small,medium,large,catalogue"), BENCH_CONTENDERS, BENCH_ROUNDS (2).
import { mkdir, writeFile } from 'node:fs/promises';
import { type ContenderName, type RunResult, runBench } from './harness.ts';
import { WORKLOAD_NAMES, type WorkloadName } from './workloads.ts';

const env = process.env;
const options = {
  seconds: Number(env.BENCH_SECONDS ?? 10),
  connections: Number(env.BENCH_CONNECTIONS ?? 64),
  latenciesMs: (env.BENCH_LATENCIES ?? '0,2').split(',').map(Number),
  workloads: (env.BENCH_WORKLOADS ?? WORKLOAD_NAMES.join(',')).split(',') as WorkloadName[],
  contenders: (env.BENCH_CONTENDERS ?? 'handwritten,bff,bff-without-plugins,bff-observed,naive').split(
    ',',
  ) as ContenderName[],
  fixedRate: env.BENCH_FIXED_RATE !== 'false',
  rounds: Number(env.BENCH_ROUNDS ?? 2),
  log: (line: string) => console.log(line),
};
for (const [name, value] of Object.entries({ seconds: options.seconds, connections: options.connections })) {
  if (!(Number.isInteger(value) && value > 0)) {
    console.error(`bench: ${name} must be a positive whole number, received ${value}`);
    process.exit(2);
  }
}
for (const workload of options.workloads) {
  if (!WORKLOAD_NAMES.includes(workload)) {
    console.error(
      `bench: BENCH_WORKLOADS names ${JSON.stringify(workload)}, not a workload: use ${WORKLOAD_NAMES.join(', ')}`,
    );
    process.exit(2);
  }
}

const results = await runBench(options);
const find = (
  contender: ContenderName,
  workload: WorkloadName,
  latencyMs: number,
  mode: RunResult['mode'] = 'max',
) =>
  results.find(
    (r) =>
      r.contender === contender && r.workload === workload && r.latencyMs === latencyMs && r.mode === mode,
  );

console.log(
  '\n| latency | workload | contender | req/s | vs hand-written | p50 ms | p99 ms | CPU µs/op | vs hand-written | upstream calls/op | bytes | peak RSS MB | valid |',
);
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of results.filter((x) => x.mode === 'max')) {
  const base = find('handwritten', r.workload, r.latencyMs);
  const ratio = base ? `${Math.round((r.rps / base.rps) * 100)}%` : '';
  const cpuRatio = base?.cpuUsPerOp.contender
    ? `${Math.round((r.cpuUsPerOp.contender / base.cpuUsPerOp.contender) * 100)}%`
    : '';
  // None at all (a response cache answered every counted operation) reads 0, not blank.
  const calls =
    Object.entries(r.upstreamCallsPerOp)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || '0';
  console.log(
    `| ${r.latencyMs} ms | ${r.workload} | ${r.contender} | ${r.rps} | ${ratio} | ${r.p50} | ${r.p99} | ${r.cpuUsPerOp.contender} | ${cpuRatio} | ${calls} | ${r.bytesPerResponse} | ${r.peakRssMb} | ${r.valid ? 'yes' : 'NO'} |`,
  );
}

const telemetryRuns = results.filter((r) => r.mode === 'max' && r.telemetry);
if (telemetryRuns.length > 0) {
  console.log(
    '\n| latency | workload | contender | metrics scrapes | requests served | spans received | traces | spans/trace | traces sampled | OTLP exports |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of telemetryRuns) {
    const t = r.telemetry as NonNullable<RunResult['telemetry']>;
    const perTrace = t.tracesReceived ? (t.spansReceived / t.tracesReceived).toFixed(1) : '–';
    const sampled = t.requestsServed ? `${((t.tracesReceived / t.requestsServed) * 100).toFixed(1)}%` : '–';
    console.log(
      `| ${r.latencyMs} ms | ${r.workload} | ${r.contender} | ${t.scrapes} | ${t.requestsServed} | ${t.spansReceived} | ${t.tracesReceived} | ${perTrace} | ${sampled} | ${t.exportRequests} |`,
    );
  }
}

const mean = (values: number[]) => values.reduce((s, v) => s + v, 0) / values.length;
const signed = (percent: number) => `${percent >= 0 ? '+' : ''}${percent.toFixed(1)}%`;
const targets: string[] = [];
for (const latencyMs of options.latenciesMs) {
  // The cost of logging, metrics scrapes and 10% tracing: `bff-observed` against the same build
  // with them off (`bff-telemetry-off`, or `bff`, whose options are the same), in CPU µs/op. Each
  // keeps its best round, as for req/s but by CPU: what neighbours on a shared machine do only ever
  // adds CPU time per operation (a cold cache, a slower clock), so the least is the one measured
  // with the least interference. The means and each round's pair (the two ran side by side) are
  // printed too, to show how far the noise goes.
  const observed = find('bff-observed', 'medium', latencyMs);
  const off = find('bff-telemetry-off', 'medium', latencyMs) ?? find('bff', 'medium', latencyMs);
  if (observed && off) {
    const a = observed.roundsCpuUsPerOp?.length ? observed.roundsCpuUsPerOp : [observed.cpuUsPerOp.contender];
    const b = off.roundsCpuUsPerOp?.length ? off.roundsCpuUsPerOp : [off.cpuUsPerOp.contender];
    const cost = (Math.min(...a) / Math.min(...b) - 1) * 100;
    const perRound = a.map((v, i) => (b[i] ? signed((v / (b[i] as number) - 1) * 100) : '')).filter(Boolean);
    targets.push(
      `${latencyMs} ms upstreams: telemetry cost (medium): ${signed(cost)} CPU µs/op (target ≤ 5%): ${observed.contender} ${Math.min(...a)} vs ${off.contender} ${Math.min(...b)} µs/op, best of ${a.length} round(s) each; means ${Math.round(mean(a))} vs ${Math.round(mean(b))} (${signed((mean(a) / mean(b) - 1) * 100)}); round by round ${perRound.join(', ')}; ${observed.telemetry?.spansReceived ?? 0} spans received`,
    );
  }
}
for (const latencyMs of options.latenciesMs) {
  const bff = find('bff', 'medium', latencyMs);
  const hand = find('handwritten', 'medium', latencyMs);
  const bare = find('bff-without-plugins', 'medium', latencyMs);
  if (bff && hand)
    targets.push(
      `${latencyMs} ms upstreams: BFF throughput ${Math.round((bff.rps / hand.rps) * 100)}% of hand-written on medium (target ≥ 70%)`,
    );
  if (bff && bare)
    targets.push(
      `${latencyMs} ms upstreams: authentication + rate limiting cost ${Math.round((1 - bff.rps / bare.rps) * 100)}% of throughput (target ≤ 10%)`,
    );
  const bffFixed = find('bff', 'medium', latencyMs, 'fixed-rate');
  const handFixed = find('handwritten', 'medium', latencyMs, 'fixed-rate');
  if (bffFixed && handFixed) {
    targets.push(
      `${latencyMs} ms upstreams: p50 overhead at half the BFF's maximum rate (medium, ${bffFixed.rps} req/s): ${Math.round((bffFixed.p50 - handFixed.p50) * 10) / 10} ms (target ≤ 2 ms): p50 ${bffFixed.p50} vs ${handFixed.p50} ms`,
    );
  }
  // Issue 16: the BFF's CPU per operation and peak memory against the hand-written aggregator's.
  const cpuTargets: Partial<Record<WorkloadName, number>> = { small: 1.8, medium: 1.25, large: 1.3 };
  for (const workload of options.workloads) {
    const b = find('bff', workload, latencyMs);
    const h = find('handwritten', workload, latencyMs);
    const cpuTarget = cpuTargets[workload];
    if (!b || !h || cpuTarget === undefined || !h.cpuUsPerOp.contender || !h.peakRssMb) continue;
    const cpu = b.cpuUsPerOp.contender / h.cpuUsPerOp.contender;
    const rss = b.peakRssMb / h.peakRssMb;
    targets.push(
      `${latencyMs} ms upstreams: ${workload}: CPU µs/op ${cpu.toFixed(2)}× hand-written (target ≤ ${cpuTarget}×: ${cpu <= cpuTarget ? 'reached' : 'not reached'}; ${b.cpuUsPerOp.contender} vs ${h.cpuUsPerOp.contender}); peak RSS ${rss.toFixed(2)}× (target ≤ 1.5×: ${rss <= 1.5 ? 'reached' : 'not reached'}; ${b.peakRssMb} vs ${h.peakRssMb} MB)`,
    );
  }
  for (const workload of options.workloads) {
    const b = find('bff', workload, latencyMs);
    const h = find('handwritten', workload, latencyMs);
    if (b && h) {
      const sum = (r: RunResult) => Object.values(r.upstreamCallsPerOp).reduce((s, v) => s + v, 0);
      // The catalogue is public and repeats: a response cache may answer it without upstream calls.
      const target = workload === 'catalogue' ? 'at most hand-written' : 'equal';
      targets.push(
        `${latencyMs} ms upstreams: ${workload}: upstream calls per operation BFF ${sum(b).toFixed(1)} vs hand-written ${sum(h).toFixed(1)} (target: ${target})`,
      );
    }
  }
  // Issue 13: a public, repetitive page is what a response cache is for. The hand-written
  // aggregator does not cache; "N×" is the BFF's req/s over its, and its CPU µs/op over the BFF's.
  const bffCatalogue = find('bff', 'catalogue', latencyMs);
  const handCatalogue = find('handwritten', 'catalogue', latencyMs);
  if (bffCatalogue && handCatalogue) {
    const times = (x: number) => `${x >= 10 ? x.toFixed(0) : x.toFixed(2)}×`;
    const rate = bffCatalogue.rps / handCatalogue.rps;
    const cpu = bffCatalogue.cpuUsPerOp.contender
      ? handCatalogue.cpuUsPerOp.contender / bffCatalogue.cpuUsPerOp.contender
      : Number.NaN;
    targets.push(
      `${latencyMs} ms upstreams: catalogue: bff serves ${times(rate)} the hand-written rate (target: several times): ${bffCatalogue.rps} vs ${handCatalogue.rps} req/s; by CPU µs/op ${times(cpu)} (${bffCatalogue.cpuUsPerOp.contender} vs ${handCatalogue.cpuUsPerOp.contender} µs/op)${bffCatalogue.valid && handCatalogue.valid ? '' : ' (a run was not valid)'}`,
    );
  }
}
console.log(`\n${targets.join('\n')}`);
await mkdir(new URL('./results/', import.meta.url), { recursive: true });
await writeFile(
  new URL('./results/latest.json', import.meta.url),
  `${JSON.stringify({ options: { ...options, log: undefined }, results, targets }, null, 2)}\n`,
);
const invalid = results.filter((r) => !r.valid);
if (invalid.length > 0) {
  console.error(
    `runs with errors or wrong bodies, which do not count: ${invalid.map((r) => `${r.contender}/${r.workload}@${r.latencyMs}ms`).join(', ')}`,
  );
}
// A wrong body from the BFF is a bug, not a slow run: fail for that.
if (invalid.some((r) => r.contender.startsWith('bff') && r.mismatches > 0)) process.exit(1);
