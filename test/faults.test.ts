// HTTP-level faults in front of the real API server (HttpFaultProxy): a failed record of a
// handler's success, and 429/503 storms with Retry-After (how hard the operator pushes while
// refused, and that it converges after). And the TCP FaultProxy's own contract: healing leaves
// the bytes of open connections as they are.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { Agent, request as httpsRequest } from "node:https";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { Client, ConfigMap, Operator } from "../src/entries/index.js";
import { FaultProxy, HttpFaultProxy, runOperator, type OperatorUnderTest } from "../src/entries/testing.js";
import { createNamespace, eventually, identityFromKubeconfig, releaseSharedCluster, sharedCluster, uniqueName } from "./helpers.js";

const quiet = pino({ level: "silent" });
let admin: Client;
let proxy: HttpFaultProxy;
let dir: string;
let id: ReturnType<typeof identityFromKubeconfig>;
const running: OperatorUnderTest[] = [];

before(async () => {
  const kubeconfig = (await sharedCluster()).kubeconfigPath;
  admin = await Client.load({ path: kubeconfig, rateLimit: false });
  id = identityFromKubeconfig(kubeconfig);
  proxy = await HttpFaultProxy.start({ server: id.server, ca: id.ca, certificate: id.cert, key: id.key });
  dir = mkdtempSync(join(tmpdir(), "kubeloop-faults-"));
});
after(async () => {
  for (const op of running) await op.stop().catch(() => {});
  await proxy?.close();
  await admin?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  await releaseSharedCluster();
});

const namespace = () => createNamespace(admin, "faults");

/** An operator whose client goes through the proxy, without a client-side rate limit. */
async function start(op: Operator): Promise<OperatorUnderTest> {
  const client = await Client.load({ path: proxy.writeKubeconfig(join(dir, `${uniqueName("kc")}.yaml`)), rateLimit: false });
  const r = await runOperator(op, { client, logger: quiet });
  running.push(r);
  return r;
}

