// In-memory indexes handed to handlers (`op.index(Kind, id, fn)`): `fn` maps an object to
// {key: value} contributions; the index maps each key to the values of all objects, kept
// current from the informer's events. Like kopf's indexes, they make "which pods belong to
// this app" a lookup instead of a list call.
import type { KubeObject } from "../core/objects.js";
import { objectKey } from "../core/objects.js";
import type { WatcherEvent } from "../runtime/watcher.js";

/** The indexes of an operator. */
export class IndexSet {
  /** index id → key → object key → value */
  private readonly data = new Map<string, Map<string, Map<string, unknown>>>();
  /** index id → object key → keys it contributed */
  private readonly contributed = new Map<string, Map<string, string[]>>();
  readonly view = new Map<string, Map<string, unknown[]>>();

  /** Declares an index (so handlers see it, empty, before any object). */
  declare(id: string): void {
    if (this.data.has(id)) throw new Error(`index "${id}" is declared twice`);
    this.data.set(id, new Map());
    this.contributed.set(id, new Map());
    this.view.set(id, new Map());
  }

  /** Applies an informer event to index `id`. */
  apply(id: string, fn: (object: KubeObject) => Record<string, unknown> | undefined, event: WatcherEvent<KubeObject>): void {
    if (event.type !== "apply" && event.type !== "initApply" && event.type !== "delete") return;
    const okey = objectKey(event.object.metadata);
    const data = this.data.get(id) as Map<string, Map<string, unknown>>;
    const contributed = this.contributed.get(id) as Map<string, string[]>;
    const touched = new Set(contributed.get(okey) ?? []);
    for (const key of contributed.get(okey) ?? []) data.get(key)?.delete(okey);
    contributed.delete(okey);
    if (event.type !== "delete") {
      const entries = Object.entries(fn(event.object) ?? {});
      for (const [key, value] of entries) {
        let m = data.get(key);
        if (!m) data.set(key, (m = new Map()));
        m.set(okey, value);
        touched.add(key);
      }
      if (entries.length) contributed.set(okey, entries.map(([k]) => k));
    }
    const view = this.view.get(id) as Map<string, unknown[]>;
    for (const key of touched) {
      const values = [...(data.get(key)?.values() ?? [])];
      if (values.length) view.set(key, values);
      else {
        view.delete(key);
        data.delete(key);
      }
    }
  }
}
