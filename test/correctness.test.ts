// Correctness of the handler level against the real API server: co-tenancy of two operators on
// one kind, status writes after a 404, timers and daemons that stop with their reason, and
// per-object state bounded by the cache.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { Client, ConfigMap, CustomResourceDefinition, Event, Namespace, NotFoundError, Operator, Role, RoleBinding, Secret, TemporaryError, Type, defineResource, kindOf, type KubeObject } from "../src/entries/index.js";
import { Manager } from "../src/entries/runtime.js";
import { PatchWriter } from "../src/handlers/context.js";
import { runOperator, type OperatorUnderTest } from "../src/entries/testing.js";
import { eventually, releaseSharedCluster, sharedCluster, uniqueName } from "./helpers.js";

const quiet = pino({ level: "silent" });
const Gadget = defineResource({
  group: `${uniqueName("co")}.kubeloop.dev`,
  version: "v1",
  kind: "Gadget",
  spec: Type.Object({ size: Type.Integer() }),
  status: Type.Unknown(),
});

let client: Client;
let kubeconfig: string;
const running: OperatorUnderTest[] = [];

before(async () => {
  kubeconfig = (await sharedCluster()).kubeconfigPath;
  client = await Client.load({ path: kubeconfig, rateLimit: false });
  await client.resource(CustomResourceDefinition).create(Gadget.crd);
  await eventually("CRD established", async () =>
    (await client.resource(CustomResourceDefinition).get(Gadget.crd.metadata!.name!)).status?.conditions?.some((c) => c.type === "Established" && c.status === "True"),
  );
  await eventually("served", async () => (await client.resource(Gadget).list()) && true);
});
after(async () => {
  for (const op of running) await op.stop().catch(() => {});
  await client?.resource(CustomResourceDefinition).delete(Gadget.crd.metadata!.name!).catch(() => {});
  await client?.close();
  await releaseSharedCluster();
});

async function namespace(): Promise<string> {
  const ns = uniqueName("corr");
  await client.resource(Namespace).create({ metadata: { name: ns } });
  return ns;
}

async function start(op: Operator): Promise<OperatorUnderTest> {
  const r = await runOperator(op, { client, logger: quiet });
  running.push(r);
  return r;
}

describe("co-tenancy", () => {
  it("two kubeloop operators with update handlers on one kind: one change, one run each, small annotations", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    const counts = { alpha: 0, beta: 0 };
    const make = (name: "alpha" | "beta") => {
      const op = new Operator({ name, namespaces: [ns], leaderElection: false });
      op.on.update(Gadget, async () => void counts[name]++);
      return op;
    };
    const alpha = await start(make("alpha"));
    const beta = await start(make("beta"));
    const gadgets = client.resource(Gadget).namespace(ns);
    await gadgets.create({ metadata: { name: "g" }, spec: { size: 1 } });
    const handledBoth = (size: number) => async () => {
      const a = (await gadgets.get("g")).metadata?.annotations ?? {};
      return [a["alpha.kubeloop.dev/last-handled"], a["beta.kubeloop.dev/last-handled"]].every((v) => v !== undefined && (JSON.parse(v) as { spec: { size: number } }).spec.size === size);
    };
    await eventually("both handled the create", handledBoth(1));
    await gadgets.patch("g", { spec: { size: 2 } }, { type: "merge" });
    await eventually("both handled the change", handledBoth(2));
    await gadgets.patch("g", { spec: { size: 3 } }, { type: "merge" });
    await eventually("both handled the second change", handledBoth(3));
    // Ping-pong would have run the update handlers on each other's writes all along.
    assert.deepEqual(counts, { alpha: 2, beta: 2 }, "each update handler ran once per spec change");
    const size = JSON.stringify((await gadgets.get("g")).metadata?.annotations).length;
    assert.ok(size < 400, `annotations stay small (${size} bytes)`);
    await alpha.stop();
    await beta.stop();
  });
});

