// reflect() over a watch(): it reads the watch's batches (one async step per event fewer), with
// the same events in the same order, each applied to the store just before it is yielded; a
// watch that was already read from is read on as events, losing none.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { localWatchServer, offlineClient, watchLine } from "../../test/support.js";
import { ConfigMap } from "../core/builtins.js";
import type { ObjectOf } from "../core/objects.js";
import { reflect } from "./reflector.js";
import { createStore } from "./store.js";
import { watch, type WatcherEvent } from "./watcher.js";

type CM = ObjectOf<typeof ConfigMap>;
const describeEvent = (e: WatcherEvent<CM>) => ("object" in e ? `${e.type} ${e.object.metadata?.name}@${e.object.metadata?.resourceVersion}` : e.type);

async function run(readFirst: number): Promise<{ seen: string[]; storeAt: string[] }> {
  // One write: the streaming list (two objects), its end, and three changes.
  const server = await localWatchServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.write(watchLine("ADDED", "a", 1) + watchLine("ADDED", "b", 2) + watchLine("BOOKMARK", "", 2, { "k8s.io/initial-events-end": "true" }) + watchLine("MODIFIED", "a", 3) + watchLine("MODIFIED", "b", 4) + watchLine("DELETED", "a", 5));
  });
  const stop = new AbortController();
  const { store, writer: storeWriter } = createStore<CM>();
  const seen: string[] = [];
  const storeAt: string[] = [];
  try {
    const events = watch(server.client.resource(ConfigMap), { namespace: "ns", signal: stop.signal });
    for (let i = 0; i < readFirst; i++) {
      const first = await events.next();
      if (!first.done) seen.push(`(direct) ${describeEvent(first.value)}`);
    }
    for await (const e of reflect(events, storeWriter)) {
      seen.push(describeEvent(e));
      // What the store holds when the consumer gets the event: this event applied, no later one.
      storeAt.push(store.list().map((o) => `${o.metadata?.name}@${o.metadata?.resourceVersion}`).sort().join(","));
      if (e.type === "delete") break;
    }
  } finally {
    stop.abort();
    await server.close();
  }
  return { seen, storeAt };
}

describe("reflect(watch())", () => {
  it("yields every event in order, the store holding exactly what came up to it", { timeout: 20_000 }, async () => {
    const { seen, storeAt } = await run(0);
    assert.deepEqual(seen, ["init", "initApply a@1", "initApply b@2", "initDone", "apply a@3", "apply b@4", "delete a@5"]);
    assert.deepEqual(storeAt.slice(3), ["a@1,b@2", "a@3,b@2", "a@3,b@4", "b@4"]);
  });

  it("a watch() handed to reflect() is read through it only: iterating it as well throws, naming why", async () => {
    const client = offlineClient();
    const stop = new AbortController();
    const events = watch(client.resource(ConfigMap), { namespace: "ns", signal: stop.signal });
    reflect(events, createStore<CM>().writer);
    await assert.rejects(events.next(), /already read through reflect\(\)/);
    stop.abort();
    await client.close();
  });

  it("reads on a watch that was already read from, losing no event of the batch begun", { timeout: 20_000 }, async () => {
    const { seen } = await run(2);
    assert.deepEqual(seen, ["(direct) init", "(direct) initApply a@1", "initApply b@2", "initDone", "apply a@3", "apply b@4", "delete a@5"]);
  });
});
