// The REST services' shared HTTP foundation, in process through Fastify's inject (and one real
// listen on port 0): every refusal leaves as `{ error: { code, message } }` with a stable code,
// nothing unexpected leaks, and /healthz and /readyz say what they promise.
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpService, ErrorCode, HttpError, type HttpServiceOptions, listen } from '../src/index.ts';

const opened: FastifyInstance[] = [];
afterEach(async () => {
  await Promise.all(opened.splice(0).map((app) => app.close()));
});

/** A quiet service with a few routes that exercise the error handler. */
function service(options: Partial<HttpServiceOptions> = {}): FastifyInstance {
  const app = createHttpService({ name: 'test', logLevel: false, ...options });
  opened.push(app);
  app.post(
    '/items',
    {
      schema: {
        body: {
          type: 'object',
          required: ['name', 'count'],
          additionalProperties: false,
          properties: { name: { type: 'string' }, count: { type: 'integer' } },
        },
      },
    },
    async (request) => ({ received: request.body }),
  );
  app.get('/http-error', async () => {
    throw new HttpError(409, ErrorCode.EmailTaken, 'That email is taken', { field: 'email' });
  });
  app.get('/http-error-plain', async () => {
    throw new HttpError(404, ErrorCode.AccountNotFound, 'No such account');
  });
  app.get('/crash', async () => {
    throw new Error('connection to postgres://admin:hunter2@db.internal failed');
  });
  app.get('/status/:code', async (request) => {
    const status = Number((request.params as { code: string }).code);
    throw Object.assign(new Error(`raised with ${status}`), { statusCode: status });
  });
  return app;
}

const json = (response: { json(): unknown }) => response.json() as { error: Record<string, unknown> };

describe('createHttpService: coded errors', () => {
  it('sends an HttpError as it is: status, code, message and details', async () => {
    const app = service();
    const withDetails = await app.inject({ method: 'GET', url: '/http-error' });
    expect(withDetails.statusCode).toBe(409);
    expect(withDetails.json()).toEqual({
      error: { code: 'EMAIL_TAKEN', message: 'That email is taken', details: { field: 'email' } },
    });
    const plain = await app.inject({ method: 'GET', url: '/http-error-plain' });
    expect(plain.statusCode).toBe(404);
    expect(plain.json()).toEqual({ error: { code: 'ACCOUNT_NOT_FOUND', message: 'No such account' } });
  });

  it('answers a schema failure with 400 BAD_REQUEST, without coercing types or dropping fields', async () => {
    const app = service();
    const ok = await app.inject({ method: 'POST', url: '/items', payload: { name: 'pen', count: 2 } });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ received: { name: 'pen', count: 2 } });
    for (const payload of [
      { name: 42, count: 2 }, // a number where a string is expected: no coercion to "42"
      { name: 'pen', count: '2' }, // and no coercion the other way
      { name: 'pen', count: 2, admin: true }, // an extra field is refused, not silently removed
      { name: 'pen' },
    ]) {
      const response = await app.inject({ method: 'POST', url: '/items', payload });
      expect(response.statusCode, JSON.stringify(payload)).toBe(400);
      expect(json(response).error.code).toBe('BAD_REQUEST');
      expect(typeof json(response).error.message).toBe('string');
    }
  });

  it('answers a malformed JSON body with 400 BAD_REQUEST', async () => {
    const response = await service().inject({
      method: 'POST',
      url: '/items',
      headers: { 'content-type': 'application/json' },
      payload: '{"name": "pen",',
    });
    expect(response.statusCode).toBe(400);
    expect(json(response).error.code).toBe('BAD_REQUEST');
  });

  it('answers an unsupported content type with 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    const response = await service().inject({
      method: 'POST',
      url: '/items',
      headers: { 'content-type': 'application/xml' },
      payload: '<item/>',
    });
    expect(response.statusCode).toBe(415);
    expect(json(response).error.code).toBe('UNSUPPORTED_MEDIA_TYPE');
  });

  it('answers a body past bodyLimit with 413 PAYLOAD_TOO_LARGE (64 KiB unless configured)', async () => {
    const big = JSON.stringify({ name: 'x'.repeat(70_000), count: 1 });
    const byDefault = await service().inject({
      method: 'POST',
      url: '/items',
      headers: { 'content-type': 'application/json' },
      payload: big,
    });
    expect(byDefault.statusCode).toBe(413);
    expect(json(byDefault).error.code).toBe('PAYLOAD_TOO_LARGE');

    const small = service({ bodyLimit: 64 });
    const refused = await small.inject({
      method: 'POST',
      url: '/items',
      payload: { name: 'y'.repeat(100), count: 1 },
    });
    expect(refused.statusCode).toBe(413);
    const fits = await small.inject({ method: 'POST', url: '/items', payload: { name: 'y', count: 1 } });
    expect(fits.statusCode).toBe(200);
  });

  it('maps the 4xx statuses of other errors to their codes, and unknown ones to BAD_REQUEST', async () => {
    const app = service();
    const expected: Record<number, string> = {
      400: 'BAD_REQUEST',
      401: 'UNAUTHORIZED',
      403: 'FORBIDDEN',
      404: 'NOT_FOUND',
      405: 'METHOD_NOT_ALLOWED',
      409: 'CONFLICT',
      413: 'PAYLOAD_TOO_LARGE',
      415: 'UNSUPPORTED_MEDIA_TYPE',
      422: 'UNPROCESSABLE',
      418: 'BAD_REQUEST',
      429: 'BAD_REQUEST',
    };
    for (const [status, code] of Object.entries(expected)) {
      const response = await app.inject({ method: 'GET', url: `/status/${status}` });
      expect(response.statusCode).toBe(Number(status));
      expect(json(response).error.code, status).toBe(code);
    }
  });

  it('masks anything unexpected as 500 INTERNAL, 5xx statuses included, leaking no detail', async () => {
    const app = service();
    for (const url of ['/crash', '/status/503', '/status/500']) {
      const response = await app.inject({ method: 'GET', url });
      expect(response.statusCode, url).toBe(500);
      expect(response.json()).toEqual({ error: { code: 'INTERNAL', message: 'Internal error' } });
    }
    const crash = await app.inject({ method: 'GET', url: '/crash' });
    expect(crash.body).not.toMatch(/postgres|hunter2|db\.internal|stack/);
  });

  it('answers an unknown route with 404 NOT_FOUND naming the method and path, not the query', async () => {
    const response = await service().inject({ method: 'DELETE', url: '/nowhere/at/all?token=secret' });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toEqual({
      error: { code: 'NOT_FOUND', message: 'No route DELETE /nowhere/at/all' },
    });
  });
});

