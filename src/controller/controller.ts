// Controllers at controller-runtime's level: `controller(kind).owns(Child).reconcile(fn)`.
//
// Reconciliation is level-based: `fn` gets a reference (namespace/name), never the event that
// caused it, and reads the current state from the cache. The request does not say whether the
// object was created, changed or deleted; a deleted object is simply absent from the cache.
//
// The loop: informer events (the kind itself, owned children mapped to their controller owner,
// watched kinds through a mapper) pass the predicates and add the reference to a WorkQueue;
// `concurrency` workers take keys (never one key twice at once) and call `fn`. Outcomes:
//   returns Action.requeueAfter(ms)   → processed again after ms (and on any change)
//   returns Action.awaitChange()/void → processed again on the next change
//   throws                            → the error policy decides: by default a TerminalError waits
//                                       for a change, anything else is retried with the queue's
//                                       per-key backoff (5 ms → 1000 s)
//
// One worker per key, always: a key stays with its worker until the reconcile function really
// returns. A timeout (`reconcileTimeoutMs`) or a shutdown aborts `ctx.signal`; it never hands
// the key to another worker while the first call still runs. A reconcile still running
// `stuckAfterMs` after its signal aborted is reported (a warning and the `stuck` hook). On stop,
// no further key is started; reconciles in flight finish, or at the deadline get their signal
// aborted and, if they still do not return within `unwindMs`, are abandoned (counted in the
// result of `stop()`; JavaScript cannot kill them, so the host should exit).
import { setMaxListeners } from "node:events";
import type { Client } from "../client/client.js";
import type { KubeObject, ResourceKind } from "../core/objects.js";
import { objectKey } from "../core/objects.js";
import { raceSignal, within } from "../core/async.js";
import { systemClock, type Clock } from "../core/clock.js";
import { TerminalError } from "../core/errors.js";
import { InformerFactory, type Informer, type InformerHandle, type InformerScope } from "../runtime/informer.js";
import { WorkQueue } from "../runtime/queue.js";
import type { StoreReader } from "../runtime/store.js";
import { hasObject, type WatcherEvent } from "../runtime/watcher.js";
import { pino, type Logger } from "pino";
import { CacheReader } from "./cache.js";
import { reconcileContext } from "./context.js";
import { EventRecorder } from "./events.js";
import type { Predicate } from "./predicates.js";
import { Action, ReconcileTimeoutError, type ErrorPolicy, type ObjectRef, type ReconcileContext, type Reconciler } from "./reconcile.js";
import { checkControllerOptions, type ControllerOptions, type ControllerSpec, type Source, type StopResult } from "./spec.js";

/** Why a reconcile's timers stop (one reason for all: `abort()` without one makes a DOMException each time). */
const RECONCILE_ENDED = new Error("reconcile ended");

/** Longest run of reconciles a worker does without letting the event loop turn (see work()). */
const YIELD_AFTER_MS = 10;

/** The default error policy: a TerminalError waits for a change, anything else backs off. */
export const defaultErrorPolicy: ErrorPolicy = (error) => (error instanceof TerminalError ? Action.awaitChange() : Action.backoff());

/**
 * A running (or ready to run) controller.
 *
 * Guarantees: a key is never reconciled by two workers at once; every object present when the
 * controller starts is reconciled once, with complete caches; a failed reconcile is retried
 * with per-key exponential backoff until it succeeds or throws a TerminalError.
 */
export class Controller<T extends KubeObject> {
  readonly name: string;
  readonly queue: WorkQueue;
  readonly informers: InformerFactory;
  private readonly own: Informer<T>;
  private readonly others: { source: Source; informer: Informer }[];
  private readonly unsubscribe: (() => void)[] = [];
  private workers: Promise<void>[] = [];
  private started = false;
  private readonly stopping = new AbortController();
  /** Aborted when reconciles that ignore their signal are given up on (the workers stop waiting). */
  private readonly abandon = new AbortController();
  /** How to abort each reconcile in flight. */
  private readonly running = new Set<(reason: unknown) => void>();
  private readonly clock: Clock;
  private ownNamespaced = true;
  /** Whether the informers are this controller's own (not a factory shared with others). */
  private readonly ownsInformers: boolean;
  private readonly logger: Logger;
  private readonly recorder: EventRecorder;
  private readonly cache: CacheReader;
  private readonly fieldManager: string;

  readonly kind: ResourceKind<T>;
  private readonly preds: Predicate[];
  private readonly fn: Reconciler<T>;
  private readonly errorPolicy: ErrorPolicy;
  private readonly filters: Predicate[];
  private readonly options: ControllerOptions;

