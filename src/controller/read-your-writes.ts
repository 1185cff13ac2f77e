// Read-your-own-writes: after the operator writes an object, the next reconcile that reads it
// from a cache sees at least that version.
//
// The informer caches lag the API server by a watch event. Without this, a reconcile that ran
// right after the operator's own update would read the old object from the cache, decide the
// update is still needed, and write again (a Conflict at best, a flapping loop at worst); a
// read right after a create would not find the object at all.
// The Client reports every object its writes return (`client.onWrite`); this records the
// resourceVersion per object, and a read from a cache first waits (bounded) until *that*
// cache holds that version or a newer one (several caches of one kind may lag differently, so
// one cache catching up says nothing about another).
//
// Expectations are dropped when a delete of the object is seen, and after EXPIRY_MS; a write
// whose answer arrives after the delete event of its object (a newer version) sets up none.
//
// Caveat: resourceVersions are opaque by contract; in every Kubernetes release they are etcd
// revisions (decimal integers) and compare as such. A version that is not a decimal integer is
// not waited for.
import { systemClock, type Clock } from "../core/clock.js";
import type { KubeObject, ResourceKind } from "../core/objects.js";
import { objectKey } from "../core/objects.js";
import type { CacheView } from "../runtime/informer.js";

/** Per kind. */
const MAX_ENTRIES = 10_000;
/** A cache that has not caught up with a write after this long never will (or the write was lost). */
const EXPIRY_MS = 60_000;

function kindKey(kind: Pick<ResourceKind, "apiVersion" | "kind">): string {
  return `${kind.apiVersion}/${kind.kind}`;
}

function version(rv: string | undefined): bigint | undefined {
  return rv && /^\d+$/.test(rv) ? BigInt(rv) : undefined;
}

/** The versions this process wrote, which its caches may not have seen yet. */
export class WrittenVersions {
  /** kind → object key → the version written and when (oldest first). */
  private readonly expected = new Map<string, Map<string, { rv: bigint; at: number }>>();
  /**
   * kind → object key → the version of its last delete seen, and when: a write's answer may
   * arrive after the object's delete event (they come on different connections), and must not
   * set up an expectation no cache will ever meet.
   */
  private readonly deleted = new Map<string, Map<string, { rv: bigint; at: number }>>();
  private readonly observed = new WeakSet<CacheView>();

  /** @param clock time for expiry and for the settle deadline (tests pass a ManualClock). */
  constructor(private readonly clock: Clock = systemClock) {}

  /** Records a write's result. */
  record(kind: ResourceKind, object: KubeObject): void {
    const v = version(object.metadata?.resourceVersion);
    if (v === undefined) return;
    const k = kindKey(kind);
    const ofKind = entriesOf(this.expected, k);
    const key = objectKey(object.metadata);
    const gone = this.deleted.get(k)?.get(key);
    if (gone !== undefined && gone.rv >= v) return; // the object was deleted after this write
    const before = ofKind.get(key);
    if (before !== undefined && before.rv >= v) return;
    ofKind.delete(key);
    ofKind.set(key, { rv: v, at: this.clock.now() });
    prune(ofKind, this.clock.now());
  }

  /** Follows an informer's deletes, so expectations on deleted objects are dropped. Idempotent. */
  observe(informer: CacheView): void {
    if (this.observed.has(informer)) return;
    this.observed.add(informer);
    const k = kindKey(informer.kind);
    informer.subscribe((e) => {
      if (e.type !== "delete") return;
      const key = objectKey(e.object.metadata);
      this.expected.get(k)?.delete(key);
      const v = version(e.object.metadata?.resourceVersion);
      if (v === undefined) return;
      const ofKind = entriesOf(this.deleted, k);
      ofKind.delete(key);
      ofKind.set(key, { rv: v, at: this.clock.now() });
      prune(ofKind, this.clock.now());
    });
  }

  /** Keys (namespace/name) of recent writes of `kind`. */
  pendingKeys(kind: Pick<ResourceKind, "apiVersion" | "kind">): string[] {
    const ofKind = this.expected.get(kindKey(kind));
    if (!ofKind) return [];
    prune(ofKind, this.clock.now());
    return [...ofKind.keys()];
  }

  /** How many recent writes are remembered (tests and metrics). */
  get pending(): number {
    let n = 0;
    for (const ofKind of this.expected.values()) n += (prune(ofKind, this.clock.now()), ofKind.size);
    return n;
  }

  /**
   * Whether `informer`'s store already holds object `key` at the version this process last wrote
   * (or newer), or no write of it is awaited: {@link settle} without waiting, for the hot path.
   */
  isSettled(informer: CacheView, key: string): boolean {
    this.observe(informer);
    const ofKind = this.expected.get(kindKey(informer.kind));
    if (!ofKind) return true;
    prune(ofKind, this.clock.now()); // a write not seen for EXPIRY_MS is given up on
    const wanted = ofKind.get(key)?.rv;
    if (wanted === undefined) return true;
    const cached = informer.store.get(key);
    if (!cached) return false; // not in this cache yet (a create whose event has not arrived)
    const have = version(cached.metadata?.resourceVersion);
    return have === undefined || have >= wanted;
  }

  /**
   * Resolves once `informer`'s store holds object `key` at the recorded version or newer (or
   * a delete of it arrives), or after `timeoutMs`; resolves false on timeout. Never rejects.
   */
  async settle(informer: CacheView, key: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.isSettled(informer, key)) return true;
    const ofKind = this.expected.get(kindKey(informer.kind));
    const wanted = ofKind?.get(key)?.rv;
    if (wanted === undefined) return true;
    // Not in this cache yet (a create whose event has not arrived) is not caught up.
    const caughtUp = (): boolean => {
      const cached = informer.store.get(key);
      if (!cached) return !ofKind?.has(key); // deleted meanwhile
      const have = version(cached.metadata?.resourceVersion);
      return have === undefined || have >= wanted;
    };
    if (signal?.aborted) return false;
    return new Promise<boolean>((resolve) => {
      const timer = new AbortController();
      const finish = (ok: boolean) => {
        timer.abort();
        unsubscribe();
        signal?.removeEventListener("abort", onAbort);
        resolve(ok);
      };
      const onAbort = () => finish(false);
      this.clock.sleep(timeoutMs, timer.signal).then(() => finish(false), () => {});
      const unsubscribe = informer.subscribe((e) => {
        if (e.type === "delete" && objectKey(e.object.metadata) === key) finish(true);
        else if ((e.type === "apply" || e.type === "initDone") && caughtUp()) finish(true);
      });
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }
}

/** The entries of one kind, made on first use. */
function entriesOf(map: Map<string, Map<string, { rv: bigint; at: number }>>, kind: string): Map<string, { rv: bigint; at: number }> {
  let ofKind = map.get(kind);
  if (!ofKind) map.set(kind, (ofKind = new Map()));
  return ofKind;
}

/** Drops expired entries (they are oldest first) and any beyond the cap. */
function prune(ofKind: Map<string, { at: number }>, now: number): void {
  for (const [key, { at }] of ofKind) {
    if (now - at < EXPIRY_MS && ofKind.size <= MAX_ENTRIES) break;
    ofKind.delete(key);
  }
}
