// Store: the cache a reflector writes and controllers read. One writer (the reflector), many
// readers; lookups by key and by index; readiness once the first list is complete.
import type { KubeObject } from "../core/objects.js";
import { objectKey } from "../core/objects.js";

/** Computes the index values of an object (none: not indexed). */
export type IndexFunction<T> = (object: T) => readonly string[];

/** Index of objects by namespace: `store.byIndex(BY_NAMESPACE, "team-a")`. */
export const BY_NAMESPACE = "namespace";
/** Index of objects by the uid of each of their owners: `store.byIndex(BY_OWNER, owner.metadata.uid)`. */
export const BY_OWNER = "owner-uid";

/** An index on a label's value: `store.byIndex(byLabel("app"), "web")`. */
export function byLabel(key: string): string {
  return `label:${key}`;
}

/**
 * The reading side of a {@link Store}: what controllers, handlers and mappers get. Methods only
 * (no writer), so a reader of a specific kind is also a reader of `KubeObject`s.
 */
export interface StoreReader<T extends KubeObject = KubeObject> {
  /** The object with this key (`namespace/name`, or `name` for cluster-scoped kinds). */
  get(key: string): T | undefined;
  /** The object `name` in `namespace` (omit the namespace for cluster-scoped kinds). */
  getByName(name: string, namespace?: string): T | undefined;
  /** Every object (a new array; the objects themselves are shared and frozen). */
  list(): T[];
  /** Keys of every object. */
  keys(): string[];
  readonly size: number;
  /** Objects whose index `name` has `value`; a `label:<key>` index is made on first use. Throws for an unknown index. */
  byIndex(name: string, value: string): T[];
  /** Adds an index (readers may: indexes change no object). */
  addIndex(name: string, fn?: IndexFunction<T>): void;
  /** Whether the first complete list has been stored. */
  readonly isReady: boolean;
  /** Resolves once the first complete list has been stored; rejects when `signal` aborts first. */
  waitUntilReady(signal?: AbortSignal): Promise<void>;
}

/**
 * A read-mostly cache of objects keyed `namespace/name` (or `name`). The reflector holds it as
 * the writer; everyone else gets it as a {@link StoreReader}.
 *
 * Guarantees: after `waitUntilReady()` resolves, the store holds a complete list of the server's
 * state as of some moment, kept current as events arrive. Readers never see a half-applied
 * initial list: it is swapped in whole. Objects are shared, not copied: treat them as read-only.
 */
export class Store<T extends KubeObject = KubeObject> implements StoreReader<T> {
  private objects = new Map<string, T>();
  /** Every index, in the order added: its name, function and value → keys (an array: walked per write, no iterator). */
  private readonly indexers: { name: string; fn: IndexFunction<T>; index: Map<string, Set<string>> }[] = [];
  /** One frozen `[namespace]` per namespace: the namespace index allocates nothing per write. */
  private readonly namespaceValues = new Map<string, readonly string[]>();
  private ready = false;
  private readyWaiters: (() => void)[] = [];
  private pendingInit: Map<string, T> | undefined;

  constructor() {
    // The built-in indexes run twice per update (the new and the old object): shared arrays.
    this.addIndex(BY_NAMESPACE, (o) => {
      const namespace = o.metadata?.namespace;
      if (!namespace) return NOT_INDEXED;
      let values = this.namespaceValues.get(namespace);
      if (!values) this.namespaceValues.set(namespace, (values = Object.freeze([namespace])));
      return values;
    });
    this.addIndex(BY_OWNER, (o) => {
      const owners = o.metadata?.ownerReferences;
      return owners?.length ? owners.map((r) => r.uid) : NOT_INDEXED;
    });
  }

  /** Adds an index; existing objects are indexed at once. A `label:<key>` name indexes that label. */
  addIndex(name: string, fn?: IndexFunction<T>): void {
    const indexer = fn ?? (name.startsWith("label:") ? labelIndexer<T>(name.slice("label:".length)) : undefined);
    if (!indexer) throw new TypeError(`index "${name}" needs an index function`);
    const index = new Map<string, Set<string>>();
    const at = this.indexers.findIndex((i) => i.name === name);
    if (at >= 0) this.indexers[at] = { name, fn: indexer, index };
    else this.indexers.push({ name, fn: indexer, index });
    for (const [key, object] of this.objects) for (const value of indexer(object)) addTo(index, value, key);
  }

