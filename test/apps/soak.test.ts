// A short run of the soak harness (`pnpm soak` runs it for 60 s), so that it cannot rot:
// faults switched on and off every 1.5 s, and no request may hang.

import { describe, expect, it } from 'vitest';
import { runSoak } from '../soak/soak.ts';

describe('mixed load with faults switched on and off (short soak)', () => {
  it('ends with zero hung requests and coded errors only', async () => {
    // At least 6 s (four fault phases) and 120 requests, however slowly a busy machine serves.
    // It goes on until some answer met a fault, so that the assertion below is about the BFF.
    const report = await runSoak({
      seconds: 6,
      concurrency: 8,
      phaseMs: 1_500,
      minRequests: 120,
      untilFaultsFelt: true,
    });
    expect(report.hung).toBe(0);
    expect(report.requests).toBeGreaterThanOrEqual(120);
    expect(report.complete).toBeGreaterThan(0);
    expect(report.partial + report.refused).toBeGreaterThan(0); // the faults were felt
    expect(report.phases.length).toBeGreaterThanOrEqual(4);
    expect(report.codes.NETWORK ?? 0).toBe(0);
    expect(Object.keys(report.codes).every((code) => /^[A-Z_]+$/.test(code) && code !== 'NONE')).toBe(true);
  }, 120_000);
});
