// The HTTP side of a BFF: every refusal before GraphQL (unreadable body, wrong content type,
// oversized body, headers past Node's limit, a garbled request line) is a stable status with a
// coded GraphQL error body; request ids; operation resolution; and unexpected errors masked in
// production with the request id to quote. Fastify inject where it can, a raw socket where
// only Node's parser sees the request.
import { connect } from 'node:net';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerHttpErrorHandler } from '../src/error-handling.ts';
import type { RunningBff } from '../src/index.ts';
import { type GraphQLResponseBody, SECRET_DETAIL, startTestBff, testPolicy } from './support/test-bff.ts';

let dev: RunningBff;
let prod: RunningBff;
beforeAll(async () => {
  [dev, prod] = await Promise.all([startTestBff(), startTestBff({ production: true })]);
});
afterAll(async () => {
  await Promise.all([dev?.close(), prod?.close()]);
});

const postJson = (bff: RunningBff, payload: unknown, headers: Record<string, string> = {}) =>
  bff.app.inject({
    method: 'POST',
    url: '/graphql',
    headers: { 'content-type': 'application/json', ...headers },
    payload: typeof payload === 'string' ? payload : JSON.stringify(payload),
  });
const body = (response: { json(): unknown }) => response.json() as GraphQLResponseBody;
const codeOf = (response: { json(): unknown }) => body(response).errors?.[0]?.extensions?.code;

describe('a request that needs no upstream', () => {
  it('is answered with the upstreams unreachable', async () => {
    const response = await postJson(dev, { query: '{ __typename }' });
    expect(response.statusCode).toBe(200);
    expect(body(response)).toEqual({ data: { __typename: 'Query' } });
    const echo = await postJson(prod, {
      query: 'query($t: String!) { echo(text: $t) }',
      variables: { t: 'hi' },
    });
    expect(body(echo)).toEqual({ data: { echo: 'hi' } });
  });
});

describe('refusals before GraphQL, in the GraphQL error shape', () => {
  it('a malformed JSON body: 400 BAD_REQUEST', async () => {
    for (const bff of [dev, prod]) {
      const response = await postJson(bff, '{"query": "{ __typename }",');
      expect(response.statusCode).toBe(400);
      expect(response.headers['content-type']).toMatch(/^application\/json/);
      expect(body(response).errors).toEqual([
        { message: 'The request could not be read', extensions: { code: 'BAD_REQUEST' } },
      ]);
    }
  });

  it('a content type GraphQL is not served in: 415 UNSUPPORTED_MEDIA_TYPE', async () => {
    for (const type of ['application/xml', 'application/x-www-form-urlencoded', 'image/png']) {
      const response = await dev.app.inject({
        method: 'POST',
        url: '/graphql',
        headers: { 'content-type': type },
        payload: 'query={__typename}',
      });
      expect(response.statusCode, type).toBe(415);
      expect(body(response).errors).toEqual([
        { message: 'Send operations as application/json', extensions: { code: 'UNSUPPORTED_MEDIA_TYPE' } },
      ]);
    }
  });

  it('a body past maxBodyBytes: 413 PAYLOAD_TOO_LARGE naming the limit, its size only outside production', async () => {
    const big = { query: '{ __typename }', variables: { pad: 'x'.repeat(testPolicy.limits.maxBodyBytes) } };
    const inDev = await postJson(dev, big);
    expect(inDev.statusCode).toBe(413);
    expect(body(inDev).errors).toEqual([
      {
        message: `The request body is larger than ${testPolicy.limits.maxBodyBytes} bytes`,
        extensions: { code: 'PAYLOAD_TOO_LARGE', limit: 'bodyBytes' },
      },
    ]);
    const inProd = await postJson(prod, big);
    expect(inProd.statusCode).toBe(413);
    expect(body(inProd).errors?.[0]).toEqual({
      message: 'The request body is too large',
      extensions: { code: 'PAYLOAD_TOO_LARGE', limit: 'bodyBytes' },
    });
  });

  it('a body just under maxBodyBytes is read', async () => {
    const pad = 'x'.repeat(testPolicy.limits.maxBodyBytes - 200);
    const response = await postJson(dev, { query: '{ __typename }', variables: { pad } });
    expect(response.statusCode).toBe(200);
  });
});

describe('registerHttpErrorHandler', () => {
  it('keeps 4xx statuses, masks everything else as 500 INTERNAL_SERVER_ERROR', async () => {
    const app = Fastify({ logger: false });
    registerHttpErrorHandler(app, { maxBodyBytes: 100, exposeLimits: true });
    app.get('/crash', async () => {
      throw new Error(SECRET_DETAIL);
    });
    app.get('/status/:code', async (request) => {
      const status = Number((request.params as { code: string }).code);
      throw Object.assign(new Error(SECRET_DETAIL), { statusCode: status });
    });
    try {
      for (const url of ['/crash', '/status/502', '/status/503']) {
        const response = await app.inject({ method: 'GET', url });
        expect(response.statusCode, url).toBe(500);
        expect(body(response).errors).toEqual([
          { message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } },
        ]);
      }
      for (const status of [400, 404, 405, 429, 431]) {
        const response = await app.inject({ method: 'GET', url: `/status/${status}` });
        expect(response.statusCode).toBe(status);
        expect(body(response).errors).toEqual([
          { message: 'The request could not be read', extensions: { code: 'BAD_REQUEST' } },
        ]);
      }
      const everything = await app.inject({ method: 'GET', url: '/crash' });
      expect(everything.body).not.toContain('hunter2');
    } finally {
      await app.close();
    }
  });
});