describe("co-tenancy with a kopf operator", () => {
  it("a kopf-style writer of its own diff base on the same objects: no ping-pong, annotations bounded", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    const gadgets = client.resource(Gadget).namespace(ns);
    let updates = 0;
    const op = new Operator({ name: "withkopf", namespaces: [ns], leaderElection: false });
    op.on.update(Gadget, async () => void updates++);
    const r = await start(op);
    await gadgets.create({ metadata: { name: "k" }, spec: { size: 1 } });
    // A kopf operator keeps the spec and every annotation but its own (ours included) as its diff
    // base, and rewrites it whenever that changes.
    const KOPF = "kopf.zalando.org/last-handled-configuration";
    const kopfEssence = (o: KubeObject) => JSON.stringify({ spec: (o as { spec?: unknown }).spec, annotations: Object.fromEntries(Object.entries(o.metadata?.annotations ?? {}).filter(([k]) => k !== KOPF)) });
    let kopfWrites = 0;
    let running = true;
    const kopf = (async () => {
      while (running) {
        const o = await gadgets.get("k");
        const e = kopfEssence(o);
        if (o.metadata?.annotations?.[KOPF] !== e) {
          kopfWrites++;
          await gadgets.patch("k", { metadata: { annotations: { [KOPF]: e } } }, { type: "merge" }).catch(() => {});
        }
        await new Promise((res) => setTimeout(res, 50));
      }
    })();
    const settled = async (size: number) => {
      const o = await gadgets.get("k");
      const ours = o.metadata?.annotations?.["withkopf.kubeloop.dev/last-handled"];
      return ours !== undefined && (JSON.parse(ours) as { spec: { size: number } }).spec.size === size && o.metadata?.annotations?.[KOPF] === kopfEssence(o);
    };
    try {
      await eventually("both settled after the create", () => settled(1));
      await gadgets.patch("k", { spec: { size: 2 } }, { type: "merge" });
      await eventually("both settled after a spec change", () => settled(2), { timeoutMs: 20_000 });
      const writesAfter = kopfWrites;
      await gadgets.patch("k", { spec: { size: 3 } }, { type: "merge" });
      await eventually("both settled after a second spec change", () => settled(3), { timeoutMs: 20_000 });
      assert.equal(updates, 2, "our update handler ran once per spec change (the foreign diff base is not a change)");
      assert.ok(kopfWrites - writesAfter <= 3, `the foreign writer settles too (${kopfWrites - writesAfter} writes for one change)`);
      const size = JSON.stringify((await gadgets.get("k")).metadata?.annotations).length;
      assert.ok(size < 1_500, `annotations stay bounded (${size} bytes)`);
    } finally {
      running = false;
      await kopf;
      await r.stop();
    }
  });
});

describe("status writes", () => {
  it("a 404 on a status write (object just deleted) does not send later status writes to the main resource", { timeout: 30_000 }, async () => {
    const ns = await namespace();
    const gadgets = client.resource(Gadget).namespace(ns);
    const writer = new PatchWriter(client, Gadget);
    const doomed = await gadgets.create({ metadata: { name: "doomed" }, spec: { size: 1 } });
    await gadgets.delete("doomed");
    await assert.rejects(writer.write(doomed, { status: { phase: "x" } }), NotFoundError);
    const alive = await gadgets.create({ metadata: { name: "alive" }, spec: { size: 1 } });
    await writer.write(alive, { status: { phase: "Ready" } });
    assert.deepEqual((await gadgets.get("alive")).status, { phase: "Ready" }, "the status landed (through the status subresource)");
  });
});

