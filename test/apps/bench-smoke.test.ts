// A smoke run of the benchmark harness with a few requests, so that it cannot rot. It asserts
// what the harness guarantees (golden bodies, exact call counts), never how fast anything is.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runBench } from '@bff/bench/harness';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

describe('the benchmark harness (smoke)', () => {
  it('runs every contender on the small workload, with every body golden and minimal upstream calls', async () => {
    const results = await runBench({
      seconds: 1,
      connections: 2,
      latenciesMs: [0],
      workloads: ['small', 'medium'],
      // bff-observed: the BFF with its request log, scraped metrics and 10% of traces exported.
      contenders: ['handwritten', 'bff', 'bff-without-plugins', 'naive', 'bff-observed'],
      fixedRate: false,
      rounds: 1,
    });
    expect(results).toHaveLength(10);
    for (const result of results) {
      expect(result.valid, `${result.contender} ${result.workload}`).toBe(true);
      expect(result.requests).toBeGreaterThan(0);
      // CPU time is read from /proc for the contender and the fake upstreams.
      expect(result.cpuUsPerOp.contender, `${result.contender} CPU`).toBeGreaterThan(0);
      expect(result.cpuUsPerOp.upstreams).toBeGreaterThan(0);
    }
    const calls = (contender: string, workload: string) =>
      results.find((r) => r.contender === contender && r.workload === workload)?.upstreamCallsPerOp;
    expect(calls('bff', 'medium')).toEqual(calls('handwritten', 'medium'));
    expect(calls('bff', 'medium')).toEqual({
      'identity.users': 1,
      'billing.invoicesByUser': 1,
      'product.GetProducts': 1,
    });
    expect(calls('naive', 'medium')?.['product.GetProducts']).toBe(60); // N+1: one per line
    expect(calls('bff-observed', 'medium')).toEqual(calls('handwritten', 'medium'));

    // The observed BFF was scraped (when the load starts and at the end, at least; every scrape
    // answered) and exported its sampled spans; the others have no telemetry to report.
    expect(results.find((r) => r.contender === 'bff')?.telemetry).toBeUndefined();
    const telemetry = results.find(
      (r) => r.contender === 'bff-observed' && r.workload === 'medium',
    )?.telemetry;
    expect(telemetry?.scrapes).toBeGreaterThanOrEqual(2);
    expect(telemetry?.failedScrapes).toBe(0);
    expect(telemetry?.requestsServed).toBeGreaterThan(0);
    expect(telemetry?.spansReceived).toBeGreaterThanOrEqual(telemetry?.tracesReceived ?? 0);
    // 10% of traces are sampled: with 100 requests or more, none sampled is a 1-in-37,000 event.
    if ((telemetry?.requestsServed ?? 0) >= 100) expect(telemetry?.spansReceived).toBeGreaterThan(0);
  }, 240_000);

  it('summarises a CPU profile by package and by function', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-profile-'));
    try {
      const busy =
        'let x = 0; const t = Date.now(); while (Date.now() - t < 300) x += JSON.stringify({ x }).length;';
      execFileSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, '-e', busy]);
      const [file] = readdirSync(dir);
      const out = execFileSync(
        process.execPath,
        ['--import', 'tsx', 'bench/profile.ts', join(dir, file as string), '10', 'stringify'],
        { cwd: root, encoding: 'utf8' },
      );
      expect(out).toMatch(/self time by package/);
      expect(out).toMatch(/charged to the package that called them/);
      expect(out).toMatch(/call paths to \/stringify\//);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
