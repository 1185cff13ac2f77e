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
// - Priorities (controller-runtime 0.23's priority queue): `add(key, priority)` (default 0;
//   higher first, first in first out within one priority). Controllers add the keys of an initial
//   list, a resync or a relist at `LOW_PRIORITY`, so that a start or a relist of many objects does
//   not delay a change a user just made. A key added again at a higher priority while it waits
//   moves up; at a lower one, it keeps its place.
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

/** The priority of keys from an initial list, a resync or a relist (controller-runtime's LowPriority). */
export const LOW_PRIORITY = -100;

/** Callbacks for metrics: adds, waits and work durations, retries. */
export interface WorkQueueHooks {
  added?(key: string): void;
  /** A key left the queue for a worker after waiting `waitedMs`, at `priority`. */
  started?(key: string, waitedMs: number, priority: number): void;
  /** A worker finished a key after `workedMs`. */
  finished?(key: string, workedMs: number): void;
  retried?(key: string): void;
}

/** A deduplicating, delaying, rate-limited work queue of string keys. */
export class WorkQueue {
  /** One FIFO lane per priority, highest first. An entry whose key no longer waits at that priority is skipped. */
  private readonly lanes: { priority: number; keys: string[]; head: number }[] = [];
  /** Keys waiting in a lane, and at which priority. */
  private readonly waiting = new Map<string, number>();
  /** The priority each dirty key was last added at (queued with it again after processing). */
  private readonly priorities = new Map<string, number>();
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
    return this.waiting.size;
  }

  /** Whether shutDown has been called. */
  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  /**
   * Adds a key now, at `priority` (default 0; higher is handed out first). No-op after shutdown,
   * and for a key already waiting, except that a higher priority moves it up.
   */
  add(key: string, priority = 0): void {
    if (this.shuttingDown) return;
    if (this.dirty.has(key)) {
      const at = this.waiting.get(key);
      if (at !== undefined && priority > at) this.enqueue(key, priority); // moves up; the old entry is skipped
      else if (at === undefined && priority > (this.priorities.get(key) ?? priority)) this.priorities.set(key, priority); // being processed: queued again at the higher one
      return;
    }
    this.dirty.add(key);
    this.priorities.set(key, priority);
    this.hooks.added?.(key);
    this.addedAt.set(key, this.clock.now());
    if (this.processing.has(key)) return; // re-queued by done()
    const waiter = this.waiters.shift();
    if (waiter) this.hand(key, waiter);
    else this.enqueue(key, priority);
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
    const key = this.next();
    if (key !== undefined) return Promise.resolve(this.start(key));
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** The first key of the highest lane, taken out of it (entries of keys that moved or left skipped). */
  private next(): string | undefined {
    for (const lane of this.lanes) {
      while (lane.head < lane.keys.length) {
        const key = lane.keys[lane.head++] as string;
        if (lane.head > 1024 && lane.head * 2 > lane.keys.length) {
          lane.keys.splice(0, lane.head);
          lane.head = 0;
        }
        if (this.waiting.get(key) !== lane.priority) continue;
        this.waiting.delete(key);
        return key;
      }
    }
    return undefined;
  }

  /** Puts `key` at the end of the lane of `priority` (made on first use, kept in order). */
  private enqueue(key: string, priority: number): void {
    let lane = this.lanes.find((l) => l.priority === priority);
    if (!lane) {
      lane = { priority, keys: [], head: 0 };
      this.lanes.push(lane);
      this.lanes.sort((a, b) => b.priority - a.priority);
    }
    lane.keys.push(key);
    this.waiting.set(key, priority);
    this.priorities.set(key, priority);
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
    // Waiting in the queue: out of it until released (dirty, so release() queues it again).
    this.waiting.delete(key);
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
      else this.enqueue(key, this.priorities.get(key) ?? 0);
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
    this.hooks.started?.(key, now - (this.addedAt.get(key) ?? now), this.priorities.get(key) ?? 0);
    this.addedAt.delete(key);
    this.priorities.delete(key);
    return key;
  }
}
