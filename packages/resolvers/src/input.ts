import type { GraphQLError } from 'graphql';
import { userInput } from './errors.ts';

/**
 * The checks every client-supplied id, string and cursor passes before it leaves the BFF. An
 * argument that fails is the client's mistake: a BAD_USER_INPUT error naming the argument, not
 * an upstream call that the service refuses (or, worse, fails on: PostgreSQL rejects a NUL in
 * text), which would be retried and held against the service's health.
 *
 * Each check takes the value and the name of the argument it came in (named in the error), and
 * returns the value to send upstream. Lengths are in UTF-16 code units, as the services count.
 */

/** C0 and C1 controls and DEL: never part of an id, a name or a search (NUL breaks PostgreSQL). */
const CONTROL = /\p{Cc}/u;
/** Half of a surrogate pair on its own: not text, and not what the client meant to send. */
const LONE_SURROGATE = /\p{Cs}/u;
/**
 * One id: letters, digits, marks, punctuation and symbols only. No whitespace, controls,
 * invisible format characters (zero-width, bidi overrides) or unpaired surrogates, so what the
 * client typed is what the service looks up. Liberal enough for `p-0001`, UUIDs, SKUs, slugs.
 */
const ID = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]+$/u;
const MAX_ID = 64;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const MAX_CURSOR = 200;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** How Billing writes an instant in its cursors (toISOString, years 1 to 9999): the only form it takes back. */
const CANONICAL_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const PRODUCT_CURSOR = 'product:';

/** Text a person typed: bounded, well-formed, no control characters. Spaces are fine. */
function text(value: string, argument: string, max: number, what: string): string {
  if (value.length > max) throw userInput(argument, `${argument} must be at most ${max} characters`);
  if (CONTROL.test(value)) throw userInput(argument, `${argument} must not contain control characters`);
  if (LONE_SURROGATE.test(value)) throw userInput(argument, `${argument} must be well-formed ${what}`);
  return value;
}

function id(value: string, argument: string): string {
  if (value.length === 0) throw userInput(argument, `${argument} must not be empty`);
  if (value.length > MAX_ID) throw userInput(argument, `${argument} must be at most ${MAX_ID} characters`);
  if (!ID.test(value)) {
    throw userInput(
      argument,
      `${argument} must be letters, digits, punctuation and symbols only (no spaces or control characters)`,
    );
  }
  return value;
}

function notIssued(argument: string): GraphQLError {
  return userInput(argument, `${argument} is not a cursor this API issued`);
}

/** The base64url text of a cursor, decoded; BAD_USER_INPUT when it cannot be one of ours. */
function decodeCursor(value: string, argument: string): string {
  if (value.length === 0 || value.length > MAX_CURSOR || !BASE64URL.test(value)) throw notIssued(argument);
  return Buffer.from(value, 'base64url').toString();
}

/** The edge checks, one per kind of argument: `input.productId(args.id, 'id')`. */
export const input = {
  /** A product id (`p-0001`): 1 to 64 visible characters. */
  productId: id,

  /** An invoice id (a UUID today; any 1 to 64 visible characters are let through as unknown). */
  invoiceId: id,

  /** A catalogue category (`books`): at most 64 characters of text. */
  category: (value: string, argument: string) => text(value, argument, 64, 'text'),

  /** A catalogue search: at most 200 characters of text. */
  searchText: (value: string, argument: string) => text(value, argument, 200, 'text'),

  /** A sign-in email: at most 254 characters, something@something, no spaces or controls. */
  email(value: string, argument: string): string {
    text(value, argument, 254, 'text');
    if (!/^[^\s@]+@[^\s@]+$/u.test(value)) throw userInput(argument, `${argument} must be an email address`);
    return value;
  },

  /** A password: 1 to 128 characters, no control characters (no keyboard types one). */
  password(value: string, argument: string): string {
    if (value.length === 0) throw userInput(argument, `${argument} must not be empty`);
    return text(value, argument, 128, 'text');
  },

  /** A client's idempotency key: 1 to 255 printable ASCII characters (Billing's header rule). */
  idempotencyKey(value: string, argument: string): string {
    if (!/^[\x21-\x7e]{1,255}$/.test(value))
      throw userInput(argument, `${argument} must be 1 to 255 printable ASCII characters`);
    return value;
  },

  /** The product id a `products` cursor (issued by `productCursor`) stands for. */
  productCursor(value: string, argument: string): string {
    const decoded = decodeCursor(value, argument);
    if (!decoded.startsWith(PRODUCT_CURSOR)) throw notIssued(argument);
    const productId = decoded.slice(PRODUCT_CURSOR.length);
    if (productId.length === 0 || productId.length > MAX_ID || !ID.test(productId)) throw notIssued(argument);
    return productId;
  },

  /**
   * A Billing invoice cursor, passed on as it is. Billing owns its format (base64url JSON of
   * the last invoice's canonical `issuedAt` and id); it is checked here too so that a cursor
   * Billing would refuse never leaves the BFF: e.g. `"t": "1"`, which Date.parse accepts and
   * PostgreSQL does not.
   */
  invoiceCursor(value: string, argument: string): string {
    const decoded = decodeCursor(value, argument);
    let cursor: { t?: unknown; id?: unknown };
    try {
      cursor = JSON.parse(decoded) as { t?: unknown; id?: unknown };
    } catch {
      throw notIssued(argument);
    }
    if (
      typeof cursor !== 'object' ||
      cursor === null ||
      typeof cursor.t !== 'string' ||
      !CANONICAL_INSTANT.test(cursor.t) ||
      cursor.t.startsWith('0000') || // year 0: JavaScript has one, PostgreSQL does not
      Number.isNaN(Date.parse(cursor.t)) ||
      new Date(cursor.t).toISOString() !== cursor.t ||
      typeof cursor.id !== 'string' ||
      !UUID.test(cursor.id)
    ) {
      throw notIssued(argument);
    }
    return value;
  },
} as const;

/** Encodes a `products` cursor for the product with this id. */
export function productCursor(productId: string): string {
  return Buffer.from(`${PRODUCT_CURSOR}${productId}`).toString('base64url');
}
