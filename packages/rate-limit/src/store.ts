/** What a store tells about a key when a call is recorded against it. */
export interface RateLimitHit {
  /** Calls inside the window before this one (this one is recorded regardless). */
  before: number;
  /** Time of the oldest call still inside the window, ms since the epoch; undefined when none. */
  oldest: number | undefined;
  /** The store's clock when it recorded the call, ms since the epoch. */
  now: number;
}

/**
 * A sliding-window log. `hit` must be atomic: it drops calls older than the window, counts
 * what is left and records `count` new calls, with nothing able to interleave, so that a
 * limit holds exactly however many replicas share the store.
 *
 * Only the newest `max` calls of a key are kept: they are all a decision needs (`before`
 * reaches `max` at most, and the oldest of them is the one whose expiry frees a place), and a
 * client hammering past its limit, or sending a list of thousands of ids, must not grow the
 * store with every refused call.
 */
export interface RateLimitStore {
  hit(key: string, windowMs: number, count: number, max: number): Promise<RateLimitHit>;
  close(): Promise<void>;
}

/**
 * One process's store: exact for one replica only, so several replicas need the Redis store.
 * Keys are swept as their windows expire, so memory follows the number of active clients.
 */
export class MemoryRateLimitStore implements RateLimitStore {
  private readonly logs = new Map<string, { times: number[]; windowMs: number }>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly maxKeys: number;

  /**
   * @param sweepIntervalMs how often expired keys are dropped. @default 10000
   * @param maxKeys keys held at most: past it the expired ones go at once, then the oldest, so
   *   that a flood of distinct clients or accounts cannot take the process's memory (each key
   *   holds at most `max` times). @default 100000
   */
  constructor(sweepIntervalMs = 10_000, maxKeys = 100_000) {
    if (!Number.isSafeInteger(maxKeys) || maxKeys < 1)
      throw new TypeError(
        `MemoryRateLimitStore: maxKeys must be a positive whole number, received ${maxKeys}`,
      );
    this.maxKeys = maxKeys;
    this.sweeper = setInterval(() => this.sweep(), sweepIntervalMs);
    this.sweeper.unref();
  }

  async hit(key: string, windowMs: number, count: number, max: number): Promise<RateLimitHit> {
    const now = Date.now();
    let log = this.logs.get(key);
    if (!log) {
      if (this.logs.size >= this.maxKeys) this.makeRoom();
      log = { times: [], windowMs };
      this.logs.set(key, log);
    }
    log.windowMs = Math.max(log.windowMs, windowMs);
    let expired = 0;
    while (expired < log.times.length && (log.times[expired] as number) <= now - windowMs) expired++;
    if (expired > 0) log.times.splice(0, expired);
    const before = log.times.length;
    const oldest = log.times[0];
    for (let i = Math.min(count, max); i > 0; i--) log.times.push(now);
    if (log.times.length > max) log.times.splice(0, log.times.length - max);
    return { before, oldest, now };
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.logs.clear();
  }

  /** Drops expired keys; when none has expired, the key created longest ago (Map order). */
  private makeRoom() {
    this.sweep();
    if (this.logs.size < this.maxKeys) return;
    const oldest = this.logs.keys().next();
    if (!oldest.done) this.logs.delete(oldest.value);
  }

  private sweep() {
    const now = Date.now();
    for (const [key, log] of this.logs) {
      const last = log.times.at(-1);
      if (last === undefined || last <= now - log.windowMs) this.logs.delete(key);
    }
  }
}
