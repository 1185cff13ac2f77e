// The handler level on the Manager: the registry's kinds become one controller each (running
// the kind's handlers through a Processor), index feeds, raw-event feeds and the task runner of
// timers and daemons, all through the Manager's public methods (`informer()`, `controller()`,
// `add()`). Also how a controller spec is narrowed to the operator's namespaces, so both levels
// share one scope.
import type { Logger } from "pino";
import type { Client } from "../client/client.js";
import type { KubeObject } from "../core/objects.js";
import { objectId, objectKey } from "../core/objects.js";
import { within } from "../core/async.js";
import type { Manager, Runnable } from "../controller/manager.js";
import type { ShardFence } from "../controller/shard-fence.js";
import type { ControllerSpec } from "../controller/spec.js";
import type { CacheView } from "../runtime/informer.js";
import { hasObject } from "../runtime/watcher.js";
import { objectLogger } from "./context.js";
import { matches } from "./filters.js";
import { IndexSet } from "./indexes.js";
import { Processor } from "./processing.js";
import { progressKeys } from "./progress.js";
import type { EventLevel, HandlerEventInput, Indexes, KindEntry, RawEvent, Registry } from "./registry.js";
import type { WatchScope } from "./scope.js";
import { Tasks } from "./tasks.js";

/** What the handler level needs of the operator's settings. */
export interface HandlerSettings {
  readonly annotationPrefix: string;
  readonly scope: WatchScope;
  readonly eventLevel: EventLevel;
  readonly progressIn: "annotations" | "status";
  readonly concurrency: number;
  /**
   * A sharded operator's fence: the kinds' caches hold its share, every replica runs the
   * handlers on its share (not only the leader), and work runs only on buckets acted on.
   */
  readonly fence?: ShardFence | undefined;
}

/** The handler level, wired: its task runner, its indexes, and its per-kind processors. */
export interface WiredHandlers {
  tasks: Tasks;
  indexes: Indexes;
  processors: Processor[];
}

/**
 * Wires `registry` into `manager`. Every kind with handlers gets a required cache (synced before
 * anything starts, on followers too, so indexes are warm and timers read the latest state).
 */
export function wireHandlers(manager: Manager, registry: Registry, settings: HandlerSettings, context: { client: Client; logger: Logger; onTaskFailure?: (kind: string, task: string) => void }): WiredHandlers {
  const { client, logger } = context;
  const { fence } = settings;
  const { matches: inScope } = settings.scope;
  const forKind = (kind: KindEntry["kind"]) => ({ ...settings.scope.forKind(kind), ...(fence ? { share: fence.share } : {}) });
  const indexSet = new IndexSet();
  const caches = new Map([...registry.kinds.values()].map((entry) => [entry, manager.informer(entry.kind, forKind(entry.kind))] as const));
  const cacheOf = (entry: KindEntry) => caches.get(entry) as CacheView<KubeObject>;
  const tasks = new Tasks({
    client,
    logger,
    indexes: indexSet.view,
    store: (entry) => cacheOf(entry).store,
    recorder: manager.recorder,
    eventLevel: settings.eventLevel,
    ...(context.onTaskFailure ? { onFailure: context.onTaskFailure } : {}),
    ...(fence ? { acting: fence.owns } : {}),
  });
  // Timers and daemons start with their objects (in the handlers' reconciles); this stops them
  // all. Added before the handlers' controllers, so that after a pause it has started again
  // before their first reconciles ask for tasks (the Manager starts runnables in order).
  manager.add({ start: async () => tasks.resume(), stop: () => tasks.stopAll(), needsLeader: !fence });
  const processors: Processor[] = [];
  for (const entry of registry.kinds.values()) {
    const informer = cacheOf(entry);
    for (const ix of entry.indexes) {
      indexSet.declare(ix.id);
      informer.subscribe((e) => {
        if (hasObject(e) && !inScope(e.object.metadata?.namespace)) return;
        indexSet.apply(ix.id, ix.fn, e);
      });
    }
    if (entry.handlers.length || entry.timers.length || entry.daemons.length) {
      processors.push(handlersController(manager, entry, informer, { ...settings, forKind }, { client, logger, tasks, indexes: indexSet.view }));
    }
    if (entry.events.length) {
      const eventContext = {
        client,
        indexes: indexSet.view,
        logger: (object: KubeObject) => objectLogger(logger, object, "event", { recorder: manager.recorder, level: settings.eventLevel }),
        event: (object: KubeObject) => ({ regarding, ...input }: HandlerEventInput) => manager.recorder.event(regarding ?? object, input),
      };
      manager.add({ ...eventHandlers(entry, informer, inScope, logger, eventContext), needsLeader: !fence });
    }
  }
  return { tasks, indexes: indexSet.view, processors };
}

