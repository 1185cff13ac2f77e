// The kopf-level handlers against the real API server: causes, order, progress and diff base
// in annotations, status from return values, errors and retries, finalizers, timers, daemons,
// filters, indexes, events from logs.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import {
  Client,
  CustomResourceDefinition,
  Event,
  Namespace,
  NotFoundError,
  Operator,
  PermanentError,
  TemporaryError,
  Type,
  defineResource,
  type DiffOp,
  type OperatorOptions,
} from "../src/entries/index.js";
import { eventually, releaseSharedCluster, sharedCluster, uniqueName } from "./helpers.js";

const quiet = pino({ level: "silent" });
const Widget = defineResource({
  group: `${uniqueName("hw")}.kubeloop.dev`,
  version: "v1",
  kind: "Widget",
  spec: Type.Object({ size: Type.Integer(), color: Type.Optional(Type.String()) }),
  status: Type.Unknown(),
});
const PREFIX = (name: string) => `${name}.kubeloop.dev`;

let client: Client;
const stops: (() => Promise<void>)[] = [];

before(async () => {
  client = await Client.load({ path: (await sharedCluster()).kubeconfigPath, rateLimit: false });
  await client.resource(CustomResourceDefinition).create(Widget.crd);
  await eventually("CRD established", async () =>
    (await client.resource(CustomResourceDefinition).get(Widget.crd.metadata!.name!)).status?.conditions?.some((c) => c.type === "Established" && c.status === "True"),
  );
  await eventually("served", async () => (await client.resource(Widget).list()) && true);
});
after(async () => {
  for (const stop of stops) await stop();
  await client?.resource(CustomResourceDefinition).delete(Widget.crd.metadata!.name!).catch(() => {});
  await client?.close();
  await releaseSharedCluster();
});

/** Runs an operator in this process until the returned stop() is called. */
async function start(op: Operator): Promise<() => Promise<void>> {
  const stop = new AbortController();
  let synced!: () => void;
  const ready = new Promise<void>((r) => (synced = r));
  const done = op.run({ client, signal: stop.signal, handleSignals: false, probes: false, logger: quiet, leaderElection: false, onStarted: () => synced() });
  await Promise.race([ready, done]);
  const fn = async () => {
    stop.abort();
    await done;
  };
  stops.push(fn);
  return fn;
}

async function namespace(): Promise<string> {
  const ns = uniqueName("hdl");
  await client.resource(Namespace).create({ metadata: { name: ns } });
  return ns;
}

function operator(name: string, options: Partial<OperatorOptions> = {}): Operator {
  return new Operator({ name, leaderElection: false, probes: false, ...options });
}