describe("timers and daemons end with their reason", () => {
  it("a daemon stops when its object no longer matches the daemon's filters", { timeout: 30_000 }, async () => {
    const ns = await namespace();
    const live = new Set<string>();
    const op = new Operator({ name: "filters", namespaces: [ns], leaderElection: false });
    op.daemon(
      ConfigMap,
      async ({ object, signal }) => {
        const name = object.metadata!.name!;
        live.add(name);
        await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
        live.delete(name);
      },
      { labels: { run: "yes" } },
    );
    const r = await start(op);
    const cms = client.resource(ConfigMap).namespace(ns);
    await cms.create({ metadata: { name: "d", labels: { run: "yes" } } });
    await eventually("the daemon runs", async () => live.has("d"));
    await cms.patch("d", { metadata: { labels: { run: "no" } } }, { type: "merge" });
    await eventually("the daemon stopped once the label no longer matched", async () => !live.has("d"), { timeoutMs: 10_000 });
    await r.stop();
  });

  it("a daemon stops when its object disappears with no visible deletion (deleted without our finalizer)", { timeout: 30_000 }, async () => {
    const ns = await namespace();
    const live = new Set<string>();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const op = new Operator({ name: "vanish", namespaces: [ns], leaderElection: false });
    op.daemon(ConfigMap, async ({ object, signal }) => {
      live.add(object.metadata!.name!);
      await new Promise((r) => signal.addEventListener("abort", r, { once: true }));
      live.delete(object.metadata!.name!);
    });
    // Holds the object's key, so the operator cannot put its finalizer back before the delete.
    op.on.create(ConfigMap, async () => held);
    const r = await start(op);
    const cms = client.resource(ConfigMap).namespace(ns);
    await cms.create({ metadata: { name: "v" } });
    await eventually("the daemon runs", async () => live.has("v"));
    await cms.patch("v", { metadata: { finalizers: null } }, { type: "merge" });
    await cms.delete("v");
    await eventually("the object is gone", async () => !(await cms.get("v").catch(() => undefined)));
    await eventually("the daemon stopped with its object", async () => !live.has("v"), { timeoutMs: 10_000 });
    release();
    await r.stop();
  });
});

describe("memory bounded by the cache", () => {
  it("10,000 objects created and deleted without our finalizer leave no per-object state", { timeout: 240_000 }, async () => {
    const ns = await namespace();
    const op = new Operator({ name: "churn", namespaces: [ns], leaderElection: false, concurrency: 32 });
    let handled = 0;
    op.on.create(ConfigMap, async () => void handled++, { labels: { handle: "yes" } });
    op.timer(ConfigMap, { intervalMs: 60_000, labels: { timer: "yes" } }, async () => {});
    const r = await start(op);
    const cms = client.resource(ConfigMap).namespace(ns);
    const N = 10_000;
    // Objects already handled (a diff base that matches them), so the operator sees, tracks and
    // forgets them without writing: the churn is the test's own creates and deletes.
    const lastHandled = JSON.stringify({ data: { i: "x" } });
    let next = 0;
    let most = 0;
    const worker = async () => {
      for (let i = next++; i < N; i = next++) {
        const name = `c${i}`;
        await cms.create({ metadata: { name, annotations: { "churn.kubeloop.dev/last-handled": lastHandled } }, data: { i: "x" } });
        await cms.delete(name);
        if (i % 1000 === 0) most = Math.max(most, op.trackedObjects());
      }
    };
    await Promise.all(Array.from({ length: 24 }, worker));
    await eventually("every object gone from the operator's state", async () => op.trackedObjects() === 0 && (await cms.list()).items.length === 0, { timeoutMs: 60_000 });
    process.stdout.write(`# churned ${N} objects; tracked entries peaked at ≥ ${most}, now ${op.trackedObjects()}\n`);
    assert.ok(most > 0, "the operator did track objects while they existed");
    assert.equal(handled, 0);
    await r.stop();
  });
});

