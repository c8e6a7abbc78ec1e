import { BffErrorCode } from '@bff/error-codes';
import type { GraphQLFormattedError } from 'graphql';
import { LIMIT_CODE } from './limits.ts';

/**
 * Gives limit refusals their own code. Apollo reports validation-rule errors as
 * GRAPHQL_VALIDATION_FAILED and the token limit as GRAPHQL_PARSE_FAILED; clients need to tell
 * "your operation is too big" apart from "your operation is wrong". In production the token
 * limit's message (which states the threshold) is replaced.
 */
export function formatLimitError(
  formatted: GraphQLFormattedError,
  exposeLimits: boolean,
): GraphQLFormattedError {
  const extensions = formatted.extensions ?? {};
  if (extensions.limit !== undefined && extensions.code === BffErrorCode.GraphqlValidationFailed) {
    return { ...formatted, extensions: { ...extensions, code: LIMIT_CODE } };
  }
  // graphql-js words it "more that N tokens"; match both spellings.
  if (
    extensions.code === BffErrorCode.GraphqlParseFailed &&
    /more th(?:an|at) \d+ tokens/.test(formatted.message)
  ) {
    return {
      ...formatted,
      message: exposeLimits
        ? formatted.message.replace(/^Syntax Error: /, '')
        : 'The operation has too many tokens',
      extensions: { ...extensions, code: LIMIT_CODE, limit: 'tokens' },
    };
  }
  return formatted;
}
