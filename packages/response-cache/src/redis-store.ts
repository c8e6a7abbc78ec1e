import { Redis } from 'ioredis';
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

export interface RedisResponseCacheStoreOptions {
  /** `redis://host:port/db` or `rediss://…` */
  url: string;
  /**
   * Put before every key and tag in Redis, so that apps and deployments sharing one Redis keep
   * apart (e.g. `bff:web:prod:`). Letters, digits and `:_.-` only.
   */
  prefix: string;
  /** Longest any call may take; past it `get` misses and `set`/`invalidate` are skipped, in ms. @default 150 */
  timeoutMs?: number;
}

/**
 * Writes the entry and indexes it under each tag in one atomic step, unless a tag was
 * invalidated at or after ARGV[3] (the data's read time; -1: no check), in which case nothing is
 * written and 0 is returned. KEYS: the entry, then N tag sets, then the N tags' invalidation
 * times (N = ARGV[4]). A tag set's TTL is only ever raised, to at least its newest entry's, so a
 * set never expires before an entry it indexes. Keys of expired entries linger in their sets
 * until the tag is invalidated or the set expires; two random members are checked on each write
 * and dropped if gone, so a hot tag that never expires does not grow without bound.
 */
const SET_SCRIPT = `
local ttl = tonumber(ARGV[2])
local since = tonumber(ARGV[3])
local n = tonumber(ARGV[4])
if since >= 0 then
  for i = 1, n do
    local at = redis.call('GET', KEYS[1 + n + i])
    if at and tonumber(at) >= since then return 0 end
  end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
for i = 2, n + 1 do
  local sample = redis.call('SRANDMEMBER', KEYS[i], 2)
  for j = 1, #sample do
    if sample[j] ~= KEYS[1] and redis.call('EXISTS', sample[j]) == 0 then
      redis.call('SREM', KEYS[i], sample[j])
    end
  end
  redis.call('SADD', KEYS[i], KEYS[1])
  if redis.call('PTTL', KEYS[i]) < ttl then
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
end
return 1
`;

/**
 * Reads each tag set, deletes the entries it names and the set itself, and records when the tag
 * was invalidated (ARGV[1], kept ARGV[2] ms), in one atomic step: no write can land between the
 * read and the deletes, so an entry written after the invalidation is never dropped by it, one
 * written before is never missed, and a write of data read before it is refused (SET_SCRIPT).
 * KEYS: N tag sets, then the N tags' invalidation times.
 */
const INVALIDATE_SCRIPT = `
local dropped = 0
local n = #KEYS / 2
for i = 1, n do
  local members = redis.call('SMEMBERS', KEYS[i])
  for j = 1, #members do
    dropped = dropped + redis.call('DEL', members[j])
  end
  redis.call('DEL', KEYS[i])
  redis.call('SET', KEYS[n + i], ARGV[1], 'PX', tonumber(ARGV[2]))
end
return dropped
`;

type SetCommand = (...keysThenArgs: Array<string | number>) => Promise<number>;
type InvalidateCommand = (...keyCountThenKeys: Array<string | number>) => Promise<number>;

/**
 * The cache every replica shares. Redis is an optimisation here, never a dependency: a call
 * Redis fails, or does not answer within `timeoutMs`, resolves as a miss or a skip and is
 * counted in `stats.failures`; nothing is queued while Redis is away, and it is used again as
 * soon as it is back.
 *
 * One Redis (or a primary with replicas), not Redis Cluster: the invalidation script deletes
 * keys it reads from a set, which a cluster does not allow across slots.
 */
export class RedisResponseCacheStore implements ResponseCacheStore {
  private readonly redis: Redis;
  private readonly prefix: string;
  private readonly timeoutMs: number;
  private readonly counts = emptyStats();