/** One kind's handlers: a Processor reconciled by a controller of its own, fed the kind's deletes. */
function handlersController(
  manager: Manager,
  entry: KindEntry,
  informer: CacheView<KubeObject>,
  settings: HandlerSettings & { forKind: (kind: KindEntry["kind"]) => ReturnType<WatchScope["forKind"]> },
  context: { client: Client; logger: Logger; tasks: Tasks; indexes: Indexes },
): Processor {
  const { tasks } = context;
  const { fence } = settings;
  const keys = progressKeys(settings.annotationPrefix);
  const inScope = settings.scope.matches;
  const processor: Processor = new Processor({ ...context, entry, keys, finalizer: `${keys.prefix}/finalizer`, recorder: manager.recorder, eventLevel: settings.eventLevel, progressIn: settings.progressIn });
  manager
    .controller(entry.kind)
    .withPredicates((e) => !hasObject(e) || inScope(e.object.metadata?.namespace), ...(fence ? [fence.admit(entry.kind)] : []))
    .withOptions({ name: `handlers-${entry.kind.kind.toLowerCase()}`, scope: settings.forKind(entry.kind), concurrency: settings.concurrency, requeueAfterRelist: true })
    .reconcile(fence ? fence.guard(processor.reconcile) : processor.reconcile);
  // Per-object state lives as long as the object is cached: a delete event (also one a
  // relist discovers for an object deleted while the watch was down) drops it.
  informer.subscribe((e) => {
    if (e.type === "relisted") processor.relisted(); // before the controller requeues every object
    if (e.type !== "delete") return;
    const uid = objectId(e.object);
    processor.forget(uid);
    void tasks.stop(uid);
    // Another replica's now (its share changed), not deleted: nothing more to do here.
    if (e.unshared) return;
    // Gone with our finalizer, never seen being deleted: its delete handlers still run (the
    // controller takes the key this event queues).
    if (inScope(e.object.metadata?.namespace)) processor.vanish(e.object);
  });
  // Only the leader finalizes vanished objects (as it alone runs the handlers' controller);
  // sharded, every replica does, on its share (the fence holds the reconciles to it).
  manager.add({ start: async () => processor.setLeading(true), stop: async () => processor.setLeading(false), needsLeader: !fence });
  return processor;
}

/**
 * A controller narrowed to the operator's namespaces (one scope for both levels): its own kind
 * and its sources are watched in those namespaces (namespaced watches for exact names), and
 * events from elsewhere do not reconcile. A scope the controller sets itself wins.
 */
export function scopedSpec<T extends KubeObject>(spec: ControllerSpec<T>, namespaces: readonly string[] | undefined, scope: WatchScope, fence?: ShardFence): ControllerSpec<T> {
  const narrowed = !namespaces || namespaces.length === 0 ? spec : inNamespaces(spec, scope);
  return fence && spec.options.sharded !== false ? sharded(narrowed, fence) : narrowed;
}

