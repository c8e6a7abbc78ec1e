import type {
  ApolloServerOptions,
  ApolloServerPlugin,
  BaseContext,
  GraphQLRequest,
  GraphQLRequestContext,
  GraphQLRequestListener,
  GraphQLResponse,
  HTTPGraphQLRequest,
  HTTPGraphQLResponse,
} from '@apollo/server';
import { HeaderMap } from '@apollo/server';
import type { FastifyRequest } from 'fastify';
import {
  type DocumentNode,
  type ExecutionResult,
  type FormattedExecutionResult,
  GraphQLError,
  type GraphQLFormattedError,
  type GraphQLSchema,
  getOperationAST,
  Kind,
  type OperationDefinitionNode,
} from 'graphql';
import Negotiator from 'negotiator';
import type { OperationExecutor } from './jit-executor.ts';
import { NOT_PASSED } from './one-plugin.ts';

/** Documents kept per map (by text, by persisted hash), least recently used dropped first. */
const MAX_KNOWN_DOCUMENTS = 500;
/**
 * Characters of document text kept per map. A parsed document keeps every token (for error
 * locations): token-dense text measured ~240 bytes of heap per character, so this bounds each
 * map near 30 MB, Apollo's own document store's size, whatever documents a client sends.
 */
const MAX_KNOWN_CHARS = 120_000;
/** The answer types Apollo chooses among for a single result, in its order. */
const JSON_TYPE = 'application/json; charset=utf-8';
const SINGLE_RESULT_TYPES = [
  JSON_TYPE,
  'application/graphql-response+json; charset=utf-8',
  'application/json; callbackSpec=1.0; charset=utf-8',
];
/** `Accept` values whose negotiated answer type is remembered (bounded: a client picks its own). */
const MAX_ACCEPT_VALUES = 64;
const MAX_ACCEPT_CHARS = 256;
/** The content types the route takes a POST body or a GET in: JSON (UTF-8), as clients send it. */
const JSON_CONTENT_TYPE = /^application\/json\s*(?:;\s*charset\s*=\s*"?utf-8"?\s*)?$/i;
/** Apollo's CSRF prevention headers (`csrfPrevention: true`): one of them makes a GET preflighted. */
const CSRF_HEADERS = ['x-apollo-operation-name', 'apollo-require-preflight'] as const;

/** A document Apollo has parsed and validated, as this route runs it again. */
interface KnownDocument {
  readonly source: string;
  readonly queryHash: string;
  readonly document: DocumentNode;
  /** Operations by the name asked for ('' for none), found once. */
  readonly operations: Map<string, OperationDefinitionNode>;
}

/** A request the route takes: its GraphQL part, and the document it names, already known. */
export interface FastRoutePlan {
  readonly request: GraphQLRequest;
  readonly known: KnownDocument;
  readonly operation: OperationDefinitionNode;
  readonly byHash: boolean;
  /** The answer's content type, as Apollo would negotiate it. */
  readonly contentType: string;
  readonly search: string;
}

export interface FastRouteOptions<TContext extends BaseContext> {
  schema: GraphQLSchema;
  /**
   * The server's only plugin with request hooks (the BFF's plugins as one, `asOnePlugin`): the
   * route calls it as Apollo would. A server with request hooks elsewhere must not use the route.
   */
  plugin: ApolloServerPlugin<TContext>;
  execute: OperationExecutor;
  formatError: ApolloServerOptions<TContext>['formatError'];
  includeStacktraceInErrorResponses: boolean;
  logger: GraphQLRequestContext<TContext>['logger'];
  /** The server's cache, as Apollo hands it to plugins (`requestContext.cache`). */
  cache: () => GraphQLRequestContext<TContext>['cache'];
  /** Documents kept, by text and by persisted hash each. @default 500 */
  maxDocuments?: number;
  /** Characters of document text kept, by text and by persisted hash each. @default 120,000 */
  maxChars?: number;
}

