import type { GatewayExecutor, GatewayInterface } from '@apollo/server-gateway-interface';
import {
  type DocumentNode,
  type ExecutionResult,
  execute,
  type FragmentDefinitionNode,
  GraphQLError,
  type GraphQLSchema,
  getVariableValues,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';
import { type CompiledQuery, compileQuery, isCompiledQuery } from 'graphql-jit';

/** Compiled documents kept (least recently used first out). */
const MAX_COMPILED_DOCUMENTS = 200;
/**
 * Field selections a document may expand to (fragments counted at every place they are spread)
 * and still be compiled. graphql-jit expands every spread while compiling, without the
 * de-duplication graphql-js's execution does, so a short document of fragments spreading each
 * other would hold the process for minutes; above this it runs on graphql-js, which is linear.
 * A document without repeated fragments expands to no more selections than it has tokens.
 */
const MAX_JIT_SELECTIONS = 5_000;

/** What an operation runs with: the document as parsed and validated, and the request's part. */
export interface OperationRun {
  document: DocumentNode;
  operationName: string | null;
  /** The operation `operationName` picks; undefined when none does (execution then says so). */
  operation: OperationDefinitionNode | undefined;
  variables: Record<string, unknown> | undefined;
  context: unknown;
}

/** Runs an operation and answers with errors shaped as Apollo's normalization expects. */
export type OperationExecutor = (run: OperationRun) => Promise<ExecutionResult>;

/** Apollo's gateway interface, and what the compiled-document cache holds. */
export interface JitGateway extends GatewayInterface {
  /** Documents with compiled operations in the cache now. */
  readonly compiledDocuments: number;
  /** The executor behind the gateway, for callers that run operations without Apollo. */
  readonly run: OperationExecutor;
}

/** graphql-js's execution, as Apollo runs it for a schema (no root value, the default resolver). */
export function graphqlJsExecutor(schema: GraphQLSchema): OperationExecutor {
  return async ({ document, operationName, variables, context }) =>
    execute({ schema, document, operationName, variableValues: variables, contextValue: context });
}

export interface JitGatewayOptions {
  /** Compiled documents kept, least recently used dropped first. @default 200 */
  maxCompiledDocuments?: number;
  /** Largest expansion (selections, fragments counted per spread) compiled. @default 5000 */
  maxSelections?: number;
}

/**
 * Serves a fixed schema through Apollo Server's gateway interface so that operations run on
 * graphql-jit: each document is compiled once (Apollo hands us the same parsed document for
 * the same query text) and kept in a bounded LRU (a compiled query is code and closures many
 * times the document's size: keyed on Apollo's document lifetime alone, distinct documents
 * grew the heap by ~150 KB each). A document that does not compile, or that expands past
 * `maxSelections`, runs on graphql-js instead. Plugins, validation and error formatting are
 * Apollo's as before.
 */
export function jitGateway(schema: GraphQLSchema, options: JitGatewayOptions = {}): JitGateway {
  const maxCompiled = options.maxCompiledDocuments ?? MAX_COMPILED_DOCUMENTS;
  const maxSelections = options.maxSelections ?? MAX_JIT_SELECTIONS;
  for (const [name, value] of [
    ['maxCompiledDocuments', maxCompiled],
    ['maxSelections', maxSelections],
  ] as const) {
    if (!Number.isSafeInteger(value) || value < 1)
      throw new TypeError(`jitGateway: ${name} must be a positive whole number, received ${value}`);
  }
  // Per document, per operation name; a Map keeps insertion order, so its first key is the
  // least recently used (a hit moves its document to the end).
  const compiled = new Map<DocumentNode, Map<string, CompiledQuery | null>>();

  const compile = (document: DocumentNode, operationName: string | null): CompiledQuery | null => {
    let byName = compiled.get(document);
    if (byName) {
      compiled.delete(document);
    } else {
      byName = new Map();
      if (compiled.size >= maxCompiled) compiled.delete(compiled.keys().next().value as DocumentNode);
    }
    compiled.set(document, byName);
    const key = operationName ?? '';
    if (!byName.has(key)) {
      const result =
        expandedSelections(document, maxSelections) > maxSelections
          ? null
          : compileQuery(schema, document, operationName ?? undefined, {
              // Our custom scalars serialize themselves; keep graphql-js's exact semantics.
              customJSONSerializer: false,
            });
      byName.set(key, result && isCompiledQuery(result) ? result : null);
    }
    return byName.get(key) ?? null;
  };

  const run: OperationExecutor = async ({ document, operationName, operation, variables, context }) => {
    const query = compile(document, operationName);
    const result: ExecutionResult = query
      ? ((await query.query(undefined, context, variables ?? {})) as ExecutionResult)
      : await execute({
          schema,
          document,
          operationName,
          variableValues: variables ?? {},
          contextValue: context,
        });
    if (!result.errors?.length) return result;
    if (query && !('data' in result)) {
      // No data at all: graphql-jit refused the variables before running anything. The client
      // gets graphql-js's own errors for them, which Apollo recognises and answers as
      // BAD_USER_INPUT with a 400 (graphql-jit's are worded and shaped differently and would
      // read as a server fault). Only refused requests pay for the second coercion.
      const coercionErrors = variableErrors(schema, operation, variables);
      if (coercionErrors) return { errors: coercionErrors };
    }
    // graphql-jit's errors are not shaped the way Apollo's normalization expects: rebuild them
    // as GraphQLErrors, keeping the path, the locations and the original error.
    return { ...result, errors: result.errors.map(asGraphQLError) };
  };

  const executor: GatewayExecutor = ({ document, operationName, operation, request, context }) =>
    run({ document, operationName, operation, variables: request.variables, context });

  return {
    get compiledDocuments() {
      return compiled.size;
    },
    run,
    async load() {
      return { executor };
    },
    onSchemaLoadOrUpdate(callback) {
      callback({ apiSchema: schema, coreSupergraphSdl: '' });
      return () => {};
    },
    async stop() {},
  };
}

/** graphql-js's errors for the operation's variables, or undefined when they coerce. */
function variableErrors(
  schema: GraphQLSchema,
  operation: OperationDefinitionNode | undefined,
  inputs: Record<string, unknown> | undefined,
): readonly GraphQLError[] | undefined {
  const definitions = operation?.variableDefinitions;
  if (!definitions?.length) return undefined;
  const coerced = getVariableValues(schema, definitions, inputs ?? {}, { maxErrors: 20 });
  return coerced.errors;
}

/**
 * How many field selections the document's operations hold with every fragment spread expanded
 * in place, counted in time linear in the document (each fragment's count is worked out once);
 * past `cap` the exact number no longer matters and is not carried further.
 */
export function expandedSelections(document: DocumentNode, cap: number): number {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  // A fragment's count, or -1 while it is being counted (a cycle, refused by validation anyway).
  const perFragment = new Map<string, number>();
  const count = (selectionSet: SelectionSetNode): number => {
    let total = 0;
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        total += 1 + (selection.selectionSet ? count(selection.selectionSet) : 0);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        total += count(selection.selectionSet);
      } else {
        const name = selection.name.value;
        let known = perFragment.get(name);
        if (known === undefined) {
          const fragment = fragments.get(name);
          perFragment.set(name, -1);
          known = fragment ? count(fragment.selectionSet) : 0;
          perFragment.set(name, known);
        }
        total += Math.max(0, known);
      }
      if (total > cap) return cap + 1;
    }
    return total;
  };
  let total = 0;
  for (const definition of document.definitions) {
    if (definition.kind === Kind.OPERATION_DEFINITION) total += count(definition.selectionSet);
    if (total > cap) return cap + 1;
  }
  return total;
}

