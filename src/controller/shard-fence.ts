// The fence around a sharded operator's work (issue 33). The ShardCoordinator says which buckets
// this replica may act on now; the fence applies that to the work itself:
//
//   - a reconcile runs only for an object whose bucket is acted on now (it is counted in flight
//     meanwhile, so that a release can wait for it);
//   - a delete event marked `unshared` (the object left this replica's share, it was not deleted)
//     reconciles nothing: to the code it would look like a deletion;
//   - a reconcile of an object no longer cached (deleted) needs its bucket, which its uid no
//     longer tells: the delete event's object gives it, kept until that reconcile has run.
//
// Releasing buckets goes: the coordinator stops counting them as active (no reconcile of theirs
// starts), `drain()` waits for the ones in flight, the caller stops their timers and daemons,
// then the share shrinks (the watches relist without them) and the claim is dropped.
import { within } from "../core/async.js";
import type { Clock } from "../core/clock.js";
import { systemClock } from "../core/clock.js";
import type { KubeObject, ResourceKind } from "../core/objects.js";
import { objectKey } from "../core/objects.js";
import { bucketOf, fnv1a64, shardValue } from "../core/shards.js";
import type { Share } from "../runtime/share.js";
import type { WatcherEvent } from "../runtime/watcher.js";
import { Action, type Reconciler } from "./reconcile.js";

/** Deleted objects whose reconcile has not run yet are remembered up to this many (the oldest go first). */
const MAX_DELETED = 100_000;

/** Applies a replica's bucket ownership to its work: reconciles, events, and the wait for work in flight. */
export class ShardFence {
  private readonly inFlight = new Map<number, number>();
  private readonly deleted = new Map<string, number>();
  private readonly settled = new Set<() => void>();
  private readonly clock: Clock;

  constructor(
    readonly share: Share,
    private readonly standing: (bucket: number) => "act" | "wait" | "none",
    private readonly waitMs: number,
    clock?: Clock,
  ) {
    this.clock = clock ?? systemClock;
  }

  /** The bucket of `object` in this operator's sharding. */
  bucket(object: KubeObject): number {
    return bucketOf(fnv1a64(shardValue(object, this.share.key)), this.share.count);
  }

  /** Whether this replica may act on `object` now. */
  readonly owns = (object: KubeObject): boolean => this.standing(this.bucket(object)) === "act";

  /**
   * The predicate of a controller of `kind` (its own kind's events): false for a delete marked
   * `unshared` (not a deletion); remembers the bucket of a deleted object for its reconcile.
   * True for everything else.
   */
  admit(kind: ResourceKind): (event: WatcherEvent<KubeObject>) => boolean {
    return (event) => {
      if (event.type !== "delete") return true;
      if (event.unshared) return false;
      const id = this.id(kind, objectKey(event.object.metadata));
      this.deleted.delete(id);
      this.deleted.set(id, this.bucket(event.object));
      if (this.deleted.size > MAX_DELETED) this.deleted.delete(this.deleted.keys().next().value as string);
      return true;
    };
  }

  /**
   * `reconcile`, run only on objects of buckets acted on now. Others return at once: another
   * replica's (or not known to be this one's: no longer cached and not seen deleted) with nothing
   * to do here, since the replica acquiring a bucket reconciles its objects as they enter its
   * share; this replica's whose renewal is late, requeued after `waitMs` (dropped, the change
   * would be lost until the object changes again).
   */
  guard<T extends KubeObject>(reconcile: Reconciler<T>): Reconciler<T> {
    return async (ref, ctx) => {
      const id = this.id(ctx.kind, objectKey(ref));
      const bucket = ctx.object ? this.bucket(ctx.object) : this.deleted.get(id);
      const standing = bucket === undefined ? "none" : this.standing(bucket);
      if (standing === "wait") return Action.requeueAfter(this.waitMs);
      if (standing === "none" || bucket === undefined) return undefined;
      this.inFlight.set(bucket, (this.inFlight.get(bucket) ?? 0) + 1);
      try {
        const action = await reconcile(ref, ctx);
        if (!ctx.object && action === undefined) this.deleted.delete(id); // its last reconcile ran
        return action;
      } finally {
        const left = (this.inFlight.get(bucket) ?? 1) - 1;
        if (left > 0) this.inFlight.set(bucket, left);
        else this.inFlight.delete(bucket);
        for (const check of [...this.settled]) check();
      }
    };
  }

  /** Reconciles running now on `bucket` (tests, metrics). */
  running(bucket: number): number {
    return this.inFlight.get(bucket) ?? 0;
  }

  /**
   * Waits until no reconcile runs on `buckets` (no new one starts on a bucket that is not acted
   * on), at most `timeoutMs`; returns the buckets with none running.
   */
  async drain(buckets: readonly number[], timeoutMs: number): Promise<number[]> {
    const busy = () => buckets.some((b) => this.running(b) > 0);
    if (busy()) {
      let check = () => {};
      const idle = new Promise<void>((resolve) => {
        check = () => {
          if (!busy()) resolve();
        };
        this.settled.add(check);
      });
      await within(idle, timeoutMs, this.clock);
      this.settled.delete(check);
    }
    return buckets.filter((b) => this.running(b) === 0);
  }

  private id(kind: ResourceKind, key: string): string {
    return `${kind.apiVersion}/${kind.kind}/${key}`;
  }
}
