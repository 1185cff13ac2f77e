// Timers and daemons: per-object background work that lives as long as the object (and the
// operator's leadership). A timer calls its function every `intervalMs` (optionally only once
// the object has been idle for `idleMs`); a daemon is one long-running function whose signal
// aborts when the object is deleted or the operator stops. Both are stopped, and awaited,
// before delete handlers run and the finalizer is released.
import type { Logger } from "pino";
import type { Client } from "../client/client.js";
import type { KubeObject } from "../core/objects.js";
import { objectKey } from "../core/objects.js";
import { within } from "../core/async.js";
import type { Store } from "../runtime/store.js";
import { matches } from "./filters.js";
import { PatchWriter, handlerContext } from "./context.js";
import type { HandlerContext, HandlerLogger, Indexes, KindEntry } from "./registry.js";

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
  /** Where the latest state of each object is read (the informer's store), by key. */
  store: (entry: KindEntry) => Store<KubeObject>;
}

/** The timers and daemons running for objects. */
export class Tasks {
  private readonly running = new Map<string, Map<string, Running>>(); // uid → task id → task
  private readonly lastChange = new Map<string, number>();
  private readonly root = new AbortController();
  private readonly writers = new Map<KindEntry, PatchWriter>();

  constructor(private readonly o: TasksOptions) {}

  /** Notes that the object's essence changed now (for idle timers). */
  touch(uid: string): void {
    this.lastChange.set(uid, Date.now());
  }

  /** Starts the timers and daemons that apply to `object` and are not running yet. */
  ensure(object: KubeObject, entry: KindEntry): void {
    if (this.root.signal.aborted) return;
    const uid = object.metadata?.uid ?? objectKey(object.metadata);
    const key = objectKey(object.metadata);
    let tasks = this.running.get(uid);
    if (!tasks) this.running.set(uid, (tasks = new Map()));
    if (!this.lastChange.has(uid)) this.lastChange.set(uid, Date.now());
    const latest = () => this.o.store(entry).get(key) ?? object;
    for (const t of entry.timers) {
      if (tasks.has(`timer/${t.id}`) || !matches(object, t.options)) continue;
      tasks.set(`timer/${t.id}`, this.spawn(30_000, async (signal) => {
        const log = this.logger(object, t.id);
        await sleep(t.options.initialDelayMs ?? 0, signal);
        let retry = 0;
        while (!signal.aborted) {
          if (t.options.idleMs) {
            const idleFor = Date.now() - (this.lastChange.get(uid) ?? 0);
            if (idleFor < t.options.idleMs) {
              await sleep(t.options.idleMs - idleFor, signal);
              continue;
            }
          }
          try {
            const ctx = this.context(latest(), log, signal, retry);
            await t.fn(ctx);
            await this.writer(entry).write(ctx.object, ctx.patch);
            retry = 0;
          } catch (error) {
            if (signal.aborted) return;
            retry++;
            log.warn(`timer failed: ${error instanceof Error ? error.message : String(error)}`);
          }
          await sleep(t.options.intervalMs, signal);
        }
      }));
    }
    for (const d of entry.daemons) {
      if (tasks.has(`daemon/${d.id}`) || !matches(object, d.options)) continue;
      tasks.set(`daemon/${d.id}`, this.spawn(d.options.cancellationTimeoutMs ?? 30_000, async (signal) => {
        const log = this.logger(object, d.id);
        for (let retry = 0; !signal.aborted; retry++) {
          try {
            await d.fn(this.context(latest(), log, signal, retry));
            return; // finished: not restarted until the operator restarts
          } catch (error) {
            if (signal.aborted) return;
            log.warn(`daemon failed, restarting: ${error instanceof Error ? error.message : String(error)}`);
            await sleep(d.options.backoffMs ?? 10_000, signal);
          }
        }
      }));
    }
  }

  /** Stops the object's tasks and waits for them (each up to its cancellation timeout). */
  async stop(uid: string): Promise<void> {
    const tasks = this.running.get(uid);
    this.running.delete(uid);
    this.lastChange.delete(uid);
    if (!tasks) return;
    await Promise.all([...tasks.values()].map((t) => this.end(t)));
  }

  /** Stops everything (operator shutdown or lost leadership). */
  async stopAll(): Promise<void> {
    this.root.abort();
    const all = [...this.running.keys()];
    await Promise.all(all.map((uid) => this.stop(uid)));
  }

  /** How many tasks run for an object (tests). */
  count(uid: string): number {
    return this.running.get(uid)?.size ?? 0;
  }

  private spawn(cancellationTimeoutMs: number, body: (signal: AbortSignal) => Promise<void>): Running {
    const stop = new AbortController();
    const signal = AbortSignal.any([stop.signal, this.root.signal]);
    const done = body(signal).catch((error: unknown) => {
      if (!signal.aborted) this.o.logger.error({ err: error }, "background task crashed");
    });
    return { stop, done, cancellationTimeoutMs };
  }

  private async end(t: Running): Promise<void> {
    t.stop.abort(new Error("object deleted or operator stopping"));
    if (!(await within(t.done, t.cancellationTimeoutMs))) this.o.logger.warn({ timeoutMs: t.cancellationTimeoutMs }, "a daemon did not end after its signal aborted: abandoning it");
  }

  private context(object: KubeObject, logger: HandlerLogger, signal: AbortSignal, retry: number): HandlerContext<KubeObject> {
    return handlerContext(object, { cause: "resume", old: undefined, new: undefined, diff: [], logger, retry, started: new Date(), signal, client: this.o.client, indexes: this.o.indexes });
  }

  private writer(entry: KindEntry): PatchWriter {
    let w = this.writers.get(entry);
    if (!w) this.writers.set(entry, (w = new PatchWriter(this.o.client, entry.kind)));
    return w;
  }

  private logger(object: KubeObject, id: string): HandlerLogger {
    const base = this.o.logger.child({ object: objectKey(object.metadata), task: id });
    return {
      debug: (m, f) => base.debug(f ?? {}, m),
      info: (m, f) => base.info(f ?? {}, m),
      warn: (m, f) => base.warn(f ?? {}, m),
      error: (m, f) => base.error(f ?? {}, m),
    };
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, Math.max(0, ms));
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
