// Small helpers the loops share: give up on work when a signal aborts, wait for something at
// most so long, and a deadline signal that cannot be lost.
import { systemClock, type Clock } from "./clock.js";

/**
 * Settles like `work`, or rejects with the signal's reason as soon as `signal` aborts (the work
 * itself keeps running: JavaScript cannot stop it; pass it the signal too).
 */
export function raceSignal<R>(work: Promise<R>, signal: AbortSignal): Promise<R> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<R>((resolve, reject) => {
    const onAbort = () => reject(signal.reason ?? new Error("aborted"));
    signal.addEventListener("abort", onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

/**
 * Waits for `promise` at most `ms` (any delay, through the clock); resolves true if it settled
 * in time, false otherwise.
 */
export async function within(promise: Promise<unknown>, ms: number, clock: Clock = systemClock): Promise<boolean> {
  const timer = new AbortController();
  try {
    return await Promise.race([
      promise.then(() => true, () => true),
      clock.sleep(ms, timer.signal).then(() => false, () => false),
    ]);
  } finally {
    timer.abort();
  }
}

/** A signal that aborts at a deadline or with any of its parents, and the means to stop its timer. */
export interface Deadline {
  readonly signal: AbortSignal;
  /** Stops the timer (call when the work is over; the signal then aborts only with a parent). */
  clear(): void;
}

/**
 * A signal that aborts after `ms` (reason: a `TimeoutError` DOMException, as `AbortSignal.timeout`)
 * or as soon as one of `parents` aborts (its reason). Any delay works (see `systemClock.sleep`).
 *
 * Why not `AbortSignal.any([...parents, AbortSignal.timeout(ms)])`: Node 20 holds a timeout
 * signal inside a composite only weakly, so a garbage collection before it fires loses the
 * deadline and the composite never aborts (nodejs/node#57736, fixed in Node 22). Here the timer
 * holds its controller until it fires or `clear()` is called.
 */
export function deadline(ms: number, parents: readonly AbortSignal[] = [], clock: Clock = systemClock): Deadline {
  const timeout = new AbortController();
  const stop = new AbortController();
  clock.sleep(ms, stop.signal).then(
    () => timeout.abort(new DOMException("The operation was aborted due to timeout", "TimeoutError")),
    () => {},
  );
  return {
    signal: parents.length ? AbortSignal.any([...parents, timeout.signal]) : timeout.signal,
    clear: () => stop.abort(),
  };
}
