// reflect(): a pass-through over watcher events that writes them to a Store on the way.
// The consumer sees every event after the store has applied it, so a handler of an event can
// read the store and find the object in the state the event describes. Objects are deep-frozen
// on the way in: the store is shared by every reader, and none may change it in place.
import { deepFreeze, objectKey, type KubeObject } from "../core/objects.js";
import type { Store } from "./store.js";
import type { WatcherEvent } from "./watcher.js";

/**
 * Writes `events` to `store` and yields them on. A `delete` with `finalStateUnknown` (an object
 * that vanished while the watch was down) is yielded with the last state the store had.
 */
export async function* reflect<T extends KubeObject>(
  events: AsyncIterable<WatcherEvent<T>>,
  store: Store<T>,
): AsyncGenerator<WatcherEvent<T>, void, undefined> {
  for await (const event of events) {
    switch (event.type) {
      case "init":
        store.beginInit();
        break;
      case "initApply":
        store.initApply(deepFreeze(event.object));
        break;
      case "initDone":
        store.initDone();
        break;
      case "apply": {
        const old = store.apply(deepFreeze(event.object));
        if (old) {
          yield { ...event, old };
          continue;
        }
        break;
      }
      case "delete": {
        const last = store.delete(objectKey(event.object.metadata));
        if (event.finalStateUnknown && last) {
          yield { type: "delete", object: last, finalStateUnknown: true };
          continue;
        }
        break;
      }
      case "error":
        break;
    }
    yield event;
  }
}
