// The hostile suite's generators (documents, variables, argument values, headers, bodies,
// valid operations over a schema) and the targets they are fired at: each BFF runs in a
// process of its own, so that a request that blocks its event loop is seen as "not answered"
// by a deadline that still fires, and that BFF can be restarted without stopping the suite.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BffErrorCode, isBffErrorCode } from '@bff/error-codes';
import type { AppName } from '@bff/resolvers';
import fc from 'fast-check';
import {
  type GraphQLArgument,
  type GraphQLField,
  type GraphQLInputType,
  type GraphQLNamedType,
  type GraphQLObjectType,
  type GraphQLSchema,
  getNamedType,
  getNullableType,
  isEnumType,
  isLeafType,
  isListType,
  isNonNullType,
  isObjectType,
  isScalarType,
} from 'graphql';
import { findApp } from '../../scripts/app-discovery.ts';

// ---------------------------------------------------------------------------------------------
// Requests and answers

/** One HTTP request, as sent: printed as is when a property fails, so it can be replayed. */
export interface HostileRequest {
  method: 'GET' | 'POST';
  /** The query string of a GET, without `?`. */
  search?: string;
  headers: Record<string, string>;
  body?: string;
}

export interface Answer {
  status: number;
  text: string;
  ms: number;
}

/** Thrown when a BFF does not answer within the deadline. */
export class NotAnsweredError extends Error {}

/** Sends one request with a deadline; a deadline passed is a `NotAnsweredError`, not a hang. */
export async function send(url: string, request: HostileRequest, deadlineMs: number): Promise<Answer> {
  const started = performance.now();
  const target = `${url}/graphql${request.search === undefined ? '' : `?${request.search}`}`;
  try {
    const response = await fetch(target, {
      method: request.method,
      headers: request.headers,
      ...(request.body === undefined ? {} : { body: request.body }),
      signal: AbortSignal.timeout(deadlineMs),
    });
    return { status: response.status, text: await response.text(), ms: performance.now() - started };
  } catch (error) {
    if (error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError'))
      throw new NotAnsweredError(`not answered within ${deadlineMs} ms`);
    throw error;
  }
}

export const postJson = (body: unknown, headers: Record<string, string> = {}): HostileRequest => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', ...headers },
  body: JSON.stringify(body),
});

interface FormattedError {
  message?: unknown;
  path?: unknown;
  extensions?: { code?: unknown; stacktrace?: unknown };
}

