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
import type { Client } from "../client/client.js";
import type { KubeObject, ResourceKind } from "../core/objects.js";
import { describeKind, objectKey } from "../core/objects.js";
import { within } from "../core/async.js";
import { systemClock, type Clock } from "../core/clock.js";
import { ApiError, TerminalError } from "../core/errors.js";
import { currentOrigin, inSpan, type TraceLink } from "../core/tracing.js";
import { InformerFactory, type Informer, type InformerHandle, type InformerScope } from "../runtime/informer.js";
import { LOW_PRIORITY, WorkQueue, type WorkQueueHooks, type WorkQueueOptions } from "../runtime/queue.js";
import type { StoreReader } from "../runtime/store.js";
import { hasObject, type WatcherEvent } from "../runtime/watcher.js";
import type { Logger } from "pino";
import { pino } from "../core/lazy.js";
import { CacheReader } from "./cache.js";
import { reconcileContext, type ControllerParts, type ReconcileParts } from "./context.js";
import { EventRecorder } from "./events.js";
import type { Predicate } from "./predicates.js";
import { Action, ReconcileTimeoutError, type ErrorPolicy, type ObjectRef, type Reconciler, type TraceRef } from "./reconcile.js";
import { checkControllerOptions, type ControllerOptions, type ControllerSpec, type Source, type StopResult } from "./spec.js";

/** Why a reconcile's timers stop (one reason for all: `abort()` without one makes a DOMException each time). */
const RECONCILE_ENDED = new Error("reconcile ended");

/**
 * One reconcile in flight: its key, the controller of its signal (ctx.signal), its timers and
 * its logger. The signal, the timers and the logger are made when first needed: most
 * reconciles arm no timer, are never aborted, log nothing and never read ctx.signal.
 */
class InFlight implements ReconcileParts {
  readonly own = new AbortController();
  aborted = false;
  stuck = false;
  /** Its reconcile span's ids, when a tracer recorded it (the latency histogram's exemplar). */
  trace: TraceRef | undefined;
  private timerController: AbortController | undefined;
  private objectLogger: Logger | undefined;

  constructor(
    readonly key: string,
    private readonly parent: Logger,
  ) {}

  /** The logger naming the object. */
  get logger(): Logger {
    return (this.objectLogger ??= this.parent.child({ object: this.key }));
  }

  /** The signal that stops this reconcile's timers (its timeout, its stuck watchdog). */
  timers(): AbortSignal {
    return (this.timerController ??= new AbortController()).signal;
  }

  /** The reconcile function returned: its timers stop. */
  end(): void {
    this.timerController?.abort(RECONCILE_ENDED);
  }
}

/**
 * One start() … stop() of a controller: its queue, its workers and the reconciles they run. A
 * reconcile keeps the run it started in, so one abandoned by a stop never touches the queue of
 * a later start; the later run holds its key until it returns (one key, one reconcile at a
 * time, across runs too).
 */
class Run {
  readonly stopping = new AbortController();
  /** The reconcile each worker runs now, by worker (a slot per worker: no Set to add to and delete from per reconcile). */
  readonly inFlight: (InFlight | undefined)[] = [];
  readonly unsubscribe: (() => void)[] = [];
  /** The watch event that last queued each key, as a link for its reconcile's span (only while a tracer records). */
  readonly origins = new Map<string, TraceLink>();
  workers: Promise<void>[] = [];
  starting = false;
  started = false;
  /** The run started after this one (set while reconciles of this one may still run). */
  next: Run | undefined;

  constructor(readonly queue: WorkQueue) {}

  /** The run after this one: its queue holds the keys of this run's reconciles still running (and those this run's queue holds). */
  successor(queue: WorkQueue): Run {
    const next = new Run(queue);
    for (const flight of this.inFlight) if (flight) queue.hold(flight.key);
    for (const key of this.queue.heldKeys()) queue.hold(key);
    this.next = next;
    return next;
  }

