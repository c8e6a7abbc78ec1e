/**
 * Environment configuration, read in one place per process, validated once and frozen.
 *
 * Every public export here is public API of `@bff/config`.
 */

export { env } from './fields.ts';
export type { ConfigSchema } from './read-config.ts';
export { ConfigError, configOrExit, readConfig } from './read-config.ts';