/** Error codes of an answer's body, in order; `undefined` where an error has none. */
export function errorsOf(text: string): FormattedError[] | undefined {
  try {
    const body = JSON.parse(text) as { errors?: unknown };
    return Array.isArray(body.errors) ? (body.errors as FormattedError[]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What every answer to a client's mistake must be: not a 5xx; a 4xx or an error carries a code
 * from the one enum, never INTERNAL_SERVER_ERROR; no stack trace, source path or upstream
 * address in the body. Returns the violations (empty when the answer is fine).
 */
export function violations(
  request: HostileRequest,
  answer: Answer,
  upstreamAddresses: readonly string[],
): string[] {
  const found: string[] = [];
  if (answer.status >= 500) found.push(`status ${answer.status}`);
  const errors = errorsOf(answer.text);
  let parsed = true;
  try {
    JSON.parse(answer.text);
  } catch {
    parsed = false;
  }
  // Even what Node's parser refuses before Fastify routes it (431, a malformed request line)
  // is answered in the coded shape (answerClientError in packages/bff-server).
  if (answer.status >= 400) {
    if (!parsed) found.push(`a ${answer.status} whose body is not JSON`);
    else if (!errors?.length) found.push(`a ${answer.status} without errors`);
  }
  for (const error of errors ?? []) {
    const code = error.extensions?.code;
    if (!isBffErrorCode(code)) found.push(`an error without a code of the enum: ${JSON.stringify(code)}`);
    if (code === BffErrorCode.InternalServerError) found.push('INTERNAL_SERVER_ERROR');
  }
  const sent = `${request.search ?? ''}${request.body ?? ''}${JSON.stringify(request.headers)}`;
  const leaks: [string, RegExp][] = [
    ['a stacktrace', /"stacktrace"/],
    ['a stack frame', /(?:\\n|\n)\s*at [^\s"]+ \(|(?:\\n|\n) {4}at /],
    ['a source path', /\/work\/|node_modules|file:\/\/|\.ts:\d+/],
  ];
  for (const [what, pattern] of leaks)
    if (pattern.test(answer.text) && !pattern.test(sent)) found.push(`${what} in the body`);
  for (const address of upstreamAddresses)
    if (answer.text.includes(address)) found.push(`the upstream address ${address} in the body`);
  return found;
}

/** A compact account of an answer for failure messages. */
export function excerpt(answer: Answer, chars = 600): string {
  return `${answer.status} in ${Math.round(answer.ms)} ms: ${answer.text.slice(0, chars)}`;
}

// ---------------------------------------------------------------------------------------------
// Targets: one BFF per process

export interface TargetOptions {
  app: AppName;
  production: boolean;
  executor: 'jit' | 'graphql-js';
  identityUrl: string;
  billingUrl: string;
  productAddr: string;
}

const testRoot = fileURLToPath(new URL('..', import.meta.url));

/** A BFF in a child process, restartable when a request has wedged it. */
export class Target {
  url = '';
  private child: ChildProcess | undefined;
  constructor(readonly options: TargetOptions) {}

  get label(): string {
    const { app, production, executor } = this.options;
    return `${app} (${production ? 'production' : 'development'}, ${executor})`;
  }

  async start(): Promise<this> {
    const { app, production, executor, identityUrl, billingUrl, productAddr } = this.options;
    const config = {
      port: 0,
      identityUrl,
      billingUrl,
      productAddr,
      production,
      graphiql: false,
      logLevel: false,
      executor,
      // One client address sends every generated request: the default 600 calls a minute
      // would turn the checks that follow each property into RATE_LIMITED answers.
      rateLimit: { defaults: { max: 1_000_000, window: '1m' } },
    };
    const script = `
      const { startBff } = await import(${JSON.stringify(pathToFileURL(findApp(app).entry).href)});
      const bff = await startBff(${JSON.stringify(config)});
      process.stdout.write('READY ' + bff.url + '\\n');`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: testRoot,
      env: { PATH: process.env.PATH ?? '', NODE_ENV: production ? 'production' : 'development' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    let output = '';
    this.url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.label} did not start: ${output}`)), 45_000);
      const read = (chunk: Buffer) => {
        output += chunk.toString();
        const match = /READY (http:\/\/\S+)/.exec(output);
        if (match?.[1]) {
          clearTimeout(timer);
          resolve(match[1]);
        }
      };
      child.stdout?.on('data', read);
      child.stderr?.on('data', read);
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`${this.label} exited with ${code}: ${output}`));
      });
    });
    return this;
  }

  /** Kills the process (it holds no state worth a graceful drain here). */
  async close(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  /** A wedged BFF is replaced, so that one failure does not time out every later request. */
  async restart(): Promise<void> {
    await this.close();
    await this.start();
  }
}

// ---------------------------------------------------------------------------------------------
// Strings

/** Strings a client may send where a name, an id or a search is expected. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(
    '',
    ' ',
    '\u0000',
    'p-0001\u0000',
    '\u0000'.repeat(64),
    '\u0007\b\f\v\u001b[31m',
    '\r\n\r\n',
    '\uFEFF',
    '\uD800',
    '\uDFFF\uD800',
    '🛒🛒🛒',
    'Ω≈ç√∫˜µ≤≥÷',
    '\u202Ep-0001',
    'NaN',
    'Infinity',
    '-0',
    '1e309',
    'null',
    'undefined',
    'true',
    '[object Object]',
    '__proto__',
    'constructor',
    'prototype',
    "'; DROP TABLE products; --",
    '%00%0d%0a',
    '../../../../etc/passwd',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the log4shell probe, sent as it is
    '${jndi:ldap://x}',
    '{{7*7}}',
    '<script>alert(1)</script>',
    'p-0001',
    'p-9999',
    'P-0001',
    ' p-0001 ',
    'cHJvZHVjdDpwLTAwMDE', // base64url of "product:p-0001"
    'cHJvZHVjdDo', // "product:"
    'cHJvZHVjdDr/', // "product:" and a broken byte
    '====',
    '%%%',
  ),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({
    unit: fc.constantFrom('\u0000', '\u0001', '\u001f', '\u007f', '\u0085', '\u2028'),
    maxLength: 20,
  }),
  fc.nat({ max: 20_000 }).map((n) => 'x'.repeat(n)),
  fc.nat({ max: 5_000 }).map((n) => '\u00e9'.repeat(n)),
);

/** Header values fetch can send: visible ASCII, spaces and Latin-1 (no CR, LF or NUL). */
const headerValue: fc.Arbitrary<string> = fc.oneof(
  fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 60 }),
  fc.string({ unit: fc.integer({ min: 0xa0, max: 0xff }).map((c) => String.fromCharCode(c)), maxLength: 20 }),
  fc.nat({ max: 12_000 }).map((n) => 'z'.repeat(n)),
  fc.constantFrom('', ' ', '\t', 'null', 'undefined', '[]', '{}', '0', '-1', '9'.repeat(40)),
);

// ---------------------------------------------------------------------------------------------
// Documents

const fieldNames = [
  'product',
  'products',
  'productsByIds',
  'viewer',
  'id',
  'name',
  'sku',
  'price',
  'formatted',
  'amountMinor',
  'edges',
  'node',
  'totalCount',
  'pageInfo',
  'invoices',
  '__typename',
  '__schema',
  '__type',
  'prodct',
  'nmae',
  'Product',
  'unknownField',
  'inventory',
  'thumbnailUrl',
  'deepLink',
  'description',
  'a',
];
const fragmentNames = ['F0', 'F1', 'F2', 'F3', 'Missing'];
const typeConditions = ['Query', 'Product', 'Money', 'User', 'Mutation', 'Nope', 'String'];

const nameArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom(...fieldNames) },
  { weight: 1, arbitrary: fc.integer({ min: 200, max: 5_000 }).map((n) => `f${'x'.repeat(n)}`) },
  { weight: 1, arbitrary: fc.stringMatching(/^[_A-Za-z][_0-9A-Za-z]{0,12}$/) },
);

const literalArb: fc.Arbitrary<string> = fc.oneof(
  hostileString.map((s) => JSON.stringify(s)),
  fc.constantFrom('1', '-1', '0', '2147483648', '99999999999999999999', '1.5', 'true', 'null', 'RED', '[]'),
  fc.constantFrom('$v', '$first', '$id', '$undeclared', '{ a: 1 }', '[1, "a", null]', '"""block"""'),
);

const argsArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constant('') },
  {
    weight: 2,
    arbitrary: fc
      .array(
        fc.tuple(
          fc.constantFrom('id', 'first', 'after', 'ids', 'search', 'category', 'x', 'scale'),
          literalArb,
        ),
        { minLength: 1, maxLength: 3 },
      )
      .map((pairs) => `(${pairs.map(([k, v]) => `${k}: ${v}`).join(', ')})`),
  },
);

const directiveArb: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constant('') },
  {
    weight: 2,
    arbitrary: fc
      .array(
        fc.constantFrom(
          '@include(if: true)',
          '@include(if: $flag)',
          '@skip(if: $flag)',
          '@skip(if: false)',
          '@include',
          '@include(if: "yes")',
          '@unknownDirective',
          '@deprecated',
          '@auth',
          '@rateLimit(max: 1)',
          '@skip(if: $undeclared)',
        ),
        { minLength: 1, maxLength: 4 },
      )
      .map((ds) => ` ${ds.join(' ')}`),
  },
);

const { selection: selectionArb } = fc.letrec<{ selection: string; selectionSet: string }>((tie) => ({
  selection: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    // a field, maybe aliased, with arguments, directives and a sub-selection
    fc
      .tuple(
        fc.option(nameArb, { nil: undefined }),
        nameArb,
        argsArb,
        directiveArb,
        fc.option(tie('selectionSet'), { nil: undefined }),
      )
      .map(
        ([alias, name, args, directives, sub]) =>
          `${alias ? `${alias}: ` : ''}${name}${args}${directives}${sub ? ` ${sub}` : ''}`,
      ),
    // a spread of a named fragment (maybe unknown)
    fc.tuple(fc.constantFrom(...fragmentNames), directiveArb).map(([name, d]) => `...${name}${d}`),
    // an inline fragment
    fc
      .tuple(
        fc.option(fc.constantFrom(...typeConditions), { nil: undefined }),
        directiveArb,
        tie('selectionSet'),
      )
      .map(([on, d, sub]) => `...${on ? ` on ${on}` : ''}${d} ${sub}`),
  ),
  selectionSet: fc
    .array(tie('selection'), { minLength: 1, maxLength: 4 })
    .map((selections) => `{ ${selections.join(' ')} }`),
}));

const selectionSetArb = fc
  .array(selectionArb, { minLength: 1, maxLength: 5 })
  .map((selections) => `{ ${selections.join(' ')} }`);

/** Fragments that spread each other `fanout` times per level: linear text, exponential paths. */
export const fragmentFanout = (levels: number, fanout: number, underField: boolean): string => {
  const parts = [`query Fan { ...G0 }`];
  for (let i = 0; i < levels; i++) {
    const next = i + 1 < levels ? `...G${i + 1}` : '__typename';
    const spreads = Array.from({ length: fanout }, () => next).join(' ');
    parts.push(
      `fragment G${i} on Query { ${underField ? `__typename viewer { __typename } ${spreads}` : spreads} }`,
    );
  }
  return parts.join('\n');
};

const variableDefinitionsArb = fc.oneof(
  fc.constant(''),
  fc
    .subarray(
      [
        '$flag: Boolean!',
        '$v: String',
        '$id: ID!',
        '$first: Int = 2',
        '$x: Nope',
        '$flag: Boolean',
        '$y: [[Int!]!]',
      ],
      { minLength: 1 },
    )
    .map((defs) => `(${defs.join(', ')})`),
);

const operationArb = fc
  .tuple(
    fc.constantFrom('', 'query', 'query', 'mutation', 'subscription'),
    fc.option(fc.constantFrom('A', 'B', 'Op', 'query'), { nil: undefined }),
    variableDefinitionsArb,
    directiveArb,
    selectionSetArb,
  )
  .map(([kind, name, vars, d, set]) =>
    kind === '' ? set : `${kind}${name ? ` ${name}` : ''}${vars}${d} ${set}`,
  );

const fragmentDefinitionArb = fc
  .tuple(fc.constantFrom(...fragmentNames), fc.constantFrom(...typeConditions), directiveArb, selectionSetArb)
  .map(([name, on, d, set]) => `fragment ${name} on ${on}${d} ${set}`);

/** Breaks valid-looking text the way a bad client or a fuzzer would. */
const corruptArb = (document: string): fc.Arbitrary<string> =>
  fc.oneof(
    { weight: 6, arbitrary: fc.constant(document) },
    { weight: 1, arbitrary: fc.nat({ max: document.length }).map((at) => document.slice(0, at)) },
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          fc.nat({ max: document.length }),
          fc.constantFrom('{', '}', '(', ')', '"', '"""', '$', '@', '...', '#', '\u0000', '!', ':', '=', '|'),
        )
        .map(([at, junk]) => `${document.slice(0, at)}${junk}${document.slice(at)}`),
    },
  );

/** A document a client might send: mostly wrong, sometimes right, occasionally pathological. */
export const documentArb: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc
      .tuple(
        fc.array(operationArb, { minLength: 1, maxLength: 3 }),
        fc.array(fragmentDefinitionArb, { maxLength: 4 }),
      )
      .map(([ops, frags]) => [...ops, ...frags].join('\n'))
      .chain(corruptArb),
  },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: 2, max: 12 }), fc.integer({ min: 2, max: 8 }), fc.boolean())
      .map(([levels, fanout, under]) => fragmentFanout(levels, fanout, under)),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      '',
      ' ',
      '{',
      '}',
      '{}',
      'query',
      '{ ...F } fragment F on Query { ...F }',
      '{ ...A } fragment A on Query { ...B } fragment B on Query { ...A ...A }',
      'subscription { products { totalCount } }',
      'mutation { logout }',
      'mutation { purchase(input: {}) { invoice { id } } }',
      '{ products(first: 2) { edges { node { id } } } } { products { totalCount } }',
      'query A { __typename } query A { __typename }',
      '{ __typename @include(if: true) @include(if: true) }',
      '\u0000{ __typename }',
      '{ __typename }\u0000',
      '# only a comment',
      '"""doc""" { __typename }',
      `{ ${'a'.repeat(9_000)} }`,
      `{ product(id: "${'\\u0000'.repeat(500)}") { id } }`,
      '{ product(id: "\\uD800") { id } }',
      '{ products(first: 1e400) { totalCount } }',
    ),
  },
);

/** An operationName: absent, one of the document's, or one pointing to nothing. */
export const operationNameArb: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: fc.constant(undefined) },
  { weight: 2, arbitrary: fc.constantFrom('A', 'B', 'Op', 'Fan', 'Nothing', '', 'query') },
  { weight: 1, arbitrary: fc.constantFrom(null, 1, true, [], {}, 'x'.repeat(20_000)) },
);

// ---------------------------------------------------------------------------------------------
// Variables

/** `depth` nested arrays, as JSON text (JSON.stringify would recurse as deep). */
export const nestedArrayJson = (depth: number, leaf = '1') =>
  `${'['.repeat(depth)}${leaf}${']'.repeat(depth)}`;
export const nestedObjectJson = (depth: number, key = 'a') =>
  `${`{"${key}":`.repeat(depth)}1${'}'.repeat(depth)}`;

/** JSON values of the wrong shape for any variable. */
export const hostileValueArb: fc.Arbitrary<unknown> = fc.oneof(
  hostileString,
  fc.constantFrom(
    null,
    true,
    false,
    0,
    -1,
    1.5,
    2 ** 31,
    -(2 ** 31) - 1,
    2 ** 53 + 2,
    1e308,
    -0,
    [],
    {},
    [null],
    ['p-0001', null],
    { __proto__: { polluted: true } },
    JSON.parse('{"__proto__": {"polluted": true}}'),
    { constructor: { prototype: { polluted: true } } },
    { productId: 'p-0001', quantity: 1, idempotencyKey: 'k', extra: 1 },
    { productid: 'p-0001', quantity: 1, idempotencyKey: 'k' },
    { productId: 'p-0001', quantity: '1', idempotencyKey: 'k' },
  ),
  fc.array(hostileString, { maxLength: 5 }),
  fc.nat({ max: 2_000 }).map((n) => Array.from({ length: n }, (_, i) => `p-${String(i).padStart(4, '0')}`)),
  fc.jsonValue({ maxDepth: 4 }),
);

/**
 * A variables object as JSON text: generated values, and sometimes a raw deep structure that
 * JSON.stringify itself could not produce without recursing as deep.
 */
export const variablesJsonArb = (names: readonly string[]): fc.Arbitrary<string> =>
  fc.oneof(
    {
      weight: 6,
      arbitrary: fc
        .dictionary(fc.constantFrom(...names, '__proto__', 'constructor', 'unknown'), hostileValueArb, {
          maxKeys: 4,
        })
        .map((v) => JSON.stringify(v)),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(fc.constantFrom(...names), fc.constantFrom(100, 1_000, 5_000, 15_000), fc.boolean())
        .map(
          ([name, depth, array]) =>
            `{${JSON.stringify(name)}:${array ? nestedArrayJson(depth, '"p-0001"') : nestedObjectJson(depth, 'productId')}}`,
        ),
    },
    { weight: 1, arbitrary: fc.constantFrom('null', '[]', '"x"', '1', 'true', '{"__proto__":{"x":1}}') },
  );

// ---------------------------------------------------------------------------------------------
// Headers

/** Headers of a request otherwise sent as it should be. */
export const headersArb: fc.Arbitrary<Record<string, string>> = fc.record(
  {
    authorization: fc.oneof(
      headerValue,
      headerValue.map((v) => `Bearer ${v}`),
      fc.constantFrom('Bearer', 'Bearer ', 'Basic Zm9vOmJhcg==', 'bearer x.y.z', 'Bearer a.b.c', 'Bearer ..'),
      fc
        .tuple(fc.base64String({ maxLength: 60 }), fc.base64String({ maxLength: 200 }))
        .map(([h, p]) => `Bearer ${h}.${p}.sig`),
    ),
    cookie: fc.oneof(
      headerValue,
      headerValue.map((v) => `__Host-bff_session=${v}`),
      fc.constantFrom('__Host-bff_session=', '__Host-bff_session', ';;;', '=;=', '__Host-bff_session=a.b.c'),
    ),
    'x-request-id': headerValue,
    'accept-language': fc.oneof(
      headerValue,
      fc.constantFrom('*', 'xx-YY', 'en-US;q=abc', 'de;q=0.5,fr;q=2', `${'en,'.repeat(500)}`, 'zz-Zzzz-ZZ'),
    ),
    'x-app-version': fc.oneof(
      headerValue,
      fc.constantFrom('0', '0.0.0', '999999.0', '1.2.3.4.5', '-1', '1e3'),
    ),
    // A cached public GET's ETag, matched or not (weak, lists, the wildcard, huge, malformed).
    'if-none-match': fc.oneof(
      headerValue,
      fc.constantFrom(
        '*',
        '"x"',
        'W/"x"',
        '"a", "b"',
        'W/',
        '""',
        ',,,',
        '"unterminated',
        `"${'a'.repeat(3_000)}"`,
      ),
    ),
    'apollo-require-preflight': headerValue,
    'x-apollo-operation-name': headerValue,
    accept: fc.constantFrom(
      'application/json',
      'application/graphql-response+json',
      'text/html',
      '*/*',
      '',
      'application/json;q=0',
      'multipart/mixed; deferSpec=20220824',
      'text/event-stream',
    ),
  },
  { requiredKeys: [] },
);

/** Content types, valid or not, for a JSON body. */
export const contentTypeArb: fc.Arbitrary<string | undefined> = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-8',
  'Application/JSON',
  'application/json; charset=latin1',
  'application/graphql-response+json',
  'application/graphql',
  'text/plain',
  'text/plain; charset=utf-8',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/jsonx',
  'application/json;;;',
  '',
  undefined,
);

// ---------------------------------------------------------------------------------------------
// Bodies

const sha = fc.stringMatching(/^[0-9a-f]{64}$/);

/** `extensions` objects, well-formed or not. */
export const extensionsArb = (knownHashes: readonly string[]): fc.Arbitrary<unknown> =>
  fc.oneof(
    fc.constant(undefined),
    fc.constantFrom(
      null,
      'x',
      1,
      [],
      {},
      { persistedQuery: null },
      { persistedQuery: 'x' },
      { persistedQuery: [] },
    ),
    fc
      .record(
        {
          version: fc.constantFrom(1, 2, 0, '1', null, -1),
          sha256Hash: fc.oneof(
            sha,
            knownHashes.length > 0 ? fc.constantFrom(...knownHashes) : sha,
            fc.constantFrom('', 'x', 'G'.repeat(64), 'A'.repeat(64), 1, null, [], 'a'.repeat(10_000)),
          ),
        },
        { requiredKeys: [] },
      )
      .map((pq) => ({ persistedQuery: pq })),
  );

/** Request bodies as text: wrong JSON, wrong types, batches, APQ mismatches. */
export const bodyTextArb = (knownHashes: readonly string[]): fc.Arbitrary<string> => {
  const queryValue = fc.oneof(
    fc.constantFrom('{ __typename }', '{ products(first: 2) { edges { node { id } } } }'),
    documentArb,
    fc.constantFrom(null, 1, true, [], {}, ['{ __typename }'], { query: '{ __typename }' }),
  );
  const variablesValue = fc.oneof(
    fc.constant(undefined),
    fc.constantFrom(null, 'x', '{}', '{"first":2}', 1, [], [1], true),
    fc.dictionary(fc.constantFrom('first', 'id', '__proto__', 'constructor'), hostileValueArb, {
      maxKeys: 3,
    }),
  );
  const operation = fc.record(
    {
      query: queryValue,
      variables: variablesValue,
      operationName: operationNameArb,
      extensions: extensionsArb(knownHashes),
    },
    { requiredKeys: [] },
  );
  return fc.oneof(
    { weight: 5, arbitrary: operation.map((o) => JSON.stringify(o)) },
    { weight: 2, arbitrary: fc.array(operation, { maxLength: 5 }).map((ops) => JSON.stringify(ops)) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        '',
        ' ',
        'null',
        'true',
        '0',
        '"{ __typename }"',
        '{',
        '{"query":',
        '{"query": "{ __typename }"',
        "{'query': '{ __typename }'}",
        '{"query": "{ __typename }", "query": 1}',
        '{"__proto__": {"query": "{ __typename }"}}',
        '{"constructor": {"prototype": {"query": 1}}}',
        '\u0000',
        '\uFEFF{"query": "{ __typename }"}',
        'query=%7B__typename%7D',
        '{"query": "{ __typename }", "variables": "{"}',
        '{"query": "{ __typename }", "extensions": "{"}',
        `{"query": "{ __typename }", "variables": ${nestedArrayJson(15_000)}}`,
        `{"query": "{ __typename }", "extensions": ${nestedObjectJson(10_000)}}`,
        `${'['.repeat(15_000)}${']'.repeat(15_000)}`,
      ),
    },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
  );
};

/** GET query strings: the same mistakes, in URL parameters. */
export const getSearchArb = (knownHashes: readonly string[]): fc.Arbitrary<string> =>
  fc
    .record(
      {
        query: fc.oneof(documentArb, fc.constantFrom('{ __typename }', 'mutation { logout }')),
        variables: fc.oneof(
          fc.constantFrom('{', 'null', '[]', '{"first":2}', '"x"', nestedArrayJson(1_000)),
          hostileValueArb.map((v) => JSON.stringify({ first: v })),
        ),
        operationName: fc.constantFrom('', 'A', 'Nothing'),
        extensions: extensionsArb(knownHashes).map((e) => (e === undefined ? '{' : JSON.stringify(e))),
      },
      { requiredKeys: [] },
    )
    .chain((params) =>
      fc.boolean().map((repeat) => {
        const search = new URLSearchParams(params as Record<string, string>);
        // A repeated parameter arrives as an array.
        if (repeat) search.append('query', '{ __typename }');
        return search.toString();
      }),
    );

// ---------------------------------------------------------------------------------------------
// Valid operations over a schema (the differential property)

export interface GeneratedOperation {
  query: string;
  variables: Record<string, unknown>;
}

interface Builder {
  variables: string[];
  values: Record<string, unknown>;
  fragments: string[];
  aliases: number;
}

/** Values for one argument type: mostly valid, sometimes not (a differential needs both). */
function valueFor(type: GraphQLInputType, argument: string, invalid: boolean): fc.Arbitrary<unknown> {
  if (isNonNullType(type)) return valueFor(type.ofType, argument, invalid);
  if (isListType(type))
    return fc.array(valueFor(type.ofType as GraphQLInputType, argument, invalid), { maxLength: 4 });
  const named = getNamedType(type) as GraphQLNamedType;
  if (invalid) return hostileValueArb;
  if (isEnumType(named)) return fc.constantFrom(...named.getValues().map((v) => v.name));
  if (isScalarType(named)) {
    switch (named.name) {
      case 'Int':
        return argument === 'first'
          ? fc.oneof(fc.integer({ min: 1, max: 5 }), fc.constantFrom(0, -1, 1_000, 2 ** 31 - 1))
          : fc.integer({ min: -2, max: 5 });
      case 'Boolean':
        return fc.boolean();
      case 'Float':
        return fc.double({ noNaN: true, noDefaultInfinity: true });
      default:
        if (argument === 'after')
          return fc.oneof(
            fc
              .integer({ min: 1, max: 60 })
              .map((n) => Buffer.from(`product:p-${String(n).padStart(4, '0')}`).toString('base64url')),
            hostileString,
          );
        if (argument === 'category') return fc.constantFrom('books', 'games', 'garden', 'nope', '');
        if (argument === 'search') return fc.constantFrom('a', 'lamp', 'zzz', '', ' ', '%');
        return fc.oneof(
          fc.integer({ min: 1, max: 60 }).map((n) => `p-${String(n).padStart(4, '0')}`),
          fc.constantFrom('p-9999', '', 'x'.repeat(65)),
        );
    }
  }
  return fc.constant(null);
}

/** Prints a JSON value as a GraphQL literal (enum values bare). */
function literal(value: unknown, enumType: boolean): string {
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) return `[${value.map((v) => literal(v, enumType)).join(', ')}]`;
  if (typeof value === 'object')
    return `{ ${Object.entries(value)
      .filter(([k]) => /^[_A-Za-z]\w*$/.test(k))
      .map(([k, v]) => `${k}: ${literal(v, false)}`)
      .join(', ')} }`;
  if (typeof value === 'string') return enumType ? value : JSON.stringify(value);
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : '0';
  return String(value);
}

/**
 * Valid operations (by construction: real fields, right argument types, fragments on the right
 * type) with variables that are sometimes wrong. Built as a random walk over the schema.
 */
export function validOperationArb(schema: GraphQLSchema, maxDepth = 4): fc.Arbitrary<GeneratedOperation> {
  const query = schema.getQueryType();
  if (!query) throw new TypeError('the schema has no Query type');
  // A random walk needs random choices made while building; fast-check supplies them as a
  // generator, so shrinking still works on the choices.
  return fc.gen().map((g) => {
    const builder: Builder = { variables: [], values: {}, fragments: [], aliases: 0 };
    const argumentText = (argument: GraphQLArgument): string | undefined => {
      const required = isNonNullType(argument.type);
      if (!required && !g(fc.boolean)) return undefined;
      const invalid = g(() => fc.integer({ min: 0, max: 9 })) === 0;
      const value = g(() => valueFor(argument.type, argument.name, invalid));
      if (g(fc.boolean) || invalid) {
        const name = `v${builder.variables.length}`;
        builder.variables.push(`$${name}: ${String(argument.type)}`);
        // A missing required variable, now and then.
        if (!(required && g(() => fc.integer({ min: 0, max: 14 })) === 0)) builder.values[name] = value;
        return `${argument.name}: $${name}`;
      }
      return `${argument.name}: ${literal(value, isEnumType(getNamedType(argument.type)))}`;
    };
    const directives = (): string => {
      const pick = g(() => fc.integer({ min: 0, max: 9 }));
      if (pick === 0) return ' @include(if: false)';
      if (pick === 1) return ' @skip(if: true)';
      if (pick === 2) {
        const name = `b${builder.variables.length}`;
        builder.variables.push(`$${name}: Boolean!`);
        builder.values[name] = g(fc.boolean);
        return ` @include(if: $${name})`;
      }
      return '';
    };
    const selectionSet = (type: GraphQLObjectType, depth: number): string => {
      const fields = Object.values(type.getFields()).filter(
        (field) => depth < maxDepth || isLeafType(getNamedType(field.type)),
      );
      const leaves = fields.filter((field) => isLeafType(getNamedType(field.type)));
      const chosen = g(() =>
        fc.uniqueArray(fc.constantFrom(...(fields.length > 0 ? fields : leaves)), {
          minLength: 1,
          maxLength: 4,
          selector: (f) => f.name,
        }),
      );
      const printed = chosen.map((field) => fieldText(field, depth));
      if (g(() => fc.integer({ min: 0, max: 5 })) === 0) printed.push('__typename');
      const body = `{ ${printed.join(' ')} }`;
      // Sometimes the same selections through a named fragment, or an inline one.
      const wrap = g(() => fc.integer({ min: 0, max: 5 }));
      if (wrap === 0) {
        const name = `Frag${builder.fragments.length}`;
        builder.fragments.push(`fragment ${name} on ${type.name} ${body}`);
        return `{ ...${name}${directives()} }`;
      }
      if (wrap === 1) return `{ ... on ${type.name}${directives()} ${body} }`;
      return body;
    };
    const fieldText = (field: GraphQLField<unknown, unknown>, depth: number): string => {
      const alias = builder.aliases < 6 && g(() => fc.integer({ min: 0, max: 5 })) === 0;
      if (alias) builder.aliases++;
      const args = field.args.map(argumentText).filter((a): a is string => a !== undefined);
      const named = getNamedType(getNullableType(field.type));
      const sub = isObjectType(named) ? ` ${selectionSet(named, depth + 1)}` : '';
      return `${alias ? `al${builder.aliases}: ` : ''}${field.name}${args.length ? `(${args.join(', ')})` : ''}${directives()}${sub}`;
    };
    const root = selectionSet(query, 1);
    const header = builder.variables.length ? `(${builder.variables.join(', ')})` : '';
    return {
      query: [`query Generated${header} ${root}`, ...builder.fragments].join('\n'),
      variables: builder.values,
    };
  });
}
