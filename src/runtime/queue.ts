// WorkQueue: the queue between events and reconcilers, with client-go's semantics.
//
// - Adding a key that is already waiting does nothing (deduplication).
// - A key being processed is never handed to a second worker; if it is added meanwhile, it is
//   processed again after `done()`.
// - `addAfter(key, ms)` adds later (the earliest pending time wins); `addRateLimited(key)` adds
//   after the larger of a per-key exponential backoff (5 ms → 1000 s) and an overall token bucket
//   (10 qps, burst 100), as client-go's DefaultControllerRateLimiter; `forget(key)` resets the key.
// - `shutDown()` wakes waiting workers with `undefined` and hands out no further key, even keys
//   still queued (a stopping controller starts nothing new); `shutDownWithDrain()` also waits
//   until every key being processed is done. A later `shutDown()` forces every pending drain to
//   return, as client-go's does.
// - Every delayed add (`addAfter`, hence also `addRateLimited`) counts as a retry for metrics,
//   as client-go's AddAfter does; a key's queue wait is measured from its first add.
// Time is injectable (a Clock), so delays and backoff are tested without sleeping.
import { systemClock, type Clock } from "../core/clock.js";
import { backoffDelay } from "../core/retry.js";
import { TokenBucket, type RateLimit } from "../client/rate-limit.js";

/** Rate-limit settings of a queue. */
export interface QueueRateLimit {
  /** First per-key retry delay. Default 5 ms. */
  baseDelayMs?: number;
  /** Largest per-key retry delay. Default 1 000 000 ms (1000 s). */
  maxDelayMs?: number;
  /** Overall limit on rate-limited adds. Default 10 qps, burst 100; `false` for none. */
  overall?: RateLimit | false;
}

/** Options of a {@link WorkQueue}. */
export interface WorkQueueOptions {
  rateLimit?: QueueRateLimit;
  clock?: Clock;
  /** Observes the queue (metrics). */
  hooks?: WorkQueueHooks;
}

/** Callbacks for metrics: adds, waits and work durations, retries. */
export interface WorkQueueHooks {
  added?(key: string): void;
  /** A key left the queue for a worker after waiting `waitedMs`. */
  started?(key: string, waitedMs: number): void;
  /** A worker finished a key after `workedMs`. */
  finished?(key: string, workedMs: number): void;
  retried?(key: string): void;
}

/** A deduplicating, delaying, rate-limited work queue of string keys. */
export class WorkQueue {
  private readonly queue: string[] = [];
  private head = 0;
  private readonly dirty = new Set<string>();
  private readonly processing = new Map<string, number>(); // key → start time
  /** Keys processed elsewhere (see hold()): in `processing`, handed to no worker. */
  private readonly held = new Set<string>();
  private readonly addedAt = new Map<string, number>();
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  private readonly delayed = new Map<string, { at: number; cancel: AbortController }>();
  private readonly failures = new Map<string, number>();
  private readonly bucket: TokenBucket | undefined;
  private readonly clock: Clock;
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly hooks: WorkQueueHooks;
  private shuttingDown = false;
  private drains: (() => void)[] = [];

  constructor(options: WorkQueueOptions = {}) {
    this.clock = options.clock ?? systemClock;
    this.baseDelayMs = options.rateLimit?.baseDelayMs ?? 5;
    this.maxDelayMs = options.rateLimit?.maxDelayMs ?? 1_000_000;
    const overall = options.rateLimit?.overall === undefined ? { qps: 10, burst: 100 } : options.rateLimit.overall;
    this.bucket = overall ? new TokenBucket(overall, this.clock) : undefined;
    this.hooks = options.hooks ?? {};
  }

  /** Keys waiting (not counting keys being processed or delayed). */
  get length(): number {
    return this.queue.length - this.head;
  }