export interface FastRoute<TContext extends BaseContext> {
  /** Learns the documents Apollo validates: compose it with the server's plugins. */
  readonly learner: ApolloServerPlugin<TContext>;
  /**
   * The plan for a request whose every part Apollo would read the same way and whose document is
   * known; undefined sends the request through Apollo (anything unusual, or a new document).
   */
  plan(request: FastifyRequest): FastRoutePlan | undefined;
  /** Answers a planned request as Apollo's `executeHTTPGraphQLRequest` would. */
  run(
    plan: FastRoutePlan,
    request: FastifyRequest,
    createContext: () => Promise<TContext>,
  ): Promise<HTTPGraphQLResponse>;
  /** Documents known now (by text and by hash). */
  readonly knownDocuments: number;
  /** Requests the route has answered. */
  readonly served: number;
  /** From now on every request goes through Apollo (which refuses them once it has stopped). */
  stop(): void;
}

/**
 * The route for documents the server has already seen. Apollo's request pipeline costs a fixed
 * amount on every request whatever it asks (the body checked field by field, the `Accept` header
 * negotiated twice, the document's SHA-256, the document store, a `Promise.all` per hook); on a
 * small operation that was about a sixth of the BFF's CPU. For a request in the shape clients
 * send (a JSON POST, or a preflighted GET, with a document or a persisted hash Apollo has already
 * parsed and validated) this runs the same steps itself: the plugin hooks in Apollo's order with
 * the same request context, the same executor, the same error normalization, status codes and
 * headers. Everything else, and every document's first request, goes through Apollo, which is
 * where validation happens: a document is learnt only once Apollo has resolved its operation.
 *
 * One difference, on purpose: a persisted hash (APQ) Apollo has served stays served here after
 * Apollo's own APQ cache drops it (Apollo would answer PERSISTED_QUERY_NOT_FOUND and the client
 * would send the text again, to the same effect: a hash names one text, checked when registered).
 * Trusted documents (a manifest) never drop out.
 */
