import { assertEntry, assertKey, assertTags, emptyStats, type ResponseCacheStore } from './store.ts';

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

  async set(key: string, value: string, ttlSeconds: number, tags: readonly string[]): Promise<void> {
    assertEntry('MemoryResponseCacheStore.set', key, ttlSeconds, tags);
    if (typeof value !== 'string') {
      throw new TypeError(`MemoryResponseCacheStore.set: value must be a string, received ${typeof value}`);
    }
    const previous = this.entries.get(key);
    if (previous) this.drop(key, previous);
    const uniqueTags = [...new Set(tags)];
    const bytes =
      Buffer.byteLength(key) +
      Buffer.byteLength(value) +
      uniqueTags.reduce((sum, tag) => sum + Buffer.byteLength(tag), 0);
    if (bytes > this.maxBytes) return;
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
  }

  async invalidate(tags: readonly string[]): Promise<number> {
    assertTags('MemoryResponseCacheStore.invalidate', tags);
    let dropped = 0;
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

  async close(): Promise<void> {
    this.entries.clear();
    this.keysByTag.clear();
    this.heldBytes = 0;
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
