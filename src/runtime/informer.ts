// Shared informers: one watch and one store per (kind, namespace, selectors), however many
// controllers read it. An Informer runs watch() → reflect() into its Store and fans each event
// out to its subscribers, after the store has applied it.
import type { KubeObject, ResourceKind } from "../core/objects.js";
import type { Client } from "../client/client.js";
import { reflect } from "./reflector.js";
import { Store } from "./store.js";
import { watch, type WatcherEvent, type WatcherOptions } from "./watcher.js";

/** What an informer watches. */
export interface InformerScope {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  metadataOnly?: boolean;
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

/** One running watch with its store and subscribers. Start it with `start()`; it runs until `stop()`. */
export class Informer<T extends KubeObject = KubeObject> {
  readonly store = new Store<T>();
  private readonly listeners = new Set<InformerListener<T>>();
  private controller: AbortController | undefined;
  private running: Promise<void> | undefined;
  /** The last error the watcher recovered from, if any (for health reporting). */
  lastError: Error | undefined;

  constructor(
    private readonly client: Client,
    readonly kind: ResourceKind<T>,
    readonly scope: InformerScope,
    private readonly options: InformerOptions<T> = {},
    private readonly onListenerError: (error: unknown) => void = () => {},
  ) {}

  /** Adds a listener; returns a function that removes it. Events from before subscribing are not replayed: read the store. */
  subscribe(listener: InformerListener<T>): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Starts watching (idempotent). */
  start(): void {
    if (this.running) return;
    const controller = new AbortController();
    this.controller = controller;
    const { source, ...watchOptions } = this.options;
    const events = source ? source(this.kind, this.scope, controller.signal) : watch(this.client.resource(this.kind), { ...watchOptions, ...this.scope, signal: controller.signal });
    this.running = (async () => {
      for await (const event of reflect(events, this.store)) {
        if (event.type === "error") this.lastError = event.error;
        for (const listener of this.listeners) {
          try {
            listener(event);
          } catch (error) {
            this.onListenerError(error);
          }
        }
      }
    })();
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
    const key = JSON.stringify([kind.apiVersion, kind.kind, scope.namespace ?? "", scope.labelSelector ?? "", scope.fieldSelector ?? "", Boolean(scope.metadataOnly)]);
    let informer = this.informers.get(key);
    if (!informer) {
      const { onListenerError, ...options } = this.options;
      const created: Informer = new Informer(this.client, kind as ResourceKind, scope, options as never, (error) => onListenerError?.(error, created));
      informer = created;
      this.informers.set(key, informer);
    }
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
