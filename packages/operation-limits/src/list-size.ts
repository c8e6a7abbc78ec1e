import {
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLSchema,
  getDirectiveValues,
  getNamedType,
  getNullableType,
  isInterfaceType,
  isListType,
  isObjectType,
} from 'graphql';

/** The arguments the cost rule sizes a list from, for a field without `@listSize`. */
export const SIZE_ARGUMENTS: readonly string[] = Object.freeze(['first', 'last', 'ids']);

/**
 * Int arguments whose names say they size a page (compared case-insensitively). On a list
 * field, each must be one the cost rule reads, or the cost would assume the default size
 * whatever the client asks for.
 */
const PAGE_SIZE_NAMES = new Set(['first', 'last', 'limit', 'top', 'take', 'size', 'count', 'pagesize']);

/** How a field's `@listSize` says its list is sized. */
export interface ListSize {
  /** The arguments whose value (an Int, or a list's length) is the size; the largest given wins. */
  slicingArguments: readonly string[];
  /** The size when none of them is given; else the app's default list size. */
  assumedSize: number | undefined;
}

const listSizes = new WeakMap<GraphQLField<unknown, unknown>, ListSize | null>();

/** The field's `@listSize`, or undefined when it has none (or the schema does not declare it). */
export function listSizeOf(
  schema: GraphQLSchema,
  field: GraphQLField<unknown, unknown>,
): ListSize | undefined {
  let known = listSizes.get(field);
  if (known === undefined) {
    const directive = schema.getDirective('listSize');
    const values = directive && field.astNode ? getDirectiveValues(directive, field.astNode) : undefined;
    known = values
      ? {
          slicingArguments: Array.isArray(values.slicingArguments)
            ? Object.freeze([...(values.slicingArguments as string[])])
            : SIZE_ARGUMENTS,
          assumedSize: typeof values.assumedSize === 'number' ? values.assumedSize : undefined,
        }
      : null;
    listSizes.set(field, known);
  }
  return known ?? undefined;
}

/** A list, or a connection: an object whose `edges` is a list (its size argument sizes `edges`). */
function returnsList(field: GraphQLField<unknown, unknown>): boolean {
  if (isListType(getNullableType(field.type))) return true;
  const named: GraphQLNamedType = getNamedType(field.type);
  const edges = isObjectType(named) ? named.getFields().edges : undefined;
  return edges !== undefined && isListType(getNullableType(edges.type));
}

/**
 * Refuses a schema with a list field (or a connection field) that takes an argument which could
 * size it but which the cost rule does not read: an argument of list type, or an Int named like
 * a page size (`limit`, `take`, `pageSize`, …), other than `first`, `last` and `ids`. Without
 * this, such a field would be costed at the default list size whatever the client asked for.
 * A field with `@listSize` has said how it is sized and passes, once its `slicingArguments` are
 * arguments it has. Throws one Error naming every such field and argument.
 */
export function assertCostCoversListArguments(schema: GraphQLSchema): void {
  const problems: string[] = [];
  for (const type of Object.values(schema.getTypeMap())) {
    if (type.name.startsWith('__') || !(isObjectType(type) || isInterfaceType(type))) continue;
    for (const field of Object.values(type.getFields()) as GraphQLField<unknown, unknown>[]) {
      if (!returnsList(field)) continue;
      const listSize = listSizeOf(schema, field);
      if (listSize) {
        // Without slicingArguments it reads the default names, whichever the field has.
        const unknown =
          listSize.slicingArguments === SIZE_ARGUMENTS
            ? []
            : listSize.slicingArguments.filter((name) => !field.args.some((a) => a.name === name));
        for (const name of unknown)
          problems.push(
            `${type.name}.${field.name} @listSize slices by ${name}, an argument it does not take`,
          );
        continue;
      }
      for (const arg of field.args) {
        if (SIZE_ARGUMENTS.includes(arg.name)) continue;
        const argType = getNullableType(arg.type);
        const sizing =
          isListType(argType) ||
          (getNamedType(argType).name === 'Int' && PAGE_SIZE_NAMES.has(arg.name.toLowerCase()));
        if (sizing)
          problems.push(
            `${type.name}.${field.name}(${arg.name}) returns a list the cost rule cannot size from ${arg.name}: ` +
              `size it with ${SIZE_ARGUMENTS.join(', ')}, or declare @listSize(slicingArguments, assumedSize)`,
          );
      }
    }
  }
  if (problems.length > 0) throw new Error(problems.join('; '));
}
