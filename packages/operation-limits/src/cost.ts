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
import { listSizeOf, SIZE_ARGUMENTS } from './list-size.ts';

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
 * a field with `@listSize` is sized by its `slicingArguments` instead, else its `assumedSize`;
 * other lists count as `defaultListSize`. Fragments count at every place they are spread.
 *
 * Linear in the document: a fragment spread many times (or spreading others many times) is
 * summarised once per type it is spread on, never walked again. This works because a
 * selection set's cost is linear in the multiplier above it, and the only thing it takes from
 * the field above is the announced list size, which reaches just its own top-level lists: so
 * a selection set is three numbers (see Summary), and a spread adds its fragment's three.
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
      const value = Object.hasOwn(variables, node.name.value) ? variables[node.name.value] : undefined;
      if (typeof value === 'number') return value;
      if (Array.isArray(value)) return value.length;
    }
    return undefined;
  };

  // The size a field announces: the largest of its slicing arguments given (`@listSize`'s, else
  // first/last/ids), else `@listSize`'s assumedSize, else undefined (the default applies).
  const sizeOfField = (
    node: FieldNode,
    field: GraphQLField<unknown, unknown> | undefined,
  ): number | undefined => {
    const listSize = field ? listSizeOf(schema, field) : undefined;
    const slicing = listSize?.slicingArguments ?? SIZE_ARGUMENTS;
    let size: number | undefined;
    for (const argument of node.arguments ?? []) {
      if (!slicing.includes(argument.name.value)) continue;
      const given = sizeOf(argument.value);
      if (given !== undefined) size = Math.max(size ?? given, given);
    }
    return size ?? listSize?.assumedSize;
  };

  // Fragment summaries by fragment name and the type it is read on; `null` marks a fragment
  // being summarised (a cycle, which validation refuses anyway, counts as nothing).
  const summaries = new Map<string, Summary | null>();

  const summarise = (selectionSet: SelectionSetNode, parent: GraphQLObjectType | undefined): Summary => {
    const sum: Summary = { fixed: 0, listWeight: 0, listCost: 0 };
    for (const selection of selectionSet.selections) {
      let part: Summary | undefined;
      if (selection.kind === Kind.FRAGMENT_SPREAD) {
        const fragment = fragments.get(selection.name.value);
        if (!fragment) continue;
        const type = schema.getType(fragment.typeCondition.name.value);
        const on = isObjectType(type) ? type : parent;
        const key = `${fragment.name.value}\u0000${on?.name ?? ''}`;
        const known = summaries.get(key);
        if (known === null) continue;
        part = known;
        if (!part) {
          summaries.set(key, null);
          part = summarise(fragment.selectionSet, on);
          summaries.set(key, part);
        }
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const type = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : parent;
        part = summarise(selection.selectionSet, isObjectType(type) ? type : parent);
      } else {
        fieldInto(sum, selection, parent);
        continue;
      }
      sum.fixed += part.fixed;
      sum.listWeight += part.listWeight;
      sum.listCost += part.listCost;
    }
    return sum;
  };

  const fieldInto = (sum: Summary, node: FieldNode, parent: GraphQLObjectType | undefined): void => {
    if (!node.selectionSet) return; // scalars are free
    const field: GraphQLField<unknown, unknown> | undefined = parent?.getFields()[node.name.value];
    const type = field ? getNullableType(field.type) : undefined;
    const named = field ? getNamedType(field.type) : undefined;
    const children = summarise(node.selectionSet, isObjectType(named) ? named : undefined);
    const size = sizeOfField(node, field);
    if (type && isListType(type)) {
      // Resolves once per item: the size announced above, else its own size argument, else the
      // default. Its children see no announced size.
      const weight = 1 + costWithin(children, undefined);
      sum.listWeight += weight;
      sum.listCost += Math.max(1, size ?? defaultListSize) * weight;
    } else {
      // Resolves once; a size argument on it sizes the lists directly below (edges).
      sum.fixed += 1 + costWithin(children, size);
    }
  };

  return costWithin(summarise(operation.selectionSet, root), undefined);
}

/**
 * A selection set's cost per resolution of the field above it: `fixed` from its object
 * fields, plus, for its list fields, either `listWeight` × the size the field above announced
 * or, when it announced none, `listCost` (each list at its own size).
 */
interface Summary {
  fixed: number;
  listWeight: number;
  listCost: number;
}

function costWithin(summary: Summary, announcedSize: number | undefined): number {
  return (
    summary.fixed +
    (announcedSize === undefined ? summary.listCost : Math.max(1, announcedSize) * summary.listWeight)
  );
}
