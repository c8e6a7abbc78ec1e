import { UpstreamError, UpstreamErrorCode } from '@bff/upstream-clients';
import { describe, expect, it } from 'vitest';
import { RetryBudget, UpstreamGuard } from '../src/index.ts';

const unavailable = (retryAfterMs?: number) =>
  new UpstreamError('billing', UpstreamErrorCode.Unavailable, 'down', { retryAfterMs });

describe('RetryBudget', () => {
  it('allows retries in proportion to calls, plus a floor that refills with time', () => {
    const budget = new RetryBudget({ ratio: 0.5, minPerSecond: 0, maxTokens: 10 });
    expect(budget.tryWithdraw()).toBe(false);
    budget.deposit();
    budget.deposit();
    expect(budget.tryWithdraw()).toBe(true);
    expect(budget.tryWithdraw()).toBe(false);
  });

  it('names a bad option', () => {
    expect(() => new RetryBudget({ ratio: -1 })).toThrow(/ratio.*-1/);
  });
});

describe('UpstreamGuard', () => {
  it('retries a transient failure of a read once, and never a write', async () => {
    const guard = new UpstreamGuard({ service: 'billing', backoffBaseMs: 1 });
    let tries = 0;
    const flaky = async () => {
      tries++;
      if (tries === 1) throw unavailable();
      return 'ok';
    };
    expect(await guard.call(flaky, { idempotent: true })).toBe('ok');
    expect(tries).toBe(2);
    tries = 0;
    await expect(guard.call(flaky, { idempotent: false })).rejects.toThrow('down');
    expect(tries).toBe(1);
  });

  it('does not retry what is not the service’s fault', async () => {
    const guard = new UpstreamGuard({ service: 'billing' });
    let tries = 0;
    await expect(
      guard.call(
        async () => {
          tries++;
          throw new UpstreamError('billing', UpstreamErrorCode.InvalidArgument, 'bad');
        },
        { idempotent: true },
      ),
    ).rejects.toThrow('bad');
    expect(tries).toBe(1);
  });

  it('gives each try what is left of the deadline, and none past it', async () => {
    const guard = new UpstreamGuard({ service: 'billing', callTimeoutMs: 5_000 });
    const given: number[] = [];
    await guard.call(async (timeout) => given.push(timeout), {
      idempotent: true,
      deadline: Date.now() + 300,
    });
    expect(given[0]).toBeLessThanOrEqual(300);
    await expect(
      guard.call(async () => 1, { idempotent: true, deadline: Date.now() - 1 }),
    ).rejects.toMatchObject({ code: 'UPSTREAM_TIMEOUT' });
  });

  it('waits what Retry-After asks, and skips a retry that would not fit the deadline', async () => {
    const guard = new UpstreamGuard({ service: 'billing' });
    let tries = 0;
    const started = Date.now();
    await expect(
      guard.call(
        async () => {
          tries++;
          throw unavailable(500);
        },
        { idempotent: true, deadline: Date.now() + 200 },
      ),
    ).rejects.toThrow('down');
    expect(tries).toBe(1);
    expect(Date.now() - started).toBeLessThan(150);
  });

  it('opens after a run of failures, then fails at once with UPSTREAM_UNAVAILABLE', async () => {
    const guard = new UpstreamGuard({
      service: 'product',
      minimumRps: 1,
      samplingMs: 1_000,
      halfOpenAfterMs: 60_000,
      maxAttempts: 1,
    });
    for (let i = 0; i < 20; i++)
      await guard
        .call(
          async () => {
            throw unavailable();
          },
          { idempotent: true },
        )
        .catch(() => {});
    expect(guard.state).toBe('open');
    let called = false;
    await expect(
      guard.call(
        async () => {
          called = true;
        },
        { idempotent: true },
      ),
    ).rejects.toMatchObject({ code: 'UPSTREAM_UNAVAILABLE' });
    expect(called).toBe(false);
    expect(guard.stats.shortCircuited).toBeGreaterThan(0);
  });

  it('names a bad option', () => {
    expect(() => new UpstreamGuard({ service: 'billing', failureThreshold: 2 })).toThrow(
      /failureThreshold.*2/,
    );
  });
});
