// The Informer over a watch whose reads carry many events (a local server writing them at once,
// as a replayed or buffered stream arrives): each event is applied and handed to the listeners
// before the next one is applied.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { localWatchServer, watchLine } from "../../test/support.js";
import { ConfigMap } from "../core/builtins.js";
import type { KubeObject } from "../core/objects.js";
import { InformerFactory } from "./informer.js";

describe("Informer", () => {
  it("hands each event of a read to its listeners before applying the next", async () => {
    // The initial list (two objects) and its end bookmark, then 20 changes of each in one write.
    let body = watchLine("ADDED", "a", 1) + watchLine("ADDED", "b", 2) + watchLine("BOOKMARK", "", 2, { "k8s.io/initial-events-end": "true" });
    for (let rv = 3; rv < 43; rv++) body += watchLine("MODIFIED", rv % 2 ? "a" : "b", rv);
    const server = await localWatchServer((req, res) => {
      if (!req.url?.includes("watch=")) return void res.writeHead(404).end("{}");
      res.writeHead(200, { "content-type": "application/json" });
      res.write(body); // then stays open, as a watch with nothing new
    });
    const factory = new InformerFactory(server.client);
    try {
      const informer = factory.informer(ConfigMap, { namespace: "ns" });
      const seen: string[] = [];
      const ahead: string[] = [];
      informer.subscribe((e) => {
        if (e.type !== "apply") return;
        seen.push(e.object.metadata?.resourceVersion ?? "?");
        const stored: KubeObject | undefined = informer.store.getByName(e.object.metadata!.name!, "ns");
        if (stored !== e.object) ahead.push(`${e.object.metadata?.name}@${e.object.metadata?.resourceVersion}: store at ${stored?.metadata?.resourceVersion}`);
        assert.equal(e.old?.metadata?.name, e.object.metadata?.name, "old: the state it replaced");
      });
      informer.start();
      await informer.waitUntilReady(AbortSignal.timeout(10_000));
      const deadline = Date.now() + 10_000;
      while (seen.length < 40 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(seen, Array.from({ length: 40 }, (_, i) => String(i + 3)), "every change, in order");
      assert.deepEqual(ahead, [], "the store was ahead of the event handed to the listener");
    } finally {
      await factory.stop();
      await server.close();
    }
  });
});
