// The Manager and its helpers against the real API server: readiness only after sync, a clear
// error for a kind that is not installed, graceful shutdown finishing reconciles in flight,
// read-your-own-writes, event series, finalizers guarded against concurrent writers.
import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { Action, CacheSyncTimeoutError, Client, ConfigMap, CustomResourceDefinition, Event, Namespace, Operator, addFinalizer, kindOf, removeFinalizer, type RunningOperator } from "../src/entries/index.js";
import { EventRecorder, Manager } from "../src/entries/runtime.js";
import { DevOverride } from "../src/controller/dev-pause.js";
import { eventually, releaseSharedCluster, sharedCluster, uniqueName } from "./helpers.js";

const quiet = pino({ level: "silent" });
let client: Client;

before(async () => {
  client = await Client.load({ path: (await sharedCluster()).kubeconfigPath, rateLimit: false });
});
after(async () => {
  await client?.close();
  await releaseSharedCluster();
});

async function namespace(): Promise<string> {
  const ns = uniqueName("mgr");
  await client.resource(Namespace).create({ metadata: { name: ns } });
  return ns;
}

function crdFor(group: string) {
  return {
    metadata: { name: `gadgets.${group}` },
    spec: {
      group,
      scope: "Namespaced" as const,
      names: { plural: "gadgets", singular: "gadget", kind: "Gadget" },
      versions: [{ name: "v1", served: true, storage: true, schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } } }],
    },
  };
}

