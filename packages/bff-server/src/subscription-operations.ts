import { BffErrorCode } from '@bff/error-codes';
import { LiveEndedError, type LiveMessage } from '@bff/live-events';
import type { Loaders } from '@bff/loaders';
import type { OperationLimits } from '@bff/operation-limits';
import { documentHash } from '@bff/persisted-operations';
import type { BffContext } from '@bff/resolvers';
import {
  createSourceEventStream,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  execute,
  GraphQLError,
  type GraphQLSchema,
  Kind,
  type OperationDefinitionNode,
  parse,
  type SelectionSetNode,
  validate,
} from 'graphql';
import { formatError } from './error-handling.ts';

/** The trusted documents a subscribe message may name by hash, and whether only they may run. */
export interface TrustedDocuments {
  bodyOf(hash: string): string | undefined;
  enforce: boolean;
}

/**
 * Parsed and validated documents by their text, the most recently used kept (parsing and
 * validating is most of what subscribing costs, and a parsed document is most of what an idle
 * subscription holds: many clients send the same few documents, which then share one).
 */
export class CheckedDocuments {
  private readonly byText = new Map<string, { document: DocumentNode; invalid: readonly GraphQLError[] }>();

  constructor(
    private readonly schema: GraphQLSchema,
    private readonly limits: OperationLimits,
    private readonly rules: Parameters<typeof validate>[2],
    /** Production: no "Did you mean …?" in messages (they map the schema for anyone who asks). */
    private readonly production: boolean,
    private readonly capacity = 500,
  ) {}

  check(query: string): { document: DocumentNode; invalid: readonly GraphQLError[] } | GraphQLError {
    const known = this.byText.get(query);
    if (known) {
      // Most recently used last.
      this.byText.delete(query);
      this.byText.set(query, known);
      return known;
    }
    let document: DocumentNode;
    try {
      document = parse(query, { maxTokens: this.limits.maxTokens });
    } catch (error) {
      return withCode(error as GraphQLError, BffErrorCode.GraphqlParseFailed);
    }
    let invalid: GraphQLError[];
    try {
      invalid = validate(this.schema, document, this.rules).map((error) =>
        withCode(this.production ? withoutSuggestions(error) : error, BffErrorCode.GraphqlValidationFailed),
      );
    } catch (error) {
      // graphql's single-root-field rule evaluates @skip/@include without variables, and throws.
      invalid = [
        coded(
          `The document does not validate: ${error instanceof Error ? error.message : String(error)}`,
          BffErrorCode.GraphqlValidationFailed,
        ),
      ];
    }
    const checked = { document, invalid };
    if (this.byText.size >= this.capacity) this.byText.delete(this.byText.keys().next().value as string);
    this.byText.set(query, checked);
    return checked;
  }
}

/** The document of a subscribe message: its query, or the trusted document its hash names. */
export function documentOf(
  payload: { query?: string | null | undefined; extensions?: Record<string, unknown> | null | undefined },
  persisted: TrustedDocuments | undefined,
  limits: OperationLimits,
): { query: string; hash: string | undefined } | GraphQLError {
  const persistedQuery = payload.extensions?.persistedQuery as { sha256Hash?: unknown } | undefined;
  const hash = typeof persistedQuery?.sha256Hash === 'string' ? persistedQuery.sha256Hash : undefined;
  let query = typeof payload.query === 'string' && payload.query.length > 0 ? payload.query : undefined;
  if (hash !== undefined) {
    if (query !== undefined && documentHash(query) !== hash)
      return coded(
        'The query does not hash to the hash sent with it',
        BffErrorCode.PersistedQueryHashMismatch,
      );
    const body = persisted?.bodyOf(hash);
    if (body === undefined && (query === undefined || persisted?.enforce))
      return coded('PersistedQueryNotFound', BffErrorCode.PersistedQueryNotFound);
    query = body ?? query;
  } else if (persisted?.enforce) {
    return coded(
      "Only this app's trusted documents are served: send one by its hash",
      BffErrorCode.PersistedQueryNotFound,
    );
  }
  if (query === undefined) return coded('The subscribe message has no query', BffErrorCode.BadRequest);
  if (query.length > limits.maxDocumentChars)
    return coded('The document is too long', BffErrorCode.OperationLimitExceeded, { limit: 'documentChars' });
  return { query, hash };
}

/**
 * graphql-js's subscribe, with each event executed on a context of its own: the subscription's,
 * with the event's loaders (made once per event, shared by every subscriber it reaches). A
 * stream the server ends (a slow subscriber, a gap in the events, shutdown) ends with one
 * result carrying SUBSCRIPTION_ENDED, then completes.
 */
