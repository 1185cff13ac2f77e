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
//   throws TerminalError              → not retried; reported
//   throws anything else / times out  → retried with the queue's per-key backoff (5 ms → 1000 s)
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
import { objectKey, parseApiVersion } from "../core/objects.js";
import { raceSignal, within } from "../core/async.js";
import { systemClock, type Clock } from "../core/clock.js";
import { InformerFactory, type Informer, type InformerScope } from "../runtime/informer.js";
import { WorkQueue, type WorkQueueHooks, type WorkQueueOptions } from "../runtime/queue.js";
import type { Store } from "../runtime/store.js";
import type { WatcherEvent } from "../runtime/watcher.js";
import { pino, type Logger } from "pino";
import { CacheReader } from "./cache.js";
import { EventRecorder, type EventInput } from "./events.js";
import { addFinalizer, hasFinalizer, removeFinalizer } from "./finalizer.js";
import { setControllerReference } from "./ownership.js";
import type { WrittenVersions } from "./read-your-writes.js";

/** Which object to reconcile. */
export interface ObjectRef {
  namespace?: string;
  name: string;
}

/** What a reconciler asks for next. */
export interface Action {
  /** Reconcile again after this long, even without a change. */
  requeueAfterMs?: number;
}

export const Action = {
  /** Reconcile again after `ms` (and sooner on a change). */
  requeueAfter(ms: number): Action {
    return { requeueAfterMs: ms };
  },
  /** Nothing to do until something changes. */
  awaitChange(): Action {
    return {};
  },
};

/** An error that retrying cannot fix (bad spec, missing permission by design): not retried. */
export class TerminalError extends Error {
  override name = "TerminalError";
}

/** The reason `ctx.signal` aborts when a reconcile exceeds `reconcileTimeoutMs`. */
export class ReconcileTimeoutError extends Error {
  override name = "ReconcileTimeoutError";
  readonly reason = "ReconcileTimeout";
}

/** What a reconciler gets besides the reference. */
export interface ReconcileContext<T extends KubeObject> {
  /** The cached object, or undefined if it does not exist (any more). Frozen (shared with every reader): copy before changing it. */
  object: T | undefined;
  /** The controller's kind. */
  kind: ResourceKind<T>;
  /** The cache of the controller's kind. */
  store: Store<T>;
  /** Reads of any kind from shared caches (started on first use). */
  cache: CacheReader;
  client: Client;
  /** A logger whose every line carries the controller and the object reference. */
  logger: Logger;
  /** Aborted when the reconcile times out or the controller stops. */
  signal: AbortSignal;
  /** How many times this reference has been retried after failures. */
  retries: number;
  /** Records an Event about the reconciled object (best effort; repeats become a series). */
  event(input: EventInput): void;
  /**
   * Server-side applies `child` with the operator's field manager (forcing ownership of the
   * fields it sets), as a child controlled by the reconciled object.
   */
  apply<C extends KubeObject>(kind: ResourceKind<C>, child: C): Promise<C>;
  /** Server-side applies the reconciled object's status (`{ status: ... }`), with the operator's field manager. */
  applyStatus(status: Record<string, unknown>): Promise<T>;
  /**
   * Keeps finalizer `name` on the object and runs `cleanup` when it is being deleted. Returns
   * true when the object is being deleted (cleanup done, finalizer removed): stop reconciling.
   * A throwing cleanup keeps the finalizer and is retried like any failed reconcile.
   */
  finalizer(name: string, cleanup: (object: T) => Promise<void>): Promise<boolean>;
}

/** How a reconcile ended, for metrics (controller-runtime's `result` label values). */
export type ReconcileResult = "success" | "requeue_after" | "error";

/** Observes controllers (metrics). Every method is optional. */
export interface ControllerObserver {
  /** Hooks for a controller's work queue; `depth` reads its current length. */
  queue?(controller: string, depth: () => number): WorkQueueHooks;
  /** A reconcile ended after `seconds`; `terminal` for a TerminalError. */
  reconciled?(controller: string, result: ReconcileResult, seconds: number, terminal: boolean): void;
  /** Workers busy reconciling changed by `delta`. */
  active?(controller: string, delta: number): void;
  /** Reconciles still running long after their signal aborted (they ignore it) changed by `delta`. */
  stuck?(controller: string, delta: number): void;
}

export type Reconciler<T extends KubeObject> = (ref: ObjectRef, ctx: ReconcileContext<T>) => Promise<Action | void>;

/** Decides whether an event should trigger a reconcile. */
export type Predicate = (event: WatcherEvent<KubeObject>) => boolean;

