// Two small promise helpers the loops share: give up on work when a signal aborts, and wait
// for something at most so long.
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