export function createFastRoute<TContext extends BaseContext>(
  options: FastRouteOptions<TContext>,
): FastRoute<TContext> {
  const max = options.maxDocuments ?? MAX_KNOWN_DOCUMENTS;
  const maxChars = options.maxChars ?? MAX_KNOWN_CHARS;
  for (const [name, value] of [
    ['maxDocuments', max],
    ['maxChars', maxChars],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 1)
      throw new TypeError(`createFastRoute: ${name} must be a positive whole number, received ${value}`);
  }
  for (const hook of ['serverWillStart', 'startupDidFail'] as const) {
    if (options.plugin[hook] !== undefined)
      throw new TypeError(`createFastRoute: the plugin has ${hook}, which the route does not call`);
  }
  const bySource = new KnownDocuments(max, maxChars);
  const byHash = new KnownDocuments(max, maxChars);
  const acceptTypes = new Map<string, string | null>();
  let served = 0;
  const { plugin, logger, formatError, includeStacktraceInErrorResponses: withStacks } = options;

  const learner: ApolloServerPlugin<TContext> = {
    async requestDidStart() {
      return LEARNING as GraphQLRequestListener<TContext>;
    },
  };
  const LEARNING: GraphQLRequestListener<BaseContext> = {
    async didResolveOperation({ request, source, queryHash, document }) {
      // Here Apollo has parsed and validated the document (this hook comes after both).
      const byText = request.query !== undefined;
      (byText ? bySource : byHash).remember(byText ? source : queryHash, {
        source,
        queryHash,
        document,
        operations: new Map(),
      });
    },
  };

  /** The answer type Apollo would choose for this `Accept`, or null: Apollo answers 406. */
  const answerType = (accept: string | undefined): string | null | undefined => {
    if (!accept) return JSON_TYPE;
    const known = acceptTypes.get(accept);
    if (known !== undefined) return known;
    if (accept.length > MAX_ACCEPT_CHARS) return undefined;
    const chosen = new Negotiator({ headers: { accept } }).mediaType(SINGLE_RESULT_TYPES) ?? null;
    if (acceptTypes.size >= MAX_ACCEPT_VALUES) acceptTypes.delete(acceptTypes.keys().next().value as string);
    acceptTypes.set(accept, chosen);
    return chosen;
  };

  let stopped = false;
  const plan = (http: FastifyRequest): FastRoutePlan | undefined => {
    if (stopped) return undefined;
    const { headers } = http;
    const contentType = headers['content-type'];
    const { url } = http;
    const mark = url.indexOf('?');
    const search = mark < 0 ? '' : url.slice(mark);
    let fields: RequestFields | undefined;
    if (http.method === 'POST') {
      // Fastify parsed the body as JSON for this content type; anything else is Apollo's to refuse.
      if (contentType === undefined || !JSON_CONTENT_TYPE.test(contentType)) return undefined;
      fields = postFields(http.body);
    } else if (http.method === 'GET') {
      const preflighted =
        contentType === undefined
          ? CSRF_HEADERS.some((name) => {
              const value = headers[name];
              return typeof value === 'string' && value.length > 0;
            })
          : JSON_CONTENT_TYPE.test(contentType);
      if (!preflighted) return undefined;
      fields = getFields(search);
    }
    if (!fields) return undefined;
    const { query, operationName, variables, extensions } = fields;
    let known: KnownDocument | undefined;
    let hashOnly = false;
    const persisted = extensions?.persistedQuery;
    if (persisted) {
      // Only a persisted hash alone, in version 1: registering one (with its text) is Apollo's.
      if (query !== undefined || !isRecord(persisted) || persisted.version !== 1) return undefined;
      const hash = persisted.sha256Hash;
      if (typeof hash !== 'string') return undefined;
      known = byHash.lookUp(hash);
      hashOnly = true;
    } else if (query) {
      known = bySource.lookUp(query);
    }
    if (!known) return undefined;
    // An empty name names no operation (Apollo refuses it): not the same as no name at all.
    if (operationName === '') return undefined;
    const name = operationName ?? '';
    let operation = known.operations.get(name);
    if (!operation) {
      // Only operations that exist are remembered: a name naming none is Apollo's to answer.
      const found = getOperationAST(known.document, operationName);
      if (!found) return undefined;
      operation = found;
      known.operations.set(name, operation);
    }
    if (http.method === 'GET' && operation.operation !== 'query') return undefined;
    // Negotiated last: a request that is Apollo's anyway costs no negotiation here.
    const accept = headers.accept;
    const chosen = answerType(typeof accept === 'string' ? accept : undefined);
    if (!chosen || Array.isArray(accept)) return undefined;
    return {
      // Every field present, undefined or not, as Apollo's request has them.
      request: { query, operationName, variables, extensions } as GraphQLRequest,
      known,
      operation,
      byHash: hashOnly,
      contentType: chosen,
      search,
    };
  };

  /** Apollo's `normalizeAndFormatErrors`: formatted errors, and the status and headers they carry. */
  const formatErrors = (errors: readonly GraphQLError[] | readonly unknown[]) => {
    const head = { status: undefined as number | undefined, headers: new HeaderMap() };
    const enrich = (maybeError: unknown): GraphQLFormattedError => {
      const error = ensureGraphQLError(maybeError);
      const extensions: Record<string, unknown> = {
        ...error.extensions,
        code: error.extensions.code ?? 'INTERNAL_SERVER_ERROR',
      };
      const http = extensions.http;
      if (isPartialHead(http)) {
        if (http.status) head.status = http.status;
        if (http.headers) for (const [name, value] of http.headers) head.headers.set(name, value);
        delete extensions.http;
      }
      if (withStacks) extensions.stacktrace = error.stack?.split('\n');
      return { ...error.toJSON(), extensions };
    };
    const formatted = errors.map((error) => {
      try {
        const enriched = enrich(error);
        return formatError ? formatError(enriched, error) : enriched;
      } catch (formattingError) {
        if (withStacks) return enrich(formattingError);
        return { message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } };
      }
    });
    return { formatted, head };
  };

  /** Apollo's answer to an error outside the pipeline (the context, an unexpected failure). */
  const errorResponse = (error: unknown, contentType: string): HTTPGraphQLResponse => {
    const { formatted, head } = formatErrors([error]);
    const headers = new HeaderMap(head.headers);
    headers.set('content-type', contentType);
    return {
      status: head.status ?? 500,
      headers,
      body: { kind: 'complete', string: stringify({ errors: formatted }) },
    };
  };

  const run = async (
    planned: FastRoutePlan,
    http: FastifyRequest,
    createContext: () => Promise<TContext>,
  ): Promise<HTTPGraphQLResponse> => {
    const { known, operation, contentType } = planned;
    served += 1;
    try {
      let contextValue: TContext;
      try {
        contextValue = await createContext();
      } catch (maybeError) {
        const error = ensureError(maybeError);
        try {
          await plugin.contextCreationDidFail?.({ error });
        } catch (pluginError) {
          logger.error(`contextCreationDidFail hook threw: ${pluginError}`);
        }
        return errorResponse(ensureGraphQLError(error, 'Context creation failed: '), contentType);
      }
      const httpRequest: HTTPGraphQLRequest = {
        method: http.method,
        headers: headerMapOf(http),
        search: planned.search,
        body: http.body,
      };
      const requestContext = {
        logger,
        cache: options.cache(),
        schema: options.schema,
        request: { ...planned.request, http: httpRequest },
        response: { http: { status: undefined, headers: new HeaderMap() } },
        // Apollo hands plugins and resolvers a shallow copy of the context; so does the route.
        contextValue: Object.assign(Object.create(Object.getPrototypeOf(contextValue)), contextValue),
        metrics: { persistedQueryHit: planned.byHash, persistedQueryRegister: false },
        overallCachePolicy: NO_CACHE_POLICY,
        requestIsBatched: false,
        queryHash: known.queryHash,
        source: known.source,
        document: known.document,
        operation,
        operationName: operation.name?.value ?? null,
      } as unknown as GraphQLRequestContext<TContext> & MutableRequestContext;
      let response: GraphQLResponse;
      try {
        response = await pipeline(requestContext);
      } catch (maybeError) {
        // Apollo's `internalExecuteOperation`: the plugins hear of it, the client gets a 500.
        const error = ensureError(maybeError);
        await plugin.unexpectedErrorProcessingRequest?.({ requestContext, error });
        logger.error(`Unexpected error processing request: ${error}`);
        throw new Error('Internal server error');
      }
      if (response.body.kind !== 'single') throw new Error('the fast route answers single results only');
      if (!response.http.headers.get('content-type')) response.http.headers.set('content-type', contentType);
      const { errors, data, extensions } = response.body.singleResult;
      return {
        status: response.http.status,
        headers: response.http.headers,
        body: { kind: 'complete', string: stringify({ errors, data, extensions }) },
      } as HTTPGraphQLResponse;
    } catch (maybeError) {
      // Apollo's `executeHTTPGraphQLRequest`: a bad request is told to the plugins first.
      if (maybeError instanceof GraphQLError && maybeError.extensions.code === 'BAD_REQUEST') {
        try {
          await plugin.invalidRequestWasReceived?.({ error: maybeError });
        } catch (pluginError) {
          logger.error(`invalidRequestWasReceived hook threw: ${pluginError}`);
        }
      }
      return errorResponse(maybeError, contentType);
    }
  };

  /** Apollo's `processGraphQLRequest` from the document store's hit on, for one plugin. */
  const pipeline = async (
    requestContext: GraphQLRequestContext<TContext> & MutableRequestContext,
  ): Promise<GraphQLResponse> => {
    const listener = await plugin.requestDidStart?.(requestContext);
    for (const hook of NOT_PASSED) {
      if (listener?.[hook] !== undefined) throw new Error(`the fast route does not call ${hook}`);
    }
    const { response } = requestContext;
    const didEncounterErrors = async (errors: readonly GraphQLError[]) => {
      requestContext.errors = errors;
      await listener?.didEncounterErrors?.(requestContext as never);
    };
    const willSendResponse = async () => {
      await listener?.willSendResponse?.(requestContext as never);
    };
    const sendErrorResponse = async (errors: readonly GraphQLError[]) => {
      await didEncounterErrors(errors);
      const { formatted, head } = formatErrors(errors);
      response.body = { kind: 'single', singleResult: { errors: formatted } };
      mergeHead(response.http, head);
      if (!response.http.status) response.http.status = 500;
      await willSendResponse();
      return response as GraphQLResponse;
    };
    try {
      await listener?.didResolveOperation?.(requestContext as never);
    } catch (error) {
      return await sendErrorResponse([ensureGraphQLError(error)]);
    }
    const fromPlugin = (await listener?.responseForOperation?.(requestContext as never)) ?? null;
    if (fromPlugin !== null) {
      response.body = fromPlugin.body;
      mergeHead(response.http, fromPlugin.http);
    } else {
      // As in Apollo, everything from execution to the body is one step: a hook that throws
      // here (didEncounterErrors) is answered as an execution error would be.
      try {
        const result: ExecutionResult = await options.execute({
          document: requestContext.document as DocumentNode,
          // The operation's own name, as Apollo hands its gateway (graphql-js finds the same one).
          operationName: requestContext.operationName ?? null,
          operation: requestContext.operation,
          variables: requestContext.request.variables,
          context: requestContext.contextValue,
        });
        const resultErrors = result.errors?.map((error) =>
          isBadUserInput(error) && error.extensions?.code == null ? userInputError(error) : error,
        );
        if (resultErrors) await didEncounterErrors(resultErrors);
        const { formatted, head } = resultErrors
          ? formatErrors(resultErrors)
          : { formatted: undefined, head: { status: undefined, headers: new HeaderMap() } };
        // Apollo 5 answers 400 when variables were refused before anything ran.
        if (resultErrors?.length && result.data === undefined && !head.status) head.status = 400;
        mergeHead(response.http, head);
        response.body = {
          kind: 'single',
          // `errors` present even when undefined, as in Apollo's (JSON leaves it out).
          singleResult: { ...result, errors: formatted } as FormattedExecutionResult,
        };
      } catch (error) {
        return await sendErrorResponse([ensureGraphQLError(ensureError(error))]);
      }
    }
    await willSendResponse();
    return response as GraphQLResponse;
  };

  return {
    learner,
    plan,
    run,
    get knownDocuments() {
      return bySource.size + byHash.size;
    },
    get served() {
      return served;
    },
    stop() {
      stopped = true;
    },
  };
}

