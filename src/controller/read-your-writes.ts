// Read-your-own-writes: after the operator writes an object, the next reconcile that reads it
// from the cache sees at least that version.
//
// The informer caches lag the API server by a watch event. Without this, a reconcile that ran
// right after the operator's own update would read the old object from the cache, decide the
// update is still needed, and write again (a Conflict at best, a flapping loop at worst).
// The Client reports every object its writes return (`client.onWrite`); this records the
// resourceVersion per object, and a read from the cache first waits (bounded) until the cache
// holds that version or a newer one.
//
// Caveat: resourceVersions are opaque by contract; in every Kubernetes release they are etcd
// revisions (decimal integers) and compare as such. A version that is not a decimal integer is
// not waited for.
import type { KubeObject, ResourceKind } from "../core/objects.js";
import { objectKey } from "../core/objects.js";
import type { Informer } from "../runtime/informer.js";

const MAX_ENTRIES = 10_000;

function kindKey(kind: Pick<ResourceKind, "apiVersion" | "kind">): string {
  return `${kind.apiVersion}/${kind.kind}`;
}

function version(rv: string | undefined): bigint | undefined {
  return rv && /^\d+$/.test(rv) ? BigInt(rv) : undefined;
}

/** The versions this process wrote and its caches may not have seen yet. */
export class WrittenVersions {
  private readonly expected = new Map<string, bigint>();
  private readonly observed = new WeakSet<Informer>();

  /**
   * Follows an informer's events so expectations are dropped as soon as its cache has caught
   * up or the object was deleted (even if nothing waits for them). Idempotent.
   */
  observe(informer: Informer): void {
    if (this.observed.has(informer)) return;
    this.observed.add(informer);
    const prefix = `${kindKey(informer.kind)}|`;
    informer.subscribe((e) => {
      if ((e.type !== "apply" && e.type !== "delete") || this.expected.size === 0) return;
      const entry = prefix + objectKey(e.object.metadata);
      const wanted = this.expected.get(entry);
      if (wanted === undefined) return;
      const have = version(e.object.metadata?.resourceVersion);
      if (e.type === "delete" || have === undefined || have >= wanted) this.expected.delete(entry);
    });
  }

  /** Records a write's result (only for kinds `wanted` says are cached). */
  record(kind: ResourceKind, object: KubeObject): void {
    const v = version(object.metadata?.resourceVersion);
    if (v === undefined) return;
    const key = `${kindKey(kind)}|${objectKey(object.metadata)}`;
    const before = this.expected.get(key);
    if (before !== undefined && before >= v) return;
    this.expected.delete(key);
    this.expected.set(key, v);
    if (this.expected.size > MAX_ENTRIES) this.expected.delete(this.expected.keys().next().value as string);
  }

  /** Keys (namespace/name) of objects of `kind` written but not yet confirmed by a cache. */
  pendingKeys(kind: Pick<ResourceKind, "apiVersion" | "kind">): string[] {
    const prefix = `${kindKey(kind)}|`;
    return [...this.expected.keys()].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
  }

  /** How many writes are not yet confirmed by a cache (for tests and metrics). */
  get pending(): number {
    return this.expected.size;
  }

  /**
   * Resolves once `informer`'s store holds object `key` at the recorded version or newer (or
   * a delete of it arrives), or after `timeoutMs`; resolves false on timeout. Never rejects.
   */
  async settle(informer: Informer, key: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    this.observe(informer);
    const entry = `${kindKey(informer.kind)}|${key}`;
    const wanted = this.expected.get(entry);
    if (wanted === undefined) return true;
    const done = (): true => {
      if (this.expected.get(entry) === wanted) this.expected.delete(entry);
      return true;
    };
    // Not in the cache yet (a create whose event has not arrived) is not caught up; a delete
    // event for the object after our write is.
    const caughtUp = (): boolean => {
      const cached = informer.store.get(key);
      if (!cached) return false;
      const have = version(cached.metadata?.resourceVersion);
      return have === undefined || have >= wanted ? done() : false;
    };
    if (caughtUp()) return true;
    return new Promise<boolean>((resolve) => {
      const finish = (ok: boolean) => {
        clearTimeout(timer);
        unsubscribe();
        signal?.removeEventListener("abort", onAbort);
        resolve(ok);
      };
      const onAbort = () => finish(false);
      const timer = setTimeout(() => finish(false), timeoutMs);
      const unsubscribe = informer.subscribe((e) => {
        if (e.type === "delete" && objectKey(e.object.metadata) === key) {
          const gone = version(e.object.metadata?.resourceVersion);
          if (gone === undefined || gone >= wanted || e.finalStateUnknown) finish(done());
        } else if ((e.type === "apply" || e.type === "initDone") && (caughtUp() || !this.expected.has(entry))) finish(true);
      });
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }
}