describe("handlers", () => {
  it("runs create handlers in order, once; writes status, patch, diff base; clears progress", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    const calls: string[] = [];
    const op = operator("h-create", { namespaces: [ns] });
    op.on.create(Widget, async function first({ spec, patch }) {
      calls.push(`first:${spec.size}`);
      patch.metadata.labels.handled = "yes";
      return { message: "first done" };
    });
    op.on.create(Widget, async function second({ logger }) {
      calls.push("second");
      logger.info("second handler says hello");
      return 42;
    });
    const stop = await start(op);
    const widgets = client.resource(Widget).namespace(ns);
    await widgets.create({ metadata: { name: "w" }, spec: { size: 3 } });
    const done = await eventually("diff base written", async () => {
      const w = await widgets.get("w");
      return w.metadata?.annotations?.[`${PREFIX("h-create")}/last-handled`] ? w : undefined;
    });
    assert.deepEqual(calls, ["first:3", "second"]);
    assert.equal(done.metadata?.labels?.handled, "yes");
    assert.deepEqual((done.status as Record<string, unknown>).first, { message: "first done" });
    assert.equal((done.status as Record<string, unknown>).second, 42);
    assert.equal(done.metadata?.annotations?.[`${PREFIX("h-create")}/progress`], undefined, "progress cleared");
    assert.equal(done.metadata?.finalizers, undefined, "no delete handler, timer or daemon: no finalizer");
    assert.deepEqual(JSON.parse(done.metadata!.annotations![`${PREFIX("h-create")}/last-handled`]!), { metadata: { labels: { handled: "yes" } }, spec: { size: 3 } });
    await eventually("an Event from the handler's log", async () =>
      (await client.resource(Event).namespace(ns).list()).items.some((e) => e.reason === "Logging" && e.note === "second handler says hello"),
    );
    // A metadata-only change of our own (label written by the handler) is not an update; nothing reruns.
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(calls.length, 2);
    await stop();
  });

  it("handles updates with a diff, field handlers with old/new, and an update made while stopped", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    const updates: DiffOp[][] = [];
    const fields: [unknown, unknown][] = [];
    const make = () => {
      const op = operator("h-update", { namespaces: [ns] });
      op.on.create(Widget, async () => {});
      op.on.update(Widget, async ({ diff }) => void updates.push(diff));
      op.on.field(Widget, "spec.color", async ({ old, new: next }) => void fields.push([old, next]));
      return op;
    };
    let stop = await start(make());
    const widgets = client.resource(Widget).namespace(ns);
    await widgets.create({ metadata: { name: "u" }, spec: { size: 1, color: "red" } });
    await eventually("field handler on create", async () => fields.length === 1);
    assert.deepEqual(fields[0], [undefined, "red"]);
    await eventually("created and handled", async () => Boolean((await widgets.get("u")).metadata?.annotations?.[`${PREFIX("h-update")}/last-handled`]));

    await widgets.patch("u", { spec: { size: 2 } }, { type: "merge" });
    await eventually("update handled", async () => updates.length === 1);
    assert.deepEqual(updates[0], [{ op: "change", path: ["spec", "size"], old: 1, new: 2 }]);
    assert.equal(fields.length, 1, "color did not change");

    await stop();
    await widgets.patch("u", { spec: { size: 5, color: "blue" } }, { type: "merge" });
    stop = await start(make());
    await eventually("update made while stopped is handled", async () => updates.length === 2);
    assert.deepEqual(updates[1], [
      { op: "change", path: ["spec", "color"], old: "red", new: "blue" },
      { op: "change", path: ["spec", "size"], old: 2, new: 5 },
    ]);
    assert.deepEqual(fields[1], ["red", "blue"]);
    await stop();
  });

  it("honours TemporaryError delays; PermanentError is recorded and not retried", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    const tempCalls: number[] = [];
    let permCalls = 0;
    const op = operator("h-errors", { namespaces: [ns] });
    op.on.create(Widget, async function waiting() {
      tempCalls.push(Date.now());
      if (tempCalls.length < 3) throw new TemporaryError("not yet", { delayMs: 1_000 });
    });
    op.on.create(Widget, async function broken() {
      permCalls++;
      throw new PermanentError("this widget can never work");
    });
    const stop = await start(op);
    const widgets = client.resource(Widget).namespace(ns);
    await widgets.create({ metadata: { name: "e" }, spec: { size: 1 } });
    await eventually("handled after retries", async () => Boolean((await widgets.get("e")).metadata?.annotations?.[`${PREFIX("h-errors")}/last-handled`]), { timeoutMs: 30_000 });
    assert.equal(tempCalls.length, 3);
    for (let i = 1; i < tempCalls.length; i++) assert.ok(tempCalls[i]! - tempCalls[i - 1]! >= 950, `retry ${i} came after ${tempCalls[i]! - tempCalls[i - 1]!} ms`);
    assert.equal(permCalls, 1);
    await eventually("a HandlerFailed warning", async () =>
      (await client.resource(Event).namespace(ns).list()).items.some((e) => e.reason === "HandlerFailed" && e.type === "Warning" && /never work/.test(e.note ?? "")),
    );
    await stop();
  });

  it("a failing delete handler keeps the object until it succeeds; daemons stop on deletion", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    let attempts = 0;
    let daemonStopped = false;
    let daemonRunning = false;
    const op = operator("h-delete", { namespaces: [ns] });
    op.daemon(Widget, async ({ signal }) => {
      daemonRunning = true;
      await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
      daemonStopped = true;
    });
    op.on.delete(
      Widget,
      async function cleanup() {
        attempts++;
        if (attempts < 3) throw new Error("backend unreachable");
      },
      { backoffMs: 200 },
    );
    const stop = await start(op);
    const widgets = client.resource(Widget).namespace(ns);
    await widgets.create({ metadata: { name: "d" }, spec: { size: 1 } });
    await eventually("finalizer added and daemon running", async () => daemonRunning && (await widgets.get("d")).metadata?.finalizers?.includes(`${PREFIX("h-delete")}/finalizer`));
    await widgets.delete("d");
    await eventually("first delete attempt failed", async () => attempts >= 1);
    const held = await widgets.get("d");
    assert.ok(held.metadata?.deletionTimestamp, "the object is kept while its delete handler fails");
    assert.ok(daemonStopped, "the daemon was stopped before delete handlers ran");
    await eventually("deleted once the handler succeeds", async () => widgets.get("d").then(() => false, (e) => e instanceof NotFoundError));
    assert.equal(attempts, 3);
    await stop();
  });

  it("timers respect idleMs; filters and indexes; raw events", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    const ticks: number[] = [];
    const seenByFilter: string[] = [];
    const events: string[] = [];
    let lookup: unknown;
    const op = operator("h-timers", { namespaces: [ns] });
    op.index(Widget, "by-color", (w) => (w.spec.color ? { [w.spec.color]: w.metadata?.name } : undefined));
    op.timer(Widget, { intervalMs: 100, idleMs: 1_500, labels: { timer: "on" } }, async () => void ticks.push(Date.now()));
    op.on.create(Widget, async ({ object, indexes }) => {
      seenByFilter.push(object.metadata!.name!);
      lookup = indexes.get("by-color")?.get("green");
    }, { labels: { pick: "me" } });
    op.on.event(Widget, ({ type, object }) => void events.push(`${type}:${object.metadata?.name}`));
    const stop = await start(op);
    const widgets = client.resource(Widget).namespace(ns);
    await widgets.create({ metadata: { name: "g1" }, spec: { size: 1, color: "green" } });
    await widgets.create({ metadata: { name: "g2", labels: { pick: "me" } }, spec: { size: 1, color: "green" } });
    const created = Date.now();
    await widgets.create({ metadata: { name: "t", labels: { timer: "on" } }, spec: { size: 1 } });
    await eventually("filtered create handler", async () => seenByFilter.length === 1);
    assert.deepEqual(seenByFilter, ["g2"]);
    assert.deepEqual([...(lookup as string[])].sort(), ["g1", "g2"]);
    await eventually("raw events", async () => ["apply:g1", "apply:g2", "apply:t"].every((e) => events.includes(e)));

    await eventually("timer ticks", async () => ticks.length >= 3, { timeoutMs: 10_000 });
    assert.ok(ticks[0]! - created >= 1_400, `first tick ${ticks[0]! - created} ms after creation (idle 1500 ms)`);
    await widgets.patch("t", { spec: { size: 2 } }, { type: "merge" });
    const changed = Date.now();
    const before = ticks.length;
    await eventually("timer resumes after the idle period", async () => ticks.length > before + 1 && ticks.some((t) => t > changed + 1_000), { timeoutMs: 10_000 });
    // A tick already under way when the change happened may land just after it; after that, none until idle again.
    const early = ticks.filter((t) => t > changed + 300 && t < changed + 1_300);
    assert.deepEqual(early, [], `ticks ${early.map((t) => t - changed).join(", ")} ms after a change (idle 1500 ms)`);
    await stop();
  });
});