describe("manager", () => {
  it("is not ready until its caches sync: a kind whose CRD appears later", { timeout: 90_000 }, async () => {
    const group = `${uniqueName("late")}.example.com`;
    const Gadget = kindOf(`${group}/v1`, "Gadget");
    const op = new Operator({ name: "late", leaderElection: false });
    op.controller(Gadget).reconcile(async () => Action.awaitChange());
    const stop = new AbortController();
    let url = "";
    let running: RunningOperator | undefined;
    const done = op.run({
      client,
      signal: stop.signal,
      handleSignals: false,
      probes: { port: 0, host: "127.0.0.1" },
      logger: quiet,
      onListening: (p) => (url = p.url),
      onStarted: (r) => (running = r),
    });
    try {
      await eventually("probe server listening", async () => url !== "");
      const notReady = await fetch(`${url}/readyz`);
      assert.equal(notReady.status, 503);
      assert.match(await notReady.text(), /caches: not synced/);
      assert.equal((await fetch(`${url}/healthz`)).status, 200);
      assert.equal(running, undefined);

      await client.resource(CustomResourceDefinition).create(crdFor(group) as never);
      await eventually("ready after the CRD appears", async () => (await fetch(`${url}/readyz`)).status === 200, { timeoutMs: 60_000, intervalMs: 250 });
      assert.ok(running, "onStarted was called once synced");
    } finally {
      stop.abort();
      await done;
      await client.resource(CustomResourceDefinition).delete(`gadgets.${group}`).catch(() => {});
    }
  });

  it("fails with an error naming the resource when a cache cannot sync", { timeout: 60_000 }, async () => {
    const Missing = kindOf("nowhere.example.com/v1", "Missing");
    const manager = new Manager(client, { name: "missing", leaderElection: false, cacheSyncTimeoutMs: 2_000, logger: quiet });
    manager.controller(Missing).reconcile(async () => {});
    await assert.rejects(manager.run(new AbortController().signal), (error: unknown) => {
      assert.ok(error instanceof CacheSyncTimeoutError);
      assert.match(error.message, /nowhere\.example\.com\/v1 Missing/);
      assert.match(error.message, /within 2000 ms/);
      return true;
    });
    assert.equal(manager.status.phase, "failed");
  });

  it("leaves no listener on its run signal per dev pause (six pauses and resumes)", { timeout: 120_000 }, async () => {
    const ns = await namespace();
    const manager = new Manager(client, { name: "pauses", logger: quiet, leaderElection: { namespace: ns, leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 200 } });
    manager.controller(ConfigMap).withOptions({ scope: { namespace: ns } }).reconcile(async () => {});
    const stop = new AbortController();
    const done = manager.run(stop.signal);
    try {
      await eventually("leading", async () => manager.status.phase === "leading");
      const listening = getEventListeners(stop.signal, "abort").length;
      for (let i = 0; i < 6; i++) {
        const dev = await DevOverride.take(client, { namespace: ns, name: "pauses-dev" }, { leaderLease: { namespace: ns, name: "pauses-leader" }, leaseDurationMs: 3_000, renewMs: 500 });
        assert.equal(manager.status.phase, "paused");
        await dev.release();
        await eventually(`acting again after pause ${i + 1}`, async () => manager.status.phase === "leading");
      }
      assert.equal(getEventListeners(stop.signal, "abort").length, listening, "listeners on the run signal after six pauses");
    } finally {
      stop.abort();
      await done;
    }
  });

  it("after a dev pause, the controller the builder returned is the one acting: a key added to its queue is reconciled", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    const manager = new Manager(client, { name: "requeue", logger: quiet, leaderElection: { namespace: ns, leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 200 } });
    const seen = new Set<string>();
    const c = manager
      .controller(ConfigMap)
      .withOptions({ scope: { namespace: ns } })
      .reconcile(async (ref) => {
        seen.add(ref.name);
      });
    const stop = new AbortController();
    const done = manager.run(stop.signal);
    try {
      await eventually("leading", async () => manager.status.phase === "leading");
      const dev = await DevOverride.take(client, { namespace: ns, name: "requeue-dev" }, { leaderLease: { namespace: ns, name: "requeue-leader" }, leaseDurationMs: 3_000, renewMs: 500 });
      assert.equal(manager.status.phase, "paused");
      await dev.release();
      await eventually("acting again after the pause", async () => manager.status.phase === "leading");
      c.queue.add(`${ns}/added-by-hand`);
      await eventually("the key added after the pause is reconciled", async () => seen.has("added-by-hand"));
    } finally {
      stop.abort();
      await done;
    }
  });

  it("on shutdown stops taking work and lets reconciles in flight finish", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    let started = 0;
    let finished = 0;
    let aborted = 0;
    const manager = new Manager(client, { name: "graceful", leaderElection: false, logger: quiet, gracefulShutdownTimeoutMs: 10_000 });
    manager
      .controller(ConfigMap)
      .withOptions({ scope: { namespace: ns } })
      .concurrency(4)
      .reconcile(async (_ref, ctx) => {
        started++;
        await new Promise((r) => setTimeout(r, 1_000));
        if (ctx.signal.aborted) aborted++;
        finished++;
      });
    const stop = new AbortController();
    const done = manager.run(stop.signal);
    await manager.whenSynced();
    for (let i = 0; i < 3; i++) await client.resource(ConfigMap).namespace(ns).create({ metadata: { name: `c${i}` } });
    await eventually("3 reconciles running", async () => started >= 3);
    stop.abort();
    await done;
    assert.equal(finished, started, "every reconcile that started, finished");
    assert.equal(aborted, 0);
    assert.equal(manager.status.phase, "stopped");
  });

  it("aborts reconciles still running at the shutdown deadline", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    let sawAbort = false;
    let inFlight = false;
    const manager = new Manager(client, { name: "deadline", leaderElection: false, logger: quiet, gracefulShutdownTimeoutMs: 200 });
    manager
      .controller(ConfigMap)
      .withOptions({ scope: { namespace: ns } })
      .reconcile(async (_ref, ctx) => {
        inFlight = true;
        await new Promise<void>((resolve) => ctx.signal.addEventListener("abort", () => resolve(), { once: true }));
        sawAbort = true;
      });
    const stop = new AbortController();
    const done = manager.run(stop.signal);
    await manager.whenSynced();
    await client.resource(ConfigMap).namespace(ns).create({ metadata: { name: "stuck" } });
    await eventually("reconcile running", async () => inFlight);
    stop.abort();
    await done;
    assert.ok(sawAbort);
  });

  it("reads its own writes: the next reconcile sees the version it wrote", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    const cms = client.resource(ConfigMap).namespace(ns);
    await cms.create({ metadata: { name: "counter" }, data: { n: "0" } });
    const errors: unknown[] = [];
    const manager = new Manager(client, { name: "ryow", leaderElection: false, logger: quiet });
    manager
      .controller(ConfigMap)
      .withOptions({ scope: { namespace: ns }, onError: (_r, e) => errors.push(e) })
      .reconcile(async (_ref, ctx) => {
        const cm = ctx.object;
        if (!cm) return;
        const n = Number(cm.data?.n);
        if (n >= 30) return;
        // A replace with the cached resourceVersion: a stale cache would make this a Conflict.
        await ctx.client.resource(ConfigMap).replace({ ...cm, data: { n: String(n + 1) } });
        return Action.requeueAfter(0);
      });
    const stop = new AbortController();
    const done = manager.run(stop.signal);
    try {
      await eventually("counter at 30", async () => (await cms.get("counter")).data?.n === "30");
      assert.deepEqual(errors, [], "no reconcile read a version older than its own last write");
    } finally {
      stop.abort();
      await done;
    }
  });

  it("reads its own creates: a cache read right after a create sees the new object", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    const seen: (string | undefined)[] = [];
    const manager = new Manager(client, { name: "ryow-create", leaderElection: false, logger: quiet });
    manager
      .controller(ConfigMap)
      .withOptions({ scope: { namespace: ns }, name: "creator" })
      .reconcile(async (ref, ctx) => {
        if (!ctx.object || !ref.name.startsWith("seed-") || ref.name.endsWith("-made")) return;
        const child = `${ref.name}-made`;
        await ctx.client.resource(ConfigMap).namespace(ns).create({ metadata: { name: child }, data: { from: ref.name } });
        seen.push((await ctx.cache.get(ConfigMap, child, ns))?.data?.from);
      });
    const stop = new AbortController();
    const done = manager.run(stop.signal);
    try {
      await manager.whenSynced();
      for (let i = 0; i < 10; i++) await client.resource(ConfigMap).namespace(ns).create({ metadata: { name: `seed-${i}` } });
      await eventually("10 reconciles", async () => seen.length === 10);
      assert.deepEqual(seen.sort(), Array.from({ length: 10 }, (_, i) => `seed-${i}`).sort(), "every read saw the object just created");

    } finally {
      stop.abort();
      await done;
    }
  });

  it("records events once and counts repeats in a series", { timeout: 30_000 }, async () => {
    const ns = await namespace();
    const cm = await client.resource(ConfigMap).namespace(ns).create({ metadata: { name: "subject" } });
    const failures: unknown[] = [];
    const recorder = new EventRecorder(client, { controller: "kubeloop.dev/test", instance: "test-1", onError: (e) => failures.push(e) });
    for (let i = 0; i < 3; i++) recorder.event(cm, { type: "Warning", reason: "Flapping", note: "the same thing again" });
    recorder.event(cm, { reason: "Other", note: "a different event" });
    await recorder.flush();
    assert.deepEqual(failures, []);
    const events = (await client.resource(Event).namespace(ns).list()).items;
    const flapping = events.filter((e) => e.reason === "Flapping");
    assert.equal(flapping.length, 1, "repeats do not create new Events");
    assert.equal(flapping[0]?.series?.count, 3);
    assert.equal(flapping[0]?.regarding?.uid, cm.metadata?.uid);
    assert.equal(flapping[0]?.type, "Warning");
    assert.equal(events.filter((e) => e.reason === "Other").length, 1);
  });

  it("adds and removes finalizers without overwriting a concurrent writer's", { timeout: 30_000 }, async () => {
    const ns = await namespace();
    const cms = client.resource(ConfigMap).namespace(ns);
    const stale = await cms.create({ metadata: { name: "guarded" } });
    // Someone else adds a finalizer after we read the object.
    await cms.patch("guarded", { metadata: { finalizers: ["other.example.com/keep"] } }, { type: "merge" });
    const mine = await addFinalizer(client, ConfigMap, stale, "kubeloop.dev/mine");
    assert.deepEqual(mine.metadata?.finalizers, ["other.example.com/keep", "kubeloop.dev/mine"]);
    // And another one, while we hold an old copy with both.
    await cms.patch("guarded", [{ op: "add", path: "/metadata/finalizers/0", value: "third.example.com/x" }], { type: "json" });
    const after1 = await removeFinalizer(client, ConfigMap, mine, "kubeloop.dev/mine");
    assert.deepEqual(after1?.metadata?.finalizers, ["third.example.com/x", "other.example.com/keep"]);
    await cms.patch("guarded", { metadata: { finalizers: null } }, { type: "merge" });
  });
});