  constructor(
    private readonly client: Client,
    spec: ControllerSpec<T>,
  ) {
    const { kind, sources, options } = spec;
    checkControllerOptions(options);
    this.kind = kind;
    this.preds = spec.predicates;
    this.fn = spec.reconciler;
    this.errorPolicy = spec.errorPolicy ?? defaultErrorPolicy;
    this.filters = spec.eventFilters ?? [];
    this.options = options;
    this.name = options.name ?? kind.kind.toLowerCase();
    // Each reconcile in flight listens on it (at most `concurrency` at once): more than Node's
    // default of 10 is expected, not a leak.
    setMaxListeners((options.concurrency ?? 1) + 10, this.abandon.signal);
    const depth = () => this.queue.length;
    const hooks = options.observer?.queue?.(this.name, depth);
    this.queue = new WorkQueue({ ...options.queue, ...(hooks ? { hooks } : {}) });
    this.informers = options.informers ?? new InformerFactory(client);
    this.ownsInformers = options.informers === undefined;
    this.own = this.informers.informer(kind, options.scope ?? {});
    this.others = sources.map((source) => ({ source, informer: this.informers.informer(source.kind, source.scope) }));
    this.logger = (options.logger ?? pino()).child({ controller: this.name });
    this.fieldManager = options.fieldManager ?? "kubeloop";
    this.recorder =
      options.recorder ??
      new EventRecorder(client, { controller: `kubeloop.dev/${this.name}`, instance: this.fieldManager, onError: (e) => this.logger.warn({ err: e }, "could not record an event") });
    // Reads of the kinds it watches go through the same informers; others in its namespaces.
    const same = (a: ResourceKind, b: ResourceKind) => a.apiVersion === b.apiVersion && a.kind === b.kind;
    const scopeOf = (k: ResourceKind): InformerScope => {
      if (same(k, kind)) return this.own.scope;
      const watched = this.others.find((o) => same(o.source.kind, k));
      if (watched) return watched.informer.scope;
      const { namespace, namespaces } = options.scope ?? {};
      return k.namespaced === false ? {} : namespace !== undefined ? { namespace } : namespaces ? { namespaces } : {};
    };
    this.cache = new CacheReader(this.informers, options.writes, options.settleMs, scopeOf);
    this.clock = options.clock ?? systemClock;
  }

  /** Every (kind, scope) this controller watches: its own kind first. */
  get watched(): InformerHandle[] {
    return [this.own, ...this.others.map((o) => o.informer)];
  }

  /** Starts the informers (if not yet) without starting to reconcile: a Manager warms caches before it leads. */
  startInformers(): void {
    for (const informer of this.watched) informer.start();
  }

