// Bucket ownership among the replicas of a sharded operator (issue 33), fenced on the member
// Leases of shard-members.ts. Each replica's Lease says which buckets it claims; each bucket's
// rightful owner follows from the live members by rendezvous hashing. One step (`tick`):
//
//   1. read the member Leases (the live members and their claims);
//   2. let go of claimed buckets another member should own: stop acting on them first (the
//      caller's `release` returns once its work on them has stopped), then drop the claim;
//   3. claim the buckets this replica should own that no live member claims (from the second
//      tick on: the first announces the replica, so that replicas started together see each
//      other before claiming);
//   4. write the Lease (the renewal carries the claims);
//   5. read again: a bucket just claimed becomes active only if no other live member claims it
//      (claim, then verify: of two replicas that claim one bucket at once, the later reader sees
//      the other's claim and backs off; both may back off, never both act);
//
// A replica acts on its active buckets only while its last renewal is younger than
// `renewDeadlineMs`; another takes a bucket over only once the holder's Lease went
// `leaseDurationMs` without a change by its own clock (renewDeadline < leaseDuration), or the
// holder let go of it. These are leader election's rules, per bucket, at the cost of one Lease
// write per replica per period whatever the bucket count. While a live member runs another
// sharding (another bucket count or key: a rolling update), no bucket is claimed anew: buckets
// of different counts overlap, and only claims made under one sharding are known not to.
import type { Client } from "../client/client.js";
import { systemClock, type Clock } from "../core/clock.js";
import { bucketOwners, checkBucketCount, type ShardKey } from "../core/shards.js";
import { leaseTimings } from "./leader-election.js";
import { ShardMembers, type MemberView } from "./shard-members.js";

/** Options of a {@link ShardCoordinator}. */
export interface ShardCoordinatorOptions {
  operator: string;
  namespace: string;
  identity: string;
  /** How many buckets the hash space is cut into (the same on every replica). Default 32. */
  buckets?: number;
  /** Default "uid". */
  key?: ShardKey;
  /** The member Leases' timings, as leader election's (defaults 15 000 / 10 000 / 2 000 ms). */
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  clock?: Clock;
  /**
   * Called with buckets before the claim on them is dropped: resolve once nothing acts on them
   * any more, with the buckets it could release (default: all). A bucket not released stays
   * claimed (and not acted on) and is released again on the next tick.
   */
  release?: (buckets: number[]) => Promise<number[] | void> | number[] | void;
  /**
   * Called with buckets that became this replica's (after claim and verify), and for each how
   * long it waited since this replica first found it should own it (the hand-over time).
   */
  acquire?: (buckets: number[], waitedMs: number[]) => Promise<void> | void;
}

/** What one replica owns, and why it owns no more. */
export interface ShardStatus {
  /** The buckets this replica may act on now (empty once its renewal is older than the renew deadline). */
  active: number[];
  /** The buckets it holds (verified claims), whether or not its last renewal is recent enough to act on them. */
  held: number[];
  /** Live members of this sharding. */
  members: string[];
  /** Live members running another sharding (while any, no bucket is claimed anew). */
  disagreeing: Map<string, string>;
  /** The dev run this replica is paused for (it claims nothing meanwhile). */
  pausedFor: string | undefined;
}

/** One replica's share of the buckets, kept by {@link ShardCoordinator.tick}. */
export class ShardCoordinator {
  readonly count: number;
  readonly key: ShardKey;
  private readonly members: ShardMembers;
  private readonly clock: Clock;
  private readonly timings: { leaseDurationMs: number; renewDeadlineMs: number; retryPeriodMs: number };
  private claims = new Set<number>();
  /** Buckets this replica should own and does not act on yet, since when (by its clock). */
  private readonly wanted = new Map<number, number>();
  private active = new Set<number>();
  private lastRenew = Number.NEGATIVE_INFINITY;
  private assigned: { key: string; owners: string[] } | undefined;
  /** Whether this replica's member Lease was written once (it claims from its second tick on). */
  private announced = false;
  /**
   * A dev run holds the operator's dev Lease: this replica lets every bucket go (as on a
   * hand-over) and claims none until it is cleared; its member Lease says so once nothing is
   * claimed (the dev run waits for that). It still counts as a member, so ownership does not move.
   */
  pausedFor: string | undefined;
  private view: MemberView = { members: [], disagreeing: new Map(), claims: new Map() };

  constructor(
    client: Client,
    private readonly o: ShardCoordinatorOptions,
  ) {
    this.count = o.buckets ?? 32;
    checkBucketCount(this.count);
    this.key = o.key ?? "uid";
    this.timings = leaseTimings(o);
    this.clock = o.clock ?? systemClock;
    this.members = new ShardMembers(client, { operator: o.operator, namespace: o.namespace, identity: o.identity, buckets: this.count, key: this.key, leaseDurationMs: this.timings.leaseDurationMs, clock: this.clock });
  }

  /** The retry period: how often `tick` should run. */
  get periodMs(): number {
    return this.timings.retryPeriodMs;
  }

