// Sharding arithmetic, pure (issue 33): the API server's shard hash, buckets over its hash space,
// the `shardSelector` of a set of buckets, and which member owns a bucket.
//
// The API server's sharded list and watch (KEP-5866, feature gate ShardedListAndWatch) hashes
// `object.metadata.uid` or `object.metadata.namespace` with 64-bit FNV-1a over its UTF-8 bytes
// (k8s.io/apimachinery/pkg/sharding: HashField) and keeps an object when the hash lies in one of
// the selector's half-open ranges [start, end) over [0, 2^64). Bounds are written as '0x' and
// exactly 16 hex digits, but for the upper bound 2^64, '0x10000000000000000' (the server's
// parser refuses anything else). The same hash here lets a replica filter on the client when
// the server does not (the gate off, an older server) with identical results.
//
// Buckets: the hash space cut into `count` contiguous ranges, so any set of buckets is a few
// ranges of one selector. Ownership: rendezvous (highest random weight) hashing with bounded
// loads over the live members: balanced, and a member that joins or leaves moves about its share.

/** The size of the hash space: 2^64. */
export const HASH_SPACE = 1n << 64n;

const MASK = HASH_SPACE - 1n;
const utf8 = new TextEncoder();

/**
 * 64-bit FNV-1a of `value`'s UTF-8 bytes, as the API server's shard hash computes it. Computed on
 * two 32-bit halves (0.7 µs for a uid against 2.1 µs with a BigInt multiply per byte: this runs per object where the
 * server does not filter): the prime is 2^40 + 0x1b3, so h × prime = h × 0x1b3 + (h << 40).
 */
export function fnv1a64(value: string): bigint {
  let hi = 0xcbf29ce4;
  let lo = 0x84222325;
  const step = (byte: number) => {
    lo = (lo ^ byte) >>> 0;
    const low = lo * 0x1b3; // < 2^41: exact in a double
    hi = (hi * 0x1b3 + Math.floor(low / 0x100000000) + ((lo << 8) >>> 0)) >>> 0;
    lo = low >>> 0;
  };
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code < 0x80) step(code);
    else {
      for (const byte of utf8.encode(value.slice(i))) step(byte);
      break;
    }
  }
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/** What objects are sharded by: `uid` spreads them evenly; `namespace` keeps a namespace's objects together. */
export type ShardKey = "uid" | "namespace";

/** The field path of a shard key in the server's selector syntax. */
export function shardField(key: ShardKey): "object.metadata.uid" | "object.metadata.namespace" {
  return key === "uid" ? "object.metadata.uid" : "object.metadata.namespace";
}

/** The value an object is hashed by (a cluster-scoped object's namespace is ""). */
export function shardValue(object: { metadata?: { uid?: string; namespace?: string } }, key: ShardKey): string {
  return (key === "uid" ? object.metadata?.uid : object.metadata?.namespace) ?? "";
}

/** Refuses a bucket count that cannot cut the hash space (a RangeError naming it). */
export function checkBucketCount(count: number): void {
  if (!Number.isInteger(count) || count < 1 || count > 65_536) throw new RangeError(`sharding.buckets must be an integer from 1 to 65536, not ${count}`);
}

/** Bucket `index` of `count`: the half-open hash range [start, end). Consecutive buckets meet. */
export function bucketRange(index: number, count: number): { start: bigint; end: bigint } {
  return { start: (BigInt(index) * HASH_SPACE) / BigInt(count), end: (BigInt(index + 1) * HASH_SPACE) / BigInt(count) };
}

/** The bucket a hash falls in (of `count`). */
export function bucketOf(hash: bigint, count: number): number {
  let index = Number((hash * BigInt(count)) / HASH_SPACE);
  // Integer division rounds both ways against the ranges' floors: step to the one that holds it.
  while (index > 0 && hash < bucketRange(index, count).start) index--;
  while (index < count - 1 && hash >= bucketRange(index, count).end) index++;
  return index;
}

/** A bound as the server's parser wants it: '0x' and 16 hex digits, or '0x10000000000000000' for 2^64. */
function hexBound(value: bigint): string {
  return value === HASH_SPACE ? "0x10000000000000000" : `0x${value.toString(16).padStart(16, "0")}`;
}

