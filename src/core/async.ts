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

/**
 * Pushes batches to a consumer: returns nothing when the batch is taken at once, or a promise
 * the producer awaits before it makes the next batch (its backpressure).
 */
export type BatchSink<E> = (batch: E[]) => void | Promise<void>;

/**
 * Reads a producer that pushes batches as an async generator of their items, one by one, each
 * passed through `map` just before it is yielded. `produce` runs at the first `next()`. A batch
 * pushed while none waits is queued and `push` returns nothing; one pushed while another waits
 * is queued too, and `push` returns a promise that resolves once the consumer has taken both: a
 * producer that awaits it has at most two batches waiting besides the one being read. The generator ends when
 * `produce` resolves and everything pushed was yielded, throws what `produce` rejects with
 * (after the items pushed before), and when the consumer stops early (or `parent` aborts), aborts
 * `produce`'s signal and waits for it to end.
 *
 * Why not an async generator per layer: each layer of generators costs promises and turns per
 * item; a producer that splits, parses and keeps its books synchronously, then pushes, costs one
 * promise per batch here, and none of its own while the consumer keeps up (a watch pauses its
 * connection only when the consumer falls behind: pausing and resuming a socket per read costs
 * more than the read's parsing).
 */
export async function* pullEach<E, R = E>(
  produce: (push: BatchSink<E>, signal: AbortSignal) => Promise<void>,
  parent?: AbortSignal,
  map?: (item: E) => R,
): AsyncGenerator<R, void, undefined> {
  const stop = new AbortController();
  const onParent = () => stop.abort(parent?.reason);
  if (parent?.aborted) onParent();
  else parent?.addEventListener("abort", onParent, { once: true });
  const queue: E[][] = [];
  let release: (() => void) | undefined;
  let wake: (() => void) | undefined;
  let finished = false;
  let failed = false;
  let failure: unknown;
  const push = (batch: E[]): Promise<void> | undefined => {
    const waiting = queue.length > 0;
    if (batch.length) queue.push(batch);
    const w = wake;
    wake = undefined;
    w?.();
    if (!waiting) return undefined;
    return new Promise<void>((resolve) => {
      const before = release;
      release = before ? () => (before(), resolve()) : resolve;
    });
  };
  const running = (async () => {
    try {
      await produce(push, stop.signal);
    } catch (error) {
      failed = true;
      failure = error;
    } finally {
      finished = true;
      const w = wake;
      wake = undefined;
      w?.();
    }
  })();
  try {
    for (;;) {
      const batch = queue.shift();
      if (queue.length === 0 && release) {
        const r = release;
        release = undefined;
        r();
      }
      if (!batch) {
        if (finished) break;
        await new Promise<void>((resolve) => (wake = resolve));
        continue;
      }
      if (map) for (const item of batch) yield map(item);
      else for (const item of batch) yield item as unknown as R;
    }
    if (failed) throw failure;
  } finally {
    stop.abort();
    parent?.removeEventListener("abort", onParent);
    const r = release;
    release = undefined;
    r?.();
    await running;
  }
}
