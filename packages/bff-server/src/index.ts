/**
 * Builds one BFF: the shared base schema merged with an app's own SDL and resolvers, served
 * by Apollo Server on Fastify with `/graphql`, GraphiQL from local assets, `/healthz` and
 * `/readyz`, per-request loaders, and upstream failures turned into coded errors.
 *
 * Every export here is public API of `@bff/bff-server`.
 */

export type { BffConfig } from './config.ts';
export { bffOptionsFromConfig, readAppVersionPolicy, readBffConfig } from './config.ts';
export type { BffServerOptions, RunningBff } from './options.ts';
export { nestingExceeds } from './request-guards.ts';
export type { AppResolvers } from './schema.ts';
export { buildBffSchema } from './schema.ts';
export { startBff } from './server.ts';
