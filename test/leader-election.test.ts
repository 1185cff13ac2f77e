// Leader election with real processes: of two managers exactly one reconciles; SIGKILL of the
// leader hands over within lease duration + retry period; SIGTERM releases the Lease so the
// successor takes over at its next retry.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { pino } from "pino";
import { Client, ConfigMap, LeaderElectionLostError, Lease, Namespace } from "../src/entries/index.js";
import { LeaderElector, Manager } from "../src/entries/runtime.js";
import { FaultProxy } from "../src/entries/testing.js";
import { eventually, releaseSharedCluster, sharedCluster, uniqueName } from "./helpers.js";
import { collectGarbage, spawnTs, type Spawned } from "./support.js";

const LEASE_MS = 6_000;
const RENEW_MS = 4_000;
const RETRY_MS = 1_000;
const fixture = fileURLToPath(new URL("./fixtures/leader-operator.ts", import.meta.url));

let client: Client;
let kubeconfig: string;
const children: ChildProcess[] = [];

before(async () => {
  kubeconfig = (await sharedCluster()).kubeconfigPath;
  client = await Client.load({ path: kubeconfig, rateLimit: false });
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await client?.close();
  await releaseSharedCluster();
});

interface Replica extends Spawned {
  identity: string;
}

function replica(ns: string, identity: string, lease: string): Replica {
  const spawned = spawnTs(fixture, [kubeconfig, ns, identity, lease, String(LEASE_MS), String(RENEW_MS), String(RETRY_MS)]);
  children.push(spawned.process);
  void spawned.exited.then((code) => {
    if (code !== 0 && code !== null) process.stderr.write(`replica ${identity} exited ${code}:\n${spawned.stderr()}\n`);
  });
  return { ...spawned, identity };
}