/**
 * The `shardSelector` that keeps the objects of `buckets` (of `count`): one `shardRange` per run of
 * adjacent buckets, ORed, in the server's own format. Undefined for no buckets (select nothing:
 * the caller should not watch) and for all of them (select everything: send no selector).
 */
export function shardSelector(key: ShardKey, buckets: Iterable<number>, count: number): string | undefined {
  const sorted = [...new Set(buckets)].sort((a, b) => a - b);
  if (sorted.length === 0 || sorted.length === count) return undefined;
  const runs: { from: number; to: number }[] = [];
  for (const b of sorted) {
    const last = runs.at(-1);
    if (last && last.to === b - 1) last.to = b;
    else runs.push({ from: b, to: b });
  }
  const field = shardField(key);
  return runs.map((r) => `shardRange(${field}, '${hexBound(bucketRange(r.from, count).start)}', '${hexBound(bucketRange(r.to, count).end)}')`).join(" || ");
}

/**
 * A selector the server accepts that keeps (almost) nothing, for a share of no bucket: the one
 * hash value 0 (the server refuses an empty range). Without it, no selector would mean everything.
 */
export function emptyShardSelector(key: ShardKey): string {
  return `shardRange(${shardField(key)}, '0x0000000000000000', '0x0000000000000001')`;
}

/**
 * MurmurHash3's 64-bit finalizer: every input bit moves every output bit. FNV-1a alone is weak in
 * its high bits for strings that differ in their last characters (`replica-3/7` against
 * `replica-2/7`), which skews who wins a bucket; the weights go through this.
 */
function fmix64(value: bigint): bigint {
  let k = value;
  k ^= k >> 33n;
  k = (k * 0xff51afd7ed558ccdn) & MASK;
  k ^= k >> 33n;
  k = (k * 0xc4ceb9fe1a85ec53n) & MASK;
  return k ^ (k >> 33n);
}

/**
 * Every bucket's owner among `members` (index: bucket), balanced: each member owns
 * floor(count / n) or ceil(count / n) buckets. Rendezvous hashing with bounded loads: every
 * (bucket, member) pair has a weight, fmix64(fnv1a64(member) ^ fmix64(bucket + 1)); pairs are
 * taken heaviest first, a bucket going to the first member still under its cap (ties, vanishingly
 * rare, go to the lower name). Every replica computes the same owners from the same members,
 * whatever their order. A member's arrival or departure moves the buckets it wins or held and a
 * few more (the caps change: 1 to 3 extra of 32 when a fourth member joins three, measured);
 * plain rendezvous moves no extra, but spreads 32 buckets over 3 members as unevenly as 6/11/15.
 */
export function bucketOwners(members: readonly string[], count: number): string[] {
  const sorted = [...new Set(members)].sort();
  const n = sorted.length;
  if (n === 0) return [];
  const floor = Math.floor(count / n);
  let extra = count % n; // members that may still own floor + 1
  const hashes = sorted.map((m) => fnv1a64(m));
  const pairs: { bucket: number; member: number; weight: bigint }[] = [];
  for (let bucket = 0; bucket < count; bucket++) {
    const b = fmix64(BigInt(bucket) + 1n);
    for (let member = 0; member < n; member++) pairs.push({ bucket, member, weight: fmix64((hashes[member] as bigint) ^ b) });
  }
  pairs.sort((x, y) => (x.weight > y.weight ? -1 : x.weight < y.weight ? 1 : x.member - y.member));
  const owners: string[] = new Array<string>(count);
  const load = new Array<number>(n).fill(0);
  for (const { bucket, member } of pairs) {
    if (owners[bucket] !== undefined || (load[member] as number) >= (extra > 0 ? floor + 1 : floor)) continue;
    owners[bucket] = sorted[member] as string;
    load[member] = (load[member] as number) + 1;
    if (load[member] === floor + 1) extra--;
  }
  return owners;
}

/** Every bucket's owner among `members` (see {@link bucketOwners}): member → its buckets, ascending (members without any are absent). */
export function assignBuckets(members: readonly string[], count: number): Map<string, number[]> {
  const owned = new Map<string, number[]>();
  bucketOwners(members, count).forEach((owner, bucket) => owned.set(owner, [...(owned.get(owner) ?? []), bucket]));
  return owned;
}
