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
export function pullEach<E, R = E>(
  produce: (push: BatchSink<E>, signal: AbortSignal) => Promise<void>,
  parent?: AbortSignal,
  map?: (item: E) => R,
): AsyncGenerator<R, void, undefined> {
  return new PullEach(produce, parent, map);
}

/** Nothing to hand out now (an item may be `undefined`). */
const NONE: unique symbol = Symbol("none");

/**
 * {@link pullEach}'s iterator, written out rather than an async generator: a generator's `yield`
 * awaits its value and resumes through several promise jobs per item; here an item taken from
 * the batch being read is one resolved promise, and a consumer that waits is woken by the push
 * itself (a live watch brings one event per read, so this is per event: with the Store's
 * index change, ~0.9 KB and ~9 µs less per event in a paced replay of `reflect(watch())`).
 * Same contract as the generator it replaced: lazy start, calls served in order, return() and
 * throw() end it.
 */
class PullEach<E, R> implements AsyncGenerator<R, void, undefined> {
  private readonly stop = new AbortController();
  private readonly queue: E[][] = [];
  private batch: E[] = [];
  private index = 0;
  /** Resolves the producer's wait for the queue to empty (its backpressure). */
  private release: (() => void) | undefined;
  /** The call waiting for an item or the end. */
  private waiting: { resolve: (result: IteratorResult<R, void>) => void; reject: (error: unknown) => void } | undefined;
  /** Calls made while another waits: served in order after it. */
  private readonly later: (() => void)[] = [];
  private running: Promise<void> | undefined;
  private produced = false;
  private failure: { error: unknown } | undefined;
  /** Handed out its end (or its failure): every call from now on is done. */
  private closed = false;
  private readonly onParent = () => this.stop.abort(this.parent?.reason);

  constructor(
    private readonly produce: (push: BatchSink<E>, signal: AbortSignal) => Promise<void>,
    private readonly parent: AbortSignal | undefined,
    private readonly map: ((item: E) => R) | undefined,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<R, void>> {
    if (this.waiting) return new Promise((resolve, reject) => this.later.push(() => this.next().then(resolve, reject)));
    if (this.closed) return Promise.resolve({ value: undefined, done: true });
    this.running ??= this.start();
    let outcome: IteratorResult<R, void> | typeof NONE;
    try {
      outcome = this.take();
    } catch (error) {
      return this.end().then(() => Promise.reject(error));
    }
    if (outcome !== NONE) return Promise.resolve(outcome);
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }

  async return(): Promise<IteratorResult<R, void>> {
    await this.end();
    return { value: undefined, done: true };
  }

  async throw(error: unknown): Promise<IteratorResult<R, void>> {
    await this.end();
    throw error;
  }

  /** Starts the producer (at the first call, as a generator's body would). */
  private start(): Promise<void> {
    if (this.parent?.aborted) this.onParent();
    else this.parent?.addEventListener("abort", this.onParent, { once: true });
    return this.produce(this.push, this.stop.signal).then(
      () => this.finished(undefined),
      (error: unknown) => this.finished({ error }),
    );
  }

  /** The next item, the end, or NONE while the producer may still push (throws what `map` throws). */
  private take(): IteratorResult<R, void> | typeof NONE {
    for (;;) {
      if (this.index < this.batch.length) {
        const item = this.batch[this.index++] as E;
        return { value: this.map ? this.map(item) : (item as unknown as R), done: false };
      }
      const next = this.queue.shift();
      if (this.queue.length === 0 && this.release) {
        const release = this.release;
        this.release = undefined;
        release();
      }
      if (next === undefined) break;
      this.batch = next;
      this.index = 0;
    }
    if (!this.produced) return NONE;
    // A failure after the consumer asked to stop (return(), throw(), a map that threw) is the
    // stop's own doing: the consumer gets the end, not the failure.
    const failure = this.closed ? undefined : this.failure;
    this.closed = true;
    void this.end();
    if (failure) throw failure.error;
    return { value: undefined, done: true };
  }

  private readonly push = (batch: E[]): Promise<void> | undefined => {
    if (this.closed) return undefined; // ended: the producer is being stopped, nothing more is read
    const behind = this.queue.length > 0;
    if (batch.length) this.queue.push(batch);
    this.wake();
    if (!behind) return undefined;
    return new Promise<void>((resolve) => {
      const before = this.release;
      this.release = before ? () => (before(), resolve()) : resolve;
    });
  };

  private finished(failure: { error: unknown } | undefined): void {
    this.produced = true;
    this.failure = failure;
    this.wake();
  }

  /** Hands the waiting call what there is now, then lets the calls made meanwhile run. */
  private wake(): void {
    const waiting = this.waiting;
    if (!waiting) return;
    let outcome: IteratorResult<R, void> | typeof NONE;
    try {
      outcome = this.take();
    } catch (error) {
      this.waiting = undefined;
      void this.end().then(() => waiting.reject(error));
      return;
    }
    if (outcome === NONE) return;
    this.waiting = undefined;
    waiting.resolve(outcome);
    for (const call of this.later.splice(0)) call();
  }

  /** Stops the producer (if it runs) and waits for it; what was not read is dropped. */
  private async end(): Promise<void> {
    this.closed = true;
    this.stop.abort();
    this.parent?.removeEventListener("abort", this.onParent);
    const release = this.release;
    this.release = undefined;
    release?.();
    this.queue.length = 0;
    this.batch = [];
    await this.running;
    const waiting = this.waiting;
    this.waiting = undefined;
    waiting?.resolve({ value: undefined, done: true });
    for (const call of this.later.splice(0)) call();
  }
}

/**
 * Polls `check` until it returns something other than undefined/false; throws at the deadline
 * naming `what` and the last error `check` threw.
 */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, options: { timeoutMs?: number; intervalMs?: number } = {}): Promise<T> {
  const until = Date.now() + (options.timeoutMs ?? 30_000);
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > until) {
      throw new Error(`timed out after ${options.timeoutMs ?? 30_000} ms waiting for ${what}${last ? `: ${last instanceof Error ? last.message : String(last)}` : ""}`);
    }
    await systemClock.sleep(options.intervalMs ?? 200);
  }
}