describe("leader election", () => {
  it("release() gives the Lease up even when its last renewal landed unseen (an aborted request the server applied)", { timeout: 30_000 }, async () => {
    const ns = uniqueName("release");
    await client.resource(Namespace).create({ metadata: { name: ns } });
    const options = { namespace: ns, name: "l", identity: "me", leaseDurationMs: 10_000, renewDeadlineMs: 5_000, retryPeriodMs: 1_000 };
    const a = new LeaderElector(client, options);
    await a.acquire(AbortSignal.timeout(10_000));
    // The same identity renews behind a's back: the Lease's resourceVersion moves on, as when a
    // renewal is aborted after the server applied it. a's view is now stale.
    await new LeaderElector(client, options).acquire(AbortSignal.timeout(10_000));
    await a.release();
    assert.equal((await client.resource(Lease).namespace(ns).get("l")).spec?.holderIdentity, "", "released (a successor need not wait for expiry)");
  });

  it("one leader acts; SIGKILL hands over within lease + retry; SIGTERM releases at once", { timeout: 120_000 }, async () => {
    const ns = uniqueName("lead");
    await client.resource(Namespace).create({ metadata: { name: ns } });
    const lease = "leader-test";
    const leases = client.resource(Lease).namespace(ns);
    const holder = async () => (await leases.get(lease).catch(() => undefined))?.spec?.holderIdentity ?? "";
    const cms = client.resource(ConfigMap).namespace(ns);

    const a = replica(ns, "a", lease);
    const b = replica(ns, "b", lease);
    const first = await eventually("a leader", async () => ["a", "b"].includes(await holder()) && (await holder()), { timeoutMs: 60_000 });
    const [leader, follower] = first === "a" ? [a, b] : [b, a];

    for (let i = 0; i < 5; i++) await cms.create({ metadata: { name: `before-${i}` } });
    await eventually("5 ConfigMaps reconciled", async () => (await cms.list()).items.filter((c) => c.metadata?.annotations?.["reconciled-by"] === leader.identity).length === 5);
    assert.equal(follower.lines.filter((l) => l.startsWith("RECONCILED")).length, 0, "the follower does not reconcile");
    assert.ok(leader.lines.filter((l) => l.startsWith("RECONCILED")).length >= 5);

    // SIGKILL: no release; the follower waits out the lease.
    leader.process.kill("SIGKILL");
    const killedAt = Date.now();
    await leader.exited;
    await cms.create({ metadata: { name: "after-kill" } });
    await eventually("the follower takes the Lease", async () => (await holder()) === follower.identity, { timeoutMs: 30_000, intervalMs: 100 });
    const takeover = Date.now() - killedAt;
    await eventually("after-kill reconciled by the new leader", async () => (await cms.get("after-kill")).metadata?.annotations?.["reconciled-by"] === follower.identity);
    // The lease expires LEASE_MS after the follower last saw it change (≤ one retry before the kill), then one jittered retry.
    assert.ok(takeover <= LEASE_MS + RETRY_MS * 1.2 + 1_500, `takeover after SIGKILL took ${takeover} ms`);

    // SIGTERM: the leader releases the Lease; a new candidate takes it at its next retry.
    const c = replica(ns, "c", lease);
    await eventually("c is following (synced)", async () => (await holder()) === follower.identity && true);
    await new Promise((r) => setTimeout(r, 3 * RETRY_MS)); // let c start its acquire loop
    follower.process.kill("SIGTERM");
    const termAt = Date.now();
    assert.equal(await follower.exited, 0, "a SIGTERMed replica exits cleanly");
    assert.ok(follower.lines.includes(`STOPPED ${follower.identity}`));
    await eventually("c takes the released Lease", async () => (await holder()) === "c", { timeoutMs: 30_000, intervalMs: 100 });
    const handover = Date.now() - termAt;
    assert.ok(handover < LEASE_MS, `handover after SIGTERM took ${handover} ms (lease ${LEASE_MS} ms)`);
    await cms.create({ metadata: { name: "after-term" } });
    await eventually("after-term reconciled by c", async () => (await cms.get("after-term")).metadata?.annotations?.["reconciled-by"] === "c");
    process.stdout.write(`# takeover after SIGKILL: ${takeover} ms; after SIGTERM: ${handover} ms\n`);

    c.process.kill("SIGTERM");
    assert.equal(await c.exited, 0);
    const lastHolder = await holder();
    assert.equal(lastHolder, "", "a graceful stop leaves the Lease released");
  });

  it("a leader cut off from the API server stops acting before another takes over", { timeout: 60_000 }, async () => {
    await partition({ cut: (proxy) => (proxy.cutAll(), proxy.refuse()), timeoutMs: 1_000 });
  });

  it("a leader whose renewal hangs (no answer, no reset) stops at its renew deadline, even after a garbage collection (Node 20 lost the attempt's deadline)", { timeout: 60_000 }, async () => {
    // The client's own request timeout (30 s) is far beyond the Lease (3 s): only the renewal
    // attempt's deadline stops the leader in time.
    await partition({ cut: (proxy) => proxy.hang(), timeoutMs: 30_000, whileCut: collectGarbage });
  });

  it("a leader whose rate limit is taken by its own work keeps its Lease: renewals do not queue behind the writes they guard", { timeout: 90_000 }, async () => {
    // Lease renewals shared the client's token bucket (FIFO) with the reconciles' writes: a
    // backlog longer than the renew deadline (256 workers at 20 qps: 12.8 s against 10 s) lost
    // the Lease, and the process exited. controller-runtime gives leader election a client of its own.
    const ns = uniqueName("limited");
    await client.resource(Namespace).create({ metadata: { name: ns } });
    const N = 40;
    for (let i = 0; i < N; i += 20) await Promise.all(Array.from({ length: Math.min(20, N - i) }, (_, j) => client.resource(ConfigMap).namespace(ns).create({ metadata: { name: `cm-${i + j}` } })));
    // 4 requests a second: 40 reconciles writing twice each are a 20 s backlog; the renew deadline is 2 s.
    const limited = await Client.load({ path: kubeconfig, rateLimit: { qps: 4, burst: 1 } });
    const lost: unknown[] = [];
    const m = new Manager(limited, { name: "limited", leaderElection: { namespace: ns, name: "limited", identity: "a", leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 }, logger: pino({ level: "silent" }) });
    const done = new Set<string>();
    m.controller(ConfigMap).withOptions({ scope: { namespace: ns }, concurrency: 40 }).reconcile(async (ref, ctx) => {
      for (const n of [1, 2]) await limited.resource(ConfigMap).namespace(ns).patch(ref.name, { data: { n: String(n) } }, { type: "merge", signal: ctx.signal });
      done.add(ref.name);
    });
    const stop = new AbortController();
    const run = m.run(stop.signal).catch((error: unknown) => void lost.push(error));
    try {
      await eventually("every object written twice, by a leader that kept its Lease", async () => {
        if (lost.length) throw new Error(`the leader stopped: ${String(lost[0])}`);
        return done.size === N;
      }, { timeoutMs: 60_000, intervalMs: 200 });
      assert.equal(m.status.phase, "leading");
    } finally {
      stop.abort();
      await run;
      await limited.close();
      await client.resource(Namespace).delete(ns).catch(() => {});
    }
    assert.deepEqual(lost, [], "no leadership lost");
  });
});

