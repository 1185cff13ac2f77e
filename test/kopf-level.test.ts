// Where kubeloop's handler level meets a kopf user's expectations (issue 14), against the real
// API server: raw event handlers and probes get the handlers' context, startup handlers are
// retried, op.on.login supplies the client of runOperator.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { Client, ConfigMap, CoreEvent, Event, Lease, Namespace, Operator, PermanentError, TemporaryError } from "../src/entries/index.js";
import { HttpFaultProxy, runOperator, type OperatorUnderTest } from "../src/entries/testing.js";
import { createNamespace, eventually, identityFromKubeconfig, releaseSharedCluster, sharedCluster } from "./helpers.js";

let client: Client;
let kubeconfig: string;
let dir: string;
const running: OperatorUnderTest[] = [];
before(async () => {
  kubeconfig = (await sharedCluster()).kubeconfigPath;
  client = await Client.load({ path: kubeconfig, rateLimit: false });
  dir = mkdtempSync(join(tmpdir(), "kubeloop-kopf-"));
});
after(async () => {
  for (const op of running) await op.stop().catch(() => {});
  await client?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  await releaseSharedCluster();
});

const namespace = () => createNamespace(client, "kopf");
async function start(op: Operator, options: { lines?: string[]; probes?: boolean; leaderElection?: boolean } = {}): Promise<OperatorUnderTest> {
  const logger = pino({ level: "info" }, { write: (line: string) => void options.lines?.push(line) });
  const r = await runOperator(op, { client, logger, ...(options.probes ? { probes: true } : {}), ...(options.leaderElection ? { leaderElection: true } : {}) });
  running.push(r);
  return r;
}

describe("the handlers' context everywhere", () => {
  it("raw event handlers get a logger naming the object (posting Events), event() (about the object or another), the client and the indexes; their failures name the object", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    const lines: string[] = [];
    const seen: string[] = [];
    const op = new Operator({ name: "rawctx", namespaces: [ns], leaderElection: false });
    op.index(ConfigMap, "by-color", (o) => (o.data?.color ? { [o.data.color]: o.metadata?.name } : undefined));
    op.on.event(ConfigMap, async ({ type, object, logger, event, client: c, indexes }) => {
      if (type === "delete") return;
      if (object.metadata?.name === "boom") throw new Error("event handler exploded");
      const again = await c.resource(ConfigMap).namespace(ns).get(object.metadata?.name ?? "");
      seen.push(`${again.metadata?.name}:${JSON.stringify(indexes.get("by-color")?.get("red") ?? [])}`);
      logger.info(`saw ${object.metadata?.name}`);
      event({ type: "Warning", reason: "Seen", note: `seen ${object.metadata?.name}` });
      event({ reason: "Sibling", note: `about ${object.metadata?.name}`, regarding: { apiVersion: "v1", kind: "Namespace", metadata: { name: ns } } });
    });
    await start(op, { lines });
    const cms = client.resource(ConfigMap).namespace(ns);
    await cms.create({ metadata: { name: "r" }, data: { color: "red" } });
    await eventually("the handler ran with client and indexes", async () => seen.some((s) => s === 'r:["r"]'));
    await eventually("its log line posted as an Event on the object", async () => (await client.resource(Event).namespace(ns).list()).items.some((e) => e.regarding?.name === "r" && e.note === "saw r"));
    await eventually("event() about the object, and about another (kopf.event on any object)", async () => {
      const events = [...(await client.resource(Event).namespace(ns).list()).items, ...(await client.resource(Event).namespace("default").list()).items];
      return events.some((e) => e.regarding?.name === "r" && e.type === "Warning" && e.reason === "Seen" && e.note === "seen r") && events.some((e) => e.regarding?.kind === "Namespace" && e.regarding.name === ns && e.note === "about r");
    });
    await cms.create({ metadata: { name: "boom" } });
    await eventually("the failure logged with the object", async () => lines.some((l) => l.includes("event handler failed") && l.includes(`${ns}/boom`)));
  });

  it("raw event handlers of one object run one at a time, in the order of its events (as kopf's per-object workers); other objects' meanwhile", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    const trace: string[] = [];
    let release: () => void = () => {};
    const held = new Promise<void>((r) => (release = r));
    const op = new Operator({ name: "rawserial", namespaces: [ns], leaderElection: false });
    op.on.event(ConfigMap, async ({ type, object }) => {
      if (type === "delete") return;
      const label = `${object.metadata?.name}@${object.data?.v}`;
      trace.push(`start ${label}`);
      if (label === "a@1") await held; // a slow first call for a
      trace.push(`end ${label}`);
    }, { labels: { serial: "yes" } });
    await start(op);
    const cms = client.resource(ConfigMap).namespace(ns);
    await cms.create({ metadata: { name: "a", labels: { serial: "yes" } }, data: { v: "1" } });
    await eventually("a@1 running", async () => trace.includes("start a@1"));
    await cms.patch("a", { data: { v: "2" } }, { type: "merge" });
    await cms.create({ metadata: { name: "b", labels: { serial: "yes" } }, data: { v: "1" } });
    await eventually("b handled while a@1 still runs", async () => trace.includes("end b@1"));
    assert.ok(!trace.includes("start a@2"), `a's second event waits for its first call: ${trace.join(", ")}`);
    release();
    await eventually("a@2 handled", async () => trace.includes("end a@2"));
    const forA = trace.filter((t) => t.includes(" a@"));
    assert.deepEqual(forA, ["start a@1", "end a@1", "start a@2", "end a@2"]);
  });

  it("probes get the client, a logger and the indexes; /healthz reports what they return", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    const op = new Operator({ name: "probectx", namespaces: [ns], leaderElection: false });
    op.index(ConfigMap, "names", (o) => ({ all: o.metadata?.name }));
    op.on.probe("objects", async ({ indexes, client: c, logger }) => {
      logger.debug("probing");
      await c.resource(Namespace).get(ns);
      return indexes.get("names")?.get("all")?.length ?? 0;
    });
    const cms = client.resource(ConfigMap).namespace(ns);
    await cms.create({ metadata: { name: "a" } });
    await cms.create({ metadata: { name: "b" } });
    const r = await start(op, { probes: true });
    const url = r.probes?.url;
    assert.ok(url, "a probe server");
    await eventually("/healthz counts the indexed objects", async () => {
      const body = (await (await fetch(`${url}/healthz`)).json()) as { objects?: { ok: boolean; result: number } };
      return body.objects?.ok && body.objects.result >= 2; // a and b (and the namespace's root CA ConfigMap, if any)
    });
  });
});

