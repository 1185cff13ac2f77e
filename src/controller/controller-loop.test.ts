// The reconcile loop without a server: scripted informer events, real queue, real clock for
// the short delays these tests need (each waits on a condition with a deadline).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pino } from "pino";
import { offlineClient, until } from "../../test/support.js";
import { ConfigMap, Secret } from "../core/builtins.js";
import { kindOf, type KubeObject } from "../core/objects.js";
import { InformerFactory } from "../runtime/informer.js";
import { ScriptedEvents } from "../testing/scripted-events.js";
import type { Controller } from "./controller.js";
import { controller } from "./builder.js";
import { defaultErrorPolicy } from "./controller.js";
import { and, not, or } from "./predicates.js";
import { TerminalError } from "../core/errors.js";
import { Action, ReconcileTimeoutError, type ControllerObserver, type ObjectRef } from "./reconcile.js";
import { WrittenVersions } from "./read-your-writes.js";
import { ManualClock } from "../core/clock.js";

const quiet = pino({ level: "silent" });
const cm = (name: string, namespace = "ns"): KubeObject => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace, uid: `uid-${namespace}-${name}`, resourceVersion: "1" } });


function setup(objects: KubeObject[]) {
  const scripted = new ScriptedEvents();
  scripted.list(ConfigMap, objects);
  const client = offlineClient();
  const informers = new InformerFactory(client, { source: scripted.source });
  return { scripted, client, informers };
}

