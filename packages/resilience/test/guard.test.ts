import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createIdentityClient, UpstreamError, UpstreamErrorCode } from '@bff/upstream-clients';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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

  describe('refused input (the caller’s fault, not the service’s)', () => {
    const breakerOptions = {
      minimumRps: 1,
      samplingMs: 1_000,
      halfOpenAfterMs: 60_000,
      backoffBaseMs: 1,
    } as const;
    const refusals = [
      [
        'an UPSTREAM_INVALID_ARGUMENT',
        () => new UpstreamError('product', UpstreamErrorCode.InvalidArgument, 'bad id'),
      ],
      ['an UPSTREAM_NOT_FOUND', () => new UpstreamError('product', UpstreamErrorCode.NotFound, 'no such id')],
      // What the REST transport throws through the guard for a 4xx, and gRPC NOT_FOUND as it is.
      ['an error that is not an UpstreamError', () => Object.assign(new Error('answered 400'), { code: 5 })],
    ] as const;

    it.each(refusals)(
      '%s, fifty times over, is never retried and leaves the breaker closed',
      async (_, refusal) => {
        const guard = new UpstreamGuard({ service: 'product', ...breakerOptions });
        let tries = 0;
        for (let i = 0; i < 50; i++) {
          await expect(
            guard.call(
              async () => {
                tries++;
                throw refusal();
              },
              { idempotent: true },
            ),
          ).rejects.toBeInstanceOf(Error);
        }
        expect(tries).toBe(50);
        expect(guard.stats).toMatchObject({ calls: 50, retries: 0, opened: 0, shortCircuited: 0 });
        expect(guard.state).toBe('closed');
        let called = false;
        await guard.call(
          async () => {
            called = true;
          },
          { idempotent: true },
        );
        expect(called).toBe(true);
      },
    );

    it('does not count as a success either, so it cannot hide a failing service', async () => {
      const guard = new UpstreamGuard({ service: 'product', ...breakerOptions, maxAttempts: 1 });
      const refused = () =>
        guard
          .call(
            async () => {
              throw new UpstreamError('product', UpstreamErrorCode.InvalidArgument, 'bad id');
            },
            { idempotent: true },
          )
          .catch(() => {});
      const failed = () =>
        guard
          .call(
            async () => {
              throw unavailable();
            },
            { idempotent: true },
          )
          .catch(() => {});
      // Counted as successes, 100 refusals would keep 10 failures far below the 40% threshold.
      for (let i = 0; i < 100; i++) await refused();
      for (let i = 0; i < 10; i++) await failed();
      expect(guard.state).toBe('open');
    });
  });

  it('names a bad option', () => {
    expect(() => new UpstreamGuard({ service: 'billing', failureThreshold: 2 })).toThrow(
      /failureThreshold.*2/,
    );
  });

  describe('over a real REST client', () => {
    // Identity's batch endpoint as the guard sees it: a 400 for a malformed id, a 500 when failing.
    let requests = 0;
    const server = createServer((request, response) => {
      requests++;
      const failing = request.url?.includes('down');
      response.writeHead(failing ? 500 : 400, { 'content-type': 'application/json' });
      response.end(JSON.stringify({ error: { code: failing ? 'INTERNAL' : 'BAD_REQUEST', message: 'no' } }));
    });
    let baseUrl = '';
    beforeAll(async () => {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(async () => {
      await new Promise((resolve) => server.close(resolve));
    });

    it('a 400 is an UPSTREAM_INVALID_ARGUMENT, never retried, neither failure nor success to the breaker', async () => {
      const guard = new UpstreamGuard({
        service: 'identity',
        minimumRps: 1,
        samplingMs: 1_000,
        backoffBaseMs: 1,
      });
      const identity = createIdentityClient({ baseUrl, guard });
      try {
        requests = 0;
        for (let i = 0; i < 100; i++) {
          const error = await identity.getUsers(['bad\u0000']).catch((e: unknown) => e);
          expect(error).toMatchObject({
            code: UpstreamErrorCode.InvalidArgument,
            refusal: true,
            transient: false,
          });
        }
        expect(requests).toBe(100);
        expect(guard.stats.retries).toBe(0);
        expect(guard.state).toBe('closed');
        // Had those 100 answers counted as successes, a few failures could not open it.
        for (let i = 0; i < 5; i++) await identity.getUsers(['down']).catch(() => {});
        expect(guard.state).toBe('open');
      } finally {
        await identity.close();
      }
    });
  });
});