function inNamespaces<T extends KubeObject>(spec: ControllerSpec<T>, scope: WatchScope): ControllerSpec<T> {
  const { forKind, matches: inScope } = scope;
  return {
    ...spec,
    predicates: [...spec.predicates, (e) => !hasObject(e) || inScope(e.object.metadata?.namespace)],
    sources: spec.sources.map((s) => ({ ...s, scope: { ...forKind(s.kind), ...s.scope } })),
    options: { ...spec.options, scope: { ...forKind(spec.kind), ...spec.options.scope } },
  };
}

/**
 * A controller of a sharded operator: its own kind watched through the share (so it runs on
 * every replica, each on its share), unshared deletes reconcile nothing, and reconciles run only
 * on buckets acted on. Its other sources (owns(), watches()) are watched whole: their events map
 * to owners, and the fence drops those of other replicas' owners.
 */
function sharded<T extends KubeObject>(spec: ControllerSpec<T>, fence: ShardFence): ControllerSpec<T> {
  return {
    ...spec,
    predicates: [...spec.predicates, fence.admit(spec.kind)],
    reconciler: fence.guard(spec.reconciler),
    options: { ...spec.options, scope: { ...spec.options.scope, share: fence.share } },
  };
}

/**
 * The runnable of a kind's `op.on.event` handlers: on start, `exists` for every cached object,
 * then every watched change; on stop, calls in flight finish within the deadline (they get no
 * signal: past it they are abandoned and counted). One object's events are handled one at a
 * time, in order, its handlers in registration order (as kopf's worker per object): a slow call
 * delays that object's next event, never another object's, and two calls for one object never
 * race (a status copied from an older event cannot land after a newer one).
 */
function eventHandlers(
  entry: KindEntry,
  informer: CacheView<KubeObject>,
  inScope: (namespace: string | undefined) => boolean,
  logger: Logger,
  context: { client: Client; indexes: Indexes; logger: (object: KubeObject) => RawEvent<KubeObject>["logger"]; event: (object: KubeObject) => RawEvent<KubeObject>["event"] },
): Runnable {
  let unsubscribe = () => {};
  const inFlight = new Set<Promise<void>>();
  /** Per object (namespace/name): the last call queued; dropped once it ends with nothing after it. */
  const tails = new Map<string, Promise<void>>();
  const deliver = (bare: Omit<RawEvent<KubeObject>, "logger" | "event" | "client" | "indexes">) => {
    if (!inScope(bare.object.metadata?.namespace)) return;
    const handlers = entry.events.filter((h) => matches(bare.object, h.options));
    if (!handlers.length) return;
    const event: RawEvent<KubeObject> = { ...bare, client: context.client, indexes: context.indexes, logger: context.logger(bare.object), event: context.event(bare.object) };
    const key = objectKey(event.object.metadata);
    const call: Promise<void> = (tails.get(key) ?? Promise.resolve())
      .then(async () => {
        for (const h of handlers) {
          await Promise.resolve()
            .then(() => h.fn(event))
            .catch((error: unknown) => logger.error({ err: error, object: key }, "event handler failed (not retried)"));
        }
      })
      .finally(() => {
        inFlight.delete(call);
        if (tails.get(key) === call) tails.delete(key);
      });
    tails.set(key, call);
    inFlight.add(call);
  };
  return {
    start: async () => {
      unsubscribe = informer.subscribe((e) => {
        if (!hasObject(e) || (e.type === "delete" && e.unshared)) return; // unshared: another replica's now, not deleted
        deliver({ type: e.type === "delete" ? "delete" : "apply", object: e.object, ...(e.type === "apply" && e.old ? { old: e.old } : {}) });
      });
      // What exists already (the cache synced before this replica started leading).
      for (const object of informer.store.list()) deliver({ type: "exists", object });
    },
    stop: async (timeoutMs) => {
      unsubscribe();
      const finished = await within(Promise.all(inFlight), timeoutMs);
      if (!finished) logger.error({ abandoned: inFlight.size }, "event handlers still running at the shutdown deadline: abandoning them");
      return { abandoned: finished ? 0 : inFlight.size };
    },
  };
}