describe("reconcile loop", () => {
  it("16 reconciles in flight at once raise no MaxListenersExceededWarning (it read as a leak in users' logs)", { timeout: 20_000 }, async () => {
    const { client, informers } = setup(Array.from({ length: 16 }, (_, i) => cm(`w${i}`)));
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
    process.on("warning", onWarning);
    const release: (() => void)[] = [];
    const c = controller(client, ConfigMap)
      .withOptions({ informers, logger: quiet, reconcileTimeoutMs: 60_000 })
      .concurrency(16)
      .reconcile(() => new Promise<void>((r) => release.push(r)));
    try {
      await c.start();
      await until("16 in flight", () => release.length === 16);
      await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
      for (const r of release) r();
      await c.stop(1_000);
    } finally {
      process.off("warning", onWarning);
      await informers.stop();
      await client.close();
    }
    assert.deepEqual(warnings.filter((w) => w.startsWith("MaxListenersExceededWarning")), []);
  });

  it("ctx.cache reads honour the reconcile's signal when given none: a stop ends a read waiting on a cache that never fills", { timeout: 20_000 }, async () => {
    const { client, informers } = setup([cm("a")]);
    const outcomes: string[] = [];
    const c = controller(client, ConfigMap)
      .withOptions({ informers, logger: quiet })
      .reconcile(async (ref, ctx) => {
        outcomes.push("reading");
        try {
          await ctx.cache.get(Secret, ref.name, ref.namespace); // Secrets are never listed here: the cache never syncs
          outcomes.push("read");
        } catch (error) {
          outcomes.push(`ended: ${(error as Error).name}`);
          throw error;
        }
      });
    try {
      await c.start();
      await until("the read waits", () => outcomes.includes("reading"));
      const result = await c.stop(2_000);
      assert.equal(result.abandoned, 0, "the reconcile returned at the stop");
      assert.ok(outcomes.some((o) => o.startsWith("ended")), outcomes.join(", "));
    } finally {
      await informers.stop();
      await client.close();
    }
  });

  it("a backlog of quick reconciles does not starve the event loop: timers and I/O run while it drains", { timeout: 60_000 }, async () => {
    // 20,000 objects listed at once, each reconciled without awaiting anything: the workers
    // resolve promise after promise, and without yielding, no timer (a Lease renewal) and no
    // socket read (the watch) would run until the whole backlog is done.
    const total = 20_000;
    const { client, informers } = setup(Array.from({ length: total }, (_, i) => cm(`c${i}`)));
    let reconciled = 0;
    const c = controller(client, ConfigMap)
      .withOptions({ informers, logger: quiet })
      .concurrency(4)
      .reconcile(async () => {
        reconciled++;
      });
    await c.start();
    await until("the backlog starts", () => reconciled > 0, 10_000);
    const atTimer = await new Promise<number>((resolve) => setTimeout(() => resolve(reconciled), 0));
    await until("the backlog is done", () => reconciled === total, 50_000);
    await c.stop(1_000);
    await informers.stop();
    await client.close();
    assert.ok(atTimer < total, `a timer set when the backlog started fired only after all ${total} reconciles`);
  });

  it("starts again after stop() (a Manager's dev pause): the same instance reconciles, and keys added to its queue are not lost", { timeout: 20_000 }, async () => {
    const { scripted, client, informers } = setup([cm("a")]);
    const seen: string[] = [];
    const c = controller(client, ConfigMap)
      .withOptions({ informers, logger: quiet })
      .reconcile(async (ref) => {
        seen.push(ref.name);
      });
    try {
      await c.start();
      await until("a reconciled", () => seen.includes("a"));
      await assert.rejects(c.start(), /already started/, "a running controller is not started twice (two sets of workers)");
      await c.stop(1_000);
      seen.length = 0;
      await c.start();
      await until("every object queued again on the second start", () => seen.includes("a"));
      c.queue.add("ns/by-hand"); // what a user holding the controller does
      scripted.apply(ConfigMap, cm("b"));
      await until("a key added by hand and a new object, both after the restart", () => seen.includes("by-hand") && seen.includes("b"));
    } finally {
      await c.stop(1_000);
      await informers.stop();
      await client.close();
    }
  });

  it("a start() that fails (its caches did not sync in time) leaves nothing behind: start() again works", { timeout: 20_000 }, async () => {
    const scripted = new ScriptedEvents(); // no list yet: the cache cannot sync
    const client = offlineClient();
    const informers = new InformerFactory(client, { source: scripted.source });
    let reconciles = 0;
    let filtered = 0; // the event filter runs once per event per subscription
    const c = controller(client, ConfigMap)
      .withOptions({ informers, logger: quiet })
      .withEventFilter(() => {
        filtered++;
        return true;
      })
      .reconcile(async () => {
        reconciles++;
      });
    try {
      const giveUp = new AbortController();
      setTimeout(() => giveUp.abort(new Error("caches not synced")), 50); // AbortSignal.timeout() would not keep the test alive
      await assert.rejects(c.start(giveUp.signal), /caches not synced/);
      scripted.list(ConfigMap, [cm("a")]);
      await c.start();
      await until("a reconciled", () => reconciles >= 1);
      // The failed attempt's subscription is gone: a change is seen by one subscription.
      filtered = 0;
      scripted.apply(ConfigMap, { ...cm("b"), metadata: { ...cm("b").metadata, resourceVersion: "2" } });
      await until("b reconciled", () => reconciles >= 2);
      assert.equal(filtered, 1, "the event went through one subscription");
    } finally {
      await c.stop(1_000);
      await informers.stop();
      await client.close();
    }
  });

  it("a reconcile timeout aborts the signal but keeps the key owned until the reconcile returns", { timeout: 20_000 }, async () => {
    const { scripted, client, informers } = setup([cm("a")]);
    let running = 0;
    let most = 0;
    let calls = 0;
    const release: (() => void)[] = [];
    const signals: AbortSignal[] = [];
    const c = controller(client, ConfigMap)
      .withOptions({ informers, logger: quiet, reconcileTimeoutMs: 20, queue: { rateLimit: { baseDelayMs: 1, overall: false } } })
      .concurrency(4)
      .reconcile(async (_ref, ctx) => {
        calls++;
        running++;
        most = Math.max(most, running);
        signals.push(ctx.signal);
        await new Promise<void>((r) => release.push(r)); // ignores its signal
        running--;
      });
    await c.start();
    await until("the first reconcile", () => calls === 1);
    await until("its timeout", () => signals[0]?.aborted === true);
    // Changes keep coming while it overruns; a second worker must not take the key.
    for (let i = 2; i < 10; i++) {
      scripted.apply(ConfigMap, { ...cm("a"), metadata: { ...cm("a").metadata, resourceVersion: String(i) } });
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(calls, 1, `the key was started again while its reconcile still ran (${calls} starts, ${most} at once)`);
    release.shift()?.();
    await until("the key processed again after the overrun", () => calls === 2);
    assert.equal(most, 1);
    for (const r of release.splice(0)) r();
    await c.stop(1_000);
    await client.close();
  });

  it("reports a reconcile that ignores its aborted signal (log and metric hook)", { timeout: 20_000 }, async () => {
    const { client, informers } = setup([cm("slow")]);
    const stuck: number[] = [];
    const observer: ControllerObserver = { stuck: (_c, delta) => stuck.push(delta) };
    let release!: () => void;
    const c = controller(client, ConfigMap)
      .withOptions({ informers, logger: quiet, reconcileTimeoutMs: 10, stuckAfterMs: 10, observer })
      .reconcile(() => new Promise<void>((r) => (release = r)));
    await c.start();
    await until("reported as stuck", () => stuck.length === 1);
    release();
    await until("no longer stuck", () => stuck.length === 2);
    assert.deepEqual(stuck, [1, -1]);
    await c.stop(1_000);
    await client.close();
  });

  it("on stop, starts no queued key and never more than `concurrency` reconciles at once", { timeout: 20_000 }, async () => {
    const objects = Array.from({ length: 50 }, (_, i) => cm(`k${i}`));
    const { client, informers } = setup(objects);
    let running = 0;
    let most = 0;
    let started = 0;
    let startedAfterStop = 0;
    let stopping = false;
    let release!: () => void;
    const c = controller(client, ConfigMap)
      .withOptions({ informers, logger: quiet })
      .concurrency(1)
      .reconcile(async () => {
        started++;
        if (stopping) startedAfterStop++;
        running++;
        most = Math.max(most, running);
        if (started === 1) await new Promise<void>((r) => (release = r));
        running--;
      });
    await c.start();
    await until("the first reconcile", () => started === 1);
    stopping = true;
    const stopped = c.stop(5_000);
    release();
    await stopped;
    assert.equal(startedAfterStop, 0, `${startedAfterStop} queued keys were started after stop()`);
    assert.equal(most, 1);
    assert.equal(running, 0, "nothing runs after stop() resolved");
    await client.close();
  });

  it("a reconcile that first reads ctx.signal after its timeout, or after the stop, finds it aborted with the reason", { timeout: 20_000 }, async () => {
    const { client, informers } = setup([cm("late")]);
    const clock = new ManualClock();
    const reasons: unknown[] = [];
    let release!: () => void;
    let calls = 0;
    const c = controller(client, ConfigMap)
      .withOptions({ informers, logger: quiet, clock, reconcileTimeoutMs: 20, stuckAfterMs: 60_000 })
      .reconcile(async (_ref, ctx) => {
        calls++;
        await new Promise<void>((r) => (release = r)); // past the timeout before looking
        reasons.push(ctx.signal.aborted ? ctx.signal.reason : "not aborted");
      });
    await c.start();
    await until("the reconcile started", () => calls === 1);
    await clock.advance(20); // the timeout passes
    release();
    await until("it looked", () => reasons.length === 1);
    assert.ok(reasons[0] instanceof ReconcileTimeoutError, `a ReconcileTimeoutError, got ${String(reasons[0])}`);
    await c.stop(1_000);
    await client.close();
  });

  it("a destructured context works (its signal and logger are made on first read), and each reconcile has a signal of its own", { timeout: 20_000 }, async () => {
    const { scripted, client, informers } = setup([cm("d")]);
    const seen: { signal: AbortSignal; name: string | undefined; retries: number; logs: boolean; canApply: boolean }[] = [];
    const c = controller(client, ConfigMap)
      .withOptions({ informers, logger: quiet })
      .reconcile(async (_ref, { signal, logger, object, retries, apply, event }) => {
        seen.push({ signal, name: object?.metadata?.name, retries, logs: typeof logger.info === "function", canApply: typeof apply === "function" && typeof event === "function" });
        signal.addEventListener("abort", () => {}); // a listener left behind stays on this reconcile's signal
      });
    await c.start();
    await until("the first reconcile", () => seen.length === 1);
    scripted.apply(ConfigMap, { ...cm("d"), metadata: { ...cm("d").metadata, resourceVersion: "2" } });
    await until("the second reconcile", () => seen.length === 2);
    await c.stop(1_000);
    await client.close();
    assert.deepEqual(
      seen.map(({ name, retries, logs, canApply }) => ({ name, retries, logs, canApply })),
      [1, 2].map(() => ({ name: "d", retries: 0, logs: true, canApply: true })),
    );
    assert.ok(seen[0]?.signal instanceof AbortSignal);
    assert.notEqual(seen[0]?.signal, seen[1]?.signal, "two reconciles shared one signal");
  });

  it("at the shutdown deadline aborts the signals, then abandons a reconcile that ignores them", { timeout: 20_000 }, async () => {
    const { client, informers } = setup([cm("x")]);
    let signal: AbortSignal | undefined;
    const c = controller(client, ConfigMap)
      .withOptions({ informers, logger: quiet, unwindMs: 20 })
      .reconcile(async (_ref, ctx) => {
        signal = ctx.signal;
        await new Promise(() => {}); // never returns
      });
    await c.start();
    await until("the reconcile", () => signal !== undefined);
    const result = await c.stop(20);
    assert.equal(signal?.aborted, true);
    assert.equal(result.abandoned, 1);
    await client.close();
  });

  it("started again after a stop that abandoned a reconcile, it reconciles that key only once the abandoned reconcile returned", { timeout: 20_000 }, async () => {
    const { client, informers } = setup([cm("a"), cm("b")]);
    let release: (() => void) | undefined;
    const starts = new Map<string, number>();
    let runningA = 0;
    let mostA = 0;
    const c = controller(client, ConfigMap)
      .withOptions({ informers, logger: quiet, unwindMs: 20 })
      .reconcile(async (ref) => {
        starts.set(ref.name, (starts.get(ref.name) ?? 0) + 1);
        if (ref.name !== "a") return;
        runningA++;
        mostA = Math.max(mostA, runningA);
        // The first reconcile of "a" ignores its signal until released.
        if (starts.get("a") === 1) await new Promise<void>((resolve) => (release = resolve));
        runningA--;
      });
    try {
      await c.start();
      await until("a's first reconcile runs (and keeps the one worker)", () => release !== undefined);
      assert.equal((await c.stop(20)).abandoned, 1);
      await c.start();
      // One worker: "a" comes first in the queue; had the new run not held it, "a" would start
      // again (beside the abandoned one) before "b".
      await until("b reconciled by the new run", () => starts.get("b") === 1);
      assert.equal(starts.get("a"), 1, "a is not reconciled while its abandoned reconcile runs");
      release?.();
      await until("a reconciled by the new run once the old one returned", () => starts.get("a") === 2);
      assert.equal(mostA, 1, "never two reconciles of a at once");
    } finally {
      release?.();
      await c.stop(1_000);
      await informers.stop();
      await client.close();
    }
  });

  it("Action.requeueAfter(30 days) waits (it used to fire after 1 ms, again and again)", { timeout: 20_000 }, async () => {
    const { client, informers } = setup([cm("later")]);
    let calls = 0;
    const c = controller(client, ConfigMap)
      .withOptions({ informers, logger: quiet })
      .reconcile(async () => {
        calls++;
        return Action.requeueAfter(30 * 24 * 3600 * 1000);
      });
    await c.start();
    await until("the first reconcile", () => calls === 1);
    await new Promise((r) => setTimeout(r, 100)); // checks that nothing happens: a fixed wait is the point
    assert.equal(calls, 1, `${calls} reconciles within 100 ms`);
    await c.stop(1_000);
    await client.close();
  });

  it("resyncMs queues every object again at least that often (jittered up to +10 %), until stopped", { timeout: 20_000 }, async () => {
    const { client, informers } = setup([cm("a"), cm("b")]);
    const clock = new ManualClock();
    const calls = new Map<string, number>();
    const c = controller(client, ConfigMap)
      .withOptions({ informers, logger: quiet, clock, resyncMs: 60_000 })
      .reconcile(async (ref) => void calls.set(ref.name, (calls.get(ref.name) ?? 0) + 1));
    await c.start();
    await until("the first reconciles", () => calls.get("a") === 1 && calls.get("b") === 1);
    await clock.advance(59_000);
    assert.deepEqual([calls.get("a"), calls.get("b")], [1, 1], "not before the period");
    await clock.advance(7_000); // past 60 s + 10 %
    await until("every object again", () => calls.get("a") === 2 && calls.get("b") === 2);
    await c.stop(1_000);
    await clock.advance(120_000);
    assert.deepEqual([calls.get("a"), calls.get("b")], [2, 2], "nothing after stop");
    await client.close();
  });

  it("requeueAfterRelist queues every object after a relist, even unchanged ones", { timeout: 20_000 }, async () => {
    const { client, informers, scripted } = setup([cm("a"), cm("b")]);
    const calls = new Map<string, number>();
    const c = controller(client, ConfigMap)
      .withOptions({ informers, logger: quiet, requeueAfterRelist: true })
      .reconcile(async (ref) => void calls.set(ref.name, (calls.get(ref.name) ?? 0) + 1));
    await c.start();
    await until("the first reconciles", () => calls.get("a") === 1 && calls.get("b") === 1);
    scripted.emit(ConfigMap, { type: "relisted" }); // a relist (after a 410) that found no difference
    await until("both again", () => calls.get("a") === 2 && calls.get("b") === 2);
    await c.stop(1_000);
    await client.close();
  });

  it("owns(): a cluster-scoped owner of namespaced children gets its own key (no namespace)", { timeout: 20_000 }, async () => {
    const Tenant = kindOf("example.com/v1", "Tenant", { plural: "tenants", namespaced: false });
    const scripted = new ScriptedEvents();
    scripted.list(Tenant, [{ apiVersion: "example.com/v1", kind: "Tenant", metadata: { name: "acme", uid: "t1", resourceVersion: "1" } }]);
    scripted.list(ConfigMap, []);
    const client = offlineClient();
    const informers = new InformerFactory(client, { source: scripted.source });
    const seen: { ref: ObjectRef; found: boolean }[] = [];
    const c: Controller<KubeObject> = controller(client, Tenant)
      .withOptions({ informers, logger: quiet })
      .owns(ConfigMap)
      .reconcile(async (ref, ctx) => void seen.push({ ref, found: ctx.object !== undefined }));
    await c.start();
    await until("the initial reconcile", () => seen.length === 1);
    scripted.apply(ConfigMap, {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: "child", namespace: "team-a", uid: "c1", resourceVersion: "2", ownerReferences: [{ apiVersion: "example.com/v1", kind: "Tenant", name: "acme", uid: "t1", controller: true }] },
    });
    await until("the owner reconciled for its child", () => seen.length === 2);
    assert.deepEqual(seen[1], { ref: { name: "acme" }, found: true });
    await c.stop(1_000);
    await client.close();
  });
});

