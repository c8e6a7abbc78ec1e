/** Counts a store keeps from its start; a snapshot, so it can be read and compared safely. */
export interface ResponseCacheStats {
  /** `get` calls that returned a value. */
  hits: number;
  /** `get` calls that returned nothing, including those the backend failed to answer. */
  misses: number;
  /** Entries written. */
  stores: number;
  /** Entries dropped by `invalidate` (not by expiry or eviction). */
  invalidations: number;
  /** Calls the backend failed or did not answer in time; the caller saw a miss or a skip. */
  failures: number;
}

/**
 * Whole GraphQL responses by key, each tagged with the entities it holds, so that a change to
 * one entity drops every response that showed it. Keys and tags are opaque strings. No method
 * rejects because of the backend: a store that cannot answer misses, skips and counts.
 */
export interface ResponseCacheStore {
  /** The value stored under `key`, unless it has expired, been evicted or been invalidated. */
  get(key: string): Promise<string | undefined>;
  /** Stores `value` for `ttlSeconds` (> 0), indexed under each of `tags`. Replaces what was there. */
  set(key: string, value: string, ttlSeconds: number, tags: readonly string[]): Promise<void>;
  /** Drops every entry carrying any of `tags`; resolves to how many entries were dropped. */
  invalidate(tags: readonly string[]): Promise<number>;
  /** Counts since the store was made. */
  readonly stats: ResponseCacheStats;
  close(): Promise<void>;
}

/** The argument checks every store shares: contract errors, not backend failures, so they throw. */
export function assertEntry(store: string, key: unknown, ttlSeconds: unknown, tags: unknown): void {
  assertKey(store, 'key', key);
  if (typeof ttlSeconds !== 'number' || !Number.isFinite(ttlSeconds) || ttlSeconds <= 0) {
    throw new TypeError(`${store}.set: ttlSeconds must be a positive number, received ${String(ttlSeconds)}`);
  }
  assertTags(store, tags);
}

export function assertKey(store: string, what: string, key: unknown): void {
  if (typeof key !== 'string' || key.length === 0) {
    throw new TypeError(`${store}: ${what} must be a non-empty string, received ${JSON.stringify(key)}`);
  }
}

export function assertTags(store: string, tags: unknown): asserts tags is readonly string[] {
  if (!Array.isArray(tags)) {
    throw new TypeError(`${store}: tags must be an array of strings, received ${JSON.stringify(tags)}`);
  }
  for (const tag of tags) assertKey(store, 'each tag', tag);
}

export function emptyStats(): ResponseCacheStats {
  return { hits: 0, misses: 0, stores: 0, invalidations: 0, failures: 0 };
}
