import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HASH_SPACE, assignBuckets, bucketOf, bucketOwners, bucketRange, checkBucketCount, fnv1a64, shardSelector, shardValue } from "./shards.js";

describe("the API server's shard hash", () => {
  it("is 64-bit FNV-1a over UTF-8 bytes: the values Go's hash/fnv (k8s.io/apimachinery/pkg/sharding) gives", () => {
    // From `go run` with hash/fnv New64a, as apimachinery's HashField does.
    const go: [string, string][] = [
      ["", "cbf29ce484222325"],
      ["a", "af63dc4c8601ec8c"],
      ["test", "f9e6e6ef197c2b25"],
      ["5b1c9c3e-2f4e-4d6e-9a51-0c1b2d3e4f50", "dcacb625346eec5d"],
      ["kube-system", "df65c7bc1d82b35e"],
      ["ünïcødé", "7fe9369f83b596a0"],
    ];
    for (const [value, hex] of go) assert.equal(fnv1a64(value).toString(16).padStart(16, "0"), hex, value);
  });

  it("hashes an object by its uid or its namespace", () => {
    const o = { metadata: { uid: "a", namespace: "kube-system" } };
    assert.equal(shardValue(o, "uid"), "a");
    assert.equal(shardValue(o, "namespace"), "kube-system");
    assert.equal(shardValue({ metadata: { uid: "x" } }, "namespace"), "", "cluster-scoped: the empty namespace");
  });
});

describe("buckets", () => {
  it("cut [0, 2^64) into contiguous ranges, and every hash falls in the bucket whose range holds it", () => {
    for (const count of [1, 2, 3, 7, 64, 1000]) {
      assert.equal(bucketRange(0, count).start, 0n);
      assert.equal(bucketRange(count - 1, count).end, HASH_SPACE);
      for (let i = 1; i < count; i++) assert.equal(bucketRange(i, count).start, bucketRange(i - 1, count).end);
      for (let n = 0; n < 200; n++) {
        const hash = fnv1a64(`object-${count}-${n}`);
        const b = bucketOf(hash, count);
        const { start, end } = bucketRange(b, count);
        assert.ok(start <= hash && hash < end, `${hash} in bucket ${b} of ${count}`);
      }
      assert.equal(bucketOf(HASH_SPACE - 1n, count), count - 1);
      assert.equal(bucketOf(0n, count), 0);
    }
  });

  it("refuses a count that cannot cut the space, naming the option", () => {
    for (const bad of [0, -1, 1.5, Number.NaN, 70_000]) assert.throws(() => checkBucketCount(bad), /sharding\.buckets/);
    checkBucketCount(64);
  });
});

describe("shardSelector", () => {
  it("writes the server's own format (its documented 2- and 4-shard splits), merging adjacent buckets", () => {
    assert.equal(shardSelector("uid", [0], 2), "shardRange(object.metadata.uid, '0x0000000000000000', '0x8000000000000000')");
    assert.equal(shardSelector("uid", [1], 2), "shardRange(object.metadata.uid, '0x8000000000000000', '0x10000000000000000')");
    assert.equal(shardSelector("namespace", [2], 4), "shardRange(object.metadata.namespace, '0x8000000000000000', '0xc000000000000000')");
    assert.equal(shardSelector("uid", [3, 0, 1], 4), "shardRange(object.metadata.uid, '0x0000000000000000', '0x8000000000000000') || shardRange(object.metadata.uid, '0xc000000000000000', '0x10000000000000000')");
    assert.equal(shardSelector("uid", [], 4), undefined, "no buckets: nothing to watch");
    assert.equal(shardSelector("uid", [0, 1, 2, 3], 4), undefined, "all buckets: no selector");
  });
});

describe("bucket ownership (rendezvous with bounded loads)", () => {
  const members = (n: number) => Array.from({ length: n }, (_, i) => `replica-${i}`);
  const byBucket = (ms: string[], count: number) => new Map(bucketOwners(ms, count).map((m, b) => [b, m] as const));

  it("gives every bucket one owner, the same for every replica whatever the order of members, balanced to one bucket", () => {
    for (const [n, count] of [[3, 32], [3, 300], [5, 16], [4, 4], [7, 3]] as const) {
      const owned = assignBuckets(members(n), count);
      assert.equal([...owned.values()].flat().length, count);
      assert.deepEqual(assignBuckets([...members(n)].reverse(), count), owned);
      const loads = members(n).map((m) => owned.get(m)?.length ?? 0);
      assert.ok(Math.max(...loads) - Math.min(...loads) <= 1, `${count} buckets over ${n}: ${loads.join("/")}`);
    }
    assert.deepEqual(bucketOwners([], 5), []);
  });

  it("moves about a newcomer's share when a member joins, and about a leaver's share when one leaves", () => {
    const before = byBucket(members(3), 600);
    const joined = byBucket(members(4), 600);
    const moved = [...joined].filter(([b, m]) => before.get(b) !== m);
    const won = moved.filter(([, m]) => m === "replica-3").length;
    assert.equal(won, 150, "the newcomer owns its quarter");
    assert.ok(moved.length - won <= 12, `few moved between the others: ${moved.length - won} of 600`);
    const left = byBucket(members(4).filter((m) => m !== "replica-1"), 600);
    const changed = [...left].filter(([b, m]) => joined.get(b) !== m);
    const held = changed.filter(([b]) => joined.get(b) === "replica-1").length;
    assert.equal(held, 150, "every bucket of the leaver moved");
    assert.ok(changed.length - held <= 12, `few others moved: ${changed.length - held} of 600`);
  });
});
