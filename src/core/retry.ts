// The one backoff rule and the one retry loop. Every place that waits after a failure uses
// `backoffDelay`: the watcher (0.8 s doubling to 30 s with jitter, as kube-runtime: `Backoff`),
// the transport's retries of a failed request (doubling to its cap, then jittered, as client-go),
// the work queue's per-key rate limiter (5 ms doubling to 1000 s, as client-go's), handlers and
// startup hooks (1 s doubling to 60 s, as kopf's), daemons and failed timers (a fixed delay).
// Every place that retries one piece of work until it succeeds, gives up or is stopped uses
// `retrying`, sleeping on the clock it is given (tests pass a ManualClock).
import type { Clock } from "./clock.js";

/** How long to wait after failures: `baseMs` × `factor`^(earlier failures), at most `maxMs`. `factor` 1: the same each time. */
export interface BackoffRule {
  baseMs: number;
  maxMs: number;
  factor: number;
}

/**
 * The wait after `failures` earlier failures (0: the first retry waits `baseMs`). The exponent
 * stops growing at 30 before the cap is applied, so it never overflows (nor makes 0 × ∞).
 */
export function backoffDelay(rule: BackoffRule, failures: number): number {
  return Math.min(rule.maxMs, rule.baseMs * rule.factor ** Math.min(Math.max(failures, 0), 30));
}

/** Options of a {@link Backoff}. */
export interface BackoffOptions {
  /** First delay. Default 800 ms. */
  initialMs?: number;
  /** Largest delay. Default 30 000 ms. */
  maxMs?: number;
  /** Growth per failure. Default 2. */
  factor?: number;
  /** Random spread: a delay d becomes d × (1 − jitter/2 … 1 + jitter/2). Default 0.5. */
  jitter?: number;
}

/**
 * Successive delays by the backoff rule, with jitter (the watcher's: 0.8 s → 30 s by default, as
 * kube-runtime); `reset()` after a healthy period starts again from the first.
 */
export class Backoff {
  private failures = 0;
  private readonly rule: BackoffRule;
  private readonly jitter: number;

  constructor(options: BackoffOptions = {}, private readonly random: () => number = Math.random) {
    this.rule = { baseMs: options.initialMs ?? 800, maxMs: options.maxMs ?? 30_000, factor: options.factor ?? 2 };
    this.jitter = options.jitter ?? 0.5;
  }

  /** The next delay, in ms. */
  next(): number {
    const base = backoffDelay(this.rule, this.failures);
    this.failures++;
    const spread = 1 + this.jitter * (this.random() - 0.5);
    return Math.min(this.rule.maxMs, Math.round(base * spread));
  }

  reset(): void {
    this.failures = 0;
  }

  /** How many delays were handed out since the last reset. */
  get attempts(): number {
    return this.failures;
  }
}

/** How a {@link retrying} loop ended: with the attempt's value, given up with its error, or stopped by the signal. */
export type RetryOutcome<T> = { done: true; value: T } | { done: false; error: unknown } | { done: false; stopped: true };

/**
 * Calls `attempt(retries)` until it resolves, sleeping on `clock` between attempts. After a
 * failure `delayOf(error, retries)` says how long to wait, or `undefined` to give up (the
 * outcome carries the error). `onRetry` is told before each wait. An aborted `signal` stops the
 * loop before the next attempt or during a wait (the attempt in flight is the attempt's to stop).
 */
export async function retrying<T>(
  attempt: (retries: number) => Promise<T>,
  o: { clock: Clock; signal: AbortSignal; delayOf: (error: unknown, retries: number) => number | undefined; onRetry?: (error: unknown, retries: number, delayMs: number) => void },
): Promise<RetryOutcome<T>> {
  for (let retries = 0; ; retries++) {
    if (o.signal.aborted) return { done: false, stopped: true };
    try {
      return { done: true, value: await attempt(retries) };
    } catch (error) {
      const delayMs = o.delayOf(error, retries);
      if (delayMs === undefined) return { done: false, error };
      o.onRetry?.(error, retries, delayMs);
      await o.clock.sleep(delayMs, o.signal).catch(() => {}); // aborted: checked at the top
    }
  }
}
