// Timers and daemons: per-object background work that lives as long as the object (and the
// operator's leadership). A timer calls its function every `intervalMs` (optionally only once
// the object has been idle for `idleMs`); a daemon is one long-running function whose signal
// aborts when the object is deleted or the operator stops. Both are stopped, and awaited,
// before delete handlers run and the finalizer is released.
//
// A task lives only as long as its reason: it is stopped when the object stops matching the
// task's filters (`ensure` sees it), when the object leaves the cache without a visible
// deletion (deleted with no finalizer, or while the operator was down: `forget`), and when its
// patch finds the object gone. Per-object state is dropped with the object, so memory is
// bounded by the cache. Every sleep goes through the clock.
import type { Logger } from "pino";
import type { Client } from "../client/client.js";
import type { KubeObject } from "../core/objects.js";
import { objectKey, objectId } from "../core/objects.js";
import { within } from "../core/async.js";
import { systemClock, type Clock } from "../core/clock.js";
import { NotFoundError, TerminalError } from "../core/errors.js";
import { retrying } from "../core/retry.js";
import { retryDelay } from "./errors.js";
import type { StopResult } from "../controller/spec.js";
import type { StoreReader } from "../runtime/store.js";
import { matches } from "./filters.js";
import { PatchWriter, liveContext, objectLogger } from "./context.js";
import type { DaemonSpec, EventLevel, HandlerContext, HandlerFn, HandlerLogger, Indexes, KindEntry, TimerSpec } from "./registry.js";
import type { EventRecorder } from "../controller/events.js";

interface Running {
  stop: AbortController;
  done: Promise<void>;
  cancellationTimeoutMs: number;
}

/** Options of {@link Tasks}. */
export interface TasksOptions {
  client: Client;
  logger: Logger;
  indexes: Indexes;
  /** Where `ctx.event()` and log lines at or above `eventLevel` post Events. */
  recorder: EventRecorder;
  eventLevel?: EventLevel;
  /** Where the latest state of each object is read (the informer's store), by key. */
  store: (entry: KindEntry) => StoreReader<KubeObject>;
  clock?: Clock;
  /** Counts each failed run of a timer or daemon (the metric `kubeloop_task_failures_total`). */
  onFailure?: (kind: string, task: string) => void;
  /**
   * Whether this replica may act on the object now (a sharded operator: its bucket is owned and
   * fenced). Checked before every run of a timer and every patch; default: always.
   */
  acting?: (object: KubeObject) => boolean;
}

/** The timers and daemons running for objects. */
export class Tasks {
  private readonly running = new Map<string, Map<string, Running>>(); // uid → task id → task
  private readonly lastChange = new Map<string, number>();
  /** The object each uid's tasks run for (to stop them by bucket). */
  private readonly objects = new Map<string, KubeObject>();
  private root = new AbortController();
  private readonly writers = new Map<KindEntry, PatchWriter>();
  private readonly clock: Clock;

  constructor(private readonly o: TasksOptions) {
    this.clock = o.clock ?? systemClock;
  }

  /** Notes that the object's essence changed now (for idle timers). */
  touch(uid: string): void {
    if (this.running.has(uid)) this.lastChange.set(uid, this.clock.now());
  }

  /**
   * Starts the timers and daemons that apply to `object` and are not running yet, and stops
   * those that no longer apply (the object stopped matching their filters). Does nothing for
   * an object that is no longer in the cache (its delete event came first).
   */
  ensure(object: KubeObject, entry: KindEntry): void {
    if (this.root.signal.aborted) return;
    const uid = objectId(object);
    const key = objectKey(object.metadata);
    const cached = this.o.store(entry).get(key);
    if (!cached || objectId(cached) !== uid) return;
    const wanted = new Set([
      ...entry.timers.filter((t) => matches(object, t.options)).map((t) => `timer/${t.id}`),
      ...entry.daemons.filter((d) => matches(object, d.options)).map((d) => `daemon/${d.id}`),
    ]);
    let tasks = this.running.get(uid);
    for (const [id, task] of tasks ?? []) {
      if (wanted.has(id)) continue;
      tasks?.delete(id);
      this.o.logger.info({ object: key, task: id }, "the object no longer matches the task's filters: stopping it");
      void this.end(task);
    }
    if (wanted.size === 0) {
      if (tasks?.size === 0) this.forgetState(uid);
      return;
    }
    if (!tasks) this.running.set(uid, (tasks = new Map()));
    this.objects.set(uid, object);
    if (!this.lastChange.has(uid)) this.lastChange.set(uid, this.clock.now());
    // The object as cached now, while it is the same object (a re-created one is not this task's).
    const latest = () => {
      const now = this.o.store(entry).get(key);
      return now && objectId(now) === uid ? now : object;
    };
    for (const t of entry.timers) {
      if (tasks.has(`timer/${t.id}`) || !wanted.has(`timer/${t.id}`)) continue;
      tasks.set(`timer/${t.id}`, this.spawn(30_000, (signal, gone) => this.runTimer(t, { entry, object, uid, latest }, signal, gone)));
    }
    for (const d of entry.daemons) {
      if (tasks.has(`daemon/${d.id}`) || !wanted.has(`daemon/${d.id}`)) continue;
      tasks.set(`daemon/${d.id}`, this.spawn(d.options.cancellationTimeoutMs ?? 30_000, (signal) => this.runDaemon(d, { entry, object, latest }, signal)));
    }
  }

