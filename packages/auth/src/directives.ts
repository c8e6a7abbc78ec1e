import { BffErrorCode } from '@bff/error-codes';
import type { BffContext } from '@bff/resolvers';
import { getDirective, MapperKind, mapSchema } from '@graphql-tools/utils';
import {
  defaultFieldResolver,
  GraphQLError,
  type GraphQLFieldResolver,
  type GraphQLObjectType,
  type GraphQLSchema,
} from 'graphql';

/** SDL for the directives, for schemas that do not declare them already. */
export const authDirectiveTypeDefs = /* GraphQL */ `
  "Anyone, signed in or not, may call this field."
  directive @public on FIELD_DEFINITION
  "Only a signed-in viewer may read this field (or every field of this type)."
  directive @auth on OBJECT | FIELD_DEFINITION
  "Only a viewer holding this role may read this field (or every field of this type)."
  directive @hasRole(role: String!) on OBJECT | FIELD_DEFINITION
`;

export interface FieldRequirement {
  signedIn: boolean;
  role: string | undefined;
}

const requirements = new WeakMap<GraphQLSchema, Map<string, FieldRequirement>>();

/** What reading `type.field` requires, from the field's directives or its type's. */
export function requirementOf(
  schema: GraphQLSchema,
  typeName: string,
  fieldName: string,
): FieldRequirement | undefined {
  let map = requirements.get(schema);
  if (!map) {
    map = new Map();
    for (const type of Object.values(schema.getTypeMap())) {
      if (!('getFields' in type) || type.name.startsWith('__') || !('isTypeOf' in type)) continue;
      for (const field of Object.values((type as GraphQLObjectType).getFields())) {
        const found = readRequirement(schema, type as GraphQLObjectType, field);
        if (found) map.set(`${type.name}.${field.name}`, found);
      }
    }
    requirements.set(schema, map);
  }
  return map.get(`${typeName}.${fieldName}`);
}

function readRequirement(
  schema: GraphQLSchema,
  type: GraphQLObjectType,
  field: Parameters<typeof getDirective>[1],
): FieldRequirement | undefined {
  const role =
    (getDirective(schema, field, 'hasRole')?.[0]?.role as string | undefined) ??
    (getDirective(schema, type, 'hasRole')?.[0]?.role as string | undefined);
  const signedIn =
    role !== undefined ||
    Boolean(getDirective(schema, field, 'auth')?.[0] ?? getDirective(schema, type, 'auth')?.[0]);
  return signedIn ? { signedIn, role } : undefined;
}

/**
 * Refuses a schema in which a root field (of Query, Mutation or Subscription) does not say who
 * may call it: each must carry `@public`, `@auth` or `@hasRole`, or sit on a root type that
 * carries `@auth` or `@hasRole`. Without this, a new root field that forgot `@auth` would be
 * silently public. A field that is both `@public` and restricted is refused too: which one the
 * author meant cannot be told. Throws one Error naming every such field.
 */
export function assertRootFieldsDeclareAccess(schema: GraphQLSchema): void {
  const problems: string[] = [];
  for (const root of [schema.getQueryType(), schema.getMutationType(), schema.getSubscriptionType()]) {
    if (!root) continue;
    for (const field of Object.values(root.getFields())) {
      const restricted = readRequirement(schema, root, field) !== undefined;
      const isPublic = Boolean(getDirective(schema, field, 'public')?.[0]);
      if (!restricted && !isPublic)
        problems.push(`${root.name}.${field.name} must declare @public or @auth (or @hasRole)`);
      else if (restricted && isPublic)
        problems.push(`${root.name}.${field.name} declares @public but is restricted by @auth or @hasRole`);
    }
  }
  if (problems.length > 0) throw new Error(problems.join('; '));
}

export function unauthenticated(status?: number): GraphQLError {
  return new GraphQLError('You must be signed in', {
    extensions: { code: BffErrorCode.Unauthenticated, ...(status ? { http: { status } } : {}) },
  });
}

export function forbidden(role: string, status?: number): GraphQLError {
  return new GraphQLError(`This needs the ${role} role`, {
    extensions: { code: BffErrorCode.Forbidden, ...(status ? { http: { status } } : {}) },
  });
}

/**
 * Wraps every field that carries `@auth` or `@hasRole` (or whose type does) so that it
 * refuses, with UNAUTHENTICATED or FORBIDDEN, a request without the right viewer. Fields
 * without them are untouched and public; a root field must say so with `@public` (see
 * assertRootFieldsDeclareAccess, run by the BFF's schema build).
 */
export function applyAuthDirectives(schema: GraphQLSchema): GraphQLSchema {
  return mapSchema(schema, {
    [MapperKind.OBJECT_FIELD]: (fieldConfig, fieldName, typeName, mapped) => {
      const type = mapped.getType(typeName) as GraphQLObjectType;
      const requirement = readRequirement(mapped, type, type.getFields()[fieldName] as never);
      if (!requirement) return fieldConfig;
      const resolve: GraphQLFieldResolver<unknown, BffContext> = fieldConfig.resolve ?? defaultFieldResolver;
      return {
        ...fieldConfig,
        resolve(source, args, context, info) {
          const viewer = context.viewer;
          if (!viewer) throw unauthenticated();
          if (requirement.role && !viewer.roles.includes(requirement.role)) throw forbidden(requirement.role);
          return resolve(source, args, context, info);
        },
      };
    },
  });
}
