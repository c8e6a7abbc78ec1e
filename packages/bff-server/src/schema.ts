import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { baseResolvers } from '@bff/resolvers';
import { baseSchemaPath } from '@bff/schema';
import { makeExecutableSchema } from '@graphql-tools/schema';
import type { GraphQLSchema } from 'graphql';

/** An app's resolvers: type name to field name to resolver (or a scalar/enum definition). */
export type AppResolvers = Record<string, unknown>;

/**
 * The base SDL plus every `.graphql` file in `appSchemaDir`, with the base resolvers and the
 * app's, merged. An app adds a field by adding SDL and a resolver in its own folder.
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
    resolvers: [baseResolvers, appResolvers] as never,
    inheritResolversFromInterfaces: true,
  });
  return transforms.reduce((current, transform) => transform(current), schema);
}
