/**
 * Operation limits, checked before execution: depth (fragments included), aliases
 * (`__typename` ones too), directives, tokens, root fields and document size as validation or
 * pre-parse checks, and cost with list-size weighting (it needs the variables) as a plugin;
 * and, at schema build, a check that every argument that could size a list is one cost reads.
 * graphql-armor supplies depth, aliases and directives; the rest is here.
 *
 * Every export here is public API of `@bff/operation-limits`.
 */

export type { CostPluginOptions } from './cost.ts';
export { createCostPlugin, operationCost } from './cost.ts';
export { formatLimitError } from './format.ts';
export type { OperationLimits } from './limits.ts';
export { LIMIT_CODE, validateLimits } from './limits.ts';
export type { ListSize } from './list-size.ts';
export { assertCostCoversListArguments, listSizeOf, SIZE_ARGUMENTS } from './list-size.ts';
export { limitValidationRules } from './rules.ts';