describe("events of any type", () => {
  it("ctx.event: Normal and Warning as events.k8s.io Events, kopf's Error (any other type) as a core/v1 Event", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    const op = new Operator({ name: "evtypes", namespaces: [ns], leaderElection: false });
    op.on.create(ConfigMap, async ({ event }) => {
      event({ type: "Warning", reason: "Careful", note: "a warning" });
      event({ type: "Error", reason: "Exploded", note: "an error, as kopf.exception posts" });
      event({ type: "Audit", reason: "Custom", note: "a custom type" });
    });
    await start(op);
    await client.resource(ConfigMap).namespace(ns).create({ metadata: { name: "e" } });
    await eventually("the Warning", async () => (await client.resource(Event).namespace(ns).list()).items.some((e) => e.type === "Warning" && e.reason === "Careful" && e.regarding?.name === "e"));
    await eventually("the Error and the custom type, as core/v1 Events", async () => {
      const items = (await client.resource(CoreEvent).namespace(ns).list()).items;
      return ["Error", "Audit"].every((type) => items.some((e) => e.type === type && e.involvedObject?.name === "e" && e.source?.component === "kubeloop.dev/evtypes"));
    });
  });
});

describe("handlers as kopf users know them", () => {
  it("a handler's patch is written after a failed attempt too (kopf applies the patch of the whole cycle), and is no update", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    const updates: string[] = [];
    const op = new Operator({ name: "failpatch", namespaces: [ns], leaderElection: false });
    op.on.create(ConfigMap, async ({ patch, retries }) => {
      patch.metadata.labels[`attempt-${retries}`] = retries === 0 ? "waiting" : "done";
      if (retries === 0) throw new TemporaryError("not yet", { delayMs: 300 });
    }, { labels: { handle: "retry" } });
    op.on.create(ConfigMap, async ({ patch }) => {
      patch.metadata.labels["gave-up"] = "yes";
      throw new PermanentError("no way");
    }, { labels: { handle: "fail" } });
    op.on.update(ConfigMap, async ({ object }) => void updates.push(object.metadata?.name ?? ""));
    await start(op);
    const cms = client.resource(ConfigMap).namespace(ns);
    await cms.create({ metadata: { name: "r", labels: { handle: "retry" } } });
    await cms.create({ metadata: { name: "f", labels: { handle: "fail" } } });
    await eventually("the failed attempt's patch and the retry's", async () => {
      const labels = (await cms.get("r")).metadata?.labels ?? {};
      return labels["attempt-0"] === "waiting" && labels["attempt-1"] === "done";
    });
    await eventually("the patch of the attempt that failed for good", async () => (await cms.get("f")).metadata?.labels?.["gave-up"] === "yes");
    // A marker object created after both: once it is handled, any update they caused was too.
    await cms.create({ metadata: { name: "z", labels: { handle: "retry" } } });
    await eventually("the marker handled", async () => (await cms.get("z")).metadata?.labels?.["attempt-1"] === "done");
    assert.deepEqual(updates, [], "the handlers' own labels are no update");
  });
});

