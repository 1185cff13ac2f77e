// Client-side rate limiting: a token bucket (client-go's flowcontrol.NewTokenBucketRateLimiter),
// so one process cannot flood the API server however many callers it has.
import { systemClock, type Clock } from "../core/clock.js";

/** Requests per second, and how many may go at once after a quiet period. */
export interface RateLimit {
  qps: number;
  burst: number;
}

/** A token bucket: `burst` tokens, refilled at `qps` per second. Fair: waiters are served in order. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly qps: number;
  private readonly burst: number;

  constructor(limit: RateLimit, private readonly clock: Clock = systemClock) {
    if (!(limit.qps > 0) || !(limit.burst >= 1)) throw new RangeError(`rate limit needs qps > 0 and burst >= 1 (got ${limit.qps}/${limit.burst})`);
    this.qps = limit.qps;
    this.burst = limit.burst;
    this.tokens = limit.burst;
    this.last = clock.now();
  }

  /**
   * Takes a token now, possibly going into debt, and returns how long the caller must wait
   * before using it (0 when one was available). Reservations queue in call order.
   */
  reserve(): number {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.qps) * 1000;
  }

  /** Waits for a token. Rejects with the signal's reason if it aborts (the token is not returned). */
  async acquire(signal?: AbortSignal): Promise<void> {
    const wait = this.reserve();
    if (wait > 0) await this.clock.sleep(wait, signal);
  }
}

/** The client-side limit of an operator's own client: controller-runtime raises client-go's 5 qps / burst 10 to 20 / 30; so do we. */
export const OPERATOR_RATE_LIMIT: RateLimit = Object.freeze({ qps: 20, burst: 30 });