  constructor(options: RedisResponseCacheStoreOptions) {
    if (typeof options?.url !== 'string' || !/^rediss?:\/\//.test(options.url)) {
      throw new TypeError(
        `RedisResponseCacheStore: url must be a redis:// URL, received ${JSON.stringify(options?.url)}`,
      );
    }
    if (typeof options.prefix !== 'string' || !/^[A-Za-z0-9:_.-]{1,64}$/.test(options.prefix)) {
      throw new TypeError(
        `RedisResponseCacheStore: prefix must be 1-64 of A-Z a-z 0-9 : _ . -, received ${JSON.stringify(options.prefix)}`,
      );
    }
    const timeoutMs = options.timeoutMs ?? 150;
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1) {
      throw new TypeError(
        `RedisResponseCacheStore: timeoutMs must be a positive whole number, received ${String(timeoutMs)}`,
      );
    }
    this.prefix = options.prefix;
    this.timeoutMs = timeoutMs;
    this.redis = new Redis(options.url, {
      // Fail fast instead of queueing while disconnected: a request never waits for a Redis
      // that is not there, it goes to the upstreams.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: timeoutMs,
      connectTimeout: Math.max(1_000, timeoutMs),
      // Keep reconnecting for as long as the process lives: Redis coming back is used at once.
      retryStrategy: (attempt) => Math.min(50 * attempt, 1_000),
      lazyConnect: false,
    });
    this.redis.on('error', () => {}); // surfaced as counted failures
    this.redis.defineCommand('bffResponseCacheSet', { lua: SET_SCRIPT });
    this.redis.defineCommand('bffResponseCacheInvalidate', { lua: INVALIDATE_SCRIPT });
  }

  get stats() {
    return { ...this.counts };
  }

  /** Resolves once connected, or after `timeoutMs` regardless (calls miss until it is). */
  async ready(timeoutMs = 2_000): Promise<boolean> {
    if (this.redis.status === 'ready') return true;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.redis.off('ready', onReady);
        resolve(false);
      }, timeoutMs);
      const onReady = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.redis.once('ready', onReady);
    });
  }

  async get(key: string): Promise<string | undefined> {
    assertKey('RedisResponseCacheStore.get', 'key', key);
    const outcome = await this.bounded(() => this.redis.get(this.entryKey(key)));
    if (!outcome.ok) {
      this.counts.failures++;
      this.counts.misses++;
      return undefined;
    }
    if (outcome.value === null) {
      this.counts.misses++;
      return undefined;
    }
    this.counts.hits++;
    return outcome.value;
  }

  async set(
    key: string,
    value: string,
    ttlSeconds: number,
    tags: readonly string[],
    options?: SetOptions,
  ): Promise<SetOutcome> {
    assertEntry('RedisResponseCacheStore', key, value, ttlSeconds, tags);
    const since = assertSetOptions('RedisResponseCacheStore', options);
    // Older than the invalidation times Redis keeps: it cannot be shown to postdate them.
    if (since !== undefined && since < Date.now() - INVALIDATION_MEMORY_MS) {
      this.counts.stale++;
      return 'stale';
    }
    const unique = [...new Set(tags)];
    const tagKeys = unique.map((tag) => this.tagKey(tag));
    const timeKeys = unique.map((tag) => this.invalidatedKey(tag));
    const command = (this.redis as unknown as { bffResponseCacheSet: SetCommand }).bffResponseCacheSet;
    const outcome = await this.bounded(() =>
      command.call(
        this.redis,
        1 + 2 * unique.length,
        this.entryKey(key),
        ...tagKeys,
        ...timeKeys,
        value,
        Math.ceil(ttlSeconds * 1000),
        since === undefined ? -1 : Math.floor(since),
        unique.length,
      ),
    );
    if (!outcome.ok) {
      this.counts.failures++;
      return 'skipped';
    }
    if (Number(outcome.value) === 0) {
      this.counts.stale++;
      return 'stale';
    }
    this.counts.stores++;
    return 'stored';
  }

  async invalidate(tags: readonly string[]): Promise<number> {
    assertTags('RedisResponseCacheStore.invalidate', tags);
    if (tags.length === 0) return 0;
    const unique = [...new Set(tags)];
    const command = (this.redis as unknown as { bffResponseCacheInvalidate: InvalidateCommand })
      .bffResponseCacheInvalidate;
    // The invalidating process's clock: writers compare their own read time with it, so the
    // replicas' clocks must agree to within the skew the writers allow for (see SetOptions).
    const outcome = await this.bounded(() =>
      command.call(
        this.redis,
        2 * unique.length,
        ...unique.map((tag) => this.tagKey(tag)),
        ...unique.map((tag) => this.invalidatedKey(tag)),
        Date.now(),
        INVALIDATION_MEMORY_MS,
      ),
    );
    if (!outcome.ok) {
      this.counts.failures++;
      return 0;
    }
    const dropped = Number(outcome.value);
    this.counts.invalidations += dropped;
    return dropped;
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }

  private entryKey(key: string): string {
    return `${this.prefix}e:${key}`;
  }

  private tagKey(tag: string): string {
    return `${this.prefix}t:${tag}`;
  }

  private invalidatedKey(tag: string): string {
    return `${this.prefix}i:${tag}`;
  }

  /**
   * Runs one call under our own deadline as well as ioredis's `commandTimeout`: a script may
   * take two round trips (EVALSHA, then EVAL on NOSCRIPT), and the caller's wait is what is
   * promised, not each command's.
   */
  private bounded<T>(call: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false }> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ ok: false }), this.timeoutMs);
      let pending: Promise<T>;
      try {
        pending = call();
      } catch {
        clearTimeout(timer);
        resolve({ ok: false });
        return;
      }
      pending.then(
        (value) => {
          clearTimeout(timer);
          resolve({ ok: true, value });
        },
        () => {
          clearTimeout(timer);
          resolve({ ok: false });
        },
      );
    });
  }
}
