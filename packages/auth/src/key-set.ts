import { UpstreamError, UpstreamErrorCode } from '@bff/upstream-clients';
import {
  createLocalJWKSet,
  errors,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWSHeaderParameters,
} from 'jose';

/**
 * Fetches Identity's key set, e.g. `createJwksClient(…).fetchKeySet`, so that the fetch has the
 * deadline, retries, circuit breaker and call reporting of every other upstream call. `signal`
 * aborts when the verifier gives up on it; no try should outlive `deadline` (ms since the epoch).
 * Failures should be UpstreamErrors; anything else is reported as Identity being unavailable.
 */
export type KeySetSource = (call: { signal: AbortSignal; deadline: number }) => Promise<JSONWebKeySet>;

export interface CachedKeySetOptions {
  fetchKeySet: KeySetSource;
  /** Longest one fetch may take, retries included, in ms. */
  timeoutMs: number;
  /** Least time between two fetches caused by unknown `kid`s, in ms. */
  cooldownMs: number;
  /** How long fetched keys are trusted before a refetch, in ms. */
  cacheMaxAgeMs: number;
}

type LocalKeySet = ReturnType<typeof createLocalJWKSet>;

/**
 * The verifier's copy of Identity's keys, as jose's remote key set keeps it, but fetched through
 * `fetchKeySet`: keys are trusted for `cacheMaxAgeMs`; a `kid` they lack causes a refetch, at
 * most once per `cooldownMs` (timed from the last good fetch, so anyone can make one by sending
 * a made-up `kid`, but no more often than that); concurrent fetches are one fetch. A fetch that
 * fails leaves the keys as they were and is an UpstreamError for the tokens that waited on it.
 */
export class CachedKeySet {
  private local: LocalKeySet | undefined;
  private fetchedAt: number | undefined;
  private pending: Promise<void> | undefined;

  constructor(private readonly options: CachedKeySetOptions) {}

  /** A jose key resolver (for jwtVerify): the key the token's header names. */
  readonly getKey = async (header: JWSHeaderParameters, token: FlattenedJWSInput) => {
    if (!this.local || !this.fresh()) await this.reload();
    try {
      return await (this.local as LocalKeySet)(header, token);
    } catch (error) {
      if (error instanceof errors.JWKSNoMatchingKey && !this.coolingDown()) {
        await this.reload();
        return (this.local as LocalKeySet)(header, token);
      }
      throw error;
    }
  };

  /** Fetches the keys unless fresh ones are held. Rejects as a fetch does. */
  async ensureFresh(): Promise<void> {
    if (!this.local || !this.fresh()) await this.reload();
  }

  private fresh(): boolean {
    return this.fetchedAt !== undefined && Date.now() < this.fetchedAt + this.options.cacheMaxAgeMs;
  }

  private coolingDown(): boolean {
    return this.fetchedAt !== undefined && Date.now() < this.fetchedAt + this.options.cooldownMs;
  }

  /** One fetch at a time: whoever asks while one is under way waits for that one. */
  private reload(): Promise<void> {
    this.pending ??= this.fetch().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async fetch(): Promise<void> {
    const { timeoutMs, fetchKeySet } = this.options;
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    // The source has its own deadline; this one holds even if it ignores the signal.
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        reject(
          new UpstreamError('identity', UpstreamErrorCode.Timeout, 'identity JWKS did not answer in time'),
        );
        controller.abort();
      }, timeoutMs);
    });
    let keySet: JSONWebKeySet;
    try {
      keySet = await Promise.race([
        fetchKeySet({ signal: controller.signal, deadline: Date.now() + timeoutMs }),
        timeout,
      ]);
    } catch (error) {
      if (error instanceof UpstreamError) throw error;
      throw new UpstreamError('identity', UpstreamErrorCode.Unavailable, 'identity JWKS unavailable', {
        cause: error,
      });
    } finally {
      clearTimeout(timer);
    }
    let local: LocalKeySet;
    try {
      local = createLocalJWKSet(keySet);
    } catch (error) {
      throw new UpstreamError('identity', UpstreamErrorCode.BadResponse, 'identity JWKS unreadable', {
        cause: error,
      });
    }
    this.local = local;
    this.fetchedAt = Date.now();
  }
}
