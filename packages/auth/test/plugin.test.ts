// The authentication plugin, in process: what a client gets when the token is bad, when the
// keys cannot be had (a coded 503, never a token refusal), and from the cookie session.
import { ApolloServer, HeaderMap } from '@apollo/server';
import type { BffContext, Viewer } from '@bff/resolvers';
import { UpstreamError, UpstreamErrorCode } from '@bff/upstream-clients';
import { buildSchema } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applyAuthDirectives,
  authDirectiveTypeDefs,
  createAuthPlugin,
  type JwtVerifier,
  TokenRejectedError,
} from '../src/index.ts';

const ADA: Viewer = { id: 'u-ada', roles: ['customer'], email: undefined, name: undefined };

/** A verifier whose answer each test sets, counting the tokens it was asked about. */
const verifier: JwtVerifier & { answer: (token: string) => Promise<Viewer>; tokens: string[] } = {
  answer: () => Promise.resolve(ADA),
  tokens: [],
  verify(token: string): Promise<Viewer> {
    verifier.tokens.push(token);
    return verifier.answer(token);
  },
};

let server: ApolloServer<BffContext>;
beforeAll(async () => {
  const schema = applyAuthDirectives(
    buildSchema(`${authDirectiveTypeDefs}
      type Query { me: String @auth hello: String @public }`),
  );
  const resolvers = {
    // Root values are called as (args, context, info).
    me: (_args: unknown, context: BffContext) => context.viewer?.id,
    hello: () => 'hi',
  };
  server = new ApolloServer<BffContext>({
    schema,
    rootValue: resolvers,
    plugins: [createAuthPlugin({ verifier, sessionCookie: true })],
  });
  await server.start();
});
afterAll(async () => {
  await server?.stop();
});

async function ask(query: string, headers: Record<string, string>) {
  verifier.tokens = [];
  const ended: string[] = [];
  const contextValue = {
    viewer: null,
    session: { start: () => {}, end: () => ended.push('end') },
  } as unknown as BffContext;
  const response = await server.executeOperation(
    {
      query,
      http: { method: 'POST', headers: new HeaderMap(Object.entries(headers)), search: '', body: {} },
    },
    { contextValue },
  );
  if (response.body.kind !== 'single') throw new Error('expected a single result');
  return { status: response.http.status, result: response.body.singleResult, ended };
}

describe('createAuthPlugin', () => {
  it('serves the viewer a good bearer token speaks for', async () => {
    verifier.answer = () => Promise.resolve(ADA);
    const { result } = await ask('{ me }', { authorization: 'Bearer a.b.c' });
    expect(result.data).toEqual({ me: 'u-ada' });
    expect(verifier.tokens).toEqual(['a.b.c']);
  });

  it('refuses a rejected bearer token with 401 UNAUTHENTICATED and its reason', async () => {
    verifier.answer = () => Promise.reject(new TokenRejectedError('expired'));
    const { status, result } = await ask('{ hello }', { authorization: 'Bearer a.b.c' });
    expect(status).toBe(401);
    expect(result.errors?.[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'expired' });
  });

  it.each([
    ['unavailable', UpstreamErrorCode.Unavailable, 'UPSTREAM_UNAVAILABLE'],
    ['timed out', UpstreamErrorCode.Timeout, 'UPSTREAM_TIMEOUT'],
    ['unreadable', UpstreamErrorCode.BadResponse, 'UPSTREAM_UNAVAILABLE'],
  ])('answers a JWKS that is %s with a coded 503, not a token refusal', async (_what, code, expected) => {
    verifier.answer = () =>
      Promise.reject(
        new UpstreamError('identity', code, 'identity GET /.well-known/jwks.json at http://10.0.0.7 failed'),
      );
    const { status, result } = await ask('{ hello }', { authorization: 'Bearer a.b.c' });
    expect(status).toBe(503);
    expect(result.errors).toHaveLength(1);
    expect(result.errors?.[0]?.extensions).toMatchObject({ code: expected, service: 'identity' });
    expect(result.errors?.[0]?.extensions?.reason).toBeUndefined();
    expect(JSON.stringify(result)).not.toMatch(/10\.0\.0\.7|jwks/);
  });

  it('reads the session cookie when there is no Authorization header', async () => {
    verifier.answer = () => Promise.resolve(ADA);
    const { result } = await ask('{ me }', { cookie: 'theme=dark; __Host-bff_session=c.o.k' });
    expect(result.data).toEqual({ me: 'u-ada' });
    expect(verifier.tokens).toEqual(['c.o.k']);
  });

  it('drops a rejected session cookie, ends the session and serves the request anonymously', async () => {
    verifier.answer = () => Promise.reject(new TokenRejectedError('invalid'));
    const { status, result, ended } = await ask('{ hello }', { cookie: '__Host-bff_session=x.y.z' });
    expect(status).toBeUndefined(); // 200
    expect(result.errors).toBeUndefined();
    expect(ended).toEqual(['end']);
  });

  it('answers a session cookie it cannot check (JWKS down) with 503, keeping the session', async () => {
    verifier.answer = () => Promise.reject(new UpstreamError('identity', UpstreamErrorCode.Unavailable, 'x'));
    const { status, result, ended } = await ask('{ hello }', { cookie: '__Host-bff_session=x.y.z' });
    expect(status).toBe(503);
    expect(result.errors?.[0]?.extensions?.code).toBe('UPSTREAM_UNAVAILABLE');
    expect(ended).toEqual([]);
  });

  it('takes a malformed or huge Cookie header as no session', async () => {
    verifier.answer = () => Promise.resolve(ADA);
    for (const cookie of [';;==;', '__Host-bff_session=%E0%A4%A', `junk=${'%'.repeat(200_000)}`]) {
      const { status, result } = await ask('{ hello }', { cookie });
      expect(status).toBeUndefined();
      expect(result.data).toEqual({ hello: 'hi' });
    }
    expect(verifier.tokens.length).toBeLessThanOrEqual(1); // only the broken-encoding one is a token
  });

  it('names a bad sessionCookie option', () => {
    expect(() => createAuthPlugin({ verifier, sessionCookie: '__Host-bff_session' as never })).toThrow(
      /sessionCookie must be a boolean, received "__Host-bff_session"/,
    );
  });
});
