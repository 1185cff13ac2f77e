// The Manager without a server: scripted informer events, no leader election.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pino } from "pino";
import { collectGarbage, offlineClient, settleWithin, until } from "../../test/support.js";
import { ConfigMap } from "../core/builtins.js";
import type { KubeObject } from "../core/objects.js";
import { ScriptedEvents } from "../testing/scripted-events.js";
import { CacheSyncTimeoutError, Manager } from "./manager.js";

const quiet = pino({ level: "silent" });
const cm = (name: string): KubeObject => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: "ns", uid: `u-${name}`, resourceVersion: "1" } });

describe("Manager (server-less)", () => {
  it("starts nothing before every cache synced; a graceful stop lets work in flight finish, then stops the runnables", { timeout: 10_000 }, async () => {
    const scripted = new ScriptedEvents();
    const client = offlineClient();
    const order: string[] = [];
    const manager = new Manager(client, { name: "m", leaderElection: false, logger: quiet, source: scripted.source, gracefulShutdownTimeoutMs: 5_000 });
    let release!: () => void;
    manager
      .controller(ConfigMap)
      .reconcile(async (ref) => {
        order.push(`reconcile ${ref.name}`);
        await new Promise<void>((r) => (release = r));
        order.push(`done ${ref.name}`);
      });
    manager.add({ start: async () => void order.push("runnable start"), stop: async () => void order.push("runnable stop") });
    const stop = new AbortController();
    const run = manager.run(stop.signal);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(order.length, 0, "nothing starts before the caches sync");
    assert.equal(manager.status.phase, "syncing");
    scripted.list(ConfigMap, [cm("a")]);
    await until("the reconcile", () => order.includes("reconcile a"));
    assert.equal(manager.status.phase, "leading");
    stop.abort();
    await until("stopping", () => manager.status.phase === "stopping");
    release();
    await run;
    assert.ok(order.includes("done a"), `the reconcile in flight finished before run() resolved: ${order.join(", ")}`);
    assert.ok(order.includes("runnable stop"));
    assert.equal(manager.status.phase, "stopped");
    await client.close();
  });

  it("a cache that never syncs fails run() at cacheSyncTimeoutMs even if the garbage collector runs meanwhile (Node 20 lost the deadline: run() hung)", { timeout: 20_000 }, async () => {
    const scripted = new ScriptedEvents();
    const client = offlineClient();
    const manager = new Manager(client, { name: "m", leaderElection: false, logger: quiet, source: scripted.source, cacheSyncTimeoutMs: 300 });
    manager.controller(ConfigMap).reconcile(async () => {});
    const run = manager.run(new AbortController().signal);
    await until("syncing", () => manager.status.phase === "syncing");
    await collectGarbage();
    await assert.rejects(settleWithin("run()", run, 5_000), CacheSyncTimeoutError);
    await client.close();
  });
});

describe("priorities", () => {
  it("a change seen on the watch is reconciled ahead of the objects of the initial list still queued", { timeout: 10_000 }, async () => {
    const scripted = new ScriptedEvents();
    const client = offlineClient();
    const manager = new Manager(client, { name: "m", leaderElection: false, logger: quiet, source: scripted.source });
    const order: string[] = [];
    let release!: () => void;
    const first = new Promise<void>((r) => (release = r));
    manager
      .controller(ConfigMap)
      .concurrency(1)
      .reconcile(async (ref) => {
        order.push(ref.name);
        if (order.length === 1) await first;
      });
    const stop = new AbortController();
    const run = manager.run(stop.signal);
    scripted.list(ConfigMap, Array.from({ length: 50 }, (_, i) => cm(`listed-${i}`)));
    await until("the first reconcile", () => order.length === 1);
    scripted.apply(ConfigMap, { ...cm("listed-40"), metadata: { ...cm("listed-40").metadata, resourceVersion: "2" } });
    scripted.apply(ConfigMap, cm("new"));
    release();
    await until("every object", () => order.length === 51);
    assert.deepEqual(order.slice(1, 3), ["listed-40", "new"], `the two changes first, in their order: ${order.slice(0, 5).join(", ")}`);
    stop.abort();
    await run;
    await client.close();
  });
});

describe("Manager options", () => {
  for (const [options, message] of [
    [{ cacheSyncTimeoutMs: 0 }, /cacheSyncTimeoutMs must be a finite number > 0 \(got 0\)/],
    [{ gracefulShutdownTimeoutMs: Number.NaN }, /gracefulShutdownTimeoutMs must be a finite number ≥ 0 \(got NaN\)/],
    [{ leaderElection: { leaseDurationMs: Number.NaN } }, /leaseDurationMs must be a finite number > 0 \(got NaN\)/],
    [{ leaderElection: { retryPeriodMs: -1 } }, /retryPeriodMs must be a finite number > 0 \(got -1\)/],
    [{ leaderElection: { leaseDurationMs: 5_000 } }, /renewDeadlineMs \(10000\) must be less than leaseDurationMs \(5000\)/],
  ] as [Partial<ConstructorParameters<typeof Manager>[1]>, RegExp][]) {
    it(`refuses ${JSON.stringify(options, (_k, v: unknown) => (typeof v === "number" && Number.isNaN(v) ? "NaN" : v))} when made, naming the option`, () => {
      assert.throws(() => new Manager(offlineClient(), { name: "m", logger: quiet, ...options }), (e: unknown) => e instanceof RangeError && message.test(e.message));
    });
  }
});

