// reflect(): a pass-through over watcher events that writes them to a Store on the way.
// The consumer sees every event after the store has applied it, so a handler of an event can
// read the store and find the object in the state the event describes. Objects are deep-frozen
// on the way in: the store is shared by every reader, and none may change it in place.
import { deepFreeze, objectKey, type KubeObject } from "../core/objects.js";
import type { StoreWriter } from "./store.js";
import type { Watch, WatcherEvent } from "./watcher.js";

/**
 * Writes `events` through `store` (the store's one writer, from `createStore()`) and yields them on. A `delete` with `finalStateUnknown` (an object
 * that vanished while the watch was down) is yielded with the last state the store had.
 */
export function reflect<T extends KubeObject>(events: AsyncIterable<WatcherEvent<T>>, store: StoreWriter<T>): AsyncGenerator<WatcherEvent<T>, void, undefined> {
  // A fresh watch() runs pushed, each event applied as the consumer asks for it: the same
  // events, no async step per event between the connection and the store.
  const pushed = typeof (events as Partial<Watch<T>>).pushed === "function" ? (events as Watch<T>).pushed((event) => applyToStore(event, store)) : undefined;
  return pushed ?? reflectEach(events, store);
}

async function* reflectEach<T extends KubeObject>(events: AsyncIterable<WatcherEvent<T>>, store: StoreWriter<T>): AsyncGenerator<WatcherEvent<T>, void, undefined> {
  for await (const event of events) yield applyToStore(event, store);
}

/**
 * One step of {@link reflect}, synchronous: writes `event` to `store` and returns the event to
 * pass on (an `apply` that replaced an object carries it as `old`; a `delete` with
 * `finalStateUnknown` carries the last stored state). The Informer calls it per event of a batch,
 * and hands each event to its listeners before the next one is applied.
 */
export function applyToStore<T extends KubeObject>(event: WatcherEvent<T>, store: StoreWriter<T>): WatcherEvent<T> {
  switch (event.type) {
    case "init":
      store.beginInit();
      return event;
    case "initApply":
      store.initApply(deepFreeze(event.object));
      return event;
    case "initDone":
      store.initDone();
      return event;
    case "apply": {
      const old = store.apply(deepFreeze(event.object));
      return old ? { type: "apply", object: event.object, old } : event;
    }
    case "delete": {
      const last = store.delete(objectKey(event.object.metadata));
      // Vanished on a relist (or left the share): the last state the store had, with the event's marks.
      return (event.finalStateUnknown || event.unshared) && last ? { ...event, object: last } : event;
    }
    default:
      return event;
  }
}