describe("progress in status", () => {
  it("keeps progress in status.kubeloop when configured, and clears it when done", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    let calls = 0;
    const op = operator("h-status", { namespaces: [ns], progressIn: "status" });
    op.on.create(Widget, async function flaky() {
      calls++;
      if (calls === 1) throw new TemporaryError("once", { delayMs: 1_500 });
    });
    const stop = await start(op);
    const widgets = client.resource(Widget).namespace(ns);
    await widgets.create({ metadata: { name: "s" }, spec: { size: 1 } });
    const during = await eventually("progress in status", async () => {
      const w = await widgets.get("s");
      return (w.status as { kubeloop?: { progress?: Record<string, { retries?: number }> } })?.kubeloop?.progress?.flaky?.retries === 1 ? w : undefined;
    });
    assert.equal(during.metadata?.annotations?.[`${PREFIX("h-status")}/progress`], undefined, "not in annotations");
    const done = await eventually("handled", async () => {
      const w = await widgets.get("s");
      return w.metadata?.annotations?.[`${PREFIX("h-status")}/last-handled`] ? w : undefined;
    });
    assert.equal((done.status as { kubeloop?: unknown })?.kubeloop, undefined, "progress cleared from status");
    assert.equal(calls, 2);
    await stop();
  });
});

describe("handler options", () => {
  it("timeoutMs fails the handler permanently; attempts caps ordinary retries (3 = kopf's retries=3); ids are stable", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    let slowSawAbort = false;
    let flakyCalls = 0;
    const op = operator("h-options", { namespaces: [ns] });
    op.on.create(
      Widget,
      async ({ signal }) => {
        await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
        slowSawAbort = true;
      },
      { id: "slow", timeoutMs: 300 },
    );
    op.on.create(
      Widget,
      async () => {
        flakyCalls++;
        throw new Error("always failing");
      },
      { id: "flaky", attempts: 3, backoffMs: 50 },
    );
    assert.throws(() => op.on.create(Widget, async () => {}, { id: "slow" }), /used twice/);
    const stop = await start(op);
    const widgets = client.resource(Widget).namespace(ns);
    await widgets.create({ metadata: { name: "o" }, spec: { size: 1 } });
    await eventually("handled (both failed)", async () => Boolean((await widgets.get("o")).metadata?.annotations?.[`${PREFIX("h-options")}/last-handled`]), { timeoutMs: 30_000 });
    assert.ok(slowSawAbort, "the timed-out handler's signal aborted");
    assert.equal(flakyCalls, 3, "3 attempts in all, as kopf's retries=3");
    const warnings = (await client.resource(Event).namespace(ns).list()).items.filter((e) => e.reason === "HandlerFailed").map((e) => e.note);
    assert.ok(warnings.some((n) => /^slow: timed out after 300 ms/.test(n ?? "")), `warnings: ${warnings.join("; ")}`);
    assert.ok(warnings.some((n) => /^flaky: always failing/.test(n ?? "")));
    await stop();
  });
});

