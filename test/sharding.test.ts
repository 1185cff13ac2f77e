// The API server's sharded list and watch (KEP-5866) as kubeloop speaks it: the local control
// plane turns the ShardedListAndWatch gate on, and the selectors of core/shards.ts select exactly
// the objects whose hash core/shards.ts puts in those buckets (the same FNV-1a as the server's),
// so a replica filtering on the client where the server does not gets the same share.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Client, ConfigMap, Namespace } from "../src/entries/index.js";
import { bucketOf, fnv1a64, shardSelector, shardValue, type ShardKey } from "../src/core/shards.js";
import { releaseSharedCluster, sharedCluster, uniqueName } from "./helpers.js";

let client: Client;
const namespaces: string[] = [];
before(async () => {
  client = await Client.load({ path: (await sharedCluster()).kubeconfigPath, rateLimit: false });
});
after(async () => {
  for (const ns of namespaces) await client.resource(Namespace).delete(ns).catch(() => {});
  await client?.close();
  await releaseSharedCluster();
});

async function namespaceWith(count: number): Promise<string> {
  const ns = uniqueName("shards");
  namespaces.push(ns);
  await client.resource(Namespace).create({ metadata: { name: ns } });
  const cms = client.resource(ConfigMap).namespace(ns);
  for (let i = 0; i < count; i += 20) await Promise.all(Array.from({ length: Math.min(20, count - i) }, (_, j) => cms.create({ metadata: { name: `cm-${i + j}` } })));
  return ns;
}

const names = (items: { metadata?: { name?: string } }[]) => items.map((o) => o.metadata?.name ?? "").sort();

describe("the API server's shard selector", () => {
  it("lists exactly the objects whose uid hash core/shards.ts puts in the selected buckets, and says it applied the selector", { timeout: 60_000 }, async () => {
    const ns = await namespaceWith(60);
    const cms = client.resource(ConfigMap).namespace(ns);
    const all = (await cms.list()).items;
    assert.equal(all.length, 60);
    assert.equal((await cms.list()).metadata.shardInfo, undefined, "no selector: no shardInfo");
    for (const [buckets, count] of [[[0], 2], [[1], 2], [[0, 2], 4], [[3], 4], [[1, 2, 5], 7]] as [number[], number][]) {
      const selector = shardSelector("uid", buckets, count) as string;
      const list = await cms.list({ shardSelector: selector });
      assert.equal(list.metadata.shardInfo?.selector, selector, "the server applied the selector (ShardedListAndWatch on)");
      const expected = all.filter((o) => buckets.includes(bucketOf(fnv1a64(shardValue(o, "uid")), count)));
      assert.deepEqual(names(list.items), names(expected), `buckets ${buckets.join(",")} of ${count}`);
    }
  });

  it("shards by namespace: every object of a namespace in the same share", { timeout: 60_000 }, async () => {
    const a = await namespaceWith(5);
    const b = await namespaceWith(5);
    const key: ShardKey = "namespace";
    for (const ns of [a, b]) {
      const bucket = bucketOf(fnv1a64(ns), 8);
      const mine = await client.resource(ConfigMap).namespace(ns).list({ shardSelector: shardSelector(key, [bucket], 8) as string });
      assert.equal(mine.items.length, 5, `${ns} is wholly in bucket ${bucket}`);
      const other = await client.resource(ConfigMap).namespace(ns).list({ shardSelector: shardSelector(key, [(bucket + 1) % 8], 8) as string });
      assert.equal(other.items.length, 0, `${ns} has nothing in another bucket`);
    }
  });

  it("watches only the selected share: events of other objects are not sent", { timeout: 60_000 }, async () => {
    const ns = await namespaceWith(0);
    const cms = client.resource(ConfigMap).namespace(ns);
    const selector = shardSelector("uid", [0], 2) as string;
    const start = await cms.list({ shardSelector: selector });
    const stop = new AbortController();
    const seen: string[] = [];
    const watching = (async () => {
      for await (const e of cms.watch({ shardSelector: selector, resourceVersion: start.metadata.resourceVersion, signal: stop.signal })) {
        if (e.type === "ADDED") seen.push(e.object.metadata?.name ?? "");
      }
    })().catch(() => {});
    const made = await Promise.all(Array.from({ length: 40 }, (_, i) => cms.create({ metadata: { name: `w-${i}` } })));
    const inShare = made.filter((o) => bucketOf(fnv1a64(shardValue(o, "uid")), 2) === 0).map((o) => o.metadata?.name ?? "").sort();
    assert.ok(inShare.length > 5 && inShare.length < 35, `about half in the share: ${inShare.length}`);
    const deadline = Date.now() + 20_000;
    while (seen.length < inShare.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    stop.abort();
    await watching;
    assert.deepEqual([...seen].sort(), inShare, "the watch sent the share's objects and only those");
  });
});
