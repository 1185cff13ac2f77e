// Shared informers: one watch and one store per (kind, namespace, selectors), however many
// controllers read it. An Informer runs the watcher into its Store and fans each event
// out to its subscribers, after the store has applied it.
import type { KubeObject, ResourceKind } from "../core/objects.js";
import type { Client } from "../client/client.js";
import { applyToStore } from "./reflector.js";
import type { Share } from "./share.js";
import { createStore, type StoreReader } from "./store.js";
import { systemClock } from "../core/clock.js";
import { runWatch, watch, WatchHealth, type WatcherEvent, type WatcherOptions } from "./watcher.js";
import { fromOrigin, originOf } from "../core/tracing.js";

/** What an informer watches. */
export interface InformerScope {
  namespace?: string;
  /**
   * Several exact namespaces: one watch per namespace, merged into one store (so namespaced
   * RBAC suffices). Ignored when `namespace` is set; one name is the same as `namespace`.
   */
  namespaces?: readonly string[];
  labelSelector?: string;
  fieldSelector?: string;
  metadataOnly?: boolean;
  /**
   * Only the objects in this share of the shard hash space (a sharded operator's buckets; see
   * `watch()`'s `shard`). The watch follows the share's changes in place.
   * @internal
   */
  share?: Share;
}

/**
 * Where an informer's events come from. Default: `watch()` on the API server; tests give a
 * scripted source (kubeloop/testing's `ScriptedEvents`) to drive informers without a server.
 */
export type EventSource = <T extends KubeObject>(kind: ResourceKind<T>, scope: InformerScope, signal: AbortSignal) => AsyncIterable<WatcherEvent<T>>;

/** Options of informers: the watcher's options and, for tests, another event source. */
export type InformerOptions<T extends KubeObject> = Omit<WatcherOptions<T>, keyof InformerScope | "signal"> & { source?: EventSource };

/** Receives every event after the store has applied it. Must not throw (a throw is reported and ignored). */
export type InformerListener<T extends KubeObject> = (event: WatcherEvent<T>) => void;

/**
 * What readers need of an informer: its kind, its cache (read-only) and its events. Methods
 * only, so an informer of a specific kind is also a `CacheView` of `KubeObject`s.
 */
export interface CacheView<T extends KubeObject = KubeObject> {
  readonly kind: ResourceKind<T>;
  readonly scope: InformerScope;
  readonly store: StoreReader<T>;
  subscribe(listener: (event: WatcherEvent<T>) => void): () => void;
  waitUntilReady(signal?: AbortSignal): Promise<void>;
}

/** How an informer's watch is doing, as its probes and metrics read it (see {@link WatchHealth}). */
export interface InformerHealth {
  /** How long its watch (the longest of its namespaces' watches) has been failing; undefined while it works. */
  failingForMs: number | undefined;
  /** Since the server last said something to it (of its namespaces' watches, the longest); undefined before it ever did. */
  sinceHeardMs: number | undefined;
  /** The last failure, if any (kept after recovery). */
  lastError: Error | undefined;
  /** Failures reported in all. */
  failures: number;
  /** Relists after the first list (recoveries from a watch that could not resume). */
  relists: number;
}

/** What a Manager needs of an informer besides reading it: start it, and know why it is not ready. */
export interface InformerHandle<T extends KubeObject = KubeObject> extends CacheView<T> {
  start(): void;
  readonly lastError: Error | undefined;
  /** How its watch is doing (the API server's watches only: a scripted source reports nothing). */
  health(): InformerHealth;
}

/** One running watch with its store and subscribers. Start it with `start()`; it runs until `stop()`. */
export class Informer<T extends KubeObject = KubeObject> implements InformerHandle<T> {
  /** The writer: only the reflector (in start()) writes it. */
  private readonly writer = createStore<T>().writer;
  private readonly listeners = new Set<InformerListener<T>>();
  private controller: AbortController | undefined;
  private running: Promise<void> | undefined;
  /** The last error the watcher recovered from, if any (for health reporting). */
  lastError: Error | undefined;
  /** One per watch (one per namespace of a several-namespace informer). */
  private readonly watches: WatchHealth[] = [];
  private relists = 0;

  constructor(
    private readonly client: Client,
    readonly kind: ResourceKind<T>,
    readonly scope: InformerScope,
    private readonly options: InformerOptions<T> = {},
    private readonly onListenerError: (error: unknown) => void = () => {},
  ) {}

  /** The cache, read-only: readers never write (the reflector alone does). */
  get store(): StoreReader<T> {
    return this.writer.store;
  }