describe("errors in informer listeners", () => {
  it("a throwing watches() mapper is logged with its error, and the informer goes on", { timeout: 30_000 }, async () => {
    const ns = await namespace();
    const lines: { msg?: string; err?: { message?: string } }[] = [];
    const logger = pino({ level: "warn" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
    const manager = new Manager(client, { name: "listener-errors", leaderElection: false, logger });
    let mapped = 0;
    manager
      .controller(ConfigMap)
      .withOptions({ scope: { namespace: ns } })
      .watches(
        Secret,
        (s) => {
          mapped++;
          if (s.metadata?.name === "bad") throw new Error("mapper exploded");
          return [];
        },
        { namespace: ns },
      )
      .reconcile(async () => {});
    const stop = new AbortController();
    const run = manager.run(stop.signal);
    await manager.whenSynced();
    await client.resource(Secret).namespace(ns).create({ metadata: { name: "bad" } });
    await client.resource(Secret).namespace(ns).create({ metadata: { name: "good" } });
    await eventually("the good one mapped after the bad one", async () => mapped >= 2);
    await eventually("the error logged", async () => lines.some((l) => l.err?.message === "mapper exploded"));
    stop.abort();
    await run;
  });
});

describe("handler timeouts", () => {
  it("timeoutMs counts across attempts: a handler that keeps failing quickly fails permanently at its deadline", { timeout: 30_000 }, async () => {
    const ns = await namespace();
    let attempts = 0;
    const op = new Operator({ name: "deadline", namespaces: [ns], leaderElection: false });
    op.on.create(
      Gadget,
      async () => {
        attempts++;
        throw new TemporaryError("not yet", { delayMs: 50 });
      },
      { id: "impatient", timeoutMs: 600 },
    );
    const r = await start(op);
    const gadgets = client.resource(Gadget).namespace(ns);
    await gadgets.create({ metadata: { name: "t" }, spec: { size: 1 } });
    await eventually("handled: failed permanently at the deadline", async () => Boolean((await gadgets.get("t")).metadata?.annotations?.["deadline.kubeloop.dev/last-handled"]), { timeoutMs: 10_000 });
    assert.ok(attempts >= 2 && attempts <= 20, `${attempts} attempts within the 600 ms budget`);
    // Events are recorded in the background: wait for it.
    await eventually("the HandlerFailed warning", async () =>
      (await client.resource(Event).namespace(ns).list()).items.some((e) => e.reason === "HandlerFailed" && /^impatient: timed out after 600 ms/.test(e.note ?? "")),
    );
    await r.stop();
  });

  it("the finalizer is removed only after a timed-out delete handler has really returned", { timeout: 30_000 }, async () => {
    const ns = await namespace();
    let finished = false;
    const op = new Operator({ name: "slowdelete", namespaces: [ns], leaderElection: false });
    op.on.delete(
      Gadget,
      async () => {
        await new Promise((r) => setTimeout(r, 1_500)); // ignores its signal
        finished = true;
      },
      { id: "cleanup", timeoutMs: 100 },
    );
    const r = await start(op);
    const gadgets = client.resource(Gadget).namespace(ns);
    await gadgets.create({ metadata: { name: "f" }, spec: { size: 1 } });
    await eventually("finalizer added", async () => ((await gadgets.get("f")).metadata?.finalizers ?? []).includes("slowdelete.kubeloop.dev/finalizer"));
    await gadgets.delete("f");
    await eventually("the object is gone", async () => !(await gadgets.get("f").catch(() => undefined)), { intervalMs: 20 });
    assert.equal(finished, true, "the finalizer went while the delete handler still ran");
    await r.stop();
  });
});

describe("a handler's result and its status write", () => {
  const Policy = kindOf("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy", { plural: "validatingadmissionpolicies", namespaced: false });
  const Binding = kindOf("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding", { plural: "validatingadmissionpolicybindings", namespaced: false });

  it("a status write that fails after the handler ran is not lost: success is recorded only once both writes landed", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    const name = uniqueName("no-status");
    // The real API server refuses status writes of labelled gadgets in this namespace while the binding exists.
    await client.resource(Policy).create({
      metadata: { name },
      spec: {
        failurePolicy: "Fail",
        matchConstraints: { resourceRules: [{ apiGroups: [Gadget.apiVersion.split("/")[0]], apiVersions: ["v1"], operations: ["UPDATE"], resources: ["gadgets/status"] }] },
        validations: [{ expression: `object.metadata.namespace != '${ns}' || !has(object.metadata.labels) || !('reject-status' in object.metadata.labels)`, message: "status writes refused by the test" }],
      },
    } as KubeObject);
    await client.resource(Binding).create({ metadata: { name }, spec: { policyName: name, validationActions: ["Deny"] } } as KubeObject);
    const gadgets = client.resource(Gadget).namespace(ns);
    await gadgets.create({ metadata: { name: "probe", labels: { "reject-status": "yes" } }, spec: { size: 1 } });
    await eventually("the policy is in force", async () => (await gadgets.patchStatus("probe", { status: { x: 1 } }, { type: "merge" }).then(() => false, () => true)));

    let calls = 0;
    const op = new Operator({ name: "statuspair", namespaces: [ns], leaderElection: false });
    op.on.create(Gadget, async function summary() {
      calls++;
      return { size: 1 };
    }, { when: (o) => o.metadata?.name === "s" });
    const r = await start(op);
    await gadgets.create({ metadata: { name: "s", labels: { "reject-status": "yes" } }, spec: { size: 1 } });
    await eventually("the handler ran and its status write was refused", async () => calls >= 1);
    await client.resource(Binding).delete(name);
    await eventually("the result reached status once status writes were allowed again", async () => ((await gadgets.get("s")).status as { summary?: unknown } | undefined)?.summary !== undefined, { timeoutMs: 30_000 });
    assert.deepEqual(((await gadgets.get("s")).status as { summary?: unknown }).summary, { size: 1 });
    await r.stop();
    await client.resource(Policy).delete(name);
  });
});

describe("raw event handlers", () => {
  it("op.on.event sees the objects that existed when the operator started (type 'exists'), then changes", { timeout: 30_000 }, async () => {
    const ns = await namespace();
    const cms = client.resource(ConfigMap).namespace(ns);
    await cms.create({ metadata: { name: "old-one" } });
    const seen: string[] = [];
    const op = new Operator({ name: "rawevents", namespaces: [ns], leaderElection: false });
    op.on.event(ConfigMap, ({ type, object }) => void seen.push(`${type} ${object.metadata?.name}`));
    const r = await start(op);
    await cms.create({ metadata: { name: "new-one" } });
    await eventually("the new object's event", async () => seen.includes("apply new-one"));
    assert.ok(seen.includes("exists old-one"), `events: ${seen.join(", ")}`);
    await r.stop();
  });
});

describe("one namespace scope for both levels", () => {
  it("-n a,b: controllers and handlers act in a and b only, through namespaced watches (namespaced RBAC suffices)", { timeout: 60_000 }, async () => {
    const [a, b, c] = [await namespace(), await namespace(), await namespace()];
    const user = uniqueName("scoped-op");
    for (const ns of [a, b]) {
      await client.resource(Role).namespace(ns).create({
        metadata: { name: "operator" },
        rules: [
          { apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list", "watch", "patch", "update"] },
          { apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["create", "patch"] },
        ],
      });
      await client.resource(RoleBinding).namespace(ns).create({
        metadata: { name: "operator" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "operator" },
        subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: user }],
      });
    }
    // The operator acts as a user with rights in a and b only: a cluster-wide watch would be refused.
    const restricted = new Client({ ...client.config, impersonate: { user } }, { rateLimit: false });
    const reconciled = new Set<string>();
    const handled = new Set<string>();
    const op = new Operator({ name: "scoped", leaderElection: false, cacheSyncTimeoutMs: 15_000 });
    op.controller(ConfigMap).reconcile(async (ref) => void reconciled.add(`${ref.namespace}/${ref.name}`));
    op.on.create(ConfigMap, async ({ object }) => void handled.add(`${object.metadata?.namespace}/${object.metadata?.name}`));
    const stop = new AbortController();
    let started!: () => void;
    const ready = new Promise<void>((r) => (started = r));
    const run = op.run({ client: restricted, signal: stop.signal, handleSignals: false, probes: false, logger: quiet, namespaces: [a, b], onStarted: () => started() });
    try {
      await Promise.race([ready, run]);
      for (const ns of [a, b, c]) await client.resource(ConfigMap).namespace(ns).create({ metadata: { name: "x" } });
      await eventually("reconciled and handled in a and b", async () => [a, b].every((ns) => reconciled.has(`${ns}/x`) && handled.has(`${ns}/x`)));
      assert.ok(![...reconciled, ...handled].some((k) => k.startsWith(`${c}/`)), `nothing in ${c}: ${[...reconciled].join(", ")}`);
    } finally {
      stop.abort();
      await run;
      await restricted.close();
    }
  });
});

