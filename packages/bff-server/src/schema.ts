import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertRootFieldsDeclareAccess } from '@bff/auth';
import { assertCostCoversListArguments } from '@bff/operation-limits';
import { type BffContext, baseResolvers } from '@bff/resolvers';
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

/**
 * The base SDL plus every `.graphql` file in `appSchemaDir`, with the base resolvers and the
 * app's, merged. An app adds a field by adding SDL and a resolver in its own folder.
 *
 * Refuses (throws, so the app does not start) a schema that would fail open: a root field that
 * does not declare `@public`, `@auth` or `@hasRole`, or a list field sized by an argument the
 * cost limit does not read (see `@listSize`).
 */
export function buildBffSchema(
  appSchemaDir: string,
  appResolvers: AppResolvers,
  transforms: readonly ((schema: GraphQLSchema) => GraphQLSchema)[] = [],
): GraphQLSchema {
  const appFiles = readdirSync(appSchemaDir)
    .filter((name) => name.endsWith('.graphql'))
    .sort()
    .map((name) => readFileSync(join(appSchemaDir, name), 'utf8'));
  const schema = makeExecutableSchema({
    typeDefs: [readFileSync(baseSchemaPath, 'utf8'), ...appFiles],
    resolvers: [baseResolvers, appResolvers],
    inheritResolversFromInterfaces: true,
  });
  for (const check of [assertRootFieldsDeclareAccess, assertCostCoversListArguments]) {
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