describe("read-your-own-writes", () => {
  /** `cm(name)` at resourceVersion `rv`. */
  const at = (name: string, rv: number, uid?: string): KubeObject => ({ ...cm(name), metadata: { ...cm(name).metadata, resourceVersion: String(rv), ...(uid ? { uid } : {}) } });
  /** A synced informer holding `w`, and the versions it follows. */
  async function observed() {
    const { scripted, client, informers } = setup([cm("w")]);
    const informer = informers.informer<KubeObject>(ConfigMap);
    informer.start();
    await informer.waitUntilReady();
    const writes = new WrittenVersions();
    writes.observe(informer);
    return { scripted, client, informers, informer, writes };
  }

  it("a write whose answer comes after the object's delete event was seen expects nothing (its key waited out a minute of postponed reconciles)", { timeout: 10_000 }, async () => {
    const { scripted, client, informers, informer, writes } = await observed();
    // The watch (one connection) reports the delete at 10 before the write's answer (another) arrives with 9.
    scripted.delete(ConfigMap, at("w", 10));
    await until("the delete applied", () => informer.store.get("ns/w") === undefined);
    writes.record(ConfigMap, at("w", 9));
    assert.equal(await writes.settle(informer, "ns/w", 200), true, "settled at once: nothing to wait for");
    assert.equal(writes.pending, 0);
    // A write newer than the delete (the name taken by a new object) is still waited for.
    writes.record(ConfigMap, at("w", 11, "new"));
    assert.equal(writes.pending, 1);
    await informers.stop();
    await client.close();
  });

  it("settle() with an already aborted signal returns at once (it used to wait out its timeout)", { timeout: 10_000 }, async () => {
    const { client, informers, informer, writes } = await observed();
    writes.record(ConfigMap, at("w", 9));
    const started = Date.now();
    const settled = await writes.settle(informer, "ns/w", 5_000, AbortSignal.abort());
    assert.equal(settled, false);
    assert.ok(Date.now() - started < 1_000, `waited ${Date.now() - started} ms`);
    await informers.stop();
    await client.close();
  });
});

