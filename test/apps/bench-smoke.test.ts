// A smoke run of the benchmark harness with a few requests, so that it cannot rot. It asserts
// what the harness guarantees (golden bodies, exact call counts), never how fast anything is.
import { runBench } from '@bff/bench/harness';
import { describe, expect, it } from 'vitest';

describe('the benchmark harness (smoke)', () => {
  it('runs every contender on the small workload, with every body golden and minimal upstream calls', async () => {
    const results = await runBench({
      seconds: 1,
      connections: 2,
      latenciesMs: [0],
      workloads: ['small', 'medium'],
      contenders: ['handwritten', 'bff', 'bff-without-plugins', 'naive'],
      fixedRate: false,
      rounds: 1,
    });
    expect(results).toHaveLength(8);
    for (const result of results) {
      expect(result.valid, `${result.contender} ${result.workload}`).toBe(true);
      expect(result.requests).toBeGreaterThan(0);
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
  }, 180_000);
});