  /** A reconcile of this run returned: the runs after it may have `key` now. */
  finished(key: string): void {
    this.queue.done(key);
    for (let later = this.next; later; later = later.next) later.queue.release(key);
  }
}

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
  readonly informers: InformerFactory;
  private readonly own: Informer<T>;
  private readonly others: { source: Source; informer: Informer }[];
  /** The current run (the next one, before start()). */
  private run: Run;
  private readonly queueOptions: WorkQueueOptions;
  /** How long each key taken from the queue waited (read by its reconcile's span). */
  private readonly waited = new Map<string, number>();
  /** What every reconcile's context shares. */
  private readonly parts: ControllerParts<T>;
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
    const depth = () => this.run.queue.length;
    const observed = options.observer?.queue?.(this.name, depth);
    // The wait of each key taken, for its reconcile's span (then the metrics' hooks).
    const hooks: WorkQueueHooks = {
      ...observed,
      started: (key, waitedMs, priority) => {
        this.waited.set(key, waitedMs);
        observed?.started?.(key, waitedMs, priority);
      },
    };
    this.queueOptions = { ...options.queue, hooks };
    this.run = new Run(new WorkQueue(this.queueOptions));
    this.informers = options.informers ?? new InformerFactory(client);
    this.ownsInformers = options.informers === undefined;
    this.own = this.informers.informer(kind, options.scope ?? {});
    this.others = sources.map((source) => ({ source, informer: this.informers.informer(source.kind, source.scope) }));
    this.logger = (options.logger ?? pino({})).child({ controller: this.name });
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
    // Informers a read starts lazily: their recovered failures are logged, as the Manager logs those it starts.
    this.cache = new CacheReader(this.informers, options.writes, options.settleMs, scopeOf, (informer, error) =>
      this.logger.warn({ kind: describeKind(informer.kind), namespace: informer.scope.namespace, err: error }, "watch interrupted: recovering"),
    );
    this.clock = options.clock ?? systemClock;
    this.parts = { kind, store: this.own.store, cache: this.cache, client, recorder: this.recorder, fieldManager: this.fieldManager };
  }

  /**
   * Whether its own kind is watched through a share (a sharded operator): it then runs on every
   * replica, each on its share, rather than on the leader alone.
   * @internal
   */
  get sharded(): boolean {
    return this.own.scope.share !== undefined;
  }

  /**
   * The work queue of the current run (add a key to have it reconciled). A controller started
   * again after stop() (a Manager does so after a dev pause) has a new queue: read this
   * property each time rather than keeping the queue.
   */
  get queue(): WorkQueue {
    return this.run.queue;
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
   * aborts first, e.g. `AbortSignal.timeout(ms)`; then nothing of it stays and start() may be
   * called again. Throws if the controller runs (or is starting) already.
   *
   * After stop(), start() runs it again with a new queue (every object is queued anew; the
   * failure counts start from zero). A reconcile that stop() abandoned and that still runs
   * keeps its key: the new run reconciles that key only once it returned.
   */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.run.queue.isShuttingDown) this.run = this.run.successor(new WorkQueue(this.queueOptions));
    const run = this.run;
    if (run.starting) throw new Error(`controller ${this.name} is already started`);
    run.starting = true;
    try {
      await this.subscribeAndSync(run, signal);
    } catch (error) {
      // Not started: a later start() may try again, without this attempt's subscriptions.
      for (const u of run.unsubscribe.splice(0)) u();
      run.starting = false;
      throw error;
    }
    run.workers = Array.from({ length: this.options.concurrency ?? 1 }, (_, worker) => this.work(run, worker));
    run.started = true;
    if (this.options.resyncMs) void this.resync(run, this.options.resyncMs);
  }

  /** start()'s first part: subscribes `run`'s queue to the informers, waits for them to sync, queues what they hold. */
  private async subscribeAndSync(run: Run, signal: AbortSignal | undefined): Promise<void> {
    if (this.others.some((o) => o.source.needsScope)) this.ownNamespaced = (await this.client.mapper.mapping(this.kind, signal)).namespaced;
    const ownNamespaced = this.ownNamespaced;
    const queue = run.queue;
    run.unsubscribe.push(
      this.own.subscribe((e) => {
        if (e.type === "relisted" && this.options.requeueAfterRelist && run.started) this.requeueAll(queue);
        if (!hasObject(e)) return;
        if (!this.preds.every((p) => p(e as WatcherEvent<KubeObject>)) || !this.filters.every((p) => p(e as WatcherEvent<KubeObject>))) return;
        // A change seen on the watch goes ahead of the objects of a list (the first, or a relist's).
        const key = objectKey(e.object.metadata);
        noteOrigin(run, key, e);
        queue.add(key, e.type === "initApply" ? LOW_PRIORITY : 0);
      }),
    );
    for (const { source, informer } of this.others) {
      run.unsubscribe.push(
        informer.subscribe((e) => {
          if (!hasObject(e) || !this.filters.every((p) => p(e))) return;
          const own: StoreReader<KubeObject> = this.own.store;
          const refs = [...source.map(e.object, own, ownNamespaced), ...(e.type === "apply" && e.old ? source.map(e.old, own, ownNamespaced) : [])];
          for (const ref of refs) {
            const key = objectKey(ref);
            noteOrigin(run, key, e);
            queue.add(key, e.type === "initApply" ? LOW_PRIORITY : 0);
          }
        }),
      );
    }
    this.startInformers();
    await Promise.all(this.watched.map((i) => i.waitUntilReady(signal)));
    // Caches may have synced before we subscribed (a Manager warms them while following): queue what they hold.
    this.requeueAll(queue);
    for (const { source, informer } of this.others) for (const o of informer.store.list()) for (const ref of source.map(o, this.own.store, ownNamespaced)) queue.add(objectKey(ref), LOW_PRIORITY);
  }

  /** Queues every object of the own kind, behind the changes seen on the watch (a start, a resync, a relist). */
  private requeueAll(queue: WorkQueue): void {
    for (const key of this.own.store.keys()) queue.add(key, LOW_PRIORITY);
  }

  /** Every `periodMs` (+ up to 10 % jitter, so replicas and controllers spread out) until stopped: every object again. */
  private async resync(run: Run, periodMs: number): Promise<void> {
    for (;;) {
      try {
        await this.clock.sleep(periodMs * (1 + Math.random() * 0.1), run.stopping.signal);
      } catch {
        return; // stopped
      }
      if (run.queue.isShuttingDown) return;
      this.logger.debug({ periodMs }, "resync: queueing every object");
      this.requeueAll(run.queue);
    }
  }

  /**
   * Stops: starts no further key; reconciles in flight finish, at most `timeoutMs` (default: no
   * limit); then their signals abort, and those that still run after `unwindMs` are abandoned.
   * Aborting `hurry` (leadership lost) aborts every signal at once; the same deadlines apply.
   * Stops the informers unless they come from a shared factory.
   */
  async stop(timeoutMs?: number, hurry?: AbortSignal): Promise<StopResult> {
    const run = this.run;
    for (const u of run.unsubscribe.splice(0)) u();
    run.queue.shutDown();
    const abort = (why: string) => {
      if (run.stopping.signal.aborted) return;
      run.stopping.abort(new Error(`controller ${this.name} stopped: ${why}`));
      for (const flight of run.inFlight) if (flight) this.abortFlight(flight, run.stopping.signal.reason);
    };
    const onHurry = () => abort("leadership lost");
    if (hurry?.aborted) onHurry();
    hurry?.addEventListener("abort", onHurry, { once: true });
    const idle = Promise.all(run.workers);
    let abandoned = 0;
    try {
      if (timeoutMs === undefined) await idle;
      else if (!(await within(idle, timeoutMs, this.clock))) {
        this.logger.warn({ timeoutMs, inFlight: run.queue.inFlight }, "reconciles still running at the shutdown deadline: aborting their signals");
        abort("shutdown deadline");
        const unwindMs = this.options.unwindMs ?? 2_000;
        if (!(await within(idle, unwindMs, this.clock))) {
          // Their workers keep waiting for them; nothing waits for those workers any more.
          abandoned = run.queue.inFlight;
          for (const flight of run.inFlight) flight?.logger.error("reconcile abandoned at shutdown: it ignored its aborted signal");
          this.logger.error({ abandoned, unwindMs }, "reconciles ignore their aborted signal: abandoning them (they may still act; exit the process)");
        }
      }
    } finally {
      hurry?.removeEventListener("abort", onHurry);
    }
    abort("stopped");
    if (this.ownsInformers) await this.informers.stop();
    return { abandoned };
  }

  private async work(run: Run, worker: number): Promise<void> {
    const queue = run.queue;
    let since = performance.now();
    for (;;) {
      const idle = queue.length === 0;
      const key = await queue.get();
      if (key === undefined) return;
      if (idle) since = performance.now(); // it waited: the event loop turned meanwhile
      await this.process(run, key, worker);
      // Reconciles that never wait on I/O (a no-op, a cache read) chain promise after promise:
      // nothing else would run (no socket read, no timer such as the Lease renewal) until the
      // whole backlog is done. Past YIELD_AFTER_MS of such work, let the event loop turn.
      if (performance.now() - since >= YIELD_AFTER_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        since = performance.now();
      }
    }
  }

  /**
   * Reconciles one key on worker `worker`. Returns when the reconcile function really returned:
   * a reconcile abandoned at shutdown keeps its worker (stop() does not wait for it).
   */
  private async process(run: Run, key: string, worker: number): Promise<void> {
    const slash = key.indexOf("/");
    const ref: ObjectRef = slash < 0 ? { name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
    const flight = new InFlight(key, this.logger);
    run.inFlight[worker] = flight;
    if (run.stopping.signal.aborted) this.abortFlight(flight, run.stopping.signal.reason);
    const timeoutMs = this.options.reconcileTimeoutMs;
    if (timeoutMs) {
      this.clock.sleep(timeoutMs, flight.timers()).then(
        () => this.abortFlight(flight, new ReconcileTimeoutError(`reconcile of ${key} took longer than ${timeoutMs} ms`)),
        () => {},
      );
    }
    const started = this.clock.now();
    this.options.observer?.active?.(this.name, 1);
    let action: Action | void = undefined;
    let error: unknown;
    let failed = false;
    try {
      const writes = this.options.writes;
      // Never act on a cached state older than this process's own write (a handler would run
      // again on progress it already recorded): past settleMs, try again later. The write's
      // event brings the key back by itself; a write not seen for a minute is given up on.
      if (writes && !writes.isSettled(this.own, key)) {
        const settleMs = this.options.settleMs ?? 5_000;
        if (!(await writes.settle(this.own, key, settleMs, flight.own.signal)) && !flight.own.signal.aborted) {
          flight.logger.debug({ settleMs }, "the cache is behind this process's last write: reconcile postponed");
          action = Action.requeueAfter(settleMs);
        }
      }
      // A timeout or shutdown aborts ctx.signal; only the function's return ends the reconcile.
      if (action === undefined) action = await this.traced(run, ref, key, flight);
    } catch (thrown) {
      failed = true;
      error = thrown;
    }
    run.inFlight[worker] = undefined;
    flight.end();
    if (flight.stuck) this.options.observer?.stuck?.(this.name, -1);
    try {
      if (failed) this.failed(run, key, ref, error, started, flight);
      else this.succeeded(run.queue, key, action, started, flight);
    } finally {
      this.options.observer?.active?.(this.name, -1);
    }
    run.finished(key);
  }

  /**
   * The reconcile function's call, in a span (OpenTelemetry, when an SDK is registered) whose
   * children are the API calls it makes: the controller, the object, how long its key waited in
   * the queue, the retries so far, and what it returned.
   */
  private traced(run: Run, ref: ObjectRef, key: string, flight: InFlight): Promise<Action | void> {
    const waitedMs = this.waited.get(key);
    this.waited.delete(key);
    const origin = run.origins.get(key);
    if (origin) run.origins.delete(key);
    const retries = run.queue.numRequeues(key);
    const object = this.own.store.get(key);
    const attributes = {
      "kubeloop.controller": this.name,
      "kubeloop.object.kind": `${this.kind.apiVersion} ${this.kind.kind}`,
      "k8s.namespace.name": ref.namespace,
      "kubeloop.object.name": ref.name,
      "kubeloop.queue.wait_ms": waitedMs === undefined ? undefined : Math.round(waitedMs),
      "kubeloop.reconcile.retries": retries,
      // The version of the object it starts from: the watch event that brought it (none: it is gone).
      "kubeloop.object.resource_version": object?.metadata?.resourceVersion,
      "kubeloop.object.generation": object?.metadata?.generation,
    };
    return inSpan(`reconcile ${this.name}`, { attributes, ...(origin ? { links: [origin] } : {}) }, async (span) => {
      flight.trace = span.context; // a SpanContext is a TraceRef (its ids), when the span records
      const action = await this.fn(ref, reconcileContext(this.parts, flight, object, retries));
      span.set({ "kubeloop.reconcile.result": action?.requeueAfterMs !== undefined ? "requeue_after" : "success", "kubeloop.reconcile.requeue_after_ms": action?.requeueAfterMs });
      return action;
    });
  }

  /**
   * Aborts a reconcile's signal (its timeout, or shutdown) and starts its watchdog: a call still
   * running `stuckAfterMs` later is reported (a warning and the `stuck` hook).
   */
  private abortFlight(flight: InFlight, reason: unknown): void {
    if (flight.aborted) return;
    flight.aborted = true;
    flight.own.abort(reason);
    const afterMs = this.options.stuckAfterMs ?? 10_000;
    this.clock.sleep(afterMs, flight.timers()).then(
      () => {
        flight.stuck = true;
        flight.logger.warn({ afterMs }, "reconcile still running long after its signal aborted: it ignores ctx.signal (the key stays with it)");
        this.options.observer?.stuck?.(this.name, 1);
      },
      () => {},
    );
  }

  /** A reconcile returned: forget its failures, requeue if it asked. */
  private succeeded(queue: WorkQueue, key: string, action: Action | void, started: number, flight: InFlight): void {
    queue.forget(key);
    const after = action?.requeueAfterMs;
    if (after !== undefined) queue.addAfter(key, after);
    this.options.observer?.reconciled?.(this.name, after !== undefined ? "requeue_after" : "success", (this.clock.now() - started) / 1000, false, flight.trace);
    if (this.logger.isLevelEnabled("debug")) flight.logger.debug({ ms: Math.round(this.clock.now() - started), ...(after !== undefined ? { requeueAfterMs: after } : {}) }, "reconciled");
  }

  /** A reconcile threw: the error policy decides when the key comes back. */
  private failed(run: Run, key: string, ref: ObjectRef, error: unknown, started: number, flight: InFlight): void {
    const logger = flight.logger;
    const queue = run.queue;
    const terminal = error instanceof TerminalError;
    this.options.observer?.reconciled?.(this.name, "error", (this.clock.now() - started) / 1000, terminal, flight.trace);
    if (run.stopping.signal.aborted) {
      logger.warn({ err: error }, "reconcile aborted by shutdown");
      return;
    }
    // A refusal (RBAC) is a Warning Event on the object too: the operator cannot fix it itself.
    if (error instanceof ApiError && (error.code === 403 || error.code === 401)) {
      const object = this.own.store.get(key);
      if (object) this.recorder.event(object, { type: "Warning", reason: "Forbidden", action: "Reconcile", note: error.message.slice(0, 1000) });
    }
    const retries = queue.numRequeues(key);
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
      queue.addRateLimited(key);
    } else if (next.requeueAfterMs !== undefined) {
      logger.error({ err: error, requeueAfterMs: next.requeueAfterMs }, "reconcile failed: retrying as the error policy says");
      queue.forget(key);
      queue.addAfter(key, next.requeueAfterMs);
    } else {
      logger.error({ err: error }, terminal ? "reconcile failed with a terminal error: not retried until the object changes" : "reconcile failed: not retried until the object changes (error policy)");
      queue.forget(key);
    }
  }
}

/**
 * Keeps, for `key`'s next reconcile span, a link to the watch request that delivered `event`
 * (while a tracer records: otherwise there is no origin, and nothing is kept).
 */
function noteOrigin(run: Run, key: string, event: { type: string; object: KubeObject }): void {
  const context = currentOrigin();
  if (!context) return;
  run.origins.set(key, { context, attributes: { "kubeloop.event.type": event.type, "kubeloop.event.kind": event.object.kind, "kubeloop.object.resource_version": event.object.metadata?.resourceVersion ?? "" } });
}