describe("read-your-own-writes, a lagging cache", () => {
  it("a reconcile never runs on a cached object older than this process's own write: past settleMs it is requeued, and runs once the write arrives", { timeout: 10_000 }, async () => {
    const { scripted, client, informers } = setup([cm("w")]);
    const writes = new WrittenVersions();
    writes.record(ConfigMap, { ...cm("w"), metadata: { ...cm("w").metadata, resourceVersion: "9" } });
    const seen: string[] = [];
    const c = controller(client, ConfigMap)
      .withOptions({ informers, writes, settleMs: 30, logger: quiet, queue: { rateLimit: { baseDelayMs: 1, overall: false } } })
      .reconcile(async (_ref, ctx) => {
        seen.push(ctx.object?.metadata?.resourceVersion ?? "gone");
      });
    await c.start();
    await new Promise((r) => setTimeout(r, 200)); // several settle windows pass with the cache behind
    scripted.apply(ConfigMap, { ...cm("w"), metadata: { ...cm("w").metadata, resourceVersion: "9" } });
    await until("the reconcile on the written version", () => seen.includes("9"));
    await c.stop(1_000);
    await client.close();
    assert.deepEqual(seen.filter((v) => v !== "9"), [], `reconciled on a stale cached object: ${seen.join(", ")}`);
  });
});

