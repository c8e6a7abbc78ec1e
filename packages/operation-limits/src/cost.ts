import type { ApolloServerPlugin } from '@apollo/server';
import {
  type DocumentNode,
  type FieldNode,
  type FragmentDefinitionNode,
  GraphQLError,
  type GraphQLField,
  type GraphQLObjectType,
  type GraphQLSchema,
  getNamedType,
  getNullableType,
  isListType,
  isObjectType,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
  type ValueNode,
} from 'graphql';
import { LIMIT_CODE, type OperationLimits } from './limits.ts';

const SIZE_ARGUMENTS = ['first', 'last', 'ids'];

export interface CostPluginOptions {
  limits: OperationLimits;
  exposeLimits: boolean;
  /** Documents exempt from the cost limit, by query hash (the app's own trusted documents). */
  isTrusted?: ((queryHash: string) => boolean) | undefined;
}

/**
 * Refuses, before execution, an operation whose cost exceeds `limits.maxCost`. Cost needs the
 * variables (`first: $n`), so it runs once the operation is resolved rather than as a rule.
 */
export function createCostPlugin(options: CostPluginOptions): ApolloServerPlugin {
  // Cost depends only on the document and the variables: remember it per document (Apollo
  // reuses parsed documents) and variable values, instead of walking the document per request.
  const costs = new WeakMap<DocumentNode, Map<string, number>>();
  const costOf = (
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Record<string, unknown>,
  ) => {
    let byVariables = costs.get(document);
    if (!byVariables) {
      byVariables = new Map();
      costs.set(document, byVariables);
    }
    const key = `${operation.name?.value ?? ''}|${operation.variableDefinitions?.length ? JSON.stringify(variables) : ''}`;
    let cost = byVariables.get(key);
    if (cost === undefined) {
      cost = operationCost(schema, document, operation, variables, options.limits.defaultListSize);
      if (byVariables.size >= 64) byVariables.clear();
      byVariables.set(key, cost);
    }
    return cost;
  };
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ schema, document, operation, request, queryHash }) {
          if (!operation || options.isTrusted?.(queryHash)) return;
          const cost = costOf(schema, document, operation, request.variables ?? {});
          if (cost > options.limits.maxCost) {
            throw new GraphQLError(
              options.exposeLimits
                ? `The operation costs ${cost}; at most ${options.limits.maxCost} is allowed`
                : 'The operation is too expensive',
              { extensions: { code: LIMIT_CODE, limit: 'cost', http: { status: 400 } } },
            );
          }
        },
      };
    },
  };
}

/**
 * Every object or list field costs 1 × the product of the list sizes above it. A field with a
 * `first`/`last`/`ids` argument sets the size of the list below it (`edges` of a connection);
 * other lists count as `defaultListSize`. Fragments are followed, each spread at its place.
 */
export function operationCost(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown>,
  defaultListSize: number,
): number {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const root = schema.getRootType(operation.operation);
  if (!root) return 0;

  const sizeOf = (node: ValueNode | undefined): number | undefined => {
    if (!node) return undefined;
    if (node.kind === Kind.INT) return Number(node.value);
    if (node.kind === Kind.LIST) return node.values.length;
    if (node.kind === Kind.VARIABLE) {
      const value = variables[node.name.value];
      if (typeof value === 'number') return value;
      if (Array.isArray(value)) return value.length;
    }
    return undefined;
  };

  const walk = (
    selectionSet: SelectionSetNode,
    parent: GraphQLObjectType | undefined,
    multiplier: number,
    pendingSize: number | undefined,
    active: Set<string>,
  ): number => {
    let total = 0;
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FRAGMENT_SPREAD) {
        const fragment = fragments.get(selection.name.value);
        if (!fragment || active.has(fragment.name.value)) continue; // cycles are refused by validation
        active.add(fragment.name.value);
        const type = schema.getType(fragment.typeCondition.name.value);
        total += walk(
          fragment.selectionSet,
          isObjectType(type) ? type : parent,
          multiplier,
          pendingSize,
          active,
        );
        active.delete(fragment.name.value);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const type = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : parent;
        total += walk(
          selection.selectionSet,
          isObjectType(type) ? type : parent,
          multiplier,
          pendingSize,
          active,
        );
      } else {
        total += fieldCost(selection, parent, multiplier, pendingSize, active);
      }
    }
    return total;
  };

  const fieldCost = (
    node: FieldNode,
    parent: GraphQLObjectType | undefined,
    multiplier: number,
    pendingSize: number | undefined,
    active: Set<string>,
  ): number => {
    if (!node.selectionSet) return 0; // scalars are free
    const field: GraphQLField<unknown, unknown> | undefined = parent?.getFields()[node.name.value];
    const type = field ? getNullableType(field.type) : undefined;
    const size = sizeOf(node.arguments?.find((a) => SIZE_ARGUMENTS.includes(a.name.value))?.value);
    // How many times this field resolves: once per item of every list above it, and for a
    // list, once per item of its own: the size a connection above announced, its own size
    // argument, or the default.
    let count = multiplier;
    let childPending: number | undefined;
    if (type && isListType(type)) {
      count = multiplier * Math.max(1, pendingSize ?? size ?? defaultListSize);
    } else {
      childPending = size; // an object with a size argument sizes the list below it (edges)
    }
    const named = field ? getNamedType(field.type) : undefined;
    return (
      count + walk(node.selectionSet, isObjectType(named) ? named : undefined, count, childPending, active)
    );
  };

  return walk(operation.selectionSet, root, 1, undefined, new Set());
}