  /** A timer's loop: every interval (after idling, when asked), until stopped or its object is gone. */
  private async runTimer(t: TimerSpec, of: { entry: KindEntry; object: KubeObject; uid: string; latest: () => KubeObject }, signal: AbortSignal, gone: () => void): Promise<void> {
    const { entry, latest } = of;
    const sleep = (ms: number) => this.clock.sleep(ms, signal).catch(() => {});
    const log = this.logger(of.object, t.id);
    await sleep(t.options.initialDelayMs ?? 0);
    let retry = 0;
    while (!signal.aborted) {
      if (t.options.idleMs) {
        const idleFor = this.clock.now() - (this.lastChange.get(of.uid) ?? 0);
        if (idleFor < t.options.idleMs) {
          await sleep(t.options.idleMs - idleFor);
          continue;
        }
      }
      if (this.o.acting && !this.o.acting(latest())) {
        await sleep(t.options.intervalMs); // not this replica's now: its release stops this timer
        continue;
      }
      const { ctx, failure } = await this.attempt(t.fn, this.context(latest, log, signal, retry), "timer");
      // Only a write to the timer's own object that finds it gone ends the timer: a 404 the
      // function met (another object, not made yet) is a failure like any other.
      if (!(await this.applyPatch(entry, latest, ctx.patch, log))) return gone(); // the object is gone: so is the timer's reason
      if (signal.aborted) return;
      if (failure === undefined) {
        retry = 0;
        await sleep(t.options.intervalMs);
        continue;
      }
      retry++;
      // As kopf: the next run comes at the next interval, or after a TemporaryError's delay.
      const delay = retryDelay(failure, retry - 1, { ms: t.options.intervalMs, doubling: false });
      this.failed(entry, latest(), `timer/${t.id}`, failure, `timer failed (${retry} in a row); next run in ${delay} ms`);
      await sleep(delay);
    }
  }

  /** One run of a timer's or daemon's function: its context (with the patch it made) and what it threw, if anything. */
  private async attempt(fn: HandlerFn<KubeObject>, ctx: HandlerContext<KubeObject>, what: "timer" | "daemon"): Promise<{ ctx: HandlerContext<KubeObject>; failure: unknown }> {
    try {
      await fn(ctx);
      return { ctx, failure: undefined };
    } catch (error) {
      return { ctx, failure: error ?? new Error(`${what} threw undefined`) };
    }
  }

  /**
   * A daemon: run until it returns, restarted after a failure (the one retry loop, with the
   * daemon's fixed backoff), not after a TerminalError, its object's disappearance or a stop.
   */
  private async runDaemon(d: DaemonSpec, of: { entry: KindEntry; object: KubeObject; latest: () => KubeObject }, signal: AbortSignal): Promise<void> {
    const { entry, latest } = of;
    const log = this.logger(of.object, d.id);
    await retrying(
      async (retry) => {
        const { ctx, failure } = await this.attempt(d.fn, this.context(latest, log, signal, retry), "daemon");
        // As kopf: the patch is applied after every attempt, failed ones included.
        if (!(await this.applyPatch(entry, latest, ctx.patch, log))) return; // the object is gone
        // Finished (not restarted until the operator restarts), or failed: restarted.
        if (failure !== undefined && !signal.aborted) throw failure;
      },
      {
        clock: this.clock,
        signal,
        delayOf: (failure, retry) => {
          if (failure instanceof TerminalError) {
            this.failed(entry, latest(), `daemon/${d.id}`, failure, "daemon failed permanently, not restarted");
            return undefined;
          }
          const delay = retryDelay(failure, retry, { ms: d.options.backoffMs ?? 10_000, doubling: false });
          this.failed(entry, latest(), `daemon/${d.id}`, failure, `daemon failed (${retry + 1} in a row), restarting in ${delay} ms`);
          return delay;
        },
      },
    );
  }

  /** Stops the object's tasks and waits for them (each up to its cancellation timeout); returns how many were abandoned. */
  async stop(uid: string): Promise<number> {
    const tasks = this.running.get(uid);
    this.forgetState(uid);
    if (!tasks) return 0;
    const ended = await Promise.all([...tasks.values()].map((t) => this.end(t)));
    return ended.filter((finished) => !finished).length;
  }