  /** The object with this key (`namespace/name`, or `name` for cluster-scoped kinds). */
  get(key: string): T | undefined {
    return this.objects.get(key);
  }

  /** The object `name` in `namespace` (omit the namespace for cluster-scoped kinds). */
  getByName(name: string, namespace?: string): T | undefined {
    return this.objects.get(namespace ? `${namespace}/${name}` : name);
  }

  /** Every object (a new array; the objects themselves are shared). */
  list(): T[] {
    return [...this.objects.values()];
  }

  /** Keys of every object. */
  keys(): string[] {
    return [...this.objects.keys()];
  }

  get size(): number {
    return this.objects.size;
  }

  /** Objects whose index `name` has `value`; `[]` for an unknown value. Throws for an unknown index. */
  byIndex(name: string, value: string): T[] {
    const index = this.indexers.find((i) => i.name === name)?.index;
    if (!index) {
      if (name.startsWith("label:")) {
        this.addIndex(name);
        return this.byIndex(name, value);
      }
      throw new TypeError(`no index "${name}" (known: ${this.indexers.map((i) => i.name).join(", ")})`);
    }
    return [...(index.get(value) ?? [])].map((key) => this.objects.get(key) as T);
  }

  /** Whether the first complete list has been stored. */
  get isReady(): boolean {
    return this.ready;
  }

  /**
   * Resolves once the first complete list has been stored. Rejects with the signal's reason when
   * `signal` aborts first (use `AbortSignal.timeout(ms)` for a deadline).
   */
  waitUntilReady(signal?: AbortSignal): Promise<void> {
    if (this.ready) return Promise.resolve();
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const done = () => {
        signal?.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = () => {
        this.readyWaiters = this.readyWaiters.filter((w) => w !== done);
        reject(signal?.reason);
      };
      this.readyWaiters.push(done);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  // --- the writer's side (the reflector) ---

  /** A (re)list begins: following `initApply`s are buffered until `initDone`. */
  beginInit(): void {
    this.pendingInit = new Map();
  }

  initApply(object: T): void {
    (this.pendingInit ??= new Map()).set(objectKey(object.metadata), object);
  }

  /** Swaps the buffered list in, whole, and marks the store ready. */
  initDone(): void {
    const next = this.pendingInit ?? new Map<string, T>();
    this.pendingInit = undefined;
    this.objects = next;
    for (const indexer of this.indexers) {
      const index = new Map<string, Set<string>>();
      for (const [key, object] of next) for (const value of indexer.fn(object)) addTo(index, value, key);
      indexer.index = index;
    }
    if (!this.ready) {
      this.ready = true;
      const waiters = this.readyWaiters;
      this.readyWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Inserts or replaces an object; returns the one it replaced. */
  apply(object: T): T | undefined {
    const key = objectKey(object.metadata);
    const previous = this.objects.get(key);
    this.objects.set(key, object);
    for (const { fn, index } of this.indexers) {
      const values = fn(object);
      if (previous) {
        // Most updates change no indexed value (namespace, owners, labels): nothing to move.
        const old = fn(previous);
        if (sameValues(old, values)) continue;
        for (const value of old) removeFrom(index, value, key);
      }
      for (const value of values) addTo(index, value, key);
    }
    return previous;
  }

  /** Removes an object by key; returns what was stored. */
  delete(key: string): T | undefined {
    const previous = this.objects.get(key);
    if (!previous) return undefined;
    this.unindex(key, previous);
    this.objects.delete(key);
    return previous;
  }

  private unindex(key: string, object: T): void {
    for (const { fn, index } of this.indexers) {
      for (const value of fn(object)) removeFrom(index, value, key);
    }
  }
}

/** What an index function returns for an object it does not index (shared). */
const NOT_INDEXED: readonly string[] = Object.freeze([]);

function labelIndexer<T extends KubeObject>(label: string): IndexFunction<T> {
  return (o) => {
    const value = o.metadata?.labels?.[label];
    return value === undefined ? NOT_INDEXED : [value];
  };
}

function removeFrom(index: Map<string, Set<string>>, value: string, key: string): void {
  const keys = index.get(value);
  keys?.delete(key);
  if (keys?.size === 0) index.delete(value);
}

function sameValues(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function addTo(index: Map<string, Set<string>>, value: string, key: string): void {
  let keys = index.get(value);
  if (!keys) index.set(value, (keys = new Set()));
  keys.add(key);
}