/** Ready-made predicates. */
export const predicates = {
  /** Updates only when metadata.generation changed (spec changes); creates and deletes pass. */
  generationChanged: (e: WatcherEvent<KubeObject>) => e.type !== "apply" || !e.old || e.old.metadata?.generation !== e.object.metadata?.generation,
  /** Updates only when labels changed. */
  labelsChanged: (e: WatcherEvent<KubeObject>) =>
    e.type !== "apply" || !e.old || JSON.stringify(e.old.metadata?.labels ?? {}) !== JSON.stringify(e.object.metadata?.labels ?? {}),
  /** Updates only when annotations changed. */
  annotationsChanged: (e: WatcherEvent<KubeObject>) =>
    e.type !== "apply" || !e.old || JSON.stringify(e.old.metadata?.annotations ?? {}) !== JSON.stringify(e.object.metadata?.annotations ?? {}),
  /** Updates only when the resourceVersion changed (drops resync duplicates). */
  resourceVersionChanged: (e: WatcherEvent<KubeObject>) =>
    e.type !== "apply" || !e.old || e.old.metadata?.resourceVersion !== e.object.metadata?.resourceVersion,
};

/** Options of a controller. */
export interface ControllerOptions {
  /** Name in logs and metrics. Default: the kind in lower case. */
  name?: string;
  /** Parallel reconciles (of different objects). Default 1. */
  concurrency?: number;
  /**
   * Abort the signal of a reconcile that takes longer; a reconcile that then fails is retried
   * with backoff. The key stays with the running call until it returns. Default: none.
   */
  reconcileTimeoutMs?: number;
  /** Report a reconcile still running this long after its signal aborted. Default 10 000 ms. */
  stuckAfterMs?: number;
  /** On stop, how long reconciles get to return once their signal aborted before they are abandoned. Default 2 000 ms. */
  unwindMs?: number;
  /** Time for timeouts and shutdown deadlines. Default: the system clock. */
  clock?: Clock;
  /** Where the informers come from; share one factory between controllers to share watches. */
  informers?: InformerFactory;
  /** Scope of the controller's own kind. */
  scope?: InformerScope;
  queue?: WorkQueueOptions;
  /** Reports failed reconciles (both retried and terminal). */
  onError?: (ref: ObjectRef, error: unknown, willRetry: boolean) => void;
  /** Default: a pino logger at level "info" on stdout. */
  logger?: Logger;
  /** Field manager of server-side applies (`ctx.apply`). Default "kubeloop". */
  fieldManager?: string;
  /** Default: a recorder reporting as `kubeloop/<name>`. */
  recorder?: EventRecorder;
  observer?: ControllerObserver;
  /** Versions this process wrote, for read-your-own-writes (the Manager shares one). */
  writes?: WrittenVersions;
  /** How long a reconcile waits for the cache to show the operator's own last write. Default 5 000 ms. */
  settleMs?: number;
}

interface Source {
  kind: ResourceKind;
  /** `ownNamespaced`: whether the controller's own kind is namespaced (from the REST mapper). */
  map: (o: KubeObject, own: Store<KubeObject>, ownNamespaced: boolean) => ObjectRef[];
  scope: InformerScope;
  /** Maps through the controller's own scope (owns()): the controller needs its kind's mapping first. */
  needsScope?: boolean;
}

/** What {@link Controller.stop} reports. */
export interface StopResult {
  /** Reconciles that ignored their aborted signal past the deadline and still run in the background. */
  abandoned: number;
}

/** Everything a builder collected: enough to make a Controller once a client exists. */
export interface ControllerSpec<T extends KubeObject> {
  kind: ResourceKind<T>;
  sources: Source[];
  predicates: Predicate[];
  reconciler: Reconciler<T>;
  options: ControllerOptions;
}

/**
 * Builds a controller; each method says what it adds. `reconcile(fn)` finishes it and returns
 * what the builder's owner makes of it (a {@link Controller} for `controller(client, Kind)`).
 */
export class ControllerBuilder<T extends KubeObject, R = Controller<T>> {
  private readonly sources: Source[] = [];
  private readonly preds: Predicate[] = [];
  private options: ControllerOptions = {};

  constructor(
    private readonly kind: ResourceKind<T>,
    private readonly finish: (spec: ControllerSpec<T>) => R,
    defaults: ControllerOptions = {},
  ) {
    this.options = { ...defaults };
  }

  /** Also reconcile the controller owner of every `child` that changes (ownerReferences with controller: true). */
  owns(child: ResourceKind, scope: InformerScope = {}): this {
    const group = parseApiVersion(this.kind.apiVersion).group;
    this.sources.push({
      kind: child,
      scope,
      needsScope: true,
      // A namespaced owner lives in its child's namespace; a cluster-scoped one has none.
      map: (o, _own, ownNamespaced) =>
        (o.metadata?.ownerReferences ?? [])
          .filter((r) => r.controller && r.kind === this.kind.kind && parseApiVersion(r.apiVersion).group === group)
          .map((r) => ({ name: r.name, ...(ownNamespaced && o.metadata?.namespace ? { namespace: o.metadata.namespace } : {}) })),
    });
    return this;
  }

