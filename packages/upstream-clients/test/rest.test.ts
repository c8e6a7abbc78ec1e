// The REST clients (Identity, Billing) against a stub upstream on port 0: deadlines, reads
// retried and writes never, refusals neither retried nor held against the service, and answers
// that cannot be read made coded UpstreamErrors.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  BillingRejection,
  Cancellation,
  createBillingClient,
  createIdentityClient,
  type IdentityClient,
  InvalidCredentialsError,
  type UpstreamCall,
  UpstreamErrorCode,
} from '../src/index.ts';
import { inTurn, never, RecordingGuard, reply, startHttpStub, upstreamError } from './stubs.ts';

const USER = { id: 'u-1', email: 'ada@example.com', name: 'Ada', avatarUrl: 'https://x/a.png' };

let stub: Awaited<ReturnType<typeof startHttpStub>>;
let guard: RecordingGuard;
let calls: UpstreamCall[];
let identity: IdentityClient;
beforeAll(async () => {
  stub = await startHttpStub();
});
afterAll(async () => {
  await identity?.close();
  await stub?.close();
});
beforeEach(async () => {
  await identity?.close();
  guard = new RecordingGuard();
  calls = [];
  identity = createIdentityClient({
    baseUrl: stub.url,
    timeoutMs: 5_000, // ample on a loaded machine: only the deadline test waits for one
    guard,
    onCall: (call) => calls.push(call),
  });
});

describe('reads (GET)', () => {
  it('answers from the service, reporting the call', async () => {
    stub.answer(reply(200, { users: [USER] }));
    expect(await identity.getUsers(['u-1', 'u/2'])).toEqual([USER]);
    expect(stub.requests).toEqual(['GET /v1/users?ids=u-1,u%2F2']);
    expect(calls).toMatchObject([
      { service: 'identity', operation: 'GET /v1/users', batchSize: 2, ok: true },
    ]);
    expect(guard.calls).toEqual([{ idempotent: true }]);
  });

  it('gives up at the deadline with UPSTREAM_TIMEOUT, and tries a read once more', async () => {
    stub.answer(never);
    const hasty = createIdentityClient({
      baseUrl: stub.url,
      timeoutMs: 100,
      guard,
      onCall: (call) => calls.push(call),
    });
    try {
      const error = await upstreamError(hasty.getUsers(['u-1']));
      expect(error.code).toBe(UpstreamErrorCode.Timeout);
      // Counted at the client: on a loaded machine a try may time out before it reaches the stub.
      expect(calls.map((c) => c.ok)).toEqual([false, false]);
    } finally {
      await hasty.close().catch(() => {});
    }
  });

  it('retries a read that failed with 503 and answers with the retry', async () => {
    stub.answer(inTurn(reply(503, { error: 'busy' }, { 'retry-after': '1' }), reply(200, { users: [USER] })));
    expect(await identity.getUsers(['u-1'])).toEqual([USER]);
    expect(stub.requests).toHaveLength(2);
    expect(guard.failures).toBe(1);
  });

  it('reports 503 and 429 as UPSTREAM_UNAVAILABLE with the Retry-After asked, 500 as UPSTREAM_BAD_RESPONSE', async () => {
    stub.answer(reply(429, {}, { 'retry-after': '2' }));
    const limited = await upstreamError(identity.getUsers(['u-1']));
    expect(limited.code).toBe(UpstreamErrorCode.Unavailable);
    expect(limited.retryAfterMs).toBe(2_000);
    stub.answer(reply(500, 'oops'));
    expect((await upstreamError(identity.getUsers(['u-1']))).code).toBe(UpstreamErrorCode.BadResponse);
    expect(stub.requests).toHaveLength(2); // tried twice, as a read
  });

  it('refuses a 400 as UPSTREAM_INVALID_ARGUMENT: tried once, not counted against the service', async () => {
    stub.answer(reply(400, { error: { code: 'BAD_ID' } }));
    const error = await upstreamError(identity.getUsers(['u-1']));
    expect(error.code).toBe(UpstreamErrorCode.InvalidArgument);
    expect(error.refusal).toBe(true);
    expect(stub.requests).toHaveLength(1);
    expect(guard.failures).toBe(0);
  });

  it.each([
    ['invalid JSON', '{"users": ['],
    ['an empty body', ''],
    ['no users array', { users: 'u-1' }],
    ['an array instead of an object', [USER]],
    ['null', 'null'],
  ])('makes %s an UPSTREAM_BAD_RESPONSE, never an answer', async (_name, body) => {
    stub.answer(reply(200, body));
    const error = await upstreamError(identity.getUsers(['u-1']));
    expect(error.code).toBe(UpstreamErrorCode.BadResponse);
    expect(error.message).not.toContain('127.0.0.1');
    expect(stub.requests).toHaveLength(2); // a bad answer is the service's fault: a read is retried
    expect(guard.failures).toBe(2);
  });

  it.each([
    ['an AbortSignal', () => new AbortController()],
    ['a Cancellation', () => new Cancellation()],
  ])(
    'stops at once when the caller gives up (%s), with UPSTREAM_CANCELLED, not retried',
    async (_kind, make) => {
      stub.answer(never);
      const controller = make();
      const signal = controller instanceof Cancellation ? controller : controller.signal;
      const pending = upstreamError(identity.getUsers(['u-1'], { signal }));
      await expect.poll(() => stub.requests.length).toBe(1);
      controller.abort();
      expect((await pending).code).toBe(UpstreamErrorCode.Cancelled);
      expect(stub.requests).toHaveLength(1);
      expect(guard.failures).toBe(0);
    },
  );

  it('sends the caller trace with every try and ends each try with its outcome', async () => {
    const seen: (string | string[] | undefined)[] = [];
    stub.answer(
      inTurn(
        (request, response) => {
          seen.push(request.headers.traceparent);
          reply(503, {})(request, response);
        },
        (request, response) => {
          seen.push(request.headers.traceparent);
          reply(200, { users: [USER] })(request, response);
        },
      ),
    );
    const tries: string[] = [];
    const trace = {
      startTry: (service: string, operation: string) => {
        const n = tries.length;
        tries.push(`${service} ${operation}`);
        return {
          headers: { traceparent: `00-${'a'.repeat(32)}-${String(n).padStart(16, '0')}-01` },
          end: (outcome: string) => tries.push(outcome),
        };
      },
    };
    await identity.getUsers(['u-1'], { trace });
    expect(seen).toEqual([
      `00-${'a'.repeat(32)}-${'0'.repeat(16)}-01`,
      `00-${'a'.repeat(32)}-${'0'.repeat(15)}2-01`,
    ]);
    expect(tries).toEqual(['identity GET /v1/users', 'error', 'identity GET /v1/users', 'ok']);
    expect(calls.map((call) => call.outcome)).toEqual(['error', 'ok']);
  });

  it('does not call the service for nothing', async () => {
    stub.answer(reply(200, { users: [] }));
    expect(await identity.getUsers([])).toEqual([]);
    expect(stub.requests).toEqual([]);
  });
});

