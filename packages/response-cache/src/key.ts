import { hash } from 'node:crypto';
import type { CacheScope } from './cache-policy.ts';

/** Everything a cached response depends on besides the schema and the data. */
export interface ResponseCacheKeyParts {
  /** Which BFF answered (`web`, `ios`, `android`): their schemas differ. */
  app: string;
  /** The document's hash (the persisted-operation id, or the sha256 of the query text). */
  operationHash: string;
  /** The operation run, when the document holds several; null/undefined for the only one. */
  operationName?: string | null | undefined;
  /** The request's variables, as the client sent them (JSON); key order does not matter. */
  variables?: Readonly<Record<string, unknown>> | null | undefined;
  /** The locale the response was rendered for. */
  locale: string;
  /** The client's version, for mobile apps whose responses may differ by version. */
  appVersion?: string | undefined;
  /** The viewer's id: required for a PRIVATE response, left out of a PUBLIC one's key. */
  viewerId?: string | undefined;
  /** The response's cache scope, from `cachePolicyOf`. */
  scope: CacheScope;
}

/** Bumped whenever keys or entries change shape, so replicas of two releases never share entries. */
const KEY_VERSION = 'v2';

/**
 * The store key of one response: `v2:<scope>:<sha256 base64url>` over every part, with the
 * variables canonicalised (object keys sorted at every depth), so equal requests share a key
 * whatever order their variables came in, and nothing a client sends makes a key long or lets
 * two different requests collide by concatenation.
 *
 * A PUBLIC key leaves the viewer out (any viewer may be served it); a PRIVATE key includes it.
 * A PRIVATE response with no viewer has no key: it must not be cached (resolves `undefined`).
 */
export function responseCacheKey(parts: ResponseCacheKeyParts): string | undefined {
  const { app, operationHash, locale, scope } = parts;
  requireString('app', app);
  requireString('operationHash', operationHash);
  requireString('locale', locale);
  if (scope !== 'PUBLIC' && scope !== 'PRIVATE') {
    throw new TypeError(
      `responseCacheKey: scope must be PUBLIC or PRIVATE, received ${JSON.stringify(scope)}`,
    );
  }
  optionalString('operationName', parts.operationName);
  optionalString('appVersion', parts.appVersion);
  optionalString('viewerId', parts.viewerId);
  const variables = parts.variables ?? {};
  if (typeof variables !== 'object' || Array.isArray(variables)) {
    throw new TypeError(
      `responseCacheKey: variables must be an object, received ${JSON.stringify(variables)}`,
    );
  }
  let viewer: string | null = null;
  if (scope === 'PRIVATE') {
    if (!parts.viewerId) return undefined;
    viewer = parts.viewerId;
  }
  // The parts as one JSON array, then the variables' canonical JSON: the array is complete JSON,
  // so where it ends is never in doubt and no two requests concatenate to the same text.
  const canonical =
    JSON.stringify([
      app,
      operationHash,
      parts.operationName ?? null,
      locale,
      parts.appVersion ?? null,
      viewer,
    ]) + canonicalJson(variables);
  return `${KEY_VERSION}:${scope}:${hash('sha256', canonical, 'base64url')}`;
}

/**
 * The JSON value with object keys sorted at every depth, as `JSON.stringify` would otherwise
 * write it (so `undefined` members vanish, `-0` is `0`, and `toJSON` is honoured). Throws on
 * what JSON cannot hold (a BigInt, a cycle) rather than keying it ambiguously.
 */
export function canonicalVariables(variables: Readonly<Record<string, unknown>> | null | undefined): string {
  return canonicalJson(variables ?? {});
}

function canonicalJson(value: unknown): string {
  // Most requests have no variables: nothing to sort.
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && isEmpty(value)) return '{}';
  // JSON.stringify applies toJSON before the replacer sees a value, drops undefined and
  // functions, and throws on BigInt and cycles; the replacer only puts keys in order.
  return JSON.stringify(value, inKeyOrder) ?? 'null';
}

/** A plain object without members (one with a prototype of its own may have a `toJSON`). */
function isEmpty(value: object): boolean {
  const prototype = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return false;
  for (const _ in value) return false;
  return true;
}

function inKeyOrder(_key: string, value: unknown): unknown {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return value;
  const source = value as Record<string, unknown>;
  const names = Object.keys(source);
  let ordered = true;
  for (let i = 1; i < names.length && ordered; i++) ordered = (names[i - 1] as string) < (names[i] as string);
  if (ordered) return value;
  // No prototype, so a member named `__proto__` stays a member instead of vanishing.
  const sorted: Record<string, unknown> = Object.create(null);
  for (const name of names.sort()) sorted[name] = source[name];
  return sorted;
}

function requireString(name: string, value: unknown): void {
  if (typeof value !== 'string' || value.length === 0) {
    throw new TypeError(
      `responseCacheKey: ${name} must be a non-empty string, received ${JSON.stringify(value)}`,
    );
  }
}

function optionalString(name: string, value: unknown): void {
  if (value !== undefined && value !== null && typeof value !== 'string') {
    throw new TypeError(
      `responseCacheKey: ${name} must be a string when given, received ${JSON.stringify(value)}`,
    );
  }
}
