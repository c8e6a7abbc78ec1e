import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import {
  type ASTVisitor,
  type FragmentDefinitionNode,
  GraphQLError,
  Kind,
  type SelectionSetNode,
  type ValidationContext,
  type ValidationRule,
} from 'graphql';
import type { OperationLimits } from './limits.ts';

/** Depth that GraphiQL's introspection query needs (15 with fragments flattened). */
const INTROSPECTION_DEPTH = 15;

type Reject = (context: ValidationContext | null, error: GraphQLError) => void;

/**
 * The limits that need only the document. Refusals are reported (not thrown), as
 * `extensions.limit` errors, with thresholds in the message only when `exposeLimits`.
 */
export function limitValidationRules(
  limits: OperationLimits,
  options: { exposeLimits: boolean; introspection: boolean },
): ValidationRule[] {
  const report =
    (limit: string, generic: string): Reject =>
    (context, error) => {
      context?.reportError(
        new GraphQLError(options.exposeLimits ? error.message.replace(/^Syntax Error: /, '') : generic, {
          extensions: { limit },
        }),
      );
    };
  const common = { exposeLimits: options.exposeLimits, propagateOnRejection: false };
  return [
    maxDepthRule({
      ...common,
      // With introspection on (development), leave room for GraphiQL's own query.
      n: options.introspection ? Math.max(limits.maxDepth, INTROSPECTION_DEPTH) : limits.maxDepth,
      flattenFragments: true,
      ignoreIntrospection: false,
      onReject: [report('depth', 'The operation is nested too deeply')],
    }),
    maxAliasesRule({
      ...common,
      n: limits.maxAliases,
      allowList: [], // `__typename` aliases count like any other
      onReject: [report('aliases', 'The operation uses too many aliases')],
    }),
    maxDirectivesRule({
      ...common,
      n: limits.maxDirectives,
      onReject: [report('directives', 'The operation uses too many directives')],
    }),
    maxRootFieldsRule(limits.maxRootFields, options.exposeLimits),
  ];
}

/** At most `max` fields at the root of each operation, counting through fragments. */
function maxRootFieldsRule(max: number, exposeLimits: boolean): ValidationRule {
  return (context: ValidationContext): ASTVisitor => ({
    OperationDefinition(operation) {
      const count = countRootFields(operation.selectionSet, context, new Set());
      if (count > max) {
        context.reportError(
          new GraphQLError(
            exposeLimits
              ? `The operation has ${count} root fields; at most ${max} are allowed`
              : 'The operation has too many root fields',
            { extensions: { limit: 'rootFields' } },
          ),
        );
      }
    },
  });
}

function countRootFields(
  selectionSet: SelectionSetNode,
  context: ValidationContext,
  seen: Set<string>,
): number {
  let count = 0;
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      if (selection.name.value !== '__typename') count++;
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      count += countRootFields(selection.selectionSet, context, seen);
    } else if (!seen.has(selection.name.value)) {
      seen.add(selection.name.value);
      const fragment: FragmentDefinitionNode | null | undefined = context.getFragment(selection.name.value);
      if (fragment) count += countRootFields(fragment.selectionSet, context, seen);
    }
  }
  return count;
}
