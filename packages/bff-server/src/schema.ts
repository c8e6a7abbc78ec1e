import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertRootFieldsDeclareAccess } from '@bff/auth';
import { assertCostCoversListArguments } from '@bff/operation-limits';
import { type BffContext, baseResolvers } from '@bff/resolvers';
import { assertRestrictedFieldsArePrivate } from '@bff/response-cache';
import { baseSchemaPath } from '@bff/schema';
import { type IExecutableSchemaDefinition, makeExecutableSchema } from '@graphql-tools/schema';
import type { GraphQLSchema } from 'graphql';

/**
 * An app's resolvers: type name to field name to resolver (or a scalar/enum definition), run
 * with a `BffContext`. Apps type theirs with the `Resolvers` generated from their SDL (codegen.ts).
 */
export type AppResolvers = Exclude<
  NonNullable<IExecutableSchemaDefinition<BffContext>['resolvers']>,
  unknown[]
>;

/** Where `buildBffSchema` reads SDL from besides the app's folder. */
export interface BffSchemaSources {
  /**
   * The base SDL every app shares. Tooling that checks a scratch copy of the repository (the
   * schema checks' tests) points it at the copy. @default `baseSchemaPath` of @bff/schema
   */
  baseSchemaPath?: string;
}

/**
 * The SDL an app is built from, in order: the base, then every `.graphql` file of
 * `appSchemaDir` in name order. The one place that says how an app's schema is put together;
 * the schema checks build through `buildBffSchema` too, so a snapshot is what the app serves.
 */
function readBffTypeDefs(base: string, appSchemaDir: string): string[] {
  const appFiles = readdirSync(appSchemaDir)
    .filter((name) => name.endsWith('.graphql'))
    .sort()
    .map((name) => readFileSync(join(appSchemaDir, name), 'utf8'));
  return [readFileSync(base, 'utf8'), ...appFiles];
}

/**
 * The base SDL plus every `.graphql` file in `appSchemaDir`, with the base resolvers and the
 * app's, merged. An app adds a field by adding SDL and a resolver in its own folder.
 *
 * Refuses (throws, so the app does not start) a schema that would fail open: a root field that
 * does not declare `@public`, `@auth` or `@hasRole`, a list field sized by an argument the
 * cost limit does not read (see `@listSize`), or a field only some viewers may read that is not
 * cached privately (`@cacheControl(scope: PRIVATE)`).
 */
export function buildBffSchema(
  appSchemaDir: string,
  appResolvers: AppResolvers,
  transforms: readonly ((schema: GraphQLSchema) => GraphQLSchema)[] = [],
  sources: BffSchemaSources = {},
): GraphQLSchema {
  const schema = makeExecutableSchema({
    typeDefs: readBffTypeDefs(sources.baseSchemaPath ?? baseSchemaPath, appSchemaDir),
    resolvers: [baseResolvers, appResolvers],
    inheritResolversFromInterfaces: true,
  });
  const restrictedArePrivate = (built: GraphQLSchema) =>
    assertRestrictedFieldsArePrivate(built, ['auth', 'hasRole']);
  for (const check of [assertRootFieldsDeclareAccess, assertCostCoversListArguments, restrictedArePrivate]) {
    try {
      check(schema);
    } catch (error) {
      throw new Error(`The schema in ${appSchemaDir} is refused: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }
  return transforms.reduce((current, transform) => transform(current), schema);
}
