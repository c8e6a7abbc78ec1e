import {
  assertEntry,
  assertKey,
  assertSetOptions,
  assertTags,
  emptyStats,
  INVALIDATION_MEMORY_MS,
  type ResponseCacheStore,
  type SetOptions,
  type SetOutcome,
} from './store.ts';

export interface MemoryResponseCacheStoreOptions {
  /**
   * Bytes held at most (UTF-8 length of keys, values and tags): past it the least recently
   * used entries go. An entry larger than this on its own is not stored. @default 67108864 (64 MiB)
   */
  maxBytes?: number;
  /** The clock entries expire by, ms since the epoch; tests inject one. @default Date.now */
  now?: () => number;
}

interface Entry {
  value: string;
  bytes: number;
  expiresAt: number;
  tags: readonly string[];
}

/**
 * One process's cache: a least-recently-used map bounded by bytes, with an index from tag to
 * keys kept exact as entries come and go (eviction, expiry, replacement and invalidation all
 * drop a key from its tags), so an invalidation finds every live entry and the index never
 * outgrows the entries. Shared by nothing else: use the Redis store when replicas must agree.
 */
export class MemoryResponseCacheStore implements ResponseCacheStore {
  private readonly entries = new Map<string, Entry>();
  private readonly keysByTag = new Map<string, Set<string>>();
  /** When each tag was last invalidated, oldest first; forgotten after INVALIDATION_MEMORY_MS. */
  private readonly invalidatedAt = new Map<string, number>();
  private readonly maxBytes: number;
  private readonly now: () => number;
  private readonly counts = emptyStats();
  private heldBytes = 0;

  constructor(options: MemoryResponseCacheStoreOptions = {}) {
    const maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
      throw new TypeError(
        `MemoryResponseCacheStore: maxBytes must be a positive whole number, received ${String(maxBytes)}`,
      );
    }
    if (options.now !== undefined && typeof options.now !== 'function') {
      throw new TypeError(`MemoryResponseCacheStore: now must be a function, received ${typeof options.now}`);
    }
    this.maxBytes = maxBytes;
    this.now = options.now ?? Date.now;
  }

  get stats() {
    return { ...this.counts };
  }

  /** Bytes currently held, as counted against `maxBytes`. */
  get bytes(): number {
    return this.heldBytes;
  }

  /** Entries currently held, expired ones not yet dropped included. */
  get size(): number {
    return this.entries.size;
  }

  async get(key: string): Promise<string | undefined> {
    assertKey('MemoryResponseCacheStore.get', 'key', key);
    const entry = this.entries.get(key);
    if (!entry || entry.expiresAt <= this.now()) {
      if (entry) this.drop(key, entry);
      this.counts.misses++;
      return undefined;
    }
    // Map order is recency order: move the entry to the young end.
    this.entries.delete(key);
    this.entries.set(key, entry);
    this.counts.hits++;
    return entry.value;
  }

  async set(
    key: string,
    value: string,
    ttlSeconds: number,
    tags: readonly string[],
    options?: SetOptions,
  ): Promise<SetOutcome> {
    assertEntry('MemoryResponseCacheStore', key, value, ttlSeconds, tags);
    const since = assertSetOptions('MemoryResponseCacheStore', options);
    // UTF-8 takes at least a byte per UTF-16 unit: an entry this long cannot fit, whatever it
    // holds (nothing is dropped for it: what is stored under the key stays valid).
    if (key.length + value.length > this.maxBytes) return 'skipped';
    const uniqueTags = [...new Set(tags)];
    if (since !== undefined) {
      this.forgetOldInvalidations();
      for (const tag of uniqueTags) {
        const at = this.invalidatedAt.get(tag);
        if (at !== undefined && at >= since) {
          this.counts.stale++;
          return 'stale';
        }
      }
      // Older than what is remembered: it cannot be shown to postdate every invalidation.
      if (since < this.now() - INVALIDATION_MEMORY_MS) {
        this.counts.stale++;
        return 'stale';
      }
    }
    const previous = this.entries.get(key);
    if (previous) this.drop(key, previous);
    const bytes =
      Buffer.byteLength(key) +
      Buffer.byteLength(value) +
      uniqueTags.reduce((sum, tag) => sum + Buffer.byteLength(tag), 0);
    if (bytes > this.maxBytes) return 'skipped';
    while (this.heldBytes + bytes > this.maxBytes) {
      const oldest = this.entries.entries().next();
      if (oldest.done) break;
      this.drop(oldest.value[0], oldest.value[1]);
    }
    this.entries.set(key, { value, bytes, expiresAt: this.now() + ttlSeconds * 1000, tags: uniqueTags });
    this.heldBytes += bytes;
    for (const tag of uniqueTags) {
      let keys = this.keysByTag.get(tag);
      if (!keys) {
        keys = new Set();
        this.keysByTag.set(tag, keys);
      }
      keys.add(key);
    }
    this.counts.stores++;
    return 'stored';
  }

  async invalidate(tags: readonly string[]): Promise<number> {
    assertTags('MemoryResponseCacheStore.invalidate', tags);
    let dropped = 0;
    const now = this.now();
    for (const tag of tags) {
      // Re-inserted, so the map stays in invalidation order and the oldest are forgotten first.
      this.invalidatedAt.delete(tag);
      this.invalidatedAt.set(tag, now);
    }
    this.forgetOldInvalidations();
    for (const tag of tags) {
      const keys = this.keysByTag.get(tag);
      if (!keys) continue;
      for (const key of [...keys]) {
        const entry = this.entries.get(key);
        if (!entry) continue;
        this.drop(key, entry);
        dropped++;
      }
    }
    this.counts.invalidations += dropped;
    return dropped;
  }

  /**
   * Drops every entry: for a process that may have missed invalidations (its event subscription
   * had a gap). Resolves to how many entries were dropped (not counted as invalidations).
   */
  async clear(): Promise<number> {
    const dropped = this.entries.size;
    this.entries.clear();
    this.keysByTag.clear();
    this.heldBytes = 0;
    return dropped;
  }

  async close(): Promise<void> {
    await this.clear();
    this.invalidatedAt.clear();
  }

  private forgetOldInvalidations(): void {
    const horizon = this.now() - INVALIDATION_MEMORY_MS;
    for (const [tag, at] of this.invalidatedAt) {
      if (at >= horizon) break;
      this.invalidatedAt.delete(tag);
    }
  }

  private drop(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.heldBytes -= entry.bytes;
    for (const tag of entry.tags) {
      const keys = this.keysByTag.get(tag);
      if (!keys) continue;
      keys.delete(key);
      if (keys.size === 0) this.keysByTag.delete(tag);
    }
  }
}