describe('createHttpService: health', () => {
  it('/healthz says the process is up, whatever readiness says', async () => {
    const app = service({
      readiness: async () => {
        throw new Error('database down');
      },
    });
    const response = await app.inject({ method: 'GET', url: '/healthz' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ok' });
  });

  it('/readyz follows readiness on every call, and tells nothing of why it is not ready', async () => {
    let databaseUp = true;
    let calls = 0;
    const app = service({
      readiness: async () => {
        calls++;
        if (!databaseUp) throw new Error('ECONNREFUSED 10.0.0.5:5432');
      },
    });
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready' });

    databaseUp = false;
    const down = await app.inject({ method: 'GET', url: '/readyz' });
    expect(down.statusCode).toBe(503);
    expect(down.json()).toEqual({ status: 'not ready' });
    expect(down.body).not.toContain('ECONNREFUSED');

    databaseUp = true;
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    expect(calls).toBe(3);
  });

  it('/readyz is ready when no readiness check is given', async () => {
    const response = await service().inject({ method: 'GET', url: '/readyz' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ status: 'ready' });
  });
});

describe('HttpError', () => {
  it('is an Error with its status, code and a body without details when there are none', () => {
    const error = new HttpError(400, ErrorCode.IdempotencyKeyMissing, 'Send an Idempotency-Key header');
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('HttpError');
    expect(error.statusCode).toBe(400);
    expect(error.toBody()).toEqual({
      error: { code: 'IDEMPOTENCY_KEY_MISSING', message: 'Send an Idempotency-Key header' },
    });
    expect(Object.keys(error.toBody().error)).not.toContain('details');
  });
});

describe('ErrorCode', () => {
  it('has distinct values', () => {
    const values = Object.values(ErrorCode);
    expect(new Set(values).size).toBe(values.length);
  });
});

describe('listen', () => {
  it('listens on a free port and returns a URL that reaches the service', async () => {
    const app = service();
    const url = await listen(app, 0);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(url).not.toMatch(/:0$/);
    const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: 'ok' });
  });

  it('gives a reachable loopback URL when listening on every interface', async () => {
    const app = service();
    const url = await listen(app, 0, '0.0.0.0');
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const response = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) });
    expect(response.status).toBe(200);
  });
});
