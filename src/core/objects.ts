// Kubernetes objects as plain JSON, and the descriptors that name a kind of resource.
// No I/O: the client resolves a descriptor to a REST path (statically or by discovery).
import type { ObjectMeta, ListMeta, Status } from "./kube/meta/v1.js";

export type { ObjectMeta, ListMeta, Status };

/** Any Kubernetes object: plain JSON with apiVersion, kind and metadata. Never a class instance. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
}

/** A list as the API returns it. */
export interface KubeList<T extends KubeObject = KubeObject> {
  apiVersion?: string;
  kind?: string;
  /** Its `shardInfo` is set by a server that applied the request's `shardSelector` (KEP-5866, new in Kubernetes 1.37). */
  metadata: ListMeta;
  items: T[];
}

/** Group, version and kind: what a kind of object is called. `group` is "" for the core group. */
export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

/**
 * A kind of resource, typed by the objects it holds. Create one with {@link kindOf}; kubeloop
 * exports ready ones for built-in kinds (`ConfigMap`, `Deployment`, …), and `defineResource`
 * makes them for custom resources.
 *
 * `plural` and `namespaced`, when given, spare the client a discovery round-trip; when absent,
 * the client asks the server (and asks again when a CRD appears later).
 */
export interface ResourceKind<T extends KubeObject = KubeObject> {
  readonly apiVersion: string;
  readonly kind: string;
  readonly plural?: string;
  readonly namespaced?: boolean;
  /** Type-only marker carrying `T`; never set at run time. */
  readonly __object?: T;
}

/** The object type a {@link ResourceKind} holds. */
export type ObjectOf<K> = K extends ResourceKind<infer T> ? T : never;

/** Declares a kind of resource: `kindOf<MyObject>("example.com/v1", "Widget", { plural: "widgets", namespaced: true })`. */
export function kindOf<T extends KubeObject = KubeObject>(
  apiVersion: string,
  kind: string,
  mapping: { plural?: string; namespaced?: boolean } = {},
): ResourceKind<T> {
  return Object.freeze({ apiVersion, kind, ...mapping });
}

/** Splits an apiVersion: "apps/v1" → {group: "apps", version: "v1"}, "v1" → {group: "", version: "v1"}. */
export function parseApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.indexOf("/");
  return slash < 0 ? { group: "", version: apiVersion } : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/** The GroupVersionKind of a kind descriptor or an object. */
export function gvkOf(of: { apiVersion?: string; kind?: string }): GroupVersionKind {
  if (!of.apiVersion || !of.kind) throw new TypeError(`apiVersion and kind are required (got ${of.apiVersion ?? "?"}, ${of.kind ?? "?"})`);
  return { ...parseApiVersion(of.apiVersion), kind: of.kind };
}

/** "apps/v1 Deployment", "v1 ConfigMap": how messages name a kind. */
export function describeKind(of: { apiVersion?: string; kind?: string }): string {
  return `${of.apiVersion ?? "?"} ${of.kind ?? "?"}`;
}

/** "namespace/name" or "name": how messages and queues name an object. */
export function objectKey(meta: { namespace?: string; name?: string } | undefined): string {
  return meta?.namespace ? `${meta.namespace}/${meta.name ?? ""}` : (meta?.name ?? "");
}

/** Which object this is: its uid, or its key for an object without one (per-object state is keyed by it). */
export function objectId(object: KubeObject): string {
  return object.metadata?.uid ?? objectKey(object.metadata);
}

/** A MicroTime as the API server parses it (Events, Leases): RFC 3339 with six fractional digits. */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/**
 * Freezes an object and everything in it, in place, and returns it. Cached objects are frozen
 * so that no reader can change the shared cache (kube-rs hands out `Arc<K>`, kopf a read-only
 * body): writing to one throws a TypeError; copy first (`structuredClone`, spreads).
 */
export function deepFreeze<T>(value: T): T {
  if (value === null || typeof value !== "object" || Object.isFrozen(value)) return value;
  freezeTree(value as object);
  return value;
}

// Per cached object on every watch event: no array of keys per level (for…in with an own-key
// check costs about half of Object.keys() here), arrays walked by index.
function freezeTree(value: object): void {
  Object.freeze(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      if (item !== null && typeof item === "object" && !Object.isFrozen(item)) freezeTree(item);
    }
    return;
  }
  for (const key in value) {
    if (!Object.hasOwn(value, key)) continue;
    const item: unknown = (value as Record<string, unknown>)[key];
    if (item !== null && typeof item === "object" && !Object.isFrozen(item)) freezeTree(item);
  }
}
