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
 * A map namespace ("" for cluster-scoped) → name → value, on the strings an object already
 * holds: no `namespace/name` key to build, flatten and hash per update, none kept per entry. An
 * emptied namespace is dropped. The Store keeps its objects in one, the watcher its
 * resourceVersions.
 * @internal
 */
export class NamespacedMap<V> {
  private readonly namespaces = new Map<string, Map<string, V>>();

  get(namespace: string, name: string): V | undefined {
    return this.namespaces.get(namespace)?.get(name);
  }

  /** Sets the value; returns the one it replaced. */
  set(namespace: string, name: string, value: V): V | undefined {
    let names = this.namespaces.get(namespace);
    if (!names) this.namespaces.set(namespace, (names = new Map()));
    const previous = names.get(name);
    names.set(name, value);
    return previous;
  }

  /** Removes the entry; returns its value. */
  delete(namespace: string, name: string): V | undefined {
    const names = this.namespaces.get(namespace);
    const previous = names?.get(name);
    if (!names || previous === undefined) return undefined;
    names.delete(name);
    if (names.size === 0) this.namespaces.delete(namespace);
    return previous;
  }

  /** The names and values of one namespace (none: undefined). */
  in(namespace: string): ReadonlyMap<string, V> | undefined {
    return this.namespaces.get(namespace);
  }

  get size(): number {
    let size = 0;
    for (const names of this.namespaces.values()) size += names.size;
    return size;
  }

  /** Every namespace with its names and values (a namespace emptied while iterating is safe). */
  entries(): IterableIterator<[string, Map<string, V>]> {
    return this.namespaces.entries();
  }
}

/**
 * A read-mostly cache of objects keyed `namespace/name` (or `name`), made with its one writer by
 * {@link createStore}: the reflector holds the {@link StoreWriter}; everyone else reads the
 * Store (or gets it as a {@link StoreReader}).
 *
 * Guarantees: after `waitUntilReady()` resolves, the store holds a complete list of the server's
 * state as of some moment, kept current as events arrive. Readers never see a half-applied
 * initial list: it is swapped in whole. Objects are shared, not copied: treat them as read-only.
 */
export class Store<T extends KubeObject = KubeObject> implements StoreReader<T> {
  /** By namespace, then name (the namespace index is this map itself). */
  /** @internal */
  protected objects = new NamespacedMap<T>();
  /** Every further index, in the order added: its name, function and value → keys (an array: walked per write, no iterator). */
  /** @internal */
  protected readonly indexers: { name: string; fn: IndexFunction<T>; index: Map<string, Set<string>> }[] = [];
  /** @internal */
  protected ready = false;
  /** @internal */
  protected readyWaiters: (() => void)[] = [];
  /** @internal */
  protected pendingInit: NamespacedMap<T> | undefined;

  /** Made by {@link createStore} only: a store is written by its one writer. */
  protected constructor() {
    // The built-in owner index runs twice per update (the new and the old object): a shared empty array for most objects.
    this.addIndex(BY_OWNER, (o) => {
      const owners = o.metadata?.ownerReferences;
      return owners?.length ? owners.map((r) => r.uid) : NOT_INDEXED;
    });
  }

  /**
   * Adds an index; existing objects are indexed at once. A `label:<key>` name indexes that label.
   * The namespace index ({@link BY_NAMESPACE}) is built in; an index added under its name replaces it.
   */
  addIndex(name: string, fn?: IndexFunction<T>): void {
    const indexer = fn ?? (name.startsWith("label:") ? labelIndexer<T>(name.slice("label:".length)) : undefined);
    if (!indexer) throw new TypeError(`index "${name}" needs an index function`);
    const index = new Map<string, Set<string>>();
    const at = this.indexers.findIndex((i) => i.name === name);
    if (at >= 0) this.indexers[at] = { name, fn: indexer, index };
    else this.indexers.push({ name, fn: indexer, index });
    this.indexAll(indexer, index);
  }

  /** The object with this key (`namespace/name`, or `name` for cluster-scoped kinds). */
  get(key: string): T | undefined {
    const [namespace, name] = splitKey(key);
    return this.objects.get(namespace, name);
  }

  /** The object `name` in `namespace` (omit the namespace for cluster-scoped kinds). */
  getByName(name: string, namespace?: string): T | undefined {
    return this.objects.get(namespace ?? "", name);
  }

  /** Every object (a new array; the objects themselves are shared). */
  list(): T[] {
    const out: T[] = [];
    for (const [, names] of this.objects.entries()) for (const object of names.values()) out.push(object);
    return out;
  }

  /** Keys of every object. */
  keys(): string[] {
    const out: string[] = [];
    for (const [namespace, names] of this.objects.entries()) for (const name of names.keys()) out.push(objectKey({ namespace, name }));
    return out;
  }

