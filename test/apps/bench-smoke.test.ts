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
  it('runs the contenders on the medium and catalogue workloads, with every body golden and minimal upstream calls', async () => {
    const skipped: string[] = [];
    const results = await runBench({
      seconds: 1,
      connections: 2,
      latenciesMs: [0],
      // Two workloads and four contenders: every kind of contender process and request the
      // harness makes (POST with a token, GET by persisted hash), at half the suite's time of all.
      workloads: ['medium', 'catalogue'],
      // bff-observed: the BFF with its request log, scraped metrics and 10% of traces exported.
      contenders: ['handwritten', 'bff', 'naive', 'bff-observed'],
      fixedRate: false,
      rounds: 1,
      log: (line) => {
        if (line.includes(' skips ')) skipped.push(line);
      },
    });
    // Every contender on medium; the catalogue (the iOS app's) without naive, which says why.
    expect(results).toHaveLength(7);
    expect(skipped).toEqual([expect.stringMatching(/^naive skips catalogue: .+/)]);
    for (const result of results) {
      expect(result.valid, `${result.contender} ${result.workload}`).toBe(true);
      expect(result.requests).toBeGreaterThan(0);
      // CPU time is read from /proc for the contender, and for the fake upstreams when they had
      // work (a BFF answering from a response cache may leave them idle).
      expect(result.cpuUsPerOp.contender, `${result.contender} ${result.workload} CPU`).toBeGreaterThan(0);
      if (Object.values(result.upstreamCallsPerOp).some((perOp) => perOp > 0))
        expect(
          result.cpuUsPerOp.upstreams,
          `${result.contender} ${result.workload} upstreams' CPU`,
        ).toBeGreaterThan(0);
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

    // The public catalogue, by persisted hash over GET from a signed-out iOS client: the
    // hand-written aggregator makes its one ListProducts per page; each BFF at most that (a
    // response cache makes it fewer: the 20 counted operations repeat the workload's 8 pages).
    expect(calls('handwritten', 'catalogue')).toEqual({ 'product.ListProducts': 1 });
    expect(results.some((r) => r.contender === 'naive' && r.workload === 'catalogue')).toBe(false);
    for (const contender of ['bff', 'bff-observed']) {
      const made = calls(contender, 'catalogue');
      expect(made, `${contender} ran the catalogue`).toBeDefined();
      for (const [upstreamCall, perOp] of Object.entries(made ?? {}))
        expect(perOp, `${contender} catalogue ${upstreamCall}`).toBeLessThanOrEqual(
          calls('handwritten', 'catalogue')?.[upstreamCall] ?? 0,
        );
    }

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
  }, 300_000);

  it('runs the error-path measurement: Product down answers every request with errors, Product up none', () => {
    const out = execFileSync(process.execPath, ['--import', 'tsx', 'error-path.ts'], {
      cwd: join(root, 'bench'),
      encoding: 'utf8',
      env: { ...process.env, ERROR_PATH_REQUESTS: '3', ERROR_PATH_WARMUP: '1' },
      timeout: 120_000,
    });
    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(4);
    for (const [i, line] of lines.entries()) {
      const down = i % 2 === 1;
      expect(line).toMatch(new RegExp(`^product ${down ? 'down' : 'up  '}  \\d+ µs CPU per request`));
      expect(line).toMatch(new RegExp(`answers with errors: ${down ? 3 : 0}/3$`));
    }
  });

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