describe("HTTP faults", () => {
  it("the write that records a handler's success fails: the handler does not run again, the record is retried", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    let runs = 0;
    const op = new Operator({ name: "rec", namespaces: [ns], leaderElection: false });
    op.on.create(ConfigMap, async () => void runs++);
    const running = await start(op);
    const recordPath = `/api/v1/namespaces/${ns}/configmaps/c`;
    // One 503 without Retry-After on the record (a PATCH is not retried by the client: it may
    // have been applied); the handler itself had succeeded.
    proxy.inject({ status: 503, times: 1, match: (r) => r.method === "PATCH" && r.path.startsWith(recordPath) });
    await admin.resource(ConfigMap).namespace(ns).create({ metadata: { name: "c" } });
    await eventually("the success recorded", async () => (await admin.resource(ConfigMap).namespace(ns).get("c")).metadata?.annotations?.["rec.kubeloop.dev/last-handled"] !== undefined);
    assert.equal(runs, 1, "the handler ran once; its success was recorded by a retried write");
    await running.stop();
  });

  for (const status of [429, 503] as const) {
    it(`a ${status} storm with Retry-After: 1 on every request for 6 s: the request rate stays bounded, changes made during it are handled after`, { timeout: 90_000 }, async (t) => {
      const ns = await namespace();
      const seen = new Map<string, number>();
      const op = new Operator({ name: "storm", namespaces: [ns], leaderElection: false });
      op.on.create(ConfigMap, async ({ object }) => void seen.set(object.metadata?.name ?? "", (seen.get(object.metadata?.name ?? "") ?? 0) + 1));
      op.on.update(ConfigMap, async () => {});
      const running = await start(op);
      const cms = admin.resource(ConfigMap).namespace(ns);
      await Promise.all(Array.from({ length: 20 }, (_, i) => cms.create({ metadata: { name: `before-${i}` } })));
      await eventually("the first objects handled", async () => seen.size === 20);
      // ... and their successes recorded: the storm must find the operator idle. Writes in flight
      // when it starts each come back once a second (Retry-After), 20 of them make 20 a second:
      // bounded, but not the bound this test states (seen in fresh CI on a slow run: 124 in 6 s).
      await eventually("their successes recorded", async () => (await cms.list()).items.filter((c) => c.metadata?.annotations?.["storm.kubeloop.dev/last-handled"] !== undefined).length === 20);

      const from = Date.now();
      proxy.inject({ status, retryAfterSeconds: 1 });
      proxy.cutAll();
      // 20 new objects and 20 changes while the operator is refused (it cannot see them yet).
      await Promise.all(Array.from({ length: 20 }, (_, i) => cms.create({ metadata: { name: `during-${i}` } })));
      await Promise.all(Array.from({ length: 20 }, (_, i) => cms.patch(`before-${i}`, { data: { x: "1" } }, { type: "merge" })));
      await new Promise((r) => setTimeout(r, 6_000)); // the storm's length (a duration, not a wait for a condition)
      proxy.heal();
      const during = proxy.requestsSince(from).filter((r) => r.injected !== undefined);
      const perSecond = new Map<number, number>();
      for (const r of during) perSecond.set(Math.floor((r.at - from) / 1000), (perSecond.get(Math.floor((r.at - from) / 1000)) ?? 0) + 1);
      const max = Math.max(...perSecond.values());
      // With Retry-After honoured, each request in flight (the watch, writes of handlers that
      // were running) comes back about once a second: a handful a second (seen: up to 11).
      // Without it, a tight loop makes hundreds or thousands.
      const byRequest = new Map<string, number>();
      for (const r of during) {
        const what = `${r.method} ${r.path.replace(/\?.*/, "")}`;
        byRequest.set(what, (byRequest.get(what) ?? 0) + 1);
      }
      const breakdown = [...byRequest].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${n}× ${k}`).join("; ");
      t.diagnostic(`${status} storm: ${during.length} refused requests in 6 s, at most ${max} in one second: ${breakdown}`);
      assert.ok(max <= 30, `at most 30 refused requests in any second (saw ${max}; ${during.length} in 6 s)`);
      assert.ok(during.length <= 6 * 15, `at most 15 a second on average (${during.length} in 6 s: ${breakdown})`);
      assert.ok(during.length >= 2, `the operator kept trying (${during.length} requests)`);

      await eventually("every object created during the storm handled once", async () => [...Array(20).keys()].every((i) => seen.get(`during-${i}`) === 1), { timeoutMs: 30_000 });
      await eventually("every change made during the storm handled", async () =>
        (await cms.list()).items.filter((c) => c.metadata?.name?.startsWith("before-")).every((c) => (JSON.parse(c.metadata?.annotations?.["storm.kubeloop.dev/last-handled"] ?? "{}") as { data?: { x?: string } }).data?.x === "1"),
      );
      assert.ok([...seen.values()].every((n) => n === 1), "no create handler ran twice");
      await running.stop();
    });
  }
});

describe("the TCP FaultProxy", () => {
  it("heal() leaves open connections passing each byte once, with or without a hang before it", { timeout: 60_000 }, async () => {
    const tcp = await FaultProxy.start(id.server);
    // One kept-alive TLS connection through the proxy, reused by every request below.
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: id.ca, cert: id.cert, key: id.key });
    const version = () =>
      new Promise<string>((resolve, reject) => {
        const req = httpsRequest(`${tcp.url}/version`, { agent }, (res) => {
          let body = "";
          res.setEncoding("utf8").on("data", (chunk: string) => (body += chunk));
          res.on("end", () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}`))));
          res.on("error", reject);
        });
        req.on("error", reject).end();
      });
    try {
      assert.match(await version(), /gitVersion/);
      tcp.heal(); // nothing to heal: the open connection must be left as it is
      assert.match(await version(), /gitVersion/, "a request on the connection open before heal()");
      tcp.heal();
      assert.match(await version(), /gitVersion/, "and after a second heal()");
      tcp.hang();
      const hung = version();
      tcp.heal();
      assert.match(await hung, /gitVersion/, "the request made during the hang, answered once healed");
      assert.match(await version(), /gitVersion/, "and the connection still sound after that");
      assert.equal(tcp.accepted, 1, "every request went over the one connection (none was broken and replaced)");
    } finally {
      agent.destroy();
      await tcp.close();
    }
  });
});
