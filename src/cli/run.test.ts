// `kubeloop run`'s probe flags: which servers start and which endpoints each answers (no server).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Manager } from "../controller/manager.js";
import { serveProbes } from "../observe/server.js";
import { probeServers } from "./run.js";

const at = (port: number) => ({ host: "127.0.0.1", port });

describe("--metrics-bind and --health-bind", () => {
  it("'0' turns off only the endpoint it names", () => {
    assert.deepEqual(probeServers(undefined, undefined), {}, "the operator's default");
    assert.deepEqual(probeServers(false, false), { probes: false });
    assert.deepEqual(probeServers(false, at(9)), { probes: { ...at(9), serve: { metrics: false, health: true } } });
    assert.deepEqual(probeServers(at(8), false), { probes: { ...at(8), serve: { metrics: true, health: false } } });
    assert.deepEqual(probeServers(false, undefined), { probes: { serve: { metrics: false, health: true } } }, "health on the default address");
    assert.deepEqual(probeServers(at(8), at(9)), { probes: { ...at(8), serve: { metrics: true, health: true } }, extraProbes: { ...at(9), serve: { metrics: true, health: true } } });
    assert.deepEqual(probeServers(at(8), at(8)), { probes: { ...at(8), serve: { metrics: true, health: true } } }, "one address, one server");
  });

  it("a server without metrics answers /readyz and 404s /metrics; one without health the reverse", async () => {
    const manager = { status: { phase: "following", synced: true, leadershipSettled: true, failingWatches: [] } } as unknown as Manager;
    const metrics = { text: async () => "m 1\n", contentType: "text/plain" } as never;
    const health = await serveProbes(manager, metrics, { port: 0, host: "127.0.0.1", serve: { metrics: false, health: true } });
    const onlyMetrics = await serveProbes(manager, metrics, { port: 0, host: "127.0.0.1", serve: { metrics: true, health: false } });
    try {
      assert.equal((await fetch(`${health.url}/readyz`)).status, 200);
      assert.equal((await fetch(`${health.url}/metrics`)).status, 404);
      assert.equal((await fetch(`${onlyMetrics.url}/metrics`)).status, 200);
      assert.equal((await fetch(`${onlyMetrics.url}/healthz`)).status, 404);
    } finally {
      await health.close();
      await onlyMetrics.close();
    }
  });
});