describe('writes (POST)', () => {
  it('never retries a write, even when the failure is transient', async () => {
    stub.answer(reply(503, {}));
    const error = await upstreamError(
      identity.issueToken({ email: 'ada@example.com', password: 'pw', audience: 'web' }),
    );
    expect(error.code).toBe(UpstreamErrorCode.Unavailable);
    expect(stub.requests).toEqual(['POST /v1/token']);
    expect(guard.calls).toEqual([{ idempotent: false }]);
  });

  it('passes refused credentials on as InvalidCredentialsError, not counted against the service', async () => {
    stub.answer(reply(401, { error: 'nope' }));
    await expect(
      identity.issueToken({ email: 'ada@example.com', password: 'wrong', audience: 'web' }),
    ).rejects.toBeInstanceOf(InvalidCredentialsError);
    expect(stub.requests).toHaveLength(1);
    expect(guard.failures).toBe(0);
  });

  it('refuses a token answer without a token as UPSTREAM_BAD_RESPONSE', async () => {
    stub.answer(reply(200, { token_type: 'Bearer' }));
    const error = await upstreamError(
      identity.issueToken({ email: 'ada@example.com', password: 'pw', audience: 'web' }),
    );
    expect(error.code).toBe(UpstreamErrorCode.BadResponse);
    expect(stub.requests).toHaveLength(1);
  });

  it('passes a Billing refusal on as a BillingRejection with its code, tried once', async () => {
    const billingGuard = new RecordingGuard();
    const billing = createBillingClient({ baseUrl: stub.url, timeoutMs: 5_000, guard: billingGuard });
    try {
      stub.answer(reply(409, { error: { code: 'OUT_OF_STOCK', message: 'none left' } }));
      const refusal = await billing
        .purchase({ userId: 'u-1', productId: 'p-1', quantity: 1, idempotencyKey: 'k-1' })
        .catch((e: unknown) => e);
      expect(refusal).toBeInstanceOf(BillingRejection);
      expect(refusal).toMatchObject({ status: 409, code: 'OUT_OF_STOCK' });
      expect(stub.requests).toEqual(['POST /v1/purchases']);
      expect(billingGuard.failures).toBe(0);

      stub.answer(reply(200, { invoices: { not: 'an array' } }));
      expect((await upstreamError(billing.getInvoices(['i-1']))).code).toBe(UpstreamErrorCode.BadResponse);
    } finally {
      await billing.close();
    }
  });
});

describe('options', () => {
  it('names a bad base URL or timeout', () => {
    expect(() => createIdentityClient({ baseUrl: 'ftp://identity' })).toThrow(
      /baseUrl must be an http\(s\) URL, received "ftp:\/\/identity"/,
    );
    expect(() => createBillingClient({ baseUrl: stub.url, timeoutMs: 0 })).toThrow(
      /timeoutMs must be positive, received 0/,
    );
  });
});
