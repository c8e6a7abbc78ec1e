import type { PageSizePolicy } from './context.ts';
import { userInput } from './errors.ts';
import { input } from './input.ts';

export { productCursor } from './input.ts';

/** The page size for `first` under `policy`; out of range is BAD_USER_INPUT, never clamped. */
export function pageSize(first: number | null | undefined, policy: PageSizePolicy): number {
  if (first === null || first === undefined) return policy.default;
  if (first < 1 || first > policy.max) {
    const error = userInput('first', `first must be between 1 and ${policy.max}, received ${first}`);
    error.extensions.max = policy.max;
    throw error;
  }
  return first;
}

/** The product id an `after` cursor of `products` stands for (BAD_USER_INPUT naming `after`). */
export function productIdFromCursor(cursor: string): string {
  return input.productCursor(cursor, 'after');
}
