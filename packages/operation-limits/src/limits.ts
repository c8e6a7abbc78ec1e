import { BffErrorCode } from '@bff/error-codes';

/** Per-app ceilings. Every one is enforced before execution. */
export interface OperationLimits {
  /** Deepest field nesting; fragment spreads add their fields' depth, not a level of their own. */
  maxDepth: number;
  /** Aliased fields in one document, `__typename` included. */
  maxAliases: number;
  /** Directive uses in one document. */
  maxDirectives: number;
  /** Lexical tokens in one document (parsing stops at the limit). */
  maxTokens: number;
  /** Cost: every object or list field costs 1, multiplied by the sizes of the lists around it. */
  maxCost: number;
  /** Fields at the root of one operation. */
  maxRootFields: number;
  /** Request body size, in bytes. */
  maxBodyBytes: number;
  /** Length of the `query` text, in characters. */
  maxDocumentChars: number;
  /** Size assumed for a list field with no `first`/`last`/`ids` argument around it. */
  defaultListSize: number;
}

/** The `extensions.code` of every limit refusal; `extensions.limit` names which one. */
export const LIMIT_CODE = BffErrorCode.OperationLimitExceeded;

/** Throws a TypeError naming the first limit that is not a positive whole number. */
export function validateLimits(limits: OperationLimits): OperationLimits {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 1) {
      throw new TypeError(
        `operation limits: ${name} must be a positive whole number, received ${String(value)}`,
      );
    }
  }
  return Object.freeze({ ...limits });
}