/** Known documents by a key, least recently used first out, bounded in count and in text. */
class KnownDocuments {
  private readonly map = new Map<string, KnownDocument>();
  private chars = 0;
  constructor(
    private readonly maxCount: number,
    private readonly maxChars: number,
  ) {}

  get size(): number {
    return this.map.size;
  }

  remember(key: string, known: KnownDocument): void {
    if (this.map.has(key) || known.source.length > this.maxChars) return;
    while (this.map.size >= this.maxCount || this.chars + known.source.length > this.maxChars) {
      const [oldest, dropped] = this.map.entries().next().value as [string, KnownDocument];
      this.map.delete(oldest);
      this.chars -= dropped.source.length;
    }
    this.map.set(key, known);
    this.chars += known.source.length;
  }

  lookUp(key: string): KnownDocument | undefined {
    const known = this.map.get(key);
    if (known) {
      // Most recently used last.
      this.map.delete(key);
      this.map.set(key, known);
    }
    return known;
  }
}

/** The request context's fields the pipeline sets as it goes. */
interface MutableRequestContext {
  errors?: readonly GraphQLError[];
  response: { http: { status?: number | undefined; headers: HeaderMap }; body?: GraphQLResponse['body'] };
}

/**
 * The cache policy Apollo starts every request with, for a server without its cache-control
 * plugin (the BFF reads cache hints statically): nothing restricts or reads it.
 */
