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
import type { Client } from "../client/client.js";
import type { KubeObject, ResourceKind } from "../core/objects.js";
import { objectKey, parseApiVersion } from "../core/objects.js";
import { raceSignal, within } from "../core/async.js";
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

/** What a reconciler gets besides the reference. */
export interface ReconcileContext<T extends KubeObject> {
  /** The cached object, or undefined if it does not exist (any more). Do not mutate: copy first. */
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
  /** Abort and retry a reconcile that takes longer. Default: none. */
  reconcileTimeoutMs?: number;
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
  map: (o: KubeObject, own: Store<KubeObject>) => ObjectRef[];
  scope: InformerScope;
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
      map: (o) =>
        (o.metadata?.ownerReferences ?? [])
          .filter((r) => r.controller && r.kind === this.kind.kind && parseApiVersion(r.apiVersion).group === group)
          .map((r) => ({ name: r.name, ...(o.metadata?.namespace ? { namespace: o.metadata.namespace } : {}) })),
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
          const refs = [...source.map(e.object, own), ...(e.type === "apply" && e.old ? source.map(e.old, own) : [])];
          for (const ref of refs) this.queue.add(objectKey(ref));
        }),
      );
    }
    this.startInformers();
    await Promise.all(this.watched.map((i) => i.waitUntilReady(signal)));
    // Caches may have synced before we subscribed (a Manager warms them while following): queue what they hold.
    for (const key of this.own.store.keys()) this.queue.add(key);
    for (const { source, informer } of this.others) for (const o of informer.store.list()) for (const ref of source.map(o, this.own.store as unknown as Store<KubeObject>)) this.queue.add(objectKey(ref));
    this.workers = Array.from({ length: this.options.concurrency ?? 1 }, () => this.work());
  }

  /**
   * Stops taking work and waits for reconciles in flight, at most `timeoutMs` (default: no
   * limit); then aborts their signals. Stops the informers unless they come from a shared factory.
   */
  async stop(timeoutMs?: number): Promise<void> {
    for (const u of this.unsubscribe.splice(0)) u();
    const drained = this.queue.shutDownWithDrain();
    if (timeoutMs === undefined) await drained;
    else if (!(await within(drained, timeoutMs))) this.logger.warn({ timeoutMs }, "reconciles still running at the shutdown deadline: aborting them");
    this.stopping.abort(new Error(`controller ${this.name} stopped`));
    await Promise.all(this.workers);
    if (this.ownsInformers) await this.informers.stop();
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const slash = key.indexOf("/");
      const ref: ObjectRef = slash < 0 ? { name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
      const signals = [this.stopping.signal];
      if (this.options.reconcileTimeoutMs) signals.push(AbortSignal.timeout(Math.ceil(this.options.reconcileTimeoutMs)));
      const signal = AbortSignal.any(signals);
      const logger = this.logger.child({ object: key });
      const started = performance.now();
      this.options.observer?.active?.(this.name, 1);
      try {
        if (this.options.writes) await this.options.writes.settle(this.own as unknown as Informer, key, this.options.settleMs ?? 5_000, signal);
        const action = await raceSignal(this.fn(ref, this.context(key, logger, signal)), signal);
        this.queue.forget(key);
        const after = action?.requeueAfterMs;
        if (after !== undefined) this.queue.addAfter(key, after);
        this.options.observer?.reconciled?.(this.name, after !== undefined ? "requeue_after" : "success", (performance.now() - started) / 1000, false);
        logger.debug({ ms: Math.round(performance.now() - started), ...(after !== undefined ? { requeueAfterMs: after } : {}) }, "reconciled");
      } catch (error) {
        const terminal = error instanceof TerminalError;
        this.options.observer?.reconciled?.(this.name, "error", (performance.now() - started) / 1000, terminal);
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
        this.queue.done(key);
      }
    }
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