describe("cached objects", () => {
  it("a reconciler cannot change the shared cache in place (objects are frozen)", { timeout: 10_000 }, async () => {
    const { client, informers } = setup([cm("frozen")]);
    let thrown: unknown;
    let done = false;
    const c = controller(client, ConfigMap)
      .withOptions({ informers, logger: quiet })
      .reconcile(async (_ref, ctx) => {
        try {
          (ctx.object!.metadata as { labels?: Record<string, string> }).labels = { sneaky: "yes" };
        } catch (error) {
          thrown = error;
        }
        done = true;
      });
    await c.start();
    await until("the reconcile", () => done);
    assert.ok(thrown instanceof TypeError, "writing to a cached object throws");
    assert.equal(informers.informer(ConfigMap).store.get("ns/frozen")?.metadata?.labels, undefined, "the cache is unchanged");
    await c.stop(1_000);
    await client.close();
  });
});

describe("error policy", () => {
  it("decides what a failure means: requeue after, await change, or backoff; TerminalError waits by default", { timeout: 10_000 }, async () => {
    const { client, informers } = setup([cm("p")]);
    const calls: number[] = [];
    const seen: unknown[] = [];
    const c = controller(client, ConfigMap)
      .withOptions({ informers, logger: quiet })
      .errorPolicy((error, ctx) => {
        seen.push({ message: (error as Error).message, retries: ctx.retries, ref: ctx.ref });
        return calls.length < 3 ? Action.requeueAfter(1) : Action.awaitChange();
      })
      .reconcile(async () => {
        calls.push(Date.now());
        throw new Error("boom");
      });
    await c.start();
    await until("three attempts, then waiting for a change", () => calls.length === 3);
    assert.deepEqual(seen[0], { message: "boom", retries: 0, ref: { namespace: "ns", name: "p" } });
    await c.stop(1_000);
    await client.close();
  });

  it("a TerminalError thrown by a reconciler is not retried by the default policy", async () => {
    assert.equal(defaultErrorPolicy(new TerminalError("no"), { ref: { name: "x" }, retries: 0, logger: quiet }).backoff, undefined);
    assert.equal(defaultErrorPolicy(new Error("maybe"), { ref: { name: "x" }, retries: 0, logger: quiet }).backoff, true);
  });
});

