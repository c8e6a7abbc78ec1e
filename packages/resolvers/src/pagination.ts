import type { PageSizePolicy } from './context.ts';
import { userInput } from './errors.ts';

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

const PRODUCT_CURSOR = 'product:';

export function productCursor(id: string): string {
  return Buffer.from(`${PRODUCT_CURSOR}${id}`).toString('base64url');
}

export function productIdFromCursor(cursor: string): string {
  const decoded = Buffer.from(cursor, 'base64url').toString();
  if (
    !decoded.startsWith(PRODUCT_CURSOR) ||
    decoded.length > PRODUCT_CURSOR.length + 64 ||
    cursor.length > 200
  ) {
    throw userInput('after', 'after is not a cursor this API issued');
  }
  return decoded.slice(PRODUCT_CURSOR.length);
}
