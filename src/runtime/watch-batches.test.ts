// The watcher over reads that carry many events (a local server writing them at once): a failure
// in the middle of a read (here, the transform throwing) still yields the events before it, so
// the watch, which resumes after them, loses none.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { localWatchServer, watchLine } from "../../test/support.js";
import { ConfigMap } from "../core/builtins.js";
import type { KubeObject } from "../core/objects.js";
import { watch } from "./watcher.js";

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