describe("a diff base too large for an annotation", () => {
  it("falls back to a digest and the watched fields, with a warning Event; updates and field handlers still work", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    const big = "x".repeat(300_000); // its essence is over the 256 KiB that all annotations of an object may take
    const seen: string[] = [];
    const op = new Operator({ name: "bigbase", namespaces: [ns], leaderElection: false });
    op.on.create(ConfigMap, async () => void seen.push("create"));
    op.on.update(ConfigMap, async ({ old }) => void seen.push(`update old=${old === undefined ? "none" : "some"}`));
    op.on.field(ConfigMap, "data.mode", async ({ old, new: next }) => void seen.push(`mode ${String(old)}→${String(next)}`));
    const r = await start(op);
    const cms = client.resource(ConfigMap).namespace(ns);
    await cms.create({ metadata: { name: "big" }, data: { blob: big, mode: "a" } });
    const handledText = async () => (await cms.get("big")).metadata?.annotations?.["bigbase.kubeloop.dev/last-handled"];
    await eventually("the create handled (diff base written)", async () => Boolean(await handledText()), { timeoutMs: 20_000 });
    const first = (await handledText()) ?? "";
    assert.ok(first.length < 1_000, `a compact base (${first.length} characters)`);
    await cms.patch("big", { data: { mode: "b" } }, { type: "merge" });
    await eventually("the change handled", async () => (await handledText()) !== first, { timeoutMs: 20_000 });
    assert.deepEqual(seen, ["create", "mode undefined→a", "update old=none", "mode a→b"]);
    await eventually("a DiffBaseTooLarge warning Event", async () => (await client.resource(Event).namespace(ns).list()).items.some((e) => e.reason === "DiffBaseTooLarge"));
    await r.stop();
  });
});

describe("no room for bookkeeping", () => {
  it("annotations at the size limit: a warning Event naming the way out, and no retry loop of the handler", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    let runs = 0;
    const op = new Operator({ name: "fullup", namespaces: [ns], leaderElection: false });
    op.on.create(ConfigMap, async () => void runs++);
    const r = await start(op);
    // 40 bytes left of the 256 KiB all annotations of an object may take: too few for ours.
    await client.resource(ConfigMap).namespace(ns).create({ metadata: { name: "full", annotations: { big: "x".repeat(262_144 - 40) } } });
    await eventually("the warning Event", async () =>
      (await client.resource(Event).namespace(ns).list()).items.some((e) => e.reason === "NoRoomForBookkeeping" && /Make room/.test(e.note ?? "")),
    );
    const after = runs;
    // Retries with backoff would run the handler again within a few seconds (5 ms, 10 ms, …).
    await new Promise((res) => setTimeout(res, 2_000)); // checks that nothing happens
    assert.equal(runs, after, `the handler ran ${runs - after} more times`);
    assert.ok(after >= 1 && after <= 2, `${after} runs`);
    await r.stop();
  });
});