describe("predicate combinators", () => {
  it("and, or, not", () => {
    const yes = () => true;
    const no = () => false;
    const e = { type: "apply" as const, object: cm("x") };
    assert.equal(and(yes, yes)(e), true);
    assert.equal(and(yes, no)(e), false);
    assert.equal(or(no, yes)(e), true);
    assert.equal(or(no, no)(e), false);
    assert.equal(not(no)(e), true);
  });
});

describe("withEventFilter", () => {
  it("filters the events of every watch (own kind and owned children), unlike withPredicates", { timeout: 10_000 }, async () => {
    const Owner = kindOf("example.com/v1", "Owner", { plural: "owners", namespaced: true });
    const scripted = new ScriptedEvents();
    scripted.list(Owner, [{ apiVersion: "example.com/v1", kind: "Owner", metadata: { name: "o", namespace: "ns", uid: "o1", resourceVersion: "1" } }]);
    scripted.list(ConfigMap, []);
    const client = offlineClient();
    const informers = new InformerFactory(client, { source: scripted.source });
    const seen: string[] = [];
    const notQuiet = (e: { object?: KubeObject }) => e.object?.metadata?.labels?.quiet !== "yes";
    const c = controller(client, Owner)
      .withOptions({ informers, logger: quiet })
      .owns(ConfigMap)
      .withEventFilter((e) => notQuiet(e as { object?: KubeObject }))
      .reconcile(async (ref) => void seen.push(ref.name));
    await c.start();
    await until("the initial reconcile", () => seen.length === 1);
    const child = (name: string, labels: Record<string, string>) => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: "ns", uid: name, resourceVersion: "2", labels, ownerReferences: [{ apiVersion: "example.com/v1", kind: "Owner", name: "o", uid: "o1", controller: true }] } });
    scripted.apply(ConfigMap, child("hushed", { quiet: "yes" }));
    await new Promise((r) => setTimeout(r, 30)); // checks that nothing happens
    assert.deepEqual(seen, ["o"], "the quiet child's event was filtered");
    scripted.apply(ConfigMap, child("loud", {}));
    await until("the loud child's owner reconciled", () => seen.length === 2);
    await c.stop(1_000);
    await client.close();
  });
});

