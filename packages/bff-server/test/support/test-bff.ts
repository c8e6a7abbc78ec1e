// A BFF of this package alone: the base schema plus two fields of a test app, a small policy,
// and upstreams that are unreachable unless a test passes stubs. Requests that need no
// upstream (`{ __typename }`, refusals) are all these tests send to it.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AppPolicy } from '@bff/resolvers';
import { type BffServerOptions, type RunningBff, startBff } from '../../src/index.ts';

/** Nothing listens on port 1: connections are refused at once. */
export const UNREACHABLE_URL = 'http://127.0.0.1:1';
export const UNREACHABLE_ADDR = '127.0.0.1:1';

/** What the `boom` field throws: text that must never reach a client in production. */
export const SECRET_DETAIL = 'connection to postgres://admin:hunter2@10.0.0.5 failed';

export const testPolicy: AppPolicy = Object.freeze({
  products: { default: 10, max: 20 },
  invoices: { default: 10, max: 20 },
  limits: {
    maxDepth: 10,
    maxAliases: 15,
    maxDirectives: 10,
    maxTokens: 1_000,
    maxCost: 2_000,
    maxRootFields: 8,
    maxBodyBytes: 4_096,
    maxDocumentChars: 2_000,
    defaultListSize: 10,
  },
  operationBudgetMs: 2_000,
});

const APP_SDL = `
extend type Query {
  "Always fails with an unexpected error."
  boom: String @public
  "Returns its argument."
  echo(text: String!): String @public
}
`;

export type TestBffOptions = Partial<Omit<BffServerOptions, 'schemaDir' | 'resolvers'>>;

/** Starts the test app on port 0 (quiet, development mode unless overridden). */
export async function startTestBff(overrides: TestBffOptions = {}): Promise<RunningBff> {
  const schemaDir = await mkdtemp(join(tmpdir(), 'bff-server-test-'));
  try {
    await writeFile(join(schemaDir, 'app.graphql'), APP_SDL);
    return await startBff({
      app: 'ios',
      policy: testPolicy,
      port: 0,
      identityUrl: UNREACHABLE_URL,
      billingUrl: UNREACHABLE_URL,
      productAddr: UNREACHABLE_ADDR,
      upstreamTimeoutMs: 1_000,
      production: false,
      graphiql: false,
      logLevel: false,
      shutdownGraceMs: 2_000,
      ...overrides,
      schemaDir,
      resolvers: {
        Query: {
          boom: () => {
            throw new Error(SECRET_DETAIL);
          },
          echo: (_parent: unknown, args: { text: string }) => args.text,
        },
      },
    });
  } finally {
    // The schema is read at start.
    await rm(schemaDir, { recursive: true, force: true });
  }
}

/** A tiny HTTP server on port 0 standing in for an upstream; closed with `close()`. */
export async function startStub(
  handler: (request: IncomingMessage, response: ServerResponse) => void,
): Promise<{ url: string; requests: string[]; close(): Promise<void> }> {
  const requests: string[] = [];
  const server: Server = createServer((request, response) => {
    requests.push(`${request.method} ${request.url}`);
    handler(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

export interface GraphQLResponseBody {
  data?: Record<string, unknown> | null;
  errors?: { message: string; extensions?: Record<string, unknown> }[];
}
