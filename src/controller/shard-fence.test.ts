// The fence around a sharded replica's work, without a server: which reconciles run, which wait,
// which are another replica's; unshared deletes; a release waiting for work in flight.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConfigMap } from "../core/builtins.js";
import { ManualClock } from "../core/clock.js";
import type { KubeObject } from "../core/objects.js";
import { bucketOf, fnv1a64 } from "../core/shards.js";
import { Share } from "../runtime/share.js";
import type { ReconcileContext } from "./reconcile.js";
import { ShardFence } from "./shard-fence.js";

const COUNT = 4;
const object = (name: string, uid: string): KubeObject => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: "ns", uid } });
const bucket = (uid: string) => bucketOf(fnv1a64(uid), COUNT);
/** A uid in `b`. */
const uidIn = (b: number) => {
  for (let i = 0; ; i++) if (bucket(`uid-${i}`) === b) return `uid-${i}`;
};
const ctx = (o: KubeObject | undefined) => ({ object: o, kind: ConfigMap }) as unknown as ReconcileContext<KubeObject>;

function fence(standing: Map<number, "act" | "wait" | "none">, clock = new ManualClock()) {
  const share = new Share({ key: "uid", buckets: [0, 1, 2, 3], count: COUNT });
  return new ShardFence(share, (b) => standing.get(b) ?? "none", 500, clock);
}

describe("ShardFence", () => {
  it("runs reconciles of buckets acted on, requeues those whose renewal is late, and leaves other replicas' alone", async () => {
    const standing = new Map<number, "act" | "wait" | "none">([[0, "act"], [1, "wait"], [2, "none"]]);
    const f = fence(standing);
    const ran: string[] = [];
    const guarded = f.guard(async (ref) => void ran.push(ref.name));
    for (const [b, name] of [[0, "mine"], [1, "late"], [2, "theirs"]] as const) {
      const o = object(name, uidIn(b));
      const action = await guarded({ name, namespace: "ns" }, ctx(o));
      if (name === "late") assert.deepEqual(action, { requeueAfterMs: 500 }, "late: requeued, not dropped");
      else assert.equal(action, undefined);
    }
    assert.deepEqual(ran, ["mine"]);
    assert.equal(f.owns(object("x", uidIn(0))), true);
    assert.equal(f.owns(object("x", uidIn(1))), false, "timers do not run while the renewal is late");
  });

  it("takes unshared deletes for nothing, and remembers a deleted object's bucket for its last reconcile", async () => {
    const f = fence(new Map([[3, "act"]]));
    const admit = f.admit(ConfigMap);
    const gone = object("gone", uidIn(3));
    assert.equal(admit({ type: "delete", object: object("moved", uidIn(3)), unshared: true }), false, "another replica's now: no reconcile");
    assert.equal(admit({ type: "delete", object: gone }), true);
    const ran: string[] = [];
    const guarded = f.guard(async (ref) => void ran.push(ref.name));
    await guarded({ name: "gone", namespace: "ns" }, ctx(undefined));
    await guarded({ name: "never-seen", namespace: "ns" }, ctx(undefined));
    assert.deepEqual(ran, ["gone"], "a deleted object's reconcile runs on its bucket's owner; an unknown one does not");
    await guarded({ name: "gone", namespace: "ns" }, ctx(undefined));
    assert.deepEqual(ran, ["gone"], "forgotten once its last reconcile ran");
  });

  it("drains: waits for reconciles in flight on the buckets released, and names those still busy at the deadline", async () => {
    const clock = new ManualClock();
    const f = fence(new Map([[0, "act"], [1, "act"]]), clock);
    let finish!: () => void;
    const held = new Promise<void>((r) => (finish = r));
    const guarded = f.guard(async () => held);
    const running = guarded({ name: "slow", namespace: "ns" }, ctx(object("slow", uidIn(0))));
    assert.equal(f.running(0), 1);
    assert.deepEqual(await f.drain([1], 10), [1], "nothing runs on bucket 1");
    const timedOut = f.drain([0, 1], 100);
    await clock.advance(100);
    assert.deepEqual(await timedOut, [1], "bucket 0 still busy at the deadline: not released");
    const draining = f.drain([0, 1], 60_000);
    finish();
    await running;
    assert.deepEqual(await draining, [0, 1], "released once the reconcile ended");
    assert.equal(f.running(0), 0);
  });
});