describe("daemons as kopf users know them", () => {
  it("a daemon's patch is written after every attempt, the failed one included; TemporaryError restarts it after its delay", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    const starts: number[] = [];
    const op = new Operator({ name: "daemonpatch", namespaces: [ns], leaderElection: false });
    op.daemon(
      ConfigMap,
      async ({ patch, retries }) => {
        starts.push(Date.now());
        if (retries === 0) {
          patch.metadata.labels["first-attempt"] = "failed";
          throw new TemporaryError("again soon", { delayMs: 300 });
        }
        patch.metadata.labels["second-attempt"] = "done";
      },
      { labels: { daemon: "yes" } },
    );
    await start(op);
    const cms = client.resource(ConfigMap).namespace(ns);
    await cms.create({ metadata: { name: "d", labels: { daemon: "yes" } } });
    await eventually("both attempts' patches written", async () => {
      const labels = (await cms.get("d")).metadata?.labels ?? {};
      return labels["first-attempt"] === "failed" && labels["second-attempt"] === "done";
    });
    assert.equal(starts.length, 2);
    assert.ok(starts[1]! - starts[0]! >= 280 && starts[1]! - starts[0]! < 5_000, `restarted after the TemporaryError's delay (${starts[1]! - starts[0]!} ms), not the 10 s backoff`);
    // Leave no finalizer behind.
    await cms.delete("d");
    await eventually("deleted", async () => !(await cms.list()).items.some((c) => c.metadata?.name === "d"));
  });
});