const NO_CACHE_POLICY = {
  maxAge: undefined,
  scope: undefined,
  replace() {},
  restrict() {},
  policyIfCacheable() {
    return null;
  },
};

interface RequestFields {
  query: string | undefined;
  operationName: string | undefined;
  variables: Record<string, unknown> | undefined;
  extensions: Record<string, unknown> | undefined;
}

/** A POST body's fields where Apollo would read them without refusing anything; else undefined. */
function postFields(body: unknown): RequestFields | undefined {
  if (!isRecord(body)) return undefined;
  const { query, operationName, variables, extensions } = body as Record<string, unknown>;
  if (query !== undefined && typeof query !== 'string') return undefined;
  if (operationName !== undefined && operationName !== null && typeof operationName !== 'string')
    return undefined;
  if (variables !== undefined && variables !== null && !isRecord(variables)) return undefined;
  if (extensions !== undefined && extensions !== null && !isRecord(extensions)) return undefined;
  return {
    query,
    operationName: operationName ?? undefined,
    variables: variables ?? undefined,
    extensions: extensions ?? undefined,
  } as RequestFields;
}

/** A GET's fields where Apollo would read them without refusing anything; else undefined. */
function getFields(search: string): RequestFields | undefined {
  const params = new URLSearchParams(search);
  const once = (name: string): string | undefined | null => {
    const values = params.getAll(name);
    return values.length > 1 ? null : values[0];
  };
  const json = (name: string): Record<string, unknown> | undefined | null => {
    const text = once(name);
    if (text === null || text === undefined) return text;
    try {
      const value: unknown = JSON.parse(text);
      return isRecord(value) ? value : null;
    } catch {
      return null;
    }
  };
  const query = once('query');
  const operationName = once('operationName');
  const variables = json('variables');
  const extensions = json('extensions');
  if (query === null || operationName === null || variables === null || extensions === null) return undefined;
  return { query, operationName, variables, extensions };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return !!value && typeof value === 'object' && !Array.isArray(value) && !Buffer.isBuffer(value);
}