  /**
   * Also reconcile whatever `map` returns for every object of `kind` that changes. `map` also
   * gets the cache of the controller's own kind, to find the objects that refer to this one.
   */
  watches<K extends KubeObject>(kind: ResourceKind<K>, map: (object: K, own: Store<T>) => ObjectRef[], scope: InformerScope = {}): this {
    this.sources.push({ kind: kind as ResourceKind, map: map as unknown as Source["map"], scope });
    return this;
  }

  /** Only events every predicate accepts trigger a reconcile (of the controller's own kind). */
  withPredicates(...predicates: Predicate[]): this {
    this.preds.push(...predicates);
    return this;
  }

  /** Reconciles up to `n` different objects at once. */
  concurrency(n: number): this {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`concurrency must be a positive integer, got ${n}`);
    this.options = { ...this.options, concurrency: n };
    return this;
  }

  /** Further options (name, timeout, scope, informer factory, logging, error reporting). */
  withOptions(options: ControllerOptions): this {
    this.options = { ...this.options, ...options };
    return this;
  }

  /** Finishes the controller with its reconciler. */
  reconcile(fn: Reconciler<T>): R {
    return this.finish({ kind: this.kind, sources: [...this.sources], predicates: [...this.preds], reconciler: fn, options: { ...this.options } });
  }
}

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
  private readonly stopping = new AbortController();
  /** Aborted when reconciles that ignore their signal are given up on (the workers stop waiting). */
  private readonly abandon = new AbortController();
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
  private readonly options: ControllerOptions;

  constructor(
    private readonly client: Client,
    spec: ControllerSpec<T>,
  ) {
    const { kind, sources, options } = spec;
    this.kind = kind;
    this.preds = spec.predicates;
    this.fn = spec.reconciler;
    this.options = options;
    this.name = options.name ?? kind.kind.toLowerCase();
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
      new EventRecorder(client, { controller: `kubeloop/${this.name}`, instance: this.fieldManager, onError: (e) => this.logger.warn({ err: e }, "could not record an event") });
    this.cache = new CacheReader(this.informers, options.writes, options.settleMs);
    this.clock = options.clock ?? systemClock;
  }

  /** Every (kind, scope) this controller watches: its own kind first. */
  get watched(): Informer[] {
    return [this.own as unknown as Informer, ...this.others.map((o) => o.informer)];
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
        if (e.type === "error" || e.type === "init" || e.type === "initDone") return;
        if (!this.preds.every((p) => p(e as WatcherEvent<KubeObject>))) return;
        this.queue.add(objectKey(e.object.metadata));
      }),
    );
    for (const { source, informer } of this.others) {
      this.unsubscribe.push(
        informer.subscribe((e) => {
          if (e.type === "error" || e.type === "init" || e.type === "initDone") return;
          const own = this.own.store as unknown as Store<KubeObject>;
          const refs = [...source.map(e.object, own, ownNamespaced), ...(e.type === "apply" && e.old ? source.map(e.old, own, ownNamespaced) : [])];
          for (const ref of refs) this.queue.add(objectKey(ref));
        }),
      );
    }
    this.startInformers();
    await Promise.all(this.watched.map((i) => i.waitUntilReady(signal)));
    // Caches may have synced before we subscribed (a Manager warms them while following): queue what they hold.
    for (const key of this.own.store.keys()) this.queue.add(key);
    for (const { source, informer } of this.others) for (const o of informer.store.list()) for (const ref of source.map(o, this.own.store as unknown as Store<KubeObject>, ownNamespaced)) this.queue.add(objectKey(ref));
    this.workers = Array.from({ length: this.options.concurrency ?? 1 }, () => this.work());
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
      if (!this.stopping.signal.aborted) this.stopping.abort(new Error(`controller ${this.name} stopped: ${why}`));
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
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      if (!(await this.process(key))) return; // abandoned: the queue is shut down anyway
    }
  }

  /** Reconciles one key; returns false if the reconcile was abandoned at shutdown. */
  private async process(key: string): Promise<boolean> {
    const slash = key.indexOf("/");
    const ref: ObjectRef = slash < 0 ? { name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
    const timeout = new AbortController();
    const signal = AbortSignal.any([this.stopping.signal, timeout.signal]);
    const logger = this.logger.child({ object: key });
    // Timers of this reconcile (its timeout, the stuck report), cancelled when it returns.
    const timers = new AbortController();
    const timeoutMs = this.options.reconcileTimeoutMs;
    if (timeoutMs) {
      this.clock.sleep(timeoutMs, timers.signal).then(
        () => timeout.abort(new ReconcileTimeoutError(`reconcile of ${key} took longer than ${timeoutMs} ms`)),
        () => {},
      );
    }
    let stuck = false;
    const onAbort = () => {
      const afterMs = this.options.stuckAfterMs ?? 10_000;
      this.clock.sleep(afterMs, timers.signal).then(
        () => {
          stuck = true;
          logger.warn({ afterMs }, "reconcile still running long after its signal aborted: it ignores ctx.signal (the key stays with it)");
          this.options.observer?.stuck?.(this.name, 1);
        },
        () => {},
      );
    };
    signal.addEventListener("abort", onAbort, { once: true });
    const started = this.clock.now();
    this.options.observer?.active?.(this.name, 1);
    const run = (async () => {
      if (this.options.writes) await this.options.writes.settle(this.own as unknown as Informer, key, this.options.settleMs ?? 5_000, signal);
      return this.fn(ref, this.context(key, logger, signal));
    })();
    const ended = () => {
      timers.abort();
      signal.removeEventListener("abort", onAbort);
      if (stuck) this.options.observer?.stuck?.(this.name, -1);
    };
    run.then(ended, ended);
    try {
      // Only abandonment at shutdown stops waiting for the call; a timeout never does.
      const action = await raceSignal(run, this.abandon.signal);
      this.queue.forget(key);
      const after = action?.requeueAfterMs;
      if (after !== undefined) this.queue.addAfter(key, after);
      this.options.observer?.reconciled?.(this.name, after !== undefined ? "requeue_after" : "success", (this.clock.now() - started) / 1000, false);
      logger.debug({ ms: Math.round(this.clock.now() - started), ...(after !== undefined ? { requeueAfterMs: after } : {}) }, "reconciled");
    } catch (error) {
      if (this.abandon.signal.aborted) {
        logger.error("reconcile abandoned at shutdown: it ignored its aborted signal");
        return false;
      }
      const terminal = error instanceof TerminalError;
      this.options.observer?.reconciled?.(this.name, "error", (this.clock.now() - started) / 1000, terminal);
      if (this.stopping.signal.aborted) {
        logger.warn({ err: error }, "reconcile aborted by shutdown");
      } else {
        this.options.onError?.(ref, error, !terminal);
        if (terminal) {
          logger.error({ err: error }, "reconcile failed with a terminal error: not retried until the object changes");
          this.queue.forget(key);
        } else {
          logger.error({ err: error, retries: this.queue.numRequeues(key) }, "reconcile failed: retrying with backoff");
          this.queue.addRateLimited(key);
        }
      }
    } finally {
      this.options.observer?.active?.(this.name, -1);
    }
    this.queue.done(key);
    return true;
  }

  private context(key: string, logger: Logger, signal: AbortSignal): ReconcileContext<T> {
    const object = this.own.store.get(key);
    const ctx: ReconcileContext<T> = {
      object,
      kind: this.kind,
      store: this.own.store,
      cache: this.cache,
      client: this.client,
      logger,
      signal,
      retries: this.queue.numRequeues(key),
      event: (input) => {
        if (ctx.object) this.recorder.event(ctx.object, input);
      },
      apply: async <C extends KubeObject>(kind: ResourceKind<C>, child: C) => {
        const owner = ctx.object;
        if (!owner) throw new TypeError(`ctx.apply: ${key} does not exist, so it cannot own children`);
        const body = setControllerReference(owner, { apiVersion: kind.apiVersion, kind: kind.kind, ...structuredClone(child) });
        return this.client.resource(kind).apply(body, { fieldManager: this.fieldManager, force: true, signal });
      },
      applyStatus: async (status) => {
        const current = ctx.object;
        if (!current?.metadata?.name) throw new TypeError(`ctx.applyStatus: ${key} does not exist`);
        const { name, namespace } = current.metadata;
        const written = await this.client
          .resource(this.kind)
          .applyStatus({ metadata: { name, ...(namespace ? { namespace } : {}) }, status } as unknown as T, { fieldManager: this.fieldManager, force: true, signal });
        ctx.object = written;
        return written;
      },
      finalizer: async (name, cleanup) => {
        const current = ctx.object;
        if (!current) return true;
        if (current.metadata?.deletionTimestamp) {
          if (!hasFinalizer(current, name)) return true;
          await cleanup(current);
          logger.info({ finalizer: name }, "cleanup done: removing the finalizer");
          await removeFinalizer(this.client, this.kind, current, name);
          return true;
        }
        if (!hasFinalizer(current, name)) ctx.object = await addFinalizer(this.client, this.kind, current, name);
        return false;
      },
    };
    return ctx;
  }
}

/** `controller(client, Kind)`: the builder, for a controller run on its own (a Manager offers `manager.controller(Kind)`). */
export function controller<T extends KubeObject>(client: Client, kind: ResourceKind<T>): ControllerBuilder<T> {
  return new ControllerBuilder(kind, (spec) => new Controller(client, spec));
}
