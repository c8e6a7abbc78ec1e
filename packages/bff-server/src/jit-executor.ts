import type { GatewayExecutor, GatewayInterface } from '@apollo/server-gateway-interface';
import {
  type DocumentNode,
  type ExecutionResult,
  execute,
  GraphQLError,
  type GraphQLSchema,
  getVariableValues,
  type OperationDefinitionNode,
} from 'graphql';
import { type CompiledQuery, compileQuery, isCompiledQuery } from 'graphql-jit';

/**
 * Serves a fixed schema through Apollo Server's gateway interface so that operations run on
 * graphql-jit: each document is compiled once (Apollo hands us the same parsed document for
 * the same query text), and a document that does not compile runs on graphql-js instead.
 * Plugins, validation and error formatting are Apollo's as before.
 */
export function jitGateway(schema: GraphQLSchema): GatewayInterface {
  // Per document, per operation name. Weak, so documents Apollo evicts are freed with it.
  const compiled = new WeakMap<DocumentNode, Map<string, CompiledQuery | null>>();

  const compile = (document: DocumentNode, operationName: string | null): CompiledQuery | null => {
    let byName = compiled.get(document);
    if (!byName) {
      byName = new Map();
      compiled.set(document, byName);
    }
    const key = operationName ?? '';
    if (!byName.has(key)) {
      const result = compileQuery(schema, document, operationName ?? undefined, {
        // Our custom scalars serialize themselves; keep graphql-js's exact semantics.
        customJSONSerializer: false,
      });
      byName.set(key, isCompiledQuery(result) ? result : null);
    }
    return byName.get(key) ?? null;
  };

  const executor: GatewayExecutor = async (requestContext) => {
    const { document, operationName, request, context, operation } = requestContext;
    const query = compile(document, operationName);
    const result: ExecutionResult = query
      ? ((await query.query(undefined, context, request.variables ?? {})) as ExecutionResult)
      : await execute({
          schema,
          document,
          operationName,
          variableValues: request.variables ?? {},
          contextValue: context,
        });
    if (!result.errors?.length) return result;
    if (query && !('data' in result)) {
      // No data at all: graphql-jit refused the variables before running anything. The client
      // gets graphql-js's own errors for them, which Apollo recognises and answers as
      // BAD_USER_INPUT with a 400 (graphql-jit's are worded and shaped differently and would
      // read as a server fault). Only refused requests pay for the second coercion.
      const coercionErrors = variableErrors(schema, operation, request.variables);
      if (coercionErrors) return { errors: coercionErrors };
    }
    // graphql-jit's errors are not shaped the way Apollo's normalization expects: rebuild them
    // as GraphQLErrors, keeping the path, the locations and the original error.
    return {
      ...result,
      errors: result.errors.map((error) => {
        const rebuilt = new GraphQLError(error.message, {
          path: error.path ?? undefined,
          originalError: error.originalError ?? error,
          extensions: error.extensions ?? {},
        });
        if (error.locations)
          Object.defineProperty(rebuilt, 'locations', { value: error.locations, enumerable: true });
        return rebuilt;
      }),
    };
  };

  return {
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
