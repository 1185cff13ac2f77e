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
   * has deleted it), or after `timeoutMs`; resolves false on timeout. Never rejects.
   */
  async settle(informer: Informer, key: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    const entry = `${kindKey(informer.kind)}|${key}`;
    const wanted = this.expected.get(entry);
    if (wanted === undefined) return true;
    const caughtUp = (): boolean => {
      const cached = informer.store.get(key);
      const have = version(cached?.metadata?.resourceVersion);
      if (cached && (have === undefined || have < wanted)) return false;
      if (this.expected.get(entry) === wanted) this.expected.delete(entry);
      return true;
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
        if ((e.type === "apply" || e.type === "delete" || e.type === "initDone") && caughtUp()) finish(true);
      });
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }
}
