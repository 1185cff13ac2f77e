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
import { InformerFactory, type Informer, type InformerScope } from "../runtime/informer.js";
import { WorkQueue, type WorkQueueOptions } from "../runtime/queue.js";
import type { Store } from "../runtime/store.js";
import type { WatcherEvent } from "../runtime/watcher.js";

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
  /** The cached object, or undefined if it does not exist (any more). */
  object: T | undefined;
  /** The cache of the controller's kind. */
  store: Store<T>;
  client: Client;
  /** Aborted when the reconcile times out or the controller stops. */
  signal: AbortSignal;
  /** How many times this reference has been retried after failures. */
  retries: number;
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
}

/** Builds a {@link Controller}; each method says what it adds. */
export class ControllerBuilder<T extends KubeObject> {
  private readonly sources: { kind: ResourceKind; map: (o: KubeObject) => ObjectRef[]; scope: InformerScope }[] = [];
  private readonly preds: Predicate[] = [];
  private options: ControllerOptions = {};

  constructor(
    private readonly client: Client,
    private readonly kind: ResourceKind<T>,
  ) {}

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

  /** Also reconcile whatever `map` returns for every object of `kind` that changes. */
  watches<K extends KubeObject>(kind: ResourceKind<K>, map: (object: K) => ObjectRef[], scope: InformerScope = {}): this {
    this.sources.push({ kind: kind as ResourceKind, map: map as (o: KubeObject) => ObjectRef[], scope });
    return this;
  }

  /** Only events every predicate accepts trigger a reconcile (of the controller's own kind). */
  withPredicates(...predicates: Predicate[]): this {
    this.preds.push(...predicates);
    return this;
  }

  /** Reconciles up to `n` different objects at once. */
  concurrency(n: number): this {
    this.options = { ...this.options, concurrency: n };
    return this;
  }

  /** Further options (timeout, scope, informer factory, error reporting). */
  withOptions(options: ControllerOptions): this {
    this.options = { ...this.options, ...options };
    return this;
  }

  /** Finishes the controller with its reconciler. Call `start()` to run it. */
  reconcile(fn: Reconciler<T>): Controller<T> {
    return new Controller(this.client, this.kind, this.sources, this.preds, fn, this.options);
  }
}

/** A running (or ready to run) controller. */
export class Controller<T extends KubeObject> {
  readonly queue: WorkQueue;
  private readonly informers: InformerFactory;
  private readonly own: Informer<T>;
  private readonly unsubscribe: (() => void)[] = [];
  private workers: Promise<void>[] = [];
  private readonly stopping = new AbortController();
  /** Whether the informers are this controller's own (not a factory shared with others). */
  private readonly ownsInformers: boolean;

  constructor(
    private readonly client: Client,
    readonly kind: ResourceKind<T>,
    private readonly sources: { kind: ResourceKind; map: (o: KubeObject) => ObjectRef[]; scope: InformerScope }[],
    private readonly preds: Predicate[],
    private readonly fn: Reconciler<T>,
    private readonly options: ControllerOptions,
  ) {
    this.queue = new WorkQueue(options.queue ?? {});
    this.informers = options.informers ?? new InformerFactory(client);
    this.ownsInformers = options.informers === undefined;
    this.own = this.informers.informer(kind, options.scope ?? {});
  }

  /**
   * Starts the informers and the workers; resolves once every cache has synced (so the first
   * reconciles see complete caches). Rejects if `signal` aborts first, e.g. `AbortSignal.timeout(ms)`.
   */
  async start(signal?: AbortSignal): Promise<void> {
    this.unsubscribe.push(
      this.own.subscribe((e) => {
        if (e.type === "error" || e.type === "init" || e.type === "initDone") return;
        if (!this.preds.every((p) => p(e as WatcherEvent<KubeObject>))) return;
        this.queue.add(objectKey(e.object.metadata));
      }),
    );
    const others = this.sources.map((s) => {
      const informer = this.informers.informer(s.kind, s.scope);
      this.unsubscribe.push(
        informer.subscribe((e) => {
          if (e.type === "error" || e.type === "init" || e.type === "initDone") return;
          const refs = [...s.map(e.object), ...(e.type === "apply" && e.old ? s.map(e.old) : [])];
          for (const ref of refs) this.queue.add(objectKey(ref));
        }),
      );
      return informer;
    });
    for (const informer of [this.own, ...others]) informer.start();
    await Promise.all([this.own, ...others].map((i) => i.waitUntilReady(signal)));
    this.workers = Array.from({ length: this.options.concurrency ?? 1 }, () => this.work());
  }

  /** Stops taking work and waits for reconciles in flight; stops the informers unless they come from a shared factory. */
  async stop(): Promise<void> {
    for (const u of this.unsubscribe.splice(0)) u();
    await this.queue.shutDownWithDrain();
    this.stopping.abort();
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
      if (this.options.reconcileTimeoutMs) signals.push(AbortSignal.timeout(this.options.reconcileTimeoutMs));
      const signal = AbortSignal.any(signals);
      try {
        const action = await this.race(
          this.fn(ref, { object: this.own.store.get(key), store: this.own.store, client: this.client, signal, retries: this.queue.numRequeues(key) }),
          signal,
        );
        this.queue.forget(key);
        if (action?.requeueAfterMs !== undefined) this.queue.addAfter(key, action.requeueAfterMs);
      } catch (error) {
        const terminal = error instanceof TerminalError;
        this.options.onError?.(ref, error, !terminal);
        if (terminal) this.queue.forget(key);
        else this.queue.addRateLimited(key);
      } finally {
        this.queue.done(key);
      }
    }
  }

  /** Ends a reconcile at its timeout even if `fn` ignores the signal. */
  private race<R>(work: Promise<R>, signal: AbortSignal): Promise<R> {
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise<R>((resolve, reject) => {
      const onAbort = () => reject(signal.reason ?? new Error("reconcile aborted"));
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
}

/** `controller(client, Kind)`: the builder. */
export function controller<T extends KubeObject>(client: Client, kind: ResourceKind<T>): ControllerBuilder<T> {
  return new ControllerBuilder(client, kind);
}