/** Sends raw bytes to the BFF and reads everything it answers until it closes the connection. */
function raw(bff: RunningBff, bytes: string): Promise<{ status: number; headers: string; body: string }> {
  const { port } = new URL(bff.url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: Number(port) });
    const chunks: Buffer[] = [];
    socket.setTimeout(10_000, () => {
      socket.destroy();
      reject(new Error('the BFF neither answered nor closed the connection'));
    });
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', () => {}); // a reset after the answer is fine; the answer is what counts
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const [head = '', payload = ''] = text.split('\r\n\r\n');
      resolve({ status: Number(head.split(' ')[1]), headers: head, body: payload });
    });
    socket.write(bytes);
  });
}

describe('requests Node’s parser refuses (answerClientError)', () => {
  it('headers past Node’s limit: 431 with a coded body, then the connection closes', async () => {
    const answer = await raw(
      dev,
      `POST /graphql HTTP/1.1\r\nHost: localhost\r\nX-Padding: ${'a'.repeat(20_000)}\r\n\r\n`,
    );
    expect(answer.status).toBe(431);
    expect(answer.headers).toMatch(/content-type: application\/json/i);
    expect(answer.headers).toMatch(/connection: close/i);
    expect(JSON.parse(answer.body)).toEqual({
      errors: [{ message: 'The request headers are too large', extensions: { code: 'BAD_REQUEST' } }],
    });
  });

  it('a garbled request line: 400 with a coded body', async () => {
    const answer = await raw(prod, 'THIS IS NOT HTTP\r\n\r\n');
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body)).toEqual({
      errors: [{ message: 'The request could not be read', extensions: { code: 'BAD_REQUEST' } }],
    });
  });

  it('a bad header line: 400 with a coded body', async () => {
    const answer = await raw(dev, 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nBad Header Name: x\r\n\r\n');
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body).errors[0].extensions.code).toBe('BAD_REQUEST');
  });
});

describe('request ids', () => {
  it('echoes a well-formed x-request-id and replaces anything else with a UUID', async () => {
    const given = await postJson(dev, { query: '{ __typename }' }, { 'x-request-id': 'client-42:abc.def' });
    expect(given.headers['x-request-id']).toBe('client-42:abc.def');
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    for (const hostile of ['has spaces', 'a'.repeat(129), 'semi;colon', '<script>', '']) {
      const response = await postJson(dev, { query: '{ __typename }' }, { 'x-request-id': hostile });
      expect(response.headers['x-request-id'], hostile).toMatch(uuid);
    }
    // Refusals carry one too, so a client can quote it.
    const refused = await postJson(dev, '{', { 'x-request-id': 'refused-1' });
    expect(refused.headers['x-request-id']).toBe('refused-1');
  });
});

describe('operation resolution', () => {
  it('an operationName that names no operation: 400 OPERATION_RESOLUTION_FAILURE', async () => {
    const response = await postJson(dev, { query: 'query A { __typename }', operationName: 'B' });
    expect(response.statusCode).toBe(400);
    expect(body(response).errors?.[0]).toMatchObject({
      message: 'Unknown operation named "B".',
      extensions: { code: 'OPERATION_RESOLUTION_FAILURE' },
    });
  });

  it('several operations and no operationName: 400 OPERATION_RESOLUTION_FAILURE', async () => {
    const response = await postJson(prod, { query: 'query A { __typename } query B { __typename }' });
    expect(response.statusCode).toBe(400);
    expect(body(response).errors?.[0]).toMatchObject({
      message: 'Must provide operation name if query contains multiple operations.',
      extensions: { code: 'OPERATION_RESOLUTION_FAILURE' },
    });
  });

  it('picks the named one of several operations', async () => {
    const response = await postJson(dev, {
      query: 'query A { a: __typename } query B { b: __typename }',
      operationName: 'B',
    });
    expect(body(response)).toEqual({ data: { b: 'Query' } });
  });

  it('a subscription, which this schema does not serve: 400 GRAPHQL_VALIDATION_FAILED, not a 500', async () => {
    const response = await postJson(dev, { query: 'subscription { __typename }' });
    expect(response.statusCode).toBe(400);
    expect(codeOf(response)).toBe('GRAPHQL_VALIDATION_FAILED');
  });
});

describe('unexpected errors', () => {
  it('are masked in production, with the request id to quote', async () => {
    const response = await postJson(prod, { query: '{ boom }' }, { 'x-request-id': 'quote-me-1' });
    expect(response.statusCode).toBe(200);
    expect(body(response).data).toEqual({ boom: null });
    expect(body(response).errors?.[0]).toEqual({
      message: 'Internal server error',
      locations: [{ line: 1, column: 3 }],
      path: ['boom'],
      extensions: { code: 'INTERNAL_SERVER_ERROR', requestId: 'quote-me-1' },
    });
    expect(response.body).not.toContain('hunter2');
    expect(response.body).not.toContain('10.0.0.5');
  });

  it('keep their message outside production, coded and with the request id', async () => {
    const response = await postJson(dev, { query: '{ boom }' }, { 'x-request-id': 'quote-me-2' });
    const error = body(response).errors?.[0];
    expect(error?.message).toBe(SECRET_DETAIL);
    expect(error?.extensions).toMatchObject({ code: 'INTERNAL_SERVER_ERROR', requestId: 'quote-me-2' });
  });

  it('client mistakes carry no stack trace, even outside production', async () => {
    const response = await postJson(dev, { query: '{ echo }' });
    expect(response.statusCode).toBe(400);
    const error = body(response).errors?.[0];
    expect(error?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(error?.extensions).not.toHaveProperty('stacktrace');
  });
});
