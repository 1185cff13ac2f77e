// Timers and daemons without a server or real time: a ManualClock drives them, a Store holds
// the objects, and the timers' patches are empty (so nothing is written).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pino } from "pino";
import { offlineClient } from "../../test/support.js";
import { ManualClock } from "../core/clock.js";
import { ConfigMap } from "../core/builtins.js";
import type { KubeObject } from "../core/objects.js";
import { createStore } from "../runtime/store.js";
import { IndexSet } from "./indexes.js";
import type { KindEntry } from "./registry.js";
import { Tasks } from "./tasks.js";
import { EventRecorder } from "../controller/events.js";
import { PermanentError, TemporaryError } from "./errors.js";

const quiet = pino({ level: "silent" });
const cm = (name: string, labels: Record<string, string> = {}): KubeObject => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name, namespace: "ns", uid: `uid-${name}`, labels } });
const settle = () => new Promise((r) => setImmediate(r));

function setup(entry: Partial<KindEntry>, objects: KubeObject[]) {
  const clock = new ManualClock();
  const { store, writer: storeWriter } = createStore<KubeObject>();
  storeWriter.beginInit();
  for (const o of objects) storeWriter.initApply(o);
  storeWriter.initDone();
  const full: KindEntry = { kind: ConfigMap, handlers: [], timers: [], daemons: [], events: [], indexes: [], ...entry };
  const client = offlineClient();
  const recorder = new EventRecorder(client, { controller: "kubeloop.dev/test", instance: "test", onError: () => {} });
  const tasks = new Tasks({ client, logger: quiet, indexes: new IndexSet().view, store: () => store, clock, recorder });
  return { clock, store, storeWriter, tasks, entry: full, client };
}

describe("timers and daemons on a ManualClock", () => {
  it("a timer runs every intervalMs after its initial delay", async () => {
    const ticks: number[] = [];
    const { clock, tasks, entry, client } = setup({}, [cm("a")]);
    entry.timers.push({ id: "t", fn: async () => void ticks.push(clock.now()), options: { intervalMs: 1_000, initialDelayMs: 500 } });
    tasks.ensure(cm("a"), entry);
    await settle();
    for (let i = 0; i < 40; i++) await clock.advance(100);
    assert.deepEqual(ticks, [500, 1_500, 2_500, 3_500]);
    await tasks.stopAll();
    await client.close();
  });

  it("an idle timer waits until the object has not changed for idleMs", async () => {
    const ticks: number[] = [];
    const { clock, tasks, entry, client } = setup({}, [cm("a")]);
    entry.timers.push({ id: "idle", fn: async () => void ticks.push(clock.now()), options: { intervalMs: 500, idleMs: 2_000 } });
    tasks.ensure(cm("a"), entry);
    await settle();
    for (let i = 0; i < 15; i++) await clock.advance(100); // t = 1500
    tasks.touch("uid-a"); // a change at 1500: idle again from here
    for (let i = 0; i < 30; i++) await clock.advance(100); // t = 4500
    assert.deepEqual(ticks, [3_500, 4_000, 4_500]);
    await tasks.stopAll();
    await client.close();
  });

  it("a 30-day timer interval does not fire early; per-object state goes with stop()", async () => {
    const ticks: number[] = [];
    const { clock, tasks, entry, client } = setup({}, [cm("a")]);
    entry.timers.push({ id: "monthly", fn: async () => void ticks.push(clock.now()), options: { intervalMs: 30 * 24 * 3600 * 1000 } });
    tasks.ensure(cm("a"), entry);
    await settle();
    await clock.advance(29 * 24 * 3600 * 1000);
    assert.deepEqual(ticks, [0]);
    await clock.advance(24 * 3600 * 1000);
    assert.deepEqual(ticks, [0, 30 * 24 * 3600 * 1000]);
    assert.equal(tasks.size, 1);
    await tasks.stop("uid-a");
    assert.equal(tasks.size, 0);
    await client.close();
  });

  it("a daemon's signal aborts when the object stops matching its filters; not started for objects not cached", async () => {
    const running = new Set<string>();
    const { tasks, entry, client } = setup({}, [cm("a", { run: "yes" })]);
    entry.daemons.push({
      id: "d",
      fn: async ({ object, signal }) => {
        running.add(object.metadata!.name!);
        await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
        running.delete(object.metadata!.name!);
      },
      options: { labels: { run: "yes" } },
    });
    tasks.ensure(cm("a", { run: "yes" }), entry);
    tasks.ensure(cm("ghost", { run: "yes" }), entry); // not in the cache: its delete came first
    await settle();
    assert.deepEqual([...running], ["a"]);
    tasks.ensure(cm("a", { run: "no" }), entry);
    await settle();
    assert.deepEqual([...running], []);
    assert.equal(tasks.size, 0, "no state left for an object without tasks");
    await tasks.stopAll();
    await client.close();
  });

  it("a daemon's TemporaryError restarts it after that delay, not the backoff; a TerminalError ends it", async () => {
    const starts: number[] = [];
    const { clock, tasks, entry, client } = setup({}, [cm("a")]);
    entry.daemons.push({
      id: "d",
      fn: async ({ retries }) => {
        starts.push(clock.now());
        if (retries === 0) throw new TemporaryError("later", { delayMs: 2_000 });
        if (retries === 1) throw new Error("plain");
        throw new PermanentError("give up");
      },
      options: { backoffMs: 10_000 },
    });
    tasks.ensure(cm("a"), entry);
    await settle();
    for (let i = 0; i < 200; i++) await clock.advance(100);
    assert.deepEqual(starts, [0, 2_000, 12_000], "TemporaryError's delay, then the backoff, then no restart after a PermanentError");
    await tasks.stopAll();
    await client.close();
  });

  it("a daemon reads the object's current state, not a snapshot from its start", async () => {
    const seen: unknown[] = [];
    let next!: () => void;
    const { tasks, entry, client, store, storeWriter } = setup({}, [{ ...cm("a"), data: { v: "1" } } as KubeObject]);
    entry.daemons.push({
      id: "d",
      // ctx.object is a getter: read it when needed (a destructured copy is the value then).
      fn: async (ctx) => {
        seen.push((ctx.object as { data?: { v?: string } }).data?.v);
        await new Promise<void>((r) => (next = r));
        seen.push((ctx.object as { data?: { v?: string } }).data?.v);
        await new Promise((r) => ctx.signal.addEventListener("abort", r, { once: true }));
      },
      options: {},
    });
    tasks.ensure(store.get("ns/a")!, entry);
    await settle();
    storeWriter.apply({ ...cm("a"), data: { v: "2" } } as KubeObject);
    next();
    await settle();
    assert.deepEqual(seen, ["1", "2"]);
    await tasks.stopAll();
    await client.close();
  });
});
