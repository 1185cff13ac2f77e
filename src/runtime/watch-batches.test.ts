// The watcher over reads that carry many events (a local server writing them at once): a failure
// in the middle of a read (here, the transform throwing) still yields the events before it, so
// the watch, which resumes after them, loses none.
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, describe, it } from "node:test";
import { Client } from "../client/client.js";
import { ConfigMap } from "../core/builtins.js";
import type { KubeObject } from "../core/objects.js";
import { watch } from "./watcher.js";

const servers: Server[] = [];
after(() => servers.forEach((s) => s.close()));

const line = (type: string, name: string, rv: number, annotations?: Record<string, string>) =>
  `${JSON.stringify({ type, object: { apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: "ns", resourceVersion: String(rv), ...(annotations ? { annotations } : {}) } } })}\n`;

describe("watch() over batched reads", () => {
  it("yields the events of a read that came before a failure in it; the resumed watch brings the rest", { timeout: 20_000 }, async () => {
    const requests: string[] = [];
    const server = createServer((req, res) => {
      req.resume();
      requests.push(req.url ?? "");
      res.writeHead(200, { "content-type": "application/json" });
      if (requests.length === 1) {
        // The streaming list, its end, and two changes, in one write.
        res.write(line("ADDED", "a", 1) + line("BOOKMARK", "", 1, { "k8s.io/initial-events-end": "true" }) + line("MODIFIED", "a", 3) + line("MODIFIED", "b", 4));
      } else res.write(line("MODIFIED", "b", 4)); // resumed from 3: b again
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const client = new Client({ server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, source: "test", namespace: "ns", tls: { insecureSkipVerify: false }, auth: { type: "none" } }, { rateLimit: false });
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
      for await (const e of watch(client.resource(ConfigMap), { namespace: "ns", transform, signal: stop.signal, backoff: { initialMs: 1, maxMs: 1 } })) {
        seen.push(e.type === "error" ? `error: ${e.error.message}` : "object" in e ? `${e.type} ${e.object.metadata?.name}@${e.object.metadata?.resourceVersion}` : e.type);
        if (seen.at(-1) === "apply b@4") break;
      }
    } finally {
      stop.abort();
      await client.close();
    }
    assert.deepEqual(seen, ["init", "initApply a@1", "initDone", "apply a@3", "error: transform failed once", "apply b@4"]);
    assert.match(requests[1] ?? "", /resourceVersion=3/, "resumed after a@3");
  });
});