  /** Stops the tasks of every object `test` picks (a sharded operator's released buckets); returns how many were abandoned. */
  async stopWhere(test: (object: KubeObject) => boolean): Promise<number> {
    const picked = [...this.objects].filter(([, object]) => test(object)).map(([uid]) => uid);
    const abandoned = await Promise.all(picked.map((uid) => this.stop(uid)));
    return abandoned.reduce((a, b) => a + b, 0);
  }

  /** After `stopAll()` (a pause for a dev run): tasks may start again. */
  resume(): void {
    if (this.root.signal.aborted) this.root = new AbortController();
  }

  /** Stops everything (operator shutdown or lost leadership): every signal aborts at once. */
  async stopAll(): Promise<StopResult> {
    this.root.abort(new Error("operator stopping"));
    const all = [...this.running.keys()];
    const abandoned = await Promise.all(all.map((uid) => this.stop(uid)));
    return { abandoned: abandoned.reduce((a, b) => a + b, 0) };
  }

  /** How many tasks run for an object (tests). */
  count(uid: string): number {
    return this.running.get(uid)?.size ?? 0;
  }

  /** Objects with per-object state (tests: bounded by the cache). */
  get size(): number {
    return Math.max(this.running.size, this.lastChange.size);
  }

  private forgetState(uid: string): void {
    this.running.delete(uid);
    this.objects.delete(uid);
    this.lastChange.delete(uid);
  }

  /** Runs `body`; its second argument ends the task from inside (the object is gone). */
  private spawn(cancellationTimeoutMs: number, body: (signal: AbortSignal, gone: () => void) => Promise<void>): Running {
    const stop = new AbortController();
    const signal = AbortSignal.any([stop.signal, this.root.signal]);
    const done = body(signal, () => stop.abort(new Error("object gone"))).catch((error: unknown) => {
      if (!signal.aborted) this.o.logger.error({ err: error }, "background task crashed");
    });
    return { stop, done, cancellationTimeoutMs };
  }

  /**
   * Reports a failed run of a timer or daemon, whatever it threw: a log line with the stack, a
   * Warning Event on the object (whatever the event level), and the failure metric.
   */
  private failed(entry: KindEntry, object: KubeObject, task: string, failure: unknown, what: string): void {
    const message = failure instanceof Error ? failure.message : String(failure);
    this.o.logger[failure instanceof TerminalError ? "error" : "warn"]({ err: failure, object: objectKey(object.metadata), task }, `${what}: ${message}`);
    this.o.recorder.event(object, { type: "Warning", reason: task.startsWith("timer/") ? "TimerFailed" : "DaemonFailed", action: task, note: `${what}: ${message}`.slice(0, 1000) });
    const group = entry.kind.apiVersion.includes("/") ? `.${entry.kind.apiVersion.split("/")[0]}` : "";
    this.o.onFailure?.(`${entry.kind.kind}${group}`, task);
  }

  /** Aborts a task and waits for it; false if it ignored its signal past its cancellation timeout. */
  private async end(t: Running): Promise<boolean> {
    t.stop.abort(new Error("object deleted, no longer matching, or operator stopping"));
    if (await within(t.done, t.cancellationTimeoutMs, this.clock)) return true;
    this.o.logger.warn({ timeoutMs: t.cancellationTimeoutMs }, "a daemon did not end after its signal aborted: abandoning it");
    return false;
  }

  /**
   * Writes a timer's or daemon's patch (nothing when it is empty). Not once the operator stops or
   * lost its Lease, nor on an object of a bucket this replica no longer acts on: a replica that
   * may no longer lead (or own the bucket) must not write. False when the object is gone.
   */
  private async applyPatch(entry: KindEntry, latest: () => KubeObject, patch: HandlerContext<KubeObject>["patch"], log: HandlerLogger): Promise<boolean> {
    if (this.root.signal.aborted || (this.o.acting && !this.o.acting(latest()))) return true;
    try {
      await this.writer(entry).write(latest(), patch);
      return true;
    } catch (error) {
      if (error instanceof NotFoundError) return false;
      log.warn(`could not write the patch: ${error instanceof Error ? error.message : String(error)}`);
      return true;
    }
  }

  private context(latest: () => KubeObject, logger: HandlerLogger, signal: AbortSignal, retry: number): HandlerContext<KubeObject> {
    return liveContext(latest, { cause: "resume", old: undefined, new: undefined, diff: [], logger, retries: retry, started: new Date(), signal, client: this.o.client, indexes: this.o.indexes, recorder: this.o.recorder });
  }

  private writer(entry: KindEntry): PatchWriter {
    let w = this.writers.get(entry);
    if (!w) this.writers.set(entry, (w = new PatchWriter(this.o.client, entry.kind)));
    return w;
  }

  private logger(object: KubeObject, id: string): HandlerLogger {
    return objectLogger(this.o.logger, object, id, { recorder: this.o.recorder, level: this.o.eventLevel ?? "info" });
  }
}