/**
 * graphql-jit's error as a graphql-js GraphQLError, with the path, the locations, the extensions
 * and the original error, built without running the Error constructor. A request whose upstream
 * failed under a list (a product per invoice line) has one error per item, and graphql-js's
 * constructor costs 12-20 µs each on this machine (the Error constructor capturing a stack, then
 * its properties defined one by one): a request answered with 192 such errors cost more CPU than
 * a successful one, which is backwards for an edge whose upstream is failing. The object has
 * GraphQLError's prototype (`instanceof`, `toJSON`, `toString`) and the own properties its
 * constructor would give it, with the same enumerability. Its message is a string, as the
 * constructor would make it (graphql-jit keeps a thrown non-Error value as the message); its
 * stack is the original's, or graphql-jit's own when the original has none (a thrown string),
 * read only when asked for (a development answer's `stacktrace`, the error log).
 */
export function asGraphQLError(error: GraphQLError): GraphQLError {
  const original = error.originalError ?? error;
  const path = error.path ?? undefined;
  const message = typeof error.message === 'string' ? error.message : asText(error.message);
  return Object.create(GraphQLError.prototype, {
    message: { value: message, enumerable: true, writable: true, configurable: true },
    name: { value: 'GraphQLError', writable: true, configurable: true },
    path: { value: path, enumerable: true, writable: true, configurable: true },
    locations: { value: error.locations ?? undefined, enumerable: true, writable: true, configurable: true },
    extensions: { value: error.extensions ?? {}, enumerable: true, writable: true, configurable: true },
    nodes: { value: undefined, writable: true, configurable: true },
    source: { value: undefined, writable: true, configurable: true },
    positions: { value: undefined, writable: true, configurable: true },
    originalError: { value: original, writable: true, configurable: true },
    stack: {
      get: () => {
        try {
          return (original as { stack?: string } | null | undefined)?.stack ?? error.stack;
        } catch {
          return undefined; // graphql-jit's stack over a value that cannot be written as text
        }
      },
      set(value: unknown) {
        Object.defineProperty(this, 'stack', { value, writable: true, configurable: true });
      },
      configurable: true,
    },
  }) as GraphQLError;
}

/** A thrown value as the Error constructor would word it (and a fixed text where it would throw). */
function asText(value: unknown): string {
  try {
    return String(value);
  } catch {
    return 'Unexpected error value';
  }
}