export async function subscribeEach(
  args: ExecutionArgs,
  onEnded: (reason: string) => void,
): Promise<AsyncIterableIterator<ExecutionResult> | ExecutionResult> {
  let source: Awaited<ReturnType<typeof createSourceEventStream>>;
  try {
    source = await createSourceEventStream(args);
  } catch (error) {
    // What graphql-js cannot start (a root field skipped away): the client's document, not a fault.
    return {
      errors: [
        coded(
          `The subscription cannot start: ${error instanceof Error ? error.message : String(error)}`,
          BffErrorCode.BadRequest,
        ),
      ],
    };
  }
  if (!isAsyncIterable(source)) return source as ExecutionResult;
  const iterator = source[Symbol.asyncIterator]() as AsyncIterator<LiveMessage<Loaders>>;
  let finished = false;
  const mapped: AsyncIterableIterator<ExecutionResult> = {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next() {
      if (finished) return { value: undefined, done: true };
      try {
        const step = await iterator.next();
        if (step.done) {
          finished = true;
          return { value: undefined, done: true };
        }
        const message = step.value;
        const contextValue = { ...(args.contextValue as BffContext), loaders: message.batch };
        const value = await execute({ ...args, rootValue: message, contextValue });
        return { value, done: false };
      } catch (error) {
        if (!(error instanceof LiveEndedError)) throw error;
        finished = true;
        onEnded(error.reason);
        return {
          value: {
            errors: [coded(error.message, BffErrorCode.SubscriptionEnded, { reason: error.reason })],
          },
          done: false,
        };
      }
    },
    async return() {
      finished = true;
      await iterator.return?.();
      return { value: undefined, done: true };
    },
    async throw(error?: unknown) {
      finished = true;
      await iterator.return?.();
      throw error;
    },
  };
  return mapped;
}

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

export function formatted(result: { errors?: readonly GraphQLError[] | undefined }, production: boolean) {
  if (!result.errors) return undefined;
  return {
    ...result,
    errors: result.errors.map((error) => formatError(error.toJSON(), error, production)),
  };
}

export function coded(
  message: string,
  code: BffErrorCode,
  extensions: Record<string, unknown> = {},
): GraphQLError {
  return new GraphQLError(message, { extensions: { code, ...extensions } });
}

export function withCode(error: GraphQLError, code: BffErrorCode): GraphQLError {
  if (error.extensions?.code) return error;
  return new GraphQLError(error.message, {
    ...(error.nodes ? { nodes: error.nodes } : {}),
    ...(error.source ? { source: error.source } : {}),
    ...(error.positions ? { positions: error.positions } : {}),
    ...(error.path ? { path: error.path } : {}),
    ...(error.originalError ? { originalError: error.originalError } : {}),
    extensions: { ...error.extensions, code },
  });
}

/** The message without graphql-js's "Did you mean …?" (as Apollo's hideSchemaDetailsFromClientErrors). */
function withoutSuggestions(error: GraphQLError): GraphQLError {
  const message = error.message.replace(/ ?Did you mean .+\?$/, '');
  if (message === error.message) return error;
  return new GraphQLError(message, {
    ...(error.nodes ? { nodes: error.nodes } : {}),
    ...(error.extensions ? { extensions: error.extensions } : {}),
  });
}

/**
 * Whether a root field of the subscription is under `@skip` or `@include`: graphql-js cannot
 * start a subscription whose one root field may vanish, so it is refused when subscribing.
 */
export function rootFieldIsConditional(document: DocumentNode, operation: OperationDefinitionNode): boolean {
  const fragments = new Map<string, SelectionSetNode>();
  for (const definition of document.definitions)
    if (definition.kind === Kind.FRAGMENT_DEFINITION)
      fragments.set(definition.name.value, definition.selectionSet);
  const seen = new Set<string>();
  const conditional = (selectionSet: SelectionSetNode): boolean =>
    selectionSet.selections.some((selection) => {
      if (selection.directives?.some((d) => d.name.value === 'skip' || d.name.value === 'include'))
        return true;
      if (selection.kind === Kind.INLINE_FRAGMENT) return conditional(selection.selectionSet);
      if (selection.kind === Kind.FRAGMENT_SPREAD) {
        const name = selection.name.value;
        const fragment = fragments.get(name);
        if (!fragment || seen.has(name)) return false;
        seen.add(name);
        return conditional(fragment);
      }
      return false;
    });
  return conditional(operation.selectionSet);
}