describe("startup and login", () => {
  it("a startup handler is retried: TemporaryError after its delay, others with backoff; then the operator starts", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    const attempts: number[] = [];
    const op = new Operator({ name: "startup", namespaces: [ns], leaderElection: false });
    op.on.startup(
      async ({ retries }) => {
        attempts.push(Date.now());
        if (retries === 0) throw new TemporaryError("not yet", { delayMs: 300 });
        if (retries === 1) throw new Error("flaky");
      },
      { backoffMs: 200 },
    );
    let handled = false;
    op.on.create(ConfigMap, async () => void (handled = true));
    await start(op);
    assert.equal(attempts.length, 3);
    assert.ok(attempts[1]! - attempts[0]! >= 280, `TemporaryError's delay honoured (${attempts[1]! - attempts[0]!} ms)`);
    assert.ok(attempts[2]! - attempts[1]! >= 180, `backoff honoured (${attempts[2]! - attempts[1]!} ms)`);
    await client.resource(ConfigMap).namespace(ns).create({ metadata: { name: "c" } });
    await eventually("handlers run after startup", async () => handled);
  });

  it("a startup handler that fails for good (PermanentError, or its last attempt) stops the operator from starting", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    const permanent = new Operator({ name: "startup-perm", namespaces: [ns], leaderElection: false });
    let calls = 0;
    permanent.on.startup(async () => {
      calls++;
      throw new PermanentError("no license");
    });
    await assert.rejects(runOperator(permanent, { client, logger: pino({ level: "silent" }) }), /no license/);
    assert.equal(calls, 1);
    const limited = new Operator({ name: "startup-lim", namespaces: [ns], leaderElection: false });
    calls = 0;
    limited.on.startup(
      async () => {
        calls++;
        throw new Error("still broken");
      },
      { attempts: 2, backoffMs: 50 },
    );
    await assert.rejects(runOperator(limited, { client, logger: pino({ level: "silent" }) }), /still broken/);
    assert.equal(calls, 2);
  });

  it("a startup marked leaderOnly runs on the leader alone, before the leader's work, and on the next leader after a hand-over", { timeout: 90_000 }, async () => {
    const ns = await namespace();
    const log: string[] = [];
    const leases = client.resource(Lease).namespace(ns);
    const make = (id: string) => {
      const op = new Operator({ name: "leader-startup", namespaces: [ns], leaderElection: { namespace: ns, identity: id, leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 300 } });
      op.on.startup(() => void log.push(`${id}:everywhere`));
      op.on.startup(
        async ({ retries }) => {
          // The fencing record: who held the leader Lease while this ran.
          const holder = (await leases.get("leader-startup-leader")).spec?.holderIdentity;
          log.push(`${id}:leader-only holder=${holder}`);
          if (retries === 0) throw new TemporaryError("once more", { delayMs: 200 });
          log.push(`${id}:leader-only done`);
        },
        { leaderOnly: true },
      );
      op.on.create(ConfigMap, ({ object }) => void log.push(`${id}:create ${object.metadata?.name}`), { labels: { ls: "yes" } });
      return op;
    };
    const a = await start(make("a"), { leaderElection: true });
    await eventually("a's leader-only startup done", async () => log.includes("a:leader-only done"));
    const b = await start(make("b"), { leaderElection: true });
    assert.ok(log.includes("b:everywhere"), "every replica runs a plain startup");
    await client.resource(ConfigMap).namespace(ns).create({ metadata: { name: "one", labels: { ls: "yes" } } });
    await eventually("a handled the ConfigMap", async () => log.includes("a:create one"));
    await a.stop(); // releases the Lease: b leads
    await eventually("b's leader-only startup done", async () => log.includes("b:leader-only done"));
    await client.resource(ConfigMap).namespace(ns).create({ metadata: { name: "two", labels: { ls: "yes" } } });
    await eventually("b handled the second ConfigMap", async () => log.includes("b:create two"));
    await b.stop();
    const runs = log.filter((l) => l.includes("leader-only holder="));
    assert.deepEqual(runs, ["a:leader-only holder=a", "a:leader-only holder=a", "b:leader-only holder=b", "b:leader-only holder=b"], `each ran only while holding the Lease: ${log.join(", ")}`);
    assert.ok(log.indexOf("b:leader-only done") < log.indexOf("b:create two"), `the leader's handlers act after its leader-only startup: ${log.join(", ")}`);
    assert.ok(!log.includes("b:create one") || log.indexOf("b:create one") > log.indexOf("b:leader-only done"), `b acted only once leading and after its startup: ${log.join(", ")}`);
  });

  it("runOperator runs the operator with the client op.on.login supplies", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    const id = identityFromKubeconfig(kubeconfig);
    const proxy = await HttpFaultProxy.start({ server: id.server, ca: id.ca, certificate: id.cert, key: id.key });
    try {
      const op = new Operator({ name: "login-test", namespaces: [ns], leaderElection: false });
      let logins = 0;
      op.on.login(async () => {
        logins++;
        return Client.load({ path: proxy.writeKubeconfig(join(dir, "login.yaml")), rateLimit: false });
      });
      let handled = false;
      op.on.create(ConfigMap, async () => void (handled = true));
      const r = await start(op);
      await client.resource(ConfigMap).namespace(ns).create({ metadata: { name: "c" } });
      await eventually("handled", async () => handled);
      assert.equal(logins, 1);
      assert.ok(proxy.total > 0, "the operator's requests went through the login client");
      await r.stop();
    } finally {
      await proxy.close();
    }
  });
});
