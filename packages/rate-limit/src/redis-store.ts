import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import type { RateLimitHit, RateLimitStore } from './store.ts';

export interface RedisRateLimitStoreOptions {
  /** `redis://host:port/db` */
  url: string;
  /** Longest a check may take before it counts as a store failure, in ms. @default 150 */
  timeoutMs?: number;
}

/**
 * The whole check-and-record as one Lua script on a sorted set (score = call time), so it is
 * atomic in Redis: no replica can read between another's read and write. Time comes from
 * Redis, so replicas with skewed clocks still share one window.
 */
const HIT_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
local count = math.min(tonumber(ARGV[2]), tonumber(ARGV[4]))
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local before = redis.call('ZCARD', KEYS[1])
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]
for i = 1, count do
  redis.call('ZADD', KEYS[1], now, ARGV[3] .. ':' .. i)
end
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[4]) + 1))
redis.call('PEXPIRE', KEYS[1], window)
return { before, oldest or -1, now }
`;

type HitCommand = (
  key: string,
  windowMs: number,
  count: number,
  id: string,
  max: number,
) => Promise<[number, number | string, number]>;

export class RedisRateLimitStore implements RateLimitStore {
  private readonly redis: Redis;

  constructor(options: RedisRateLimitStoreOptions) {
    if (typeof options.url !== 'string' || !/^rediss?:\/\//.test(options.url)) {
      throw new TypeError(
        `RedisRateLimitStore: url must be a redis:// URL, received ${JSON.stringify(options.url)}`,
      );
    }
    const timeoutMs = options.timeoutMs ?? 150;
    this.redis = new Redis(options.url, {
      // Fail fast instead of queueing while disconnected: the caller's policy decides what a
      // failure means, and no request waits on a Redis that is not there.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: timeoutMs,
      connectTimeout: 1_000,
      // Keep reconnecting for as long as the process lives: Redis coming back is used at once.
      retryStrategy: (attempt) => Math.min(50 * attempt, 1_000),
      lazyConnect: false,
    });
    this.redis.on('error', () => {}); // surfaced through failed hits
    this.redis.defineCommand('bffRateLimitHit', { numberOfKeys: 1, lua: HIT_SCRIPT });
  }

  /** Resolves once connected, or after `timeoutMs` regardless (hits fail until it is). */
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

  async hit(key: string, windowMs: number, count: number, max: number): Promise<RateLimitHit> {
    const command = (this.redis as unknown as { bffRateLimitHit: HitCommand }).bffRateLimitHit;
    const [before, oldest, now] = await command.call(this.redis, key, windowMs, count, randomUUID(), max);
    const oldestMs = Number(oldest);
    return { before: Number(before), oldest: oldestMs >= 0 ? oldestMs : undefined, now: Number(now) };
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }
}