/** Two managers on one Lease; `cut` partitions the leader's proxy; the leader must stop before the other leads. */
async function partition(how: { cut: (proxy: FaultProxy) => void; timeoutMs: number; whileCut?: () => Promise<void> }): Promise<void> {
  const ns = uniqueName("part");
  await client.resource(Namespace).create({ metadata: { name: ns } });
  const cluster = await sharedCluster();
  const proxy = await FaultProxy.start(cluster.server);
  const scratch = mkdtempSync(join(tmpdir(), "kubeloop-le-"));
  const cut = await Client.load({ path: proxy.rewriteKubeconfig(cluster.kubeconfigPath, join(scratch, "k")), rateLimit: false, retries: 0, timeoutMs: how.timeoutMs });
  const timeline: [string, number][] = [];
  const le = (identity: string) => ({ namespace: ns, name: "partition", identity, leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 });
  const quiet = pino({ level: "silent" });
  const make = (c: Client, identity: string) => {
    const m = new Manager(c, { name: "partition", leaderElection: le(identity), logger: quiet, observer: { leader: (_n, is) => timeline.push([`${identity}:${is ? "lead" : "stop"}`, Date.now()]) } });
    m.controller(ConfigMap).withOptions({ scope: { namespace: ns } }).reconcile(async () => {});
    return m;
  };
  const a = make(cut, "a");
  const stopA = new AbortController();
  const runA = a.run(stopA.signal);
  const endA = runA.then(() => undefined, (error: unknown) => error);
  await eventually("a leads", async () => a.status.phase === "leading");
  const b = make(client, "b");
  const stopB = new AbortController();
  const runB = b.run(stopB.signal);
  try {
    await eventually("b follows", async () => b.status.phase === "following" && b.status.leader === "a");
    how.cut(proxy);
    await eventually("b leads", async () => (await how.whileCut?.(), b.status.phase === "leading"), { timeoutMs: 20_000 });
    const at = (what: string) => timeline.find(([w]) => w === what)?.[1] ?? NaN;
    assert.ok(at("a:stop") < at("b:lead"), `a stopped at ${at("a:stop")}, b led at ${at("b:lead")}: never two leaders`);
    assert.ok((await endA) instanceof LeaderElectionLostError);
    process.stdout.write(`# partitioned leader stopped ${at("b:lead") - at("a:stop")} ms before the successor started\n`);
  } finally {
    proxy.heal();
    stopA.abort();
    stopB.abort();
    await endA;
    await runB;
    await cut.close();
    await proxy.close();
  }
}
