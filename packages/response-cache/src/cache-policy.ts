import { readFileSync } from 'node:fs';
import {
  type DirectiveNode,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLAbstractType,
  type GraphQLCompositeType,
  type GraphQLField,
  type GraphQLObjectType,
  type GraphQLSchema,
  getNamedType,
  getOperationAST,
  isAbstractType,
  isCompositeType,
  isObjectType,
  Kind,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from 'graphql';

/** `@cacheControl` and `CacheControlScope`, exactly as Apollo Server's docs declare them. */
export const cacheControlDirectiveTypeDefs: string = readFileSync(
  new URL('./cache-control.graphql', import.meta.url),
  'utf8',
);

/** Who may be served a cached response: anyone (`PUBLIC`), or only the viewer it was made for. */
export type CacheScope = 'PUBLIC' | 'PRIVATE';

/** How long a whole response may be cached, and for whom. `maxAge: 0` means not at all. */
export interface CachePolicy {
  /** Seconds; 0 when the response must not be cached. */
  readonly maxAge: number;
  readonly scope: CacheScope;
}

/** What one `@cacheControl` says; `inheritMaxAge` only switches the maxAge default off. */
interface CacheAnnotation {
  maxAge?: number;
  scope?: CacheScope;
  inheritMaxAge?: true;
}

/** A policy being narrowed: undefined means "nothing has said anything yet". */
interface Hint {
  maxAge: number | undefined;
  scope: CacheScope | undefined;
}

const NO_ANNOTATION: CacheAnnotation = Object.freeze({});
const typeAnnotations = new WeakMap<GraphQLCompositeType, CacheAnnotation>();
const abstractAnnotations = new WeakMap<GraphQLAbstractType, CacheAnnotation>();
const fieldAnnotations = new WeakMap<GraphQLField<unknown, unknown>, CacheAnnotation>();
/** Per schema, per operation node (which belongs to exactly one document). */
const policies = new WeakMap<GraphQLSchema, WeakMap<OperationDefinitionNode, CachePolicy>>();

const UNCACHEABLE_PUBLIC: CachePolicy = Object.freeze({ maxAge: 0, scope: 'PUBLIC' });
const UNCACHEABLE_PRIVATE: CachePolicy = Object.freeze({ maxAge: 0, scope: 'PRIVATE' });

/**
 * The cache policy of one operation of `document`, from the `@cacheControl` hints of `schema`
 * alone — what Apollo's cache-control plugin would compute while resolving, but without any
 * per-field hook (graphql-jit fires none, and the hooks cost CPU on every field). Memoised per
 * (schema, operation), so the BFF may call it on every request.
 *
 * Static, so it is never less restrictive than Apollo at run time: every field the document can
 * select is counted (fields under `@include`/`@skip` are treated as included, fields under a
 * parent that turns out null as resolved), and a field selected on an interface or union counts
 * the hint of every possible type. An operation that cannot be found (unknown or ambiguous
 * `operationName`), a mutation, a subscription and any use of introspection get `maxAge: 0`.
 */
export function cachePolicyOf(
  schema: GraphQLSchema,
  document: DocumentNode,
  operationName?: string | null,
): CachePolicy {
  const operation = getOperationAST(document, operationName ?? undefined);
  if (!operation) return UNCACHEABLE_PUBLIC;
  let bySchema = policies.get(schema);
  if (!bySchema) {
    bySchema = new WeakMap();
    policies.set(schema, bySchema);
  }
  const known = bySchema.get(operation);
  if (known) return known;
  const policy = computePolicy(schema, document, operation);
  bySchema.set(operation, policy);
  return policy;
}

function computePolicy(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
): CachePolicy {
  const root = schema.getRootType(operation.operation);
  if (!root) return UNCACHEABLE_PUBLIC;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const overall: Hint = { maxAge: undefined, scope: undefined };
  let introspection = false;
  // A selection set reached again with the same possible types adds nothing new (the policy is
  // a running minimum), so each pair is walked once: fragment cycles end and fragment-spread
  // "bombs" stay linear.
  const walked = new Map<SelectionSetNode, Set<string>>();

  const walk = (selectionSet: SelectionSetNode, parents: readonly GraphQLObjectType[], isRoot: boolean) => {
    const typesKey = `${isRoot ? 'root' : ''}|${parents.map((t) => t.name).join(',')}`;
    let seen = walked.get(selectionSet);
    if (!seen) {
      seen = new Set();
      walked.set(selectionSet, seen);
    }
    if (seen.has(typesKey) || parents.length === 0) return;
    seen.add(typesKey);

    for (const selection of selectionSet.selections) {
      switch (selection.kind) {
        case Kind.FIELD: {
          const name = selection.name.value;
          if (name === '__typename') continue; // no resolver, no hint, as in Apollo
          if (name === '__schema' || name === '__type') {
            introspection = true;
            continue;
          }
          const children = new Map<string, GraphQLObjectType>();
          for (const parent of parents) {
            const field = parent.getFields()[name];
            if (!field) continue;
            restrict(overall, fieldPolicy(schema, field, isRoot));
            const target = getNamedType(field.type);
            if (isCompositeType(target))
              for (const t of possibleTypes(schema, target)) children.set(t.name, t);
          }
          if (selection.selectionSet) walk(selection.selectionSet, sortedTypes(children), false);
          break;
        }
        case Kind.INLINE_FRAGMENT: {
          const condition = selection.typeCondition
            ? schema.getType(selection.typeCondition.name.value)
            : undefined;
          walk(selection.selectionSet, narrow(schema, parents, condition), isRoot);
          break;
        }
        case Kind.FRAGMENT_SPREAD: {
          const fragment = fragments.get(selection.name.value);
          if (!fragment) continue;
          const condition = schema.getType(fragment.typeCondition.name.value);
          walk(fragment.selectionSet, narrow(schema, parents, condition ?? null), isRoot);
          break;
        }
      }
    }
  };
  walk(operation.selectionSet, [root], true);

  const scope = overall.scope ?? 'PUBLIC';
  if (operation.operation !== 'query' || introspection || !overall.maxAge || overall.maxAge <= 0) {
    return scope === 'PRIVATE' ? UNCACHEABLE_PRIVATE : UNCACHEABLE_PUBLIC;
  }
  return Object.freeze({ maxAge: overall.maxAge, scope });
}

/**
 * One field's policy, as Apollo's `willResolveField` builds it: the return type's hint, then
 * the field's own (which wins; `inheritMaxAge` on the field only counts when the type gave no
 * maxAge), then the default maxAge 0 for root fields and for fields returning a composite type
 * unless they inherit. Scalar fields without a hint restrict nothing, which is how they
 * "inherit" their parent's maxAge: the parent has already narrowed the overall policy.
 */
function fieldPolicy(schema: GraphQLSchema, field: GraphQLField<unknown, unknown>, isRoot: boolean): Hint {
  const policy: Hint = { maxAge: undefined, scope: undefined };
  let inheritMaxAge = false;
  const target = getNamedType(field.type);
  const composite = isCompositeType(target);
  if (composite) {
    const typeAnnotation = isAbstractType(target)
      ? annotationOfAbstractType(schema, target)
      : annotationOfType(target);
    replace(policy, typeAnnotation);
    inheritMaxAge = typeAnnotation.inheritMaxAge === true;
  }
  const fieldAnnotation = annotationOfField(field);
  if (fieldAnnotation.inheritMaxAge && policy.maxAge === undefined) {
    inheritMaxAge = true;
    if (fieldAnnotation.scope) policy.scope = fieldAnnotation.scope;
  } else {
    replace(policy, fieldAnnotation);
  }
  if (policy.maxAge === undefined && ((composite && !inheritMaxAge) || isRoot)) policy.maxAge = 0;
  return policy;
}

function restrict(policy: Hint, hint: Hint): void {
  if (hint.maxAge !== undefined && (policy.maxAge === undefined || hint.maxAge < policy.maxAge)) {
    policy.maxAge = hint.maxAge;
  }
  if (hint.scope !== undefined && policy.scope !== 'PRIVATE') policy.scope = hint.scope;
}

function replace(policy: Hint, annotation: CacheAnnotation): void {
  if (annotation.maxAge !== undefined) policy.maxAge = annotation.maxAge;
  if (annotation.scope !== undefined) policy.scope = annotation.scope;
}

function possibleTypes(schema: GraphQLSchema, type: GraphQLCompositeType): readonly GraphQLObjectType[] {
  return isAbstractType(type) ? schema.getPossibleTypes(type) : [type];
}

/** The parents a fragment's fields can run on: those the fragment's type condition admits. */
function narrow(
  schema: GraphQLSchema,
  parents: readonly GraphQLObjectType[],
  condition: ReturnType<GraphQLSchema['getType']> | null | undefined,
): readonly GraphQLObjectType[] {
  if (condition === undefined) return parents;
  if (condition === null || !isCompositeType(condition)) return [];
  if (isObjectType(condition)) return parents.filter((t) => t === condition);
  return parents.filter((t) => schema.isSubType(condition, t));
}

function sortedTypes(types: Map<string, GraphQLObjectType>): GraphQLObjectType[] {
  return [...types.keys()].sort().map((name) => types.get(name) as GraphQLObjectType);
}

function annotationOfType(type: GraphQLCompositeType): CacheAnnotation {
  let annotation = typeAnnotations.get(type);
  if (!annotation) {
    // The type's own definition first, then its extensions, the first hint winning (Apollo's order).
    annotation = NO_ANNOTATION;
    for (const node of [type.astNode, ...type.extensionASTNodes]) {
      const found = annotationOf(node?.directives);
      if (found) {
        annotation = found;
        break;
      }
    }
    typeAnnotations.set(type, annotation);
  }
  return annotation;
}

/**
 * Deliberately stricter than Apollo, which reads only the interface's or union's own hint: the
 * object it resolves to may be one whose type says PRIVATE or a shorter maxAge (a `node(id:)`
 * that returns an Invoice), and Apollo leaves that to a resolver calling `cacheHintFromType`,
 * which cannot happen here. So the abstract type's hint is merged with every possible type's,
 * most restrictive first: the smallest maxAge any of them gives, PRIVATE if any says so. A
 * hint on the field still overrides this, as it overrides any type hint.
 */
function annotationOfAbstractType(schema: GraphQLSchema, type: GraphQLAbstractType): CacheAnnotation {
  let annotation = abstractAnnotations.get(type);
  if (!annotation) {
    const own = annotationOfType(type);
    const merged: CacheAnnotation = { ...own };
    for (const possible of schema.getPossibleTypes(type)) {
      const hint = annotationOfType(possible);
      if (hint.maxAge !== undefined && (merged.maxAge === undefined || hint.maxAge < merged.maxAge)) {
        merged.maxAge = hint.maxAge;
      }
      if (hint.scope === 'PRIVATE' || (hint.scope === 'PUBLIC' && merged.scope === undefined)) {
        merged.scope = hint.scope;
      }
    }
    if (merged.maxAge !== undefined) delete merged.inheritMaxAge;
    annotation = Object.freeze(merged);
    abstractAnnotations.set(type, annotation);
  }
  return annotation;
}

function annotationOfField(field: GraphQLField<unknown, unknown>): CacheAnnotation {
  let annotation = fieldAnnotations.get(field);
  if (!annotation) {
    annotation = annotationOf(field.astNode?.directives) ?? NO_ANNOTATION;
    fieldAnnotations.set(field, annotation);
  }
  return annotation;
}

/** Reads `@cacheControl` from SDL; a directive without arguments is no hint (as in Apollo). */
function annotationOf(directives: readonly DirectiveNode[] | undefined): CacheAnnotation | undefined {
  const directive = directives?.find((d) => d.name.value === 'cacheControl');
  if (!directive?.arguments?.length) return undefined;
  const argument = (name: string) => directive.arguments?.find((a) => a.name.value === name)?.value;
  const maxAgeValue = argument('maxAge');
  const scopeValue = argument('scope');
  const inheritValue = argument('inheritMaxAge');
  const scopeName = scopeValue?.kind === Kind.ENUM ? scopeValue.value : undefined;
  const scope: CacheScope | undefined =
    scopeName === 'PUBLIC' || scopeName === 'PRIVATE' ? scopeName : undefined;
  const annotation: CacheAnnotation = {};
  if (scope) annotation.scope = scope;
  if (inheritValue?.kind === Kind.BOOLEAN && inheritValue.value) {
    annotation.inheritMaxAge = true; // a maxAge beside it is ignored, as in Apollo
    return Object.freeze(annotation);
  }
  if (maxAgeValue?.kind === Kind.INT) {
    // A negative maxAge is meaningless; Apollo would pass it on, we read it as "do not cache".
    annotation.maxAge = Math.max(0, Number.parseInt(maxAgeValue.value, 10));
  }
  return Object.freeze(annotation);
}

/**
 * Refuses (throws a TypeError naming each field) a schema in which a field that only some
 * viewers may read (one carrying, or on a type carrying, one of `directiveNames`, e.g. `@auth`,
 * `@hasRole`) could end up in a PUBLIC cached response: the field, its type or its parent type
 * must say `@cacheControl(scope: PRIVATE)`. Otherwise an admin's answer could be stored under
 * a public key and served to anyone who sends the same operation. Root mutation and
 * subscription fields are never cached and are not checked.
 */
export function assertRestrictedFieldsArePrivate(
  schema: GraphQLSchema,
  directiveNames: readonly string[],
): void {
  const restricted = (directives: readonly DirectiveNode[] | undefined) =>
    directives?.some((directive) => directiveNames.includes(directive.name.value)) ?? false;
  const isPrivate = (annotation: CacheAnnotation) => annotation.scope === 'PRIVATE';
  const offending: string[] = [];
  const skipped = new Set([schema.getMutationType(), schema.getSubscriptionType()]);
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__') || skipped.has(type)) continue;
    const typeRestricted = [type.astNode, ...type.extensionASTNodes].some((node) =>
      restricted(node?.directives),
    );
    const typePrivate = isPrivate(annotationOfType(type));
    for (const field of Object.values(type.getFields())) {
      if (!typeRestricted && !restricted(field.astNode?.directives)) continue;
      const target = getNamedType(field.type);
      const targetPrivate =
        isCompositeType(target) &&
        isPrivate(
          isAbstractType(target) ? annotationOfAbstractType(schema, target) : annotationOfType(target),
        );
      if (typePrivate || targetPrivate || isPrivate(annotationOfField(field))) continue;
      offending.push(`${type.name}.${field.name}`);
    }
  }
  if (offending.length > 0) {
    throw new TypeError(
      `fields only some viewers may read must be cached privately: add @cacheControl(scope: PRIVATE) to ${offending.join(', ')} (or to its type)`,
    );
  }
}
