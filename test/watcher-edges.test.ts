// The watcher against a scripted HTTP server, for server behaviours a real API server cannot be
// made to show on demand: a watch that closes cleanly at once, again and again; a continue
// token that expires in the middle of a paged list.
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, describe, it } from "node:test";
import { Client, ConfigMap, type ClusterConfig, type WatcherEvent } from "../src/entries/index.js";
import { watch } from "../src/entries/runtime.js";
import { eventually } from "./helpers.js";

const closers: (() => void)[] = [];
after(() => {
  for (const close of closers) close();
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse, url: URL) => void): Promise<Client> {
  const server = createServer((req, res) => {
    req.resume();
    handler(req, res, new URL(req.url ?? "/", "http://x"));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  closers.push(() => server.close());
  const config: ClusterConfig = { server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, source: "test", namespace: "default", tls: { insecureSkipVerify: false }, auth: { type: "none" } };
  const client = new Client(config, { rateLimit: false, retries: 0 });
  closers.push(() => void client.close());
  return client;
}

const json = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
};
const cm = (name: string, rv: string) => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: "default", resourceVersion: rv } });

describe("watcher edges", () => {
  it("backs off when the server closes each watch at once (it reopened 17,814 times a second)", { timeout: 20_000 }, async () => {
    let watches = 0;
    const client = await serve((_req, res, url) => {
      if (url.searchParams.get("watch") === "true" || url.searchParams.get("watch") === "1") {
        watches++;
        res.writeHead(200, { "content-type": "application/json" });
        res.end(); // a clean, immediate close with no event
        return;
      }
      json(res, 200, { kind: "ConfigMapList", apiVersion: "v1", metadata: { resourceVersion: "5" }, items: [] });
    });
    const stop = new AbortController();
    const events: WatcherEvent<object>[] = [];
    const reading = (async () => {
      for await (const e of watch(client.resource(ConfigMap).namespace("default"), { signal: stop.signal, initialList: "list", backoff: { initialMs: 200 } })) events.push(e);
    })();
    await eventually("synced", async () => events.some((e) => e.type === "initDone"));
    await new Promise((r) => setTimeout(r, 1_000)); // counts what happens in one second: the wait is the measurement
    stop.abort();
    await reading;
    assert.ok(watches <= 10, `${watches} watch requests in one second`);
    assert.ok(events.some((e) => e.type === "error" && /short watch/.test(e.error.message)), "the short watches are reported");
  });

  it("an expired continue token in a paged list falls back to a full list, with backoff", { timeout: 20_000 }, async () => {
    const lists: string[] = [];
    const client = await serve((_req, res, url) => {
      if (url.searchParams.get("watch")) {
        setTimeout(() => res.end(), 5_000).unref();
        res.writeHead(200, { "content-type": "application/json" });
        return;
      }
      const limit = url.searchParams.get("limit");
      const token = url.searchParams.get("continue");
      lists.push(`limit=${limit ?? ""} continue=${token ?? ""}`);
      if (!limit) return json(res, 200, { kind: "ConfigMapList", apiVersion: "v1", metadata: { resourceVersion: "9" }, items: [cm("a", "3"), cm("b", "4")] });
      if (!token) return json(res, 200, { kind: "ConfigMapList", apiVersion: "v1", metadata: { resourceVersion: "9", continue: "c1" }, items: [cm("a", "3")] });
      json(res, 410, { kind: "Status", apiVersion: "v1", status: "Failure", reason: "Expired", code: 410, message: "The provided continue parameter is too old" });
    });
    const stop = new AbortController();
    const events: WatcherEvent<{ metadata?: { name?: string } }>[] = [];
    const reading = (async () => {
      for await (const e of watch(client.resource(ConfigMap).namespace("default"), { signal: stop.signal, initialList: "list", pageSize: 1, backoff: { initialMs: 50 } })) events.push(e);
    })();
    try {
      await eventually("synced through a full list", async () => events.some((e) => e.type === "initDone"), { timeoutMs: 5_000 });
    } finally {
      stop.abort();
      await reading;
    }
    const applied = events.filter((e) => e.type === "initApply").map((e) => ("object" in e ? e.object.metadata?.name : ""));
    assert.deepEqual(applied.slice(-2), ["a", "b"], "the full list gave every object");
    assert.equal(lists.at(-1), "limit= continue=", `the last list was unpaged: ${lists.join(", ")}`);
    assert.ok(lists.length <= 4, `no hammering: ${lists.length} list requests`);
  });
});

describe("watcher on bad input", () => {
  it("garbage on the watch stream (truncated JSON, a 10 MiB line) is reported and recovered from, never a dead iterator", { timeout: 30_000 }, async () => {
    let watches = 0;
    const big = cm("big", "7") as Record<string, unknown>;
    big.data = { blob: "x".repeat(10 * 1024 * 1024) };
    const client = await serve((_req, res, url) => {
      if (url.searchParams.get("watch")) {
        watches++;
        res.writeHead(200, { "content-type": "application/json" });
        if (watches === 1) {
          res.write(`${JSON.stringify({ type: "ADDED", object: cm("a", "6") })}\n`);
          res.write(`${JSON.stringify({ type: "ADDED", object: big })}\n`);
          res.end('{"type":"MODIFIED","object":{"metadata":{"name":"a"\n'); // truncated
          return;
        }
        setTimeout(() => res.end(), 5_000).unref();
        return;
      }
      json(res, 200, { kind: "ConfigMapList", apiVersion: "v1", metadata: { resourceVersion: "5" }, items: [] });
    });
    const stop = new AbortController();
    const events: WatcherEvent<{ metadata?: { name?: string } }>[] = [];
    const reading = (async () => {
      for await (const e of watch(client.resource(ConfigMap).namespace("default"), { signal: stop.signal, initialList: "list", backoff: { initialMs: 10 } })) events.push(e);
    })();
    try {
      await eventually("the garbage reported, and the watch reopened", async () => events.some((e) => e.type === "error") && watches >= 2, { timeoutMs: 20_000 });
    } finally {
      stop.abort();
      await reading;
    }
    const applied = events.filter((e) => e.type === "apply").map((e) => ("object" in e ? e.object.metadata?.name : ""));
    assert.deepEqual(applied, ["a", "big"], "the good events before the garbage, the 10 MiB one included");
    const error = events.find((e) => e.type === "error");
    assert.ok(error && error.type === "error");
    assert.ok(!/x{100}/.test(error.error.message), "the error does not echo the stream");
  });
});