  /**
   * Starts the informers and the workers; resolves once every cache has synced (so the first
   * reconciles see complete caches) and every existing object is queued. Rejects if `signal`
   * aborts first, e.g. `AbortSignal.timeout(ms)`.
   */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.others.some((o) => o.source.needsScope)) this.ownNamespaced = (await this.client.mapper.mapping(this.kind, signal)).namespaced;
    const ownNamespaced = this.ownNamespaced;
    this.unsubscribe.push(
      this.own.subscribe((e) => {
        if (e.type === "relisted" && this.options.requeueAfterRelist && this.started) this.requeueAll();
        if (!hasObject(e)) return;
        if (!this.preds.every((p) => p(e as WatcherEvent<KubeObject>)) || !this.filters.every((p) => p(e as WatcherEvent<KubeObject>))) return;
        this.queue.add(objectKey(e.object.metadata));
      }),
    );
    for (const { source, informer } of this.others) {
      this.unsubscribe.push(
        informer.subscribe((e) => {
          if (!hasObject(e) || !this.filters.every((p) => p(e))) return;
          const own: StoreReader<KubeObject> = this.own.store;
          const refs = [...source.map(e.object, own, ownNamespaced), ...(e.type === "apply" && e.old ? source.map(e.old, own, ownNamespaced) : [])];
          for (const ref of refs) this.queue.add(objectKey(ref));
        }),
      );
    }
    this.startInformers();
    await Promise.all(this.watched.map((i) => i.waitUntilReady(signal)));
    // Caches may have synced before we subscribed (a Manager warms them while following): queue what they hold.
    for (const key of this.own.store.keys()) this.queue.add(key);
    for (const { source, informer } of this.others) for (const o of informer.store.list()) for (const ref of source.map(o, this.own.store, ownNamespaced)) this.queue.add(objectKey(ref));
    this.workers = Array.from({ length: this.options.concurrency ?? 1 }, () => this.work());
    this.started = true;
    if (this.options.resyncMs) void this.resync(this.options.resyncMs);
  }

  /** Queues every object of the own kind. */
  private requeueAll(): void {
    for (const key of this.own.store.keys()) this.queue.add(key);
  }

  /** Every `periodMs` (+ up to 10 % jitter, so replicas and controllers spread out) until stopped: every object again. */
  private async resync(periodMs: number): Promise<void> {
    for (;;) {
      try {
        await this.clock.sleep(periodMs * (1 + Math.random() * 0.1), this.stopping.signal);
      } catch {
        return; // stopped
      }
      if (this.queue.isShuttingDown) return;
      this.logger.debug({ periodMs }, "resync: queueing every object");
      this.requeueAll();
    }
  }

  /**
   * Stops: starts no further key; reconciles in flight finish, at most `timeoutMs` (default: no
   * limit); then their signals abort, and those that still run after `unwindMs` are abandoned.
   * Aborting `hurry` (leadership lost) aborts every signal at once; the same deadlines apply.
   * Stops the informers unless they come from a shared factory.
   */
  async stop(timeoutMs?: number, hurry?: AbortSignal): Promise<StopResult> {
    for (const u of this.unsubscribe.splice(0)) u();
    this.queue.shutDown();
    const abort = (why: string) => {
      if (this.stopping.signal.aborted) return;
      this.stopping.abort(new Error(`controller ${this.name} stopped: ${why}`));
      for (const abortReconcile of this.running) abortReconcile(this.stopping.signal.reason);
    };
    const onHurry = () => abort("leadership lost");
    if (hurry?.aborted) onHurry();
    hurry?.addEventListener("abort", onHurry, { once: true });
    const idle = Promise.all(this.workers);
    let abandoned = 0;
    try {
      if (timeoutMs === undefined) await idle;
      else if (!(await within(idle, timeoutMs, this.clock))) {
        this.logger.warn({ timeoutMs, inFlight: this.queue.inFlight }, "reconciles still running at the shutdown deadline: aborting their signals");
        abort("shutdown deadline");
        const unwindMs = this.options.unwindMs ?? 2_000;
        if (!(await within(idle, unwindMs, this.clock))) {
          abandoned = this.queue.inFlight;
          this.logger.error({ abandoned, unwindMs }, "reconciles ignore their aborted signal: abandoning them (they may still act; exit the process)");
          this.abandon.abort(new Error("abandoned at shutdown"));
          await idle;
        }
      }
    } finally {
      hurry?.removeEventListener("abort", onHurry);
    }
    abort("stopped");
    if (this.ownsInformers) await this.informers.stop();
    return { abandoned };
  }

  private async work(): Promise<void> {
    let since = performance.now();
    for (;;) {
      const idle = this.queue.length === 0;
      const key = await this.queue.get();
      if (key === undefined) return;
      if (idle) since = performance.now(); // it waited: the event loop turned meanwhile
      if (!(await this.process(key))) return; // abandoned: the queue is shut down anyway
      // Reconciles that never wait on I/O (a no-op, a cache read) chain promise after promise:
      // nothing else would run (no socket read, no timer such as the Lease renewal) until the
      // whole backlog is done. Past YIELD_AFTER_MS of such work, let the event loop turn.
      if (performance.now() - since >= YIELD_AFTER_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        since = performance.now();
      }
    }
  }

  /** Reconciles one key; returns false if the reconcile was abandoned at shutdown. */
  private async process(key: string): Promise<boolean> {
    const slash = key.indexOf("/");
    const ref: ObjectRef = slash < 0 ? { name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
    const logger = this.logger.child({ object: key });
    const { signal, ended } = this.guard(key, logger);
    const started = this.clock.now();
    this.options.observer?.active?.(this.name, 1);
    const run = (async () => {
      if (this.options.writes) {
        const settleMs = this.options.settleMs ?? 5_000;
        // Never act on a cached state older than this process's own write (a handler would run
        // again on progress it already recorded): past settleMs, try again later. The write's
        // event brings the key back by itself; a write not seen for a minute is given up on.
        if (!(await this.options.writes.settle(this.own, key, settleMs, signal)) && !signal.aborted) {
          logger.debug({ settleMs }, "the cache is behind this process's last write: reconcile postponed");
          return Action.requeueAfter(settleMs);
        }
      }
      return this.fn(ref, this.context(key, logger, signal));
    })();
    run.then(ended, ended);
    try {
      // Only abandonment at shutdown stops waiting for the call; a timeout never does.
      const action = await raceSignal(run, this.abandon.signal);
      this.succeeded(key, action, started, logger);
    } catch (error) {
      if (this.abandon.signal.aborted) {
        logger.error("reconcile abandoned at shutdown: it ignored its aborted signal");
        return false;
      }
      this.failed(key, ref, error, started, logger);
    } finally {
      this.options.observer?.active?.(this.name, -1);
    }
    this.queue.done(key);
    return true;
  }

  /**
   * The signal of one reconcile (aborted by shutdown or by its timeout) and its watchdog: a call
   * still running `stuckAfterMs` after the signal aborted is reported. `ended` stops the timers.
   */
  private guard(key: string, logger: Logger): { signal: AbortSignal; ended: () => void } {
    // One controller per reconcile, aborted by stop() (see `running`) or by its timeout: its own
    // signal, so listeners a reconcile leaves on it go with it. (Not AbortSignal.any() of the
    // stop and timeout signals: that cost more than a no-op reconcile.)
    const own = new AbortController();
    // Made only when a timer is armed (most reconciles arm none: no timeout, never aborted).
    let timers: AbortController | undefined;
    let stuck = false;
    // Those two are the only ones to abort it, so the stuck watchdog starts here (an abort
    // listener added and removed per reconcile cost ~3 µs, a third of a no-op reconcile).
    const abort = (reason: unknown) => {
      if (own.signal.aborted) return;
      own.abort(reason);
      const afterMs = this.options.stuckAfterMs ?? 10_000;
      this.clock.sleep(afterMs, (timers ??= new AbortController()).signal).then(
        () => {
          stuck = true;
          logger.warn({ afterMs }, "reconcile still running long after its signal aborted: it ignores ctx.signal (the key stays with it)");
          this.options.observer?.stuck?.(this.name, 1);
        },
        () => {},
      );
    };
    if (this.stopping.signal.aborted) abort(this.stopping.signal.reason);
    this.running.add(abort);
    const timeoutMs = this.options.reconcileTimeoutMs;
    if (timeoutMs) {
      this.clock.sleep(timeoutMs, (timers ??= new AbortController()).signal).then(
        () => abort(new ReconcileTimeoutError(`reconcile of ${key} took longer than ${timeoutMs} ms`)),
        () => {},
      );
    }
    const ended = () => {
      this.running.delete(abort);
      timers?.abort(RECONCILE_ENDED);
      if (stuck) this.options.observer?.stuck?.(this.name, -1);
    };
    return { signal: own.signal, ended };
  }

  /** A reconcile returned: forget its failures, requeue if it asked. */
  private succeeded(key: string, action: Action | void, started: number, logger: Logger): void {
    this.queue.forget(key);
    const after = action?.requeueAfterMs;
    if (after !== undefined) this.queue.addAfter(key, after);
    this.options.observer?.reconciled?.(this.name, after !== undefined ? "requeue_after" : "success", (this.clock.now() - started) / 1000, false);
    logger.debug({ ms: Math.round(this.clock.now() - started), ...(after !== undefined ? { requeueAfterMs: after } : {}) }, "reconciled");
  }

  /** A reconcile threw: the error policy decides when the key comes back. */
  private failed(key: string, ref: ObjectRef, error: unknown, started: number, logger: Logger): void {
    const terminal = error instanceof TerminalError;
    this.options.observer?.reconciled?.(this.name, "error", (this.clock.now() - started) / 1000, terminal);
    if (this.stopping.signal.aborted) {
      logger.warn({ err: error }, "reconcile aborted by shutdown");
      return;
    }
    const retries = this.queue.numRequeues(key);
    let next: Action;
    try {
      next = this.errorPolicy(error, { ref, retries, logger });
    } catch (policyError) {
      logger.error({ err: policyError }, "the error policy threw: backing off");
      next = Action.backoff();
    }
    this.options.onError?.(ref, error, next.backoff === true || next.requeueAfterMs !== undefined);
    if (next.backoff) {
      logger.error({ err: error, retries }, "reconcile failed: retrying with backoff");
      this.queue.addRateLimited(key);
    } else if (next.requeueAfterMs !== undefined) {
      logger.error({ err: error, requeueAfterMs: next.requeueAfterMs }, "reconcile failed: retrying as the error policy says");
      this.queue.forget(key);
      this.queue.addAfter(key, next.requeueAfterMs);
    } else {
      logger.error({ err: error }, terminal ? "reconcile failed with a terminal error: not retried until the object changes" : "reconcile failed: not retried until the object changes (error policy)");
      this.queue.forget(key);
    }
  }

  private context(key: string, logger: Logger, signal: AbortSignal): ReconcileContext<T> {
    return reconcileContext({
      key,
      object: this.own.store.get(key),
      kind: this.kind,
      store: this.own.store,
      cache: this.cache,
      client: this.client,
      logger,
      signal,
      retries: this.queue.numRequeues(key),
      recorder: this.recorder,
      fieldManager: this.fieldManager,
    });
  }
}