  get size(): number {
    return this.objects.size;
  }

  /** Objects whose index `name` has `value`; `[]` for an unknown value. Throws for an unknown index. */
  byIndex(name: string, value: string): T[] {
    const index = this.indexers.find((i) => i.name === name)?.index;
    if (!index) {
      // Cluster-scoped objects are in no namespace: "" names none.
      if (name === BY_NAMESPACE) return value ? [...(this.objects.in(value)?.values() ?? [])] : [];
      if (name.startsWith("label:")) {
        this.addIndex(name);
        return this.byIndex(name, value);
      }
      throw new TypeError(`no index "${name}" (known: ${[BY_NAMESPACE, ...this.indexers.map((i) => i.name)].join(", ")})`);
    }
    return [...(index.get(value) ?? [])].map((key) => this.get(key) as T);
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

  /** Indexes every stored object with `fn` into `index` (a key is built only for an object it indexes). */
  /** @internal */
  protected indexAll(fn: IndexFunction<T>, index: Map<string, Set<string>>): void {
    for (const [namespace, names] of this.objects.entries()) {
      for (const [name, object] of names) {
        const values = fn(object);
        if (!values.length) continue;
        const key = objectKey({ namespace, name });
        for (const value of values) addTo(index, value, key);
      }
    }
  }
}

/**
 * The one writer of a {@link Store} (kube-rs's reflector `Writer`): what the reflector calls as
 * a watch's events arrive. Nothing else writes a store.
 */
export interface StoreWriter<T extends KubeObject = KubeObject> {
  /** The store it writes, for its readers. */
  readonly store: Store<T>;
  /** A (re)list begins: following `initApply`s are buffered until `initDone`. */
  beginInit(): void;
  initApply(object: T): void;
  /** Swaps the buffered list in, whole, and marks the store ready. */
  initDone(): void;
  /** Inserts or replaces an object; returns the one it replaced. */
  apply(object: T): T | undefined;
  /** Removes an object by key; returns what was stored. */
  delete(key: string): T | undefined;
}

/** A new, empty store and its one writer: hand `writer` to `reflect()` and `store` to readers. */
export function createStore<T extends KubeObject = KubeObject>(): { store: Store<T>; writer: StoreWriter<T> } {
  const writer = new WritableStore<T>();
  return { store: writer, writer };
}

/** The writer's side of a store: the same object, so a read after a write needs no hop. */
class WritableStore<T extends KubeObject> extends Store<T> implements StoreWriter<T> {
  constructor() {
    super();
  }

  get store(): Store<T> {
    return this;
  }

  /** A (re)list begins: following `initApply`s are buffered until `initDone`. */
  beginInit(): void {
    this.pendingInit = new NamespacedMap();
  }

  initApply(object: T): void {
    put((this.pendingInit ??= new NamespacedMap()), object);
  }

  /** Swaps the buffered list in, whole, and marks the store ready. */
  initDone(): void {
    this.objects = this.pendingInit ?? new NamespacedMap();
    this.pendingInit = undefined;
    for (const indexer of this.indexers) {
      indexer.index = new Map<string, Set<string>>();
      this.indexAll(indexer.fn, indexer.index);
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
    const previous = put(this.objects, object);
    // The key is built only when an index moves (a new object, a changed label or owner).
    let key: string | undefined;
    for (const { fn, index } of this.indexers) {
      const values = fn(object);
      if (previous) {
        // Most updates change no indexed value (owners, labels): nothing to move.
        const old = fn(previous);
        if (sameValues(old, values)) continue;
        key ??= objectKey(object.metadata);
        for (const value of old) removeFrom(index, value, key);
      }
      if (values.length) key ??= objectKey(object.metadata);
      for (const value of values) addTo(index, value, key as string);
    }
    return previous;
  }

  /** Removes an object by key; returns what was stored. */
  delete(key: string): T | undefined {
    const [namespace, name] = splitKey(key);
    const previous = this.objects.delete(namespace, name);
    if (!previous) return undefined;
    for (const { fn, index } of this.indexers) {
      for (const value of fn(previous)) removeFrom(index, value, key);
    }
    return previous;
  }
}

/** Stores `object` under its namespace and name; returns the object it replaced. */
function put<T extends KubeObject>(objects: NamespacedMap<T>, object: T): T | undefined {
  return objects.set(object.metadata?.namespace ?? "", object.metadata?.name ?? "", object);
}

/** `namespace/name` or `name` (cluster-scoped) as [namespace, name]. */
function splitKey(key: string): [string, string] {
  const slash = key.indexOf("/");
  return slash < 0 ? ["", key] : [key.slice(0, slash), key.slice(slash + 1)];
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