/** Apollo's view of the request headers (one value per name, repeated ones joined). */
export function headerMapOf(request: FastifyRequest): HeaderMap {
  const headers = new HeaderMap();
  for (const name in request.headers) {
    const value = request.headers[name];
    if (value) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
  }
  return headers;
}

function isPartialHead(value: unknown): value is { status?: number; headers?: Map<string, string> } {
  return (
    !!value &&
    typeof value === 'object' &&
    (!('status' in value) || typeof value.status === 'number') &&
    (!('headers' in value) || value.headers instanceof Map)
  );
}

function mergeHead(
  target: { status?: number | undefined; headers: HeaderMap },
  source: { status?: number | undefined; headers?: Map<string, string> | undefined },
): void {
  if (source.status) target.status = source.status;
  if (source.headers) for (const [name, value] of source.headers) target.headers.set(name, value);
}

/** Apollo's default `stringifyResult`. */
function stringify(value: unknown): string {
  return `${JSON.stringify(value)}\n`;
}

function ensureError(maybeError: unknown): Error {
  return maybeError instanceof Error
    ? maybeError
    : new GraphQLError(`Unexpected error value: ${String(maybeError)}`);
}

function ensureGraphQLError(maybeError: unknown, prefix = ''): GraphQLError {
  const error = ensureError(maybeError);
  return error instanceof GraphQLError
    ? error
    : new GraphQLError(prefix + error.message, { originalError: error });
}

/** A variable refused by graphql-js's coercion (Apollo's test, message prefixes included). */
function isBadUserInput(error: GraphQLError): boolean {
  const node = error.nodes?.length === 1 ? error.nodes[0] : undefined;
  if (node?.kind !== Kind.VARIABLE_DEFINITION) return false;
  const name = node.variable.name.value;
  return [
    `Variable "$${name}" has invalid value`,
    `Variable "$${name}" got invalid value `,
    `Variable "$${name}" of required type `,
    `Variable "$${name}" of non-null type `,
  ].some((prefix) => error.message.startsWith(prefix));
}

/** Apollo's `UserInputError`: the same error, coded BAD_USER_INPUT. */
function userInputError(error: GraphQLError): GraphQLError {
  const coded = new GraphQLError(error.message, {
    nodes: error.nodes ?? null,
    originalError: error.originalError ?? error,
    extensions: { ...error.extensions, code: 'BAD_USER_INPUT' },
  });
  coded.name = 'UserInputError';
  return coded;
}
