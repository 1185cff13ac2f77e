// Predicates: which watch events may trigger a reconcile. Ready-made ones compare the event's
// object with the state it replaced; `and`, `or` and `not` combine them.
import type { KubeObject } from "../core/objects.js";
import type { WatcherEvent } from "../runtime/watcher.js";

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

/** Passes when every predicate passes. */
export function and(...all: Predicate[]): Predicate {
  return (e) => all.every((p) => p(e));
}

/** Passes when any predicate passes. */
export function or(...any: Predicate[]): Predicate {
  return (e) => any.some((p) => p(e));
}

/** Passes when the predicate does not. */
export function not(p: Predicate): Predicate {
  return (e) => !p(e);
}
