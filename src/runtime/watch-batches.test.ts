// The watcher over reads that carry many events (a local server writing them at once): a failure
// in the middle of a read (here, the transform throwing) still yields the events before it, so
// the watch, which resumes after them, loses none. Then its push path (runWatch, which the
// Informer reads): a consumer holding a batch is not inactivity, and a consumer's throw stops
// the watch as it is, not taken for the server's failure.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { localWatchServer, until, watchLine } from "../../test/support.js";
import { ConfigMap } from "../core/builtins.js";
import { ManualClock } from "../core/clock.js";
import type { KubeObject } from "../core/objects.js";
import { runWatch, watch, type WatcherEvent } from "./watcher.js";

describe("watch() over batched reads", () => {
  it("yields the events of a read that came before a failure in it; the resumed watch brings the rest", { timeout: 20_000 }, async () => {
    const server = await localWatchServer((_req, res, n) => {
      res.writeHead(200, { "content-type": "application/json" });
      if (n === 1) {
        // The streaming list, its end, and two changes, in one write.
        res.write(watchLine("ADDED", "a", 1) + watchLine("BOOKMARK", "", 1, { "k8s.io/initial-events-end": "true" }) + watchLine("MODIFIED", "a", 3) + watchLine("MODIFIED", "b", 4));
      } else res.write(watchLine("MODIFIED", "b", 4)); // resumed from 3: b again
    });
    const stop = new AbortController();
    let failOnce = true;
    const transform = (o: KubeObject) => {
      if (o.metadata?.name === "b" && failOnce) {
        failOnce = false;
        throw new Error("transform failed once");
      }
      return o;
    };
    const seen: string[] = [];
    try {
      for await (const e of watch(server.client.resource(ConfigMap), { namespace: "ns", transform, signal: stop.signal, backoff: { initialMs: 1, maxMs: 1 } })) {
        seen.push(e.type === "error" ? `error: ${e.error.message}` : "object" in e ? `${e.type} ${e.object.metadata?.name}@${e.object.metadata?.resourceVersion}` : e.type);
        if (seen.at(-1) === "apply b@4") break;
      }
    } finally {
      stop.abort();
      await server.close();
    }
    assert.deepEqual(seen, ["init", "initApply a@1", "initDone", "apply a@3", "error: transform failed once", "apply b@4"]);
    assert.match(server.requests[1] ?? "", /resourceVersion=3/, "resumed after a@3");
  });
});

describe("runWatch(), the push path", () => {
  const describeEvent = (e: WatcherEvent<KubeObject>) => (e.type === "error" ? `error: ${e.error.message}` : "object" in e ? `${e.type} ${e.object.metadata?.name}@${e.object.metadata?.resourceVersion}` : e.type);

  it("a batch the consumer holds is not the stream's silence: no inactivity, no reconnect, however long", { timeout: 20_000 }, async () => {
    let later: (() => void) | undefined;
    const server = await localWatchServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write(watchLine("ADDED", "a", 1) + watchLine("BOOKMARK", "", 1, { "k8s.io/initial-events-end": "true" }) + watchLine("MODIFIED", "a", 2));
      later = () => res.write(watchLine("MODIFIED", "a", 3));
    });
    const clock = new ManualClock();
    const stop = new AbortController();
    const seen: string[] = [];
    let hold: (() => void) | undefined;
    const sink = (batch: WatcherEvent<KubeObject>[]) => {
      seen.push(...batch.map(describeEvent));
      if (seen.includes("apply a@2") && !hold) return new Promise<void>((resolve) => (hold = resolve));
    };
    const running = runWatch(server.client.resource(ConfigMap), { namespace: "ns", inactivityTimeoutMs: 100, clock, signal: stop.signal }, sink);
    try {
      await until("the held batch", () => hold !== undefined);
      await clock.advance(10_000); // a hundred times the inactivity timeout, while the consumer holds the batch
      hold?.();
      later?.();
      await until("the next change", () => seen.includes("apply a@3"));
      assert.deepEqual(seen, ["init", "initApply a@1", "initDone", "apply a@2", "apply a@3"]);
      assert.equal(server.requests.length, 1, "one watch: never dropped for silence");
    } finally {
      stop.abort();
      await running;
      await server.close();
    }
  });

  it("a consumer's throw ends the watch with that error as it is: not retried as the server's failure", { timeout: 20_000 }, async () => {
    const server = await localWatchServer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write(watchLine("ADDED", "a", 1) + watchLine("BOOKMARK", "", 1, { "k8s.io/initial-events-end": "true" }));
      setTimeout(() => res.write(watchLine("MODIFIED", "a", 2)), 20);
    });
    const mistake = new TypeError("the consumer's own bug");
    const seen: string[] = [];
    try {
      await assert.rejects(
        runWatch(server.client.resource(ConfigMap), { namespace: "ns", backoff: { initialMs: 1, maxMs: 1 } }, (batch) => {
          seen.push(...batch.map(describeEvent));
          if (seen.includes("apply a@2")) throw mistake;
        }),
        (error) => error === mistake,
      );
      assert.deepEqual(seen, ["init", "initApply a@1", "initDone", "apply a@2"]);
      assert.equal(server.requests.length, 1);
    } finally {
      await server.close();
    }
  });
});
