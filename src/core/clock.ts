// Time, injectable: backoff, rate limits and timers take a Clock so tests run without sleeping.

/** A source of time and of delays. */
export interface Clock {
  /** Milliseconds, monotonic for the purposes of measuring intervals. */
  now(): number;
  /** Resolves after `ms`; rejects with the signal's reason if it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/**
 * The longest delay one `setTimeout` can wait: Node.js turns anything longer into 1 ms (with a
 * TimeoutOverflowWarning), so the system clock chains timers for longer sleeps.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * The real clock. `sleep` takes any delay: one beyond {@link MAX_TIMER_MS} is waited out in
 * chained timers (a 30-day requeue waits 30 days), `Infinity` ends only through the signal,
 * a negative or NaN delay is 0.
 */
export const systemClock: Clock = {
  now: () => performance.now(),
  sleep(ms, signal) {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const delay = Number.isNaN(ms) ? 0 : Math.max(0, ms);
      const deadline = performance.now() + delay;
      let timer: NodeJS.Timeout | undefined;
      const onAbort = () => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      const arm = (left: number) => {
        timer = setTimeout(() => {
          const rest = deadline - performance.now();
          if (rest > 0 && left > MAX_TIMER_MS) return arm(rest); // a chained leg ended: wait the rest
          signal?.removeEventListener("abort", onAbort);
          resolve();
        }, Math.min(left, MAX_TIMER_MS));
      };
      arm(delay);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  },
};

/**
 * A clock that moves only when told: `advance(ms)` runs every sleeper whose time has come, in
 * order. For tests of time-dependent logic.
 */
export class ManualClock implements Clock {
  private time = 0;
  private sleepers: { at: number; resolve: () => void }[] = [];

  now(): number {
    return this.time;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const sleeper = { at: this.time + Math.max(0, ms), resolve };
      this.sleepers.push(sleeper);
      signal?.addEventListener(
        "abort",
        () => {
          this.sleepers = this.sleepers.filter((s) => s !== sleeper);
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }

  /** Moves time forward, waking sleepers due by then (and letting their continuations run). */
  async advance(ms: number): Promise<void> {
    const target = this.time + ms;
    for (;;) {
      this.sleepers.sort((a, b) => a.at - b.at);
      const next = this.sleepers[0];
      if (!next || next.at > target) break;
      this.sleepers.shift();
      this.time = next.at;
      next.resolve();
      await new Promise((r) => setImmediate(r));
    }
    this.time = target;
    await new Promise((r) => setImmediate(r));
  }

  /** How many sleepers are waiting. */
  get pending(): number {
    return this.sleepers.length;
  }
}