describe("handlers across restarts", () => {
  it("an operator killed between two create handlers resumes with the second only", { timeout: 90_000 }, async () => {
    const { spawn } = await import("node:child_process");
    const { fileURLToPath } = await import("node:url");
    const fixture = fileURLToPath(new URL("./fixtures/handlers-operator.ts", import.meta.url));
    const kubeconfig = (await sharedCluster()).kubeconfigPath;
    const ns = await namespace();
    const run = (hang: boolean) => {
      const child = spawn(process.execPath, ["--import", "tsx", fixture, kubeconfig, Widget.group, ns], { env: { ...process.env, HANG: hang ? "1" : "0" }, stdio: ["ignore", "pipe", "inherit"] });
      const lines: string[] = [];
      child.stdout.on("data", (d: Buffer) => lines.push(...d.toString().split("\n").filter(Boolean)));
      const exited = new Promise<void>((r) => child.on("exit", () => r()));
      stops.push(async () => {
        child.kill("SIGKILL");
        await exited;
      });
      return { child, lines, exited };
    };
    const widgets = client.resource(Widget).namespace(ns);
    const first = run(true);
    await eventually("first process started", async () => first.lines.includes("STARTED"), { timeoutMs: 30_000 });
    await widgets.create({ metadata: { name: "k" }, spec: { size: 1 } });
    await eventually("second handler running", async () => first.lines.includes("SECOND k"));
    assert.deepEqual(first.lines.filter((l) => l !== "STARTED"), ["FIRST k", "SECOND k"]);
    first.child.kill("SIGKILL");
    await first.exited;

    const second = run(false);
    await eventually("handled after restart", async () => Boolean((await widgets.get("k")).metadata?.annotations?.[`${PREFIX("h-restart")}/last-handled`]), { timeoutMs: 30_000 });
    assert.deepEqual(second.lines.filter((l) => l !== "STARTED"), ["SECOND k"], "only the unfinished handler ran again (no resume: never fully handled)");
    second.child.kill("SIGTERM");
    await second.exited;

    const third = run(false);
    await eventually("resume handler on restart", async () => third.lines.includes("RESUME k"), { timeoutMs: 30_000 });
    assert.ok(!third.lines.some((l) => l.startsWith("FIRST") || l.startsWith("SECOND")), "create handlers do not run again");
    third.child.kill("SIGTERM");
    await third.exited;
  });
});

describe("operator hooks", () => {
  it("login supplies the client; startup runs first, cleanup last; probes report on /healthz", { timeout: 60_000 }, async () => {
    const order: string[] = [];
    const op = new Operator({ name: "h-hooks", leaderElection: false, probes: { port: 0, host: "127.0.0.1" }, logger: quiet });
    op.on.login(async () => {
      order.push("login");
      return Client.load({ path: (await sharedCluster()).kubeconfigPath, rateLimit: false }); // closed by the operator
    });
    op.on.startup(async () => void order.push("startup"));
    op.on.cleanup(async () => void order.push("cleanup"));
    op.on.probe("widgets", async () => (await client.resource(Widget).list()).items.length >= 0 && "reachable");
    op.on.create(Widget, async () => {});
    const stop = new AbortController();
    let url = "";
    const done = op.run({ signal: stop.signal, handleSignals: false, onStarted: (r) => (url = r.probes!.url) });
    await eventually("started", async () => url !== "");
    order.push("running");
    const health = await fetch(`${url}/healthz`);
    assert.equal(health.status, 200);
    assert.deepEqual(await health.json(), { widgets: { ok: true, result: "reachable" } });
    stop.abort();
    await done;
    assert.deepEqual(order, ["login", "startup", "running", "cleanup"]);
  });
});