  /** Whether shutDown has been called. */
  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /** Adds a key now. No-op if it is already waiting, or after shutdown. */
  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    this.hooks.added?.(key);
    this.addedAt.set(key, this.clock.now());
    if (this.processing.has(key)) return; // re-queued by done()
    const waiter = this.waiters.shift();
    if (waiter) this.hand(key, waiter);
    else this.queue.push(key);
  }

  /** Adds a key after `delayMs` (now if ≤ 0). An earlier pending add of the same key wins. */
  addAfter(key: string, delayMs: number): void {
    if (this.shuttingDown) return;
    this.hooks.retried?.(key);
    if (delayMs <= 0) return this.add(key);
    const at = this.clock.now() + delayMs;
    const pending = this.delayed.get(key);
    if (pending && pending.at <= at) return;
    pending?.cancel.abort();
    const cancel = new AbortController();
    this.delayed.set(key, { at, cancel });
    this.clock.sleep(delayMs, cancel.signal).then(
      () => {
        if (this.delayed.get(key)?.cancel === cancel) this.delayed.delete(key);
        this.add(key);
      },
      () => {},
    );
  }

  /** Adds a key after its rate-limited delay; each call before `forget` doubles the key's delay. */
  addRateLimited(key: string): void {
    const failures = this.failures.get(key) ?? 0;
    this.failures.set(key, failures + 1);
    this.addAfter(key, this.when(key, failures));
  }

  /** The delay `addRateLimited` would use now for a key with `failures` earlier failures. */
  private when(_key: string, failures: number): number {
    const perKey = backoffDelay({ baseMs: this.baseDelayMs, maxMs: this.maxDelayMs, factor: 2 }, failures);
    const overall = this.bucket?.reserve() ?? 0;
    return Math.max(perKey, overall);
  }

  /** Stops tracking a key's failures: its next `addRateLimited` waits the base delay. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  /** How many times `addRateLimited` was called for the key since the last `forget`. */
  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /**
   * The next key to process, waiting until one is available. Resolves `undefined` once the queue
   * is shut down (keys still queued then are not handed out). The caller must call `done(key)`
   * when finished with it.
   */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    if (this.length > 0) {
      const key = this.queue[this.head++] as string;
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue.splice(0, this.head);
        this.head = 0;
      }
      return Promise.resolve(this.start(key));
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks a key processed. If it was added while processing, it is queued again. */
  done(key: string): void {
    const started = this.processing.get(key);
    if (started === undefined || this.held.has(key)) return;
    this.hooks.finished?.(key, this.clock.now() - started);
    this.endProcessing(key);
  }

  /**
   * Marks `key` as processed elsewhere (a controller's reconcile that outlived the run of this
   * queue's predecessor): no worker gets it until `release(key)`, and an add meanwhile queues it
   * then, as for a key a worker holds. Returns false, and does nothing, if the key is processed
   * already (a worker has it, or it is held).
   */
  hold(key: string): boolean {
    if (this.processing.has(key)) return false;
    if (this.dirty.has(key)) {
      // Waiting in the queue: out of it until released (dirty, so release() queues it again).
      const at = this.queue.indexOf(key, this.head);
      if (at >= 0) this.queue.splice(at, 1);
    }
    this.processing.set(key, this.clock.now());
    this.held.add(key);
    return true;
  }

  /** The keys held now (see hold()). */
  heldKeys(): IterableIterator<string> {
    return this.held.values();
  }

  /** Ends a `hold(key)`: a key added meanwhile is queued. No-op for a key not held. */
  release(key: string): void {
    if (this.held.delete(key)) this.endProcessing(key);
  }

  /**
   * Stops the queue: adds are ignored, delayed adds dropped, queued keys no longer handed out,
   * waiting workers get `undefined`, and pending `shutDownWithDrain()` calls return.
   */
  shutDown(): void {
    this.shuttingDown = true;
    this.releaseDrains();
    for (const { cancel } of this.delayed.values()) cancel.abort();
    this.delayed.clear();
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
  }

  /** Shuts down, then resolves when every key being processed is `done` (or a forced `shutDown()` comes). */
  async shutDownWithDrain(): Promise<void> {
    this.shuttingDown = true;
    for (const { cancel } of this.delayed.values()) cancel.abort();
    this.delayed.clear();
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
    if (this.processing.size === 0) return;
    await new Promise<void>((resolve) => this.drains.push(resolve));
  }

  /** Keys being processed now by this queue's workers (held keys aside). */
  get inFlight(): number {
    return this.processing.size - this.held.size;
  }

  /** A key is processed no more (done, or released): queued again if added meanwhile. */
  private endProcessing(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) {
      const waiter = this.waiters.shift();
      if (waiter) this.hand(key, waiter);
      else this.queue.push(key);
    }
    if (this.processing.size === 0) this.releaseDrains();
  }

  private releaseDrains(): void {
    for (const drained of this.drains.splice(0)) drained();
  }

  private hand(key: string, waiter: (key: string) => void): void {
    waiter(this.start(key));
  }

  private start(key: string): string {
    this.dirty.delete(key);
    const now = this.clock.now();
    this.processing.set(key, now);
    this.hooks.started?.(key, now - (this.addedAt.get(key) ?? now));
    this.addedAt.delete(key);
    return key;
  }
}