  /** Adds a listener; returns a function that removes it. Events from before subscribing are not replayed: read the store. */
  subscribe(listener: InformerListener<T>): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Hands `event` to every listener; one that throws goes to onListenerError, the others still get it. */
  private dispatch(event: WatcherEvent<T>): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (error) {
        this.onListenerError(error);
      }
    }
  }

  /** Starts watching (idempotent). */
  start(): void {
    if (this.running) return;
    this.watches.length = 0; // a restarted informer's watches are new
    const controller = new AbortController();
    this.controller = controller;
    const { source, ...rest } = this.options;
    const { namespaces, share, ...scope } = this.scope;
    const watchOptions = share ? { ...rest, shard: share } : rest;
    const tracked = () => {
      const health = new WatchHealth();
      this.watches.push(health);
      return health;
    };
    const one = (s: InformerScope) => (source ? source(this.kind, s, controller.signal) : watch(this.client.resource(this.kind), { ...watchOptions, ...s, signal: controller.signal, health: tracked() }));
    // Each event is applied, then handed to every listener, before the next is applied: a
    // listener reads the store in the state its event describes.
    const handle = (batch: WatcherEvent<T>[]): void => {
      for (const raw of batch) {
        const event = applyToStore(raw, this.writer);
        if (event.type === "error") this.lastError = event.error;
        else if (event.type === "relisted") this.relists++;
        // The span of the watch request that brought it (when one recorded), for the work it causes.
        const from = originOf(raw);
        if (from) fromOrigin(from, () => this.dispatch(event));
        else this.dispatch(event);
      }
    };
    // One namespace (or all): the watcher pushes each read's events, handled in the turn they
    // arrived, with no promise per read. Several exact namespaces: their watches merged event by
    // event (one init, one initDone).
    const single = !scope.namespace && namespaces?.length === 1 ? { ...scope, namespace: namespaces[0] } : scope;
    const events: AsyncIterable<WatcherEvent<T>> | undefined =
      !scope.namespace && namespaces && namespaces.length > 1 ? mergeInitialLists(namespaces.map((namespace) => one({ ...scope, namespace }))) : source ? one(single) : undefined;
    this.running = (async () => {
      if (!events) return runWatch(this.client.resource(this.kind), { ...watchOptions, ...single, signal: controller.signal, health: tracked() }, handle);
      for await (const event of events) handle([event]);
    })();
  }

  /** How its watch is doing, now. */
  health(): InformerHealth {
    const now = (this.options.clock ?? systemClock).now();
    const since = (at: number | undefined) => (at === undefined ? undefined : now - at);
    const longest = (values: (number | undefined)[]) => values.reduce<number | undefined>((a, b) => (b === undefined ? a : a === undefined ? b : Math.max(a, b)), undefined);
    return {
      failingForMs: longest(this.watches.map((w) => since(w.failingSince))),
      sinceHeardMs: longest(this.watches.map((w) => since(w.lastHeardAt))),
      lastError: this.lastError,
      failures: this.watches.reduce((n, w) => n + w.failures, 0),
      relists: this.relists,
    };
  }

  /** Resolves once the store holds the first complete list; rejects if `signal` aborts first. */
  waitUntilReady(signal?: AbortSignal): Promise<void> {
    return this.store.waitUntilReady(signal);
  }

  /** Stops the watch; resolves when it has ended. */
  async stop(): Promise<void> {
    this.controller?.abort();
    await this.running;
    this.running = undefined;
  }
}

/** Options of an {@link InformerFactory}: its informers' options, and where listener errors go. */
export type InformerFactoryOptions = InformerOptions<KubeObject> & {
  /** Called with every error a listener throws (the informer goes on). Default: ignored; the Manager logs them. */
  onListenerError?: (error: unknown, informer: Informer) => void;
};

/** Hands out shared informers: the same (kind, scope) always gets the same Informer. */
export class InformerFactory {
  private readonly informers = new Map<string, Informer>();

  constructor(
    private readonly client: Client,
    private readonly options: InformerFactoryOptions = {},
  ) {}

  /** The informer for `kind` in `scope`, created (not started) on first use. */
  informer<T extends KubeObject>(kind: ResourceKind<T>, scope: InformerScope = {}): Informer<T> {
    const key = JSON.stringify([kind.apiVersion, kind.kind, scope.namespace ?? "", [...(scope.namespaces ?? [])].sort(), scope.labelSelector ?? "", scope.fieldSelector ?? "", Boolean(scope.metadataOnly), Boolean(scope.share)]);
    let informer = this.informers.get(key);
    if (!informer) {
      const { onListenerError, ...options } = this.options;
      const created: Informer = new Informer(this.client, kind as ResourceKind, scope, options as never, (error) => onListenerError?.(error, created));
      informer = created;
      this.informers.set(key, informer);
    }
    // The map holds informers of every kind; the key includes the kind, so this one holds Ts.
    return informer as unknown as Informer<T>;
  }

  /** Every informer handed out so far. */
  all(): Informer[] {
    return [...this.informers.values()];
  }

  /** Stops every informer. */
  async stop(): Promise<void> {
    await Promise.all(this.all().map((i) => i.stop()));
  }
}

/**
 * Merges the watches of several namespaces into one stream for one store: one `init`, every
 * `initApply`, and one `initDone` once every watch has listed; everything else as it comes.
 * (Each watcher lists once; later relists yield differences, so no second `init` follows.)
 */
export async function* mergeInitialLists<T extends KubeObject>(streams: AsyncIterable<WatcherEvent<T>>[]): AsyncGenerator<WatcherEvent<T>> {
  const iterators = streams.map((s) => s[Symbol.asyncIterator]());
  const pending = new Map<number, Promise<{ i: number; r: IteratorResult<WatcherEvent<T>> }>>();
  const pull = (i: number) => pending.set(i, (iterators[i] as AsyncIterator<WatcherEvent<T>>).next().then((r) => ({ i, r })));
  iterators.forEach((_, i) => pull(i));
  let initSent = false;
  let listed = 0;
  try {
    while (pending.size > 0) {
      const { i, r } = await Promise.race(pending.values());
      if (r.done) {
        pending.delete(i);
        continue;
      }
      pull(i);
      const event = r.value;
      if (event.type === "init") {
        if (!initSent) yield event;
        initSent = true;
      } else if (event.type === "initDone") {
        if (++listed === iterators.length) yield event;
      } else yield event;
    }
  } finally {
    await Promise.all(iterators.map((it) => it.return?.()));
  }
}