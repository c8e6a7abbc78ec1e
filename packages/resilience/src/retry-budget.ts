export interface RetryBudgetOptions {
  /** Retries allowed per call made (0.2: one retry for every five calls). @default 0.2 */
  ratio?: number;
  /** Retries allowed per second regardless of traffic, so a quiet service can still be retried. @default 5 */
  minPerSecond?: number;
  /** Most retries that can be saved up. @default 50 */
  maxTokens?: number;
}

/**
 * A token bucket that bounds retries to a share of traffic: every call deposits `ratio`
 * tokens, every retry spends one, and `minPerSecond` trickles in with time. When a service is
 * failing, retries therefore add at most `ratio` to its load instead of multiplying it.
 */
export class RetryBudget {
  private readonly ratio: number;
  private readonly minPerSecond: number;
  private readonly maxTokens: number;
  private tokens: number;
  private last = Date.now();

  constructor(options: RetryBudgetOptions = {}) {
    this.ratio = options.ratio ?? 0.2;
    this.minPerSecond = options.minPerSecond ?? 5;
    this.maxTokens = options.maxTokens ?? 50;
    for (const [name, value] of Object.entries({
      ratio: this.ratio,
      minPerSecond: this.minPerSecond,
      maxTokens: this.maxTokens,
    })) {
      if (!(Number.isFinite(value) && value >= 0))
        throw new TypeError(`RetryBudget: ${name} must be a non-negative number, received ${value}`);
    }
    this.tokens = this.minPerSecond;
  }

  /** Records a first try. */
  deposit(): void {
    this.refill();
    this.tokens = Math.min(this.maxTokens, this.tokens + this.ratio);
  }

  /** Spends a retry if one is available. */
  tryWithdraw(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private refill() {
    const now = Date.now();
    this.tokens = Math.min(this.maxTokens, this.tokens + ((now - this.last) / 1000) * this.minPerSecond);
    this.last = now;
  }
}