  /** Where things stand (as of the last tick; `active` also honours the renew deadline now). */
  get status(): ShardStatus {
    const held = [...this.active].sort((a, b) => a - b);
    return { active: this.fresh ? held : [], held, members: this.view.members, disagreeing: this.view.disagreeing, pausedFor: this.pausedFor };
  }

  /** Whether this replica may act on `bucket` now. */
  acting(bucket: number): boolean {
    return this.standing(bucket) === "act";
  }

  /**
   * Where this replica stands on `bucket`: "act" (active, renewed within the renew deadline),
   * "wait" (active, but the last renewal is older: work waits for the next one, or for the
   * bucket to be let go), "none" (not this replica's now).
   */
  standing(bucket: number): "act" | "wait" | "none" {
    if (!this.active.has(bucket)) return "none";
    return this.fresh ? "act" : "wait";
  }

  /** Whether the last renewal is younger than the renew deadline (acting is allowed). */
  private get fresh(): boolean {
    return this.clock.now() - this.lastRenew < this.timings.renewDeadlineMs;
  }

  /** One step of the protocol (see the module comment). A failed read or write rejects; the caller retries next period. */
  async tick(): Promise<void> {
    this.view = await this.members.view();
    const members = [...new Set([...this.view.members, this.o.identity])];
    const owners = this.owners(members);
    const paused = this.pausedFor;
    const mine = (b: number) => paused === undefined && owners[b] === this.o.identity;
    const claimedElsewhere = (b: number) => [...this.view.claims].some(([who, claims]) => who !== this.o.identity && claims.has(b));
    const leaving = [...this.claims].filter((b) => !mine(b));
    if (leaving.length) for (const b of await this.let(leaving)) this.claims.delete(b);
    const now = this.clock.now();
    for (let b = 0; b < this.count; b++) {
      if (!mine(b) || this.active.has(b)) this.wanted.delete(b);
      else if (!this.wanted.has(b)) this.wanted.set(b, now);
    }
    const claiming: number[] = [];
    // The first tick only announces this replica: replicas started together (a rollout) see each
    // other before anyone claims, so none claims (and lists) everything first, to let most of it
    // go a period later.
    if (this.view.disagreeing.size === 0 && this.announced) {
      for (let b = 0; b < this.count; b++) if (mine(b) && !this.claims.has(b) && !claimedElsewhere(b)) claiming.push(b);
    }
    for (const b of claiming) this.claims.add(b);
    const writing = this.clock.now();
    // Paused: said only once nothing is claimed (the claims above went first).
    await this.members.renew(this.claims, paused !== undefined && this.claims.size === 0 ? paused : undefined);
    this.lastRenew = writing;
    this.announced = true;
    if (claiming.length) await this.verify(claiming);
  }

  /** Each bucket's rightful owner among `members` (computed again only when they change). */
  private owners(members: string[]): string[] {
    const key = [...members].sort().join("\n");
    if (this.assigned?.key !== key) this.assigned = { key, owners: bucketOwners(members, this.count) };
    return this.assigned.owners;
  }

  /** Step 5: a new claim counts only if, read after this replica wrote it, no other live member claims the bucket. */
  private async verify(claimed: number[]): Promise<void> {
    this.view = await this.members.view();
    const others = [...this.view.claims].filter(([who]) => who !== this.o.identity).map(([, claims]) => claims);
    const won = claimed.filter((b) => !others.some((claims) => claims.has(b)));
    for (const b of claimed) if (!won.includes(b)) this.claims.delete(b); // dropped on the next write
    for (const b of won) this.active.add(b);
    const now = this.clock.now();
    const waited = won.map((b) => now - (this.wanted.get(b) ?? now));
    for (const b of won) this.wanted.delete(b);
    if (won.length) await this.o.acquire?.(won, waited);
  }

  /**
   * After a renewal failed past the renew deadline (this replica may already count as gone):
   * stops acting on every bucket, and drops the claims once released, so that the next tick
   * claims and verifies anew. Does nothing while renewals are in time.
   */
  async lapse(): Promise<void> {
    if (this.fresh || this.claims.size === 0) return;
    for (const b of await this.let([...this.claims])) this.claims.delete(b);
  }

  /**
   * A graceful stop: stop acting on everything, then delete the member Lease (the others take
   * over at once). If some bucket could not be released (work on it still runs), the Lease is
   * left to expire instead. Returns whether it was deleted.
   */
  async leave(): Promise<boolean> {
    const held = [...this.claims];
    const released = held.length ? await this.let(held) : [];
    for (const b of released) this.claims.delete(b);
    if (this.claims.size > 0) return false;
    await this.members.leave();
    return true;
  }

  /** Stops acting on `buckets`, then asks the caller to release them; returns those released. */
  private async let(buckets: number[]): Promise<number[]> {
    for (const b of buckets) this.active.delete(b);
    const released = (await this.o.release?.(buckets)) ?? buckets;
    return buckets.filter((b) => released.includes(b));
  }
}