describe("the reconcile's cache", () => {
  it("reads the kinds the controller watches through its own scope, never a cluster-wide informer; outside it, a named error", { timeout: 20_000 }, async () => {
    const scripted = new ScriptedEvents();
    scripted.list(ConfigMap, [cm("x", "a"), cm("y", "b")]);
    const requested: string[] = [];
    const informers = new InformerFactory(offlineClient(), {
      source: (kind, scope, signal) => {
        requested.push(`${kind.kind} ${scope.namespace ?? "(all)"}`);
        return scripted.source(kind, scope, signal);
      },
    });
    const seen: string[] = [];
    let outside: unknown;
    const c = controller(offlineClient(), ConfigMap)
      .withOptions({ informers, logger: quiet, scope: { namespaces: ["a", "b"] } })
      .reconcile(async (ref, ctx) => {
        if (ref.name !== "x") return;
        seen.push(String((await ctx.cache.list(ConfigMap, { namespace: "a" })).length), String((await ctx.cache.get(ConfigMap, "y", "b"))?.metadata?.name));
        outside = await ctx.cache.list(ConfigMap, { namespace: "c" }).catch((e: unknown) => e);
      });
    await c.start();
    await until("the reconcile read its cache", () => outside !== undefined);
    await c.stop();
    assert.deepEqual(seen, ["1", "y"]);
    assert.ok(!requested.includes("ConfigMap (all)"), `a cluster-wide ConfigMap informer was started: ${requested.join(", ")}`);
    assert.match(String(outside), /namespace c is outside the cache's namespaces a, b/);
  });
});

describe("controller options", () => {
  for (const [options, message] of [
    [{ concurrency: 0 }, /concurrency must be an integer ≥ 1 \(got 0\)/],
    [{ reconcileTimeoutMs: 0 }, /reconcileTimeoutMs must be a finite number > 0 \(got 0\)/],
    [{ resyncMs: Number.NaN }, /resyncMs must be a finite number > 0 \(got NaN\)/],
    [{ unwindMs: -1 }, /unwindMs must be a finite number ≥ 0 \(got -1\)/],
  ] as [Record<string, number>, RegExp][]) {
    it(`refuses ${JSON.stringify(options, (_k, v: unknown) => (typeof v === "number" && Number.isNaN(v) ? "NaN" : v))} when declared, naming it (concurrency 0 started no worker)`, () => {
      const client = offlineClient();
      assert.throws(() => controller(client, ConfigMap).withOptions(options), (e: unknown) => e instanceof RangeError && message.test(e.message));
    });
  }
});
