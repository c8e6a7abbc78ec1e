// The JWKS call: Identity's key set fetched like every other upstream read (deadline, retries
// through the guard, call reporting), and only a key set accepted as one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createJwksClient, type JwksClient, type UpstreamCall, UpstreamErrorCode } from '../src/index.ts';
import { inTurn, never, RecordingGuard, reply, startHttpStub, upstreamError } from './stubs.ts';

const KEY = { kty: 'EC', crv: 'P-256', x: 'x', y: 'y', kid: 'k1', alg: 'ES256', use: 'sig' };

let stub: Awaited<ReturnType<typeof startHttpStub>>;
beforeAll(async () => {
  stub = await startHttpStub();
});
afterAll(async () => {
  await stub?.close();
});

async function withClient(
  test: (client: JwksClient, seen: { guard: RecordingGuard; calls: UpstreamCall[] }) => Promise<void>,
  options: { timeoutMs?: number; path?: string } = {},
) {
  const guard = new RecordingGuard();
  const calls: UpstreamCall[] = [];
  const client = createJwksClient({
    url: `${stub.url}${options.path ?? '/.well-known/jwks.json'}`,
    timeoutMs: options.timeoutMs ?? 5_000,
    guard,
    onCall: (call) => calls.push(call),
  });
  try {
    await test(client, { guard, calls });
  } finally {
    await client.close().catch(() => {});
  }
}

describe('createJwksClient', () => {
  it('fetches the key set from the URL given, as a read reported like any identity call', async () => {
    stub.answer(reply(200, { keys: [KEY] }));
    await withClient(
      async (client, { guard, calls }) => {
        expect(await client.fetchKeySet()).toEqual({ keys: [KEY] });
        expect(stub.requests).toEqual(['GET /keys/jwks.json?v=2']);
        expect(guard.calls).toEqual([{ idempotent: true }]);
        expect(calls).toMatchObject([{ service: 'identity', operation: 'GET /keys/jwks.json', ok: true }]);
      },
      { path: '/keys/jwks.json?v=2' },
    );
  });

  it('accepts an empty key set (the verifier then knows no key)', async () => {
    stub.answer(reply(200, { keys: [] }));
    await withClient(async (client) => {
      expect(await client.fetchKeySet()).toEqual({ keys: [] });
    });
  });

  it('retries a failed fetch and answers with the retry', async () => {
    stub.answer(inTurn(reply(503, {}), reply(200, { keys: [KEY] })));
    await withClient(async (client, { guard }) => {
      expect(await client.fetchKeySet()).toEqual({ keys: [KEY] });
      expect(stub.requests).toHaveLength(2);
      expect(guard.failures).toBe(1);
    });
  });

  it.each([
    ['no keys member', {}],
    ['keys that are not an array', { keys: { k1: KEY } }],
    ['keys that are not objects', { keys: [KEY, 'k2'] }],
    ['a null key', { keys: [null] }],
    ['an array', [KEY]],
    ['not JSON', '<html>'],
  ])('makes %s an UPSTREAM_BAD_RESPONSE (a read: tried twice)', async (_name, body) => {
    stub.answer(reply(200, body));
    await withClient(async (client, { guard }) => {
      const error = await upstreamError(client.fetchKeySet());
      expect(error.code).toBe(UpstreamErrorCode.BadResponse);
      expect(error.service).toBe('identity');
      expect(stub.requests).toHaveLength(2);
      expect(guard.failures).toBe(2);
    });
  });

  it('makes a 404 (a misconfigured URL) an UPSTREAM_BAD_RESPONSE, asked once', async () => {
    stub.answer(reply(404, { error: 'not found' }));
    await withClient(async (client) => {
      expect((await upstreamError(client.fetchKeySet())).code).toBe(UpstreamErrorCode.BadResponse);
      expect(stub.requests).toHaveLength(1);
    });
  });

  it('gives up at the deadline with UPSTREAM_TIMEOUT', async () => {
    stub.answer(never);
    await withClient(
      async (client) => {
        expect((await upstreamError(client.fetchKeySet())).code).toBe(UpstreamErrorCode.Timeout);
      },
      { timeoutMs: 100 },
    );
  });

  it('stops when the verifier gives up on it (its signal)', async () => {
    stub.answer(never);
    await withClient(async (client) => {
      const controller = new AbortController();
      const pending = upstreamError(client.fetchKeySet({ signal: controller.signal }));
      await expect.poll(() => stub.requests.length).toBe(1);
      controller.abort();
      expect((await pending).code).toBe(UpstreamErrorCode.Cancelled);
      expect(stub.requests).toHaveLength(1);
    });
  });

  it('names a URL that is not http(s)', () => {
    expect(() => createJwksClient({ url: 'file:///etc/jwks.json' })).toThrow(
      /url must be an http\(s\) URL, received "file:\/\/\/etc\/jwks.json"/,
    );
    expect(() => createJwksClient({ url: undefined as never })).toThrow(/received undefined/);
  });
});
