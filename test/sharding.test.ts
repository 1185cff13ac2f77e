// The API server's sharded list and watch (KEP-5866) as kubeloop speaks it: the local control
// plane turns the ShardedListAndWatch gate on, and the selectors of core/shards.ts select exactly
// the objects whose hash core/shards.ts puts in those buckets (the same FNV-1a as the server's),
// so a replica filtering on the client where the server does not gets the same share.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { Client, ConfigMap, Namespace, Operator, type KubeObject } from "../src/entries/index.js";
import { Share, createStore, hasObject, reflect, watch } from "../src/entries/runtime.js";
import { HttpFaultProxy, runOperator, startControlPlane, waitFor, type OperatorUnderTest } from "../src/entries/testing.js";
import { ShardMembers, formatClaims } from "../src/controller/shard-members.js";
import { ShardCoordinator } from "../src/controller/sharding.js";
import { bucketOf, bucketOwners, fnv1a64, shardSelector, shardValue, type ShardKey } from "../src/core/shards.js";
import { identityFromKubeconfig, releaseSharedCluster, sharedCluster, uniqueName } from "./helpers.js";
import { spawnKubeloop } from "./support.js";

let client: Client;
const namespaces: string[] = [];
before(async () => {
  client = await Client.load({ path: (await sharedCluster()).kubeconfigPath, rateLimit: false });
});
after(async () => {
  for (const ns of namespaces) await client.resource(Namespace).delete(ns).catch(() => {});
  await client?.close();
  await releaseSharedCluster();
});

async function namespaceWith(count: number): Promise<string> {
  const ns = uniqueName("shards");
  namespaces.push(ns);
  await client.resource(Namespace).create({ metadata: { name: ns } });
  const cms = client.resource(ConfigMap).namespace(ns);
  for (let i = 0; i < count; i += 20) await Promise.all(Array.from({ length: Math.min(20, count - i) }, (_, j) => cms.create({ metadata: { name: `cm-${i + j}` } })));
  return ns;
}

const names = (items: { metadata?: { name?: string } }[]) => items.map((o) => o.metadata?.name ?? "").sort();

describe("the API server's shard selector", () => {
  it("lists exactly the objects whose uid hash core/shards.ts puts in the selected buckets, and says it applied the selector", { timeout: 60_000 }, async () => {
    const ns = await namespaceWith(60);
    const cms = client.resource(ConfigMap).namespace(ns);
    const all = (await cms.list()).items;
    assert.equal(all.length, 60);
    assert.equal((await cms.list()).metadata.shardInfo, undefined, "no selector: no shardInfo");
    for (const [buckets, count] of [[[0], 2], [[1], 2], [[0, 2], 4], [[3], 4], [[1, 2, 5], 7]] as [number[], number][]) {
      const selector = shardSelector("uid", buckets, count) as string;
      const list = await cms.list({ shardSelector: selector });
      assert.equal(list.metadata.shardInfo?.selector, selector, "the server applied the selector (ShardedListAndWatch on)");
      const expected = all.filter((o) => buckets.includes(bucketOf(fnv1a64(shardValue(o, "uid")), count)));
      assert.deepEqual(names(list.items), names(expected), `buckets ${buckets.join(",")} of ${count}`);
    }
  });

  it("shards by namespace: every object of a namespace in the same share", { timeout: 60_000 }, async () => {
    const a = await namespaceWith(5);
    const b = await namespaceWith(5);
    const key: ShardKey = "namespace";
    for (const ns of [a, b]) {
      const bucket = bucketOf(fnv1a64(ns), 8);
      const mine = await client.resource(ConfigMap).namespace(ns).list({ shardSelector: shardSelector(key, [bucket], 8) as string });
      assert.equal(mine.items.length, 5, `${ns} is wholly in bucket ${bucket}`);
      const other = await client.resource(ConfigMap).namespace(ns).list({ shardSelector: shardSelector(key, [(bucket + 1) % 8], 8) as string });
      assert.equal(other.items.length, 0, `${ns} has nothing in another bucket`);
    }
  });

  it("watches only the selected share: events of other objects are not sent", { timeout: 60_000 }, async () => {
    const ns = await namespaceWith(0);
    const cms = client.resource(ConfigMap).namespace(ns);
    const selector = shardSelector("uid", [0], 2) as string;
    const start = await cms.list({ shardSelector: selector });
    const stop = new AbortController();
    const seen: string[] = [];
    const watching = (async () => {
      for await (const e of cms.watch({ shardSelector: selector, resourceVersion: start.metadata.resourceVersion, signal: stop.signal })) {
        if (e.type === "ADDED") seen.push(e.object.metadata?.name ?? "");
      }
    })().catch(() => {});
    const made = await Promise.all(Array.from({ length: 40 }, (_, i) => cms.create({ metadata: { name: `w-${i}` } })));
    const inShare = made.filter((o) => bucketOf(fnv1a64(shardValue(o, "uid")), 2) === 0).map((o) => o.metadata?.name ?? "").sort();
    assert.ok(inShare.length > 5 && inShare.length < 35, `about half in the share: ${inShare.length}`);
    const deadline = Date.now() + 20_000;
    while (seen.length < inShare.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    stop.abort();
    await watching;
    assert.deepEqual([...seen].sort(), inShare, "the watch sent the share's objects and only those");
  });
});

/**
 * Runs watch() with a share into a store until `until` holds; returns what it saw. Stops the watch
 * by its signal.
 */
async function watchShare(c: Client, ns: string, shard: { buckets: number[]; count: number }, initialList: "stream" | "list", until: (names: string[]) => boolean): Promise<{ names: string[]; mode: string | undefined }> {
  const { store, writer } = createStore<KubeObject>();
  const stop = new AbortController();
  let mode: string | undefined;
  const running = (async () => {
    for await (const e of reflect(watch(c.resource(ConfigMap), { namespace: ns, initialList, signal: stop.signal, shard: { key: "uid", ...shard, onMode: (m) => (mode = m) } }), writer)) void e;
  })().catch(() => {});
  const deadline = Date.now() + 30_000;
  while (!(store.isReady && until(names(store.list()))) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  stop.abort();
  await running;
  return { names: names(store.list()), mode };
}

async function shareOf(c: Client, ns: string, buckets: number[], count: number): Promise<string[]> {
  return names((await c.resource(ConfigMap).namespace(ns).list()).items.filter((o) => buckets.includes(bucketOf(fnv1a64(shardValue(o, "uid")), count))));
}

describe("watch() with a share", () => {
  for (const initialList of ["stream", "list"] as const) {
    it(`caches only its share, filtered by the server (initial ${initialList})`, { timeout: 90_000 }, async () => {
      const ns = await namespaceWith(40);
      const expected = await shareOf(client, ns, [1, 2], 3);
      const seen = await watchShare(client, ns, { buckets: [1, 2], count: 3 }, initialList, (n) => n.length >= expected.length);
      assert.deepEqual(seen.names, expected);
      assert.equal(seen.mode, "server");
    });
  }

  describe("on a server without ShardedListAndWatch", () => {
    let off: Awaited<ReturnType<typeof startControlPlane>>;
    let offClient: Client;
    before(async () => {
      off = await startControlPlane({ kubeconfig: false, controllers: [], featureGates: { ShardedListAndWatch: false } });
      offClient = await Client.load({ path: off.kubeconfigPath, rateLimit: false });
    });
    after(async () => {
      await offClient?.close();
      await off?.stop();
    });

    for (const initialList of ["stream", "list"] as const) {
      it(`caches the same share, filtering on the client (initial ${initialList}), and its events too`, { timeout: 90_000 }, async () => {
        const ns = uniqueName("shards-off");
        await offClient.resource(Namespace).create({ metadata: { name: ns } });
        const cms = offClient.resource(ConfigMap).namespace(ns);
        await Promise.all(Array.from({ length: 30 }, (_, i) => cms.create({ metadata: { name: `cm-${i}` } })));
        const unfiltered = await cms.list({ shardSelector: shardSelector("uid", [0], 2) as string });
        assert.equal(unfiltered.metadata.shardInfo, undefined, "the server ignored the selector");
        assert.equal(unfiltered.items.length, 30, "and sent everything");
        const expected = await shareOf(offClient, ns, [0], 2);
        const first = await watchShare(offClient, ns, { buckets: [0], count: 2 }, initialList, (n) => n.length >= expected.length);
        assert.deepEqual(first.names, expected);
        assert.equal(first.mode, "client");
        // Objects made while it watches (or before its list: either way they must be filtered).
        const wanted: { names?: string[] } = {};
        const later = watchShare(offClient, ns, { buckets: [0], count: 2 }, initialList, (n) => wanted.names !== undefined && wanted.names.every((w) => n.includes(w)));
        const made = await Promise.all(Array.from({ length: 20 }, (_, i) => cms.create({ metadata: { name: `late-${i}` } })));
        const lateShare = made.filter((o) => bucketOf(fnv1a64(shardValue(o, "uid")), 2) === 0).map((o) => o.metadata?.name ?? "");
        wanted.names = lateShare;
        const result = await later;
        const lateOthers = made.filter((o) => bucketOf(fnv1a64(shardValue(o, "uid")), 2) !== 0).map((o) => o.metadata?.name ?? "");
        for (const n of lateShare) assert.ok(result.names.includes(n), `${n} (in the share) cached`);
        for (const n of lateOthers) assert.ok(!result.names.includes(n), `${n} (another share) not cached`);
      });
    }
  });
});

describe("member Leases", () => {
  const members = (ns: string, identity: string, extra: Partial<ConstructorParameters<typeof ShardMembers>[1]> = {}) => new ShardMembers(client, { operator: "sharded", namespace: ns, identity, buckets: 16, key: "uid", leaseDurationMs: 2_000, ...extra });
  const until = async (what: string, check: () => Promise<boolean>) => {
    const deadline = Date.now() + 20_000;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  it("each replica sees the live members; one that leaves is gone at once, one that stops renewing after its lease duration; another sharding is reported, not counted", { timeout: 60_000 }, async () => {
    const ns = await namespaceWith(0);
    const [a, b, c] = [members(ns, "replica-a"), members(ns, "replica-b"), members(ns, "replica-c")];
    for (const m of [a, b, c]) await m.renew();
    assert.deepEqual((await a.view()).members, ["replica-a", "replica-b", "replica-c"]);
    assert.deepEqual((await c.view()).members, ["replica-a", "replica-b", "replica-c"], "every replica sees the same");
    // b stops gracefully: gone at once.
    await b.leave();
    assert.deepEqual((await a.view()).members, ["replica-a", "replica-c"]);
    // c stops renewing (SIGKILLed): a sees it until its lease duration passes without a change.
    const stopped = Date.now();
    const renewing = setInterval(() => void a.renew(), 300);
    try {
      await until("c to count as gone", async () => !(await a.view()).members.includes("replica-c"));
      assert.ok(Date.now() - stopped >= 1_500, `c was dropped ${Date.now() - stopped} ms after its last renewal, before its 2 s lease duration`);
      assert.deepEqual((await a.view()).members, ["replica-a"], "a renewing itself stays live");
    } finally {
      clearInterval(renewing);
    }
    // A replica running another bucket count (a rolling update that changes it).
    const other = members(ns, "replica-d", { buckets: 32 });
    await other.renew();
    const view = await a.view();
    assert.deepEqual(view.members, ["replica-a"]);
    assert.deepEqual([...view.disagreeing], [["replica-d", "32/uid"]]);
  });
});

describe("bucket ownership (claims on member Leases)", () => {
  const timings = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 };
  const coordinator = (ns: string, identity: string) => new ShardCoordinator(client, { operator: "owners", namespace: ns, identity, buckets: 16, ...timings });
  /** No bucket acted on by two replicas at once: checked after every step of every replica. */
  const assertNoOverlap = (cs: ShardCoordinator[], where: string) => {
    for (let b = 0; b < 16; b++) {
      const acting = cs.filter((c) => c.acting(b));
      assert.ok(acting.length <= 1, `${where}: bucket ${b} acted on by ${acting.length} replicas`);
    }
  };
  const owners = (cs: ShardCoordinator[]) => cs.map((c) => c.status.active);
  /** Ticks every replica in turn (after each, the overlap check) until `done`, within 30 s. */
  const run = async (cs: ShardCoordinator[], ticking: ShardCoordinator[], done: () => boolean, where: string) => {
    const deadline = Date.now() + 30_000;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`${where}: not converged: ${JSON.stringify(owners(cs))}`);
      for (const c of ticking) {
        await c.tick();
        assertNoOverlap(cs, where);
      }
      await new Promise((r) => setTimeout(r, timings.retryPeriodMs / 2));
    }
  };
  const covered = (cs: ShardCoordinator[]) => new Set(cs.flatMap((c) => c.status.active)).size === 16;

  it("splits the buckets among the replicas with no bucket on two at once, moves about 1/N to a newcomer, and takes a silent replica's buckets only after its lease duration", { timeout: 120_000 }, async () => {
    const ns = await namespaceWith(0);
    const [a, b, c] = [coordinator(ns, "r-a"), coordinator(ns, "r-b"), coordinator(ns, "r-c")];
    await run([a, b, c], [a, b, c], () => covered([a, b, c]) && [a, b, c].every((x) => x.status.members.length === 3 && x.status.active.length >= 5), "three replicas");
    for (const x of [a, b, c]) assert.ok(x.status.active.length === 5 || x.status.active.length === 6, `each owns a third of 16: ${JSON.stringify(owners([a, b, c]))}`);
    const before = owners([a, b, c]);
    const held = (cs: ShardCoordinator[]) => cs.map((x) => x.status.held);
    // `kubeloop shards` prints the same, read from the Leases (the replicas go on renewing meanwhile).
    let renewing = true;
    const renewals = (async () => {
      while (renewing) {
        for (const x of [a, b, c]) await x.tick();
        await new Promise((r) => setTimeout(r, timings.retryPeriodMs));
      }
    })();
    const cli = spawnKubeloop(["shards", "owners", "--namespace", ns, "--kubeconfig", (await sharedCluster()).kubeconfigPath]);
    const code = await cli.exited;
    renewing = false;
    await renewals;
    assert.equal(code, 0, cli.out());
    // What they hold, not what they may act on this instant: on a busy machine a renewal of the
    // loop above can be older than the renew deadline when this runs (the replica then rightly
    // does not act).
    assert.deepEqual(held([a, b, c]), before, "nothing moved meanwhile");
    for (const [i, id] of ["r-a", "r-b", "r-c"].entries()) {
      const row = cli.out().split("\n").find((l) => l.split(/\s+/)[1] === id);
      assert.ok(row, `a row for ${id}: ${cli.out()}`);
      assert.equal(row.split(/\s+/)[5], formatClaims(before[i] as number[]), `${id}'s claims as printed`);
      assert.equal(row.split(/\s+/)[2], "yes", `${id} live`);
    }
    assert.match(cli.out(), /16\/uid: every bucket claimed/);

    const d = coordinator(ns, "r-d");
    await run([a, b, c, d], [a, b, c, d], () => covered([a, b, c, d]) && [a, b, c, d].every((x) => x.status.members.length === 4 && x.status.active.length === 4), "a fourth joins");
    const moved = [a, b, c].reduce((n, x, i) => n + (before[i] as number[]).filter((bk) => !x.status.held.includes(bk)).length, 0);
    assert.equal(d.status.active.length, 4, "the newcomer owns its quarter of 16");
    assert.ok(moved >= 4 && moved <= 7, `about a quarter moved (bounded loads move a few more between the others): ${moved} of 16`);

    // d stops renewing (SIGKILLed): it stops acting at its renew deadline; the others take its
    // buckets only after its Lease went its lease duration without a change.
    const dBuckets = d.status.active;
    const silentSince = Date.now();
    let takenAt: number | undefined;
    await run([a, b, c, d], [a, b, c], () => {
      if (takenAt === undefined && dBuckets.some((bk) => [a, b, c].some((x) => x.acting(bk)))) takenAt = Date.now();
      return covered([a, b, c]);
    }, "d silent");
    assert.ok(takenAt !== undefined && takenAt - silentSince >= timings.leaseDurationMs - 500, `d's buckets were taken ${takenAt === undefined ? "never" : takenAt - silentSince} ms after d fell silent (lease ${timings.leaseDurationMs} ms)`);
    assert.deepEqual(d.status.active, [], "the silent replica no longer counts itself an owner");

    // c leaves gracefully: the others take over at once (no lease duration to wait).
    const leftAt = Date.now();
    await c.leave();
    await run([a, b, c, d], [a, b], () => covered([a, b]), "c left");
    assert.ok(Date.now() - leftAt < timings.leaseDurationMs, `taken over ${Date.now() - leftAt} ms after c left`);
  });
});

describe("bucket ownership across a change of the bucket count (a rolling update)", () => {
  it("the replica with the new count claims nothing while one with the old count lives, and everything once it is gone", { timeout: 60_000 }, async () => {
    const ns = await namespaceWith(0);
    const timings = { leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 };
    const old = new ShardCoordinator(client, { operator: "rolling", namespace: ns, identity: "old", buckets: 16, ...timings });
    const next = new ShardCoordinator(client, { operator: "rolling", namespace: ns, identity: "new", buckets: 32, ...timings });
    await old.tick(); // announces it
    assert.deepEqual(old.status.active, [], "the first tick claims nothing");
    await old.tick();
    assert.equal(old.status.active.length, 16, "alone, the old replica owns every bucket");
    for (let i = 0; i < 4; i++) {
      await next.tick();
      await old.tick();
    }
    assert.deepEqual(next.status.active, [], "the new count claims nothing beside the old");
    assert.deepEqual([...next.status.disagreeing], [["old", "16/uid"]]);
    assert.equal(old.status.active.length, 16, "the old replica keeps working meanwhile");
    assert.deepEqual([...old.status.disagreeing], [["new", "32/uid"]]);
    await old.leave();
    await next.tick();
    assert.equal(next.status.active.length, 32, "with the old replica gone, the new one owns every bucket");
  });
});

describe("a watch following a Share", () => {
  it("relists with the new buckets when the share changes: objects that left it come as unshared deletes, the new ones as applies", { timeout: 90_000 }, async () => {
    const ns = await namespaceWith(30);
    const share0 = await shareOf(client, ns, [0], 2);
    const share1 = await shareOf(client, ns, [1], 2);
    const share = new Share({ key: "uid", buckets: [0], count: 2 });
    const { store, writer } = createStore<KubeObject>();
    const events: { type: string; name?: string; unshared?: boolean; finalStateUnknown?: boolean }[] = [];
    const stop = new AbortController();
    const running = (async () => {
      for await (const e of reflect(watch(client.resource(ConfigMap), { namespace: ns, signal: stop.signal, shard: share }), writer)) {
        events.push({ type: e.type, ...(hasObject(e) ? { name: e.object.metadata?.name } : {}), ...(e.type === "delete" ? { unshared: e.unshared, finalStateUnknown: e.finalStateUnknown } : {}) });
      }
    })().catch(() => {});
    const until = async (what: string, check: () => boolean) => {
      const deadline = Date.now() + 30_000;
      while (!check()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(names(store.list()))}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      await until("the first share", () => store.isReady && names(store.list()).join() === share0.join());
      const mark = events.length;
      share.set([1]);
      await until("the second share", () => names(store.list()).join() === share1.join());
      const after = events.slice(mark);
      const deleted = after.filter((e) => e.type === "delete");
      assert.deepEqual(deleted.map((e) => e.name).sort(), share0, "every object of the old share left");
      assert.ok(deleted.every((e) => e.unshared === true && !e.finalStateUnknown), `marked unshared, not vanished: ${JSON.stringify(deleted.slice(0, 3))}`);
      assert.deepEqual(after.filter((e) => e.type === "apply").map((e) => e.name).sort(), share1, "every object of the new share came");
      assert.ok(!after.some((e) => e.type === "relisted"), "not reported as a relist (a recovery): handlers would run their resume handlers again");
      assert.ok(!after.some((e) => e.type === "error"), "no error reported for the change");
    } finally {
      stop.abort();
      await running;
    }
  });
});

describe("a watch following a Share, while it backs off", () => {
  it("a share changed while the watch waits out a failure is taken by the next attempt: a relist with the new buckets, not a watch on the old ones", { timeout: 90_000 }, async () => {
    // Fresh CI (2026-12-07): a replica whose watch was backing off when buckets moved kept
    // filtering with its old share until that watch ended (5–10 minutes): 15 parents unhandled.
    const ns = await namespaceWith(30);
    const share0 = await shareOf(client, ns, [0], 2);
    const share1 = await shareOf(client, ns, [1], 2);
    const kubeconfig = (await sharedCluster()).kubeconfigPath;
    const id = identityFromKubeconfig(kubeconfig);
    const proxy = await HttpFaultProxy.start({ server: id.server, ca: id.ca, certificate: id.cert, key: id.key });
    const dir = mkdtempSync(join(tmpdir(), "kubeloop-share-"));
    const viaProxy = await Client.load({ path: proxy.writeKubeconfig(join(dir, "kubeconfig"), ns), rateLimit: false });
    const share = new Share({ key: "uid", buckets: [0], count: 2 });
    const { store, writer } = createStore<KubeObject>();
    const stop = new AbortController();
    // A long first backoff, so that the share surely changes while the watch waits.
    let errors = 0;
    const running = (async () => {
      for await (const e of reflect(watch(viaProxy.resource(ConfigMap), { namespace: ns, signal: stop.signal, shard: share, backoff: { initialMs: 4_000, jitter: 0 } }), writer)) if (e.type === "error") errors++;
    })().catch(() => {});
    try {
      await waitFor("the first share", () => store.isReady && names(store.list()).join() === share0.join(), { timeoutMs: 30_000, intervalMs: 50 });
      const since = Date.now();
      proxy.inject({ status: 500, match: (r) => r.watch });
      proxy.cutAll(); // the watch in flight ends; its next one is refused: the watcher backs off
      await waitFor("a refused watch, reported", () => proxy.requestsSince(since).some((r) => r.watch && r.injected === 500) && errors > 0, { timeoutMs: 30_000, intervalMs: 20 });
      share.set([1]);
      proxy.heal();
      await waitFor("the second share", () => names(store.list()).join() === share1.join(), { timeoutMs: 30_000, intervalMs: 50 }).catch((error: unknown) => {
        throw new Error(`${error instanceof Error ? error.message : String(error)}; cached: ${names(store.list()).join()}`);
      });
    } finally {
      stop.abort();
      await running;
      await viaProxy.close();
      await proxy.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("an operator sharded by namespace", () => {
  it("two replicas: each namespace's objects are handled once, by the replica owning the namespace's bucket; after one leaves, the other handles them all", { timeout: 120_000 }, async () => {
    const leases = await namespaceWith(0);
    const watched = await Promise.all(Array.from({ length: 6 }, () => namespaceWith(0)));
    const BUCKETS = 8;
    const handled: { by: string; ns: string; name: string }[] = [];
    const operator = uniqueName("byns");
    const replica = (id: string) => {
      const op = new Operator({
        name: operator,
        namespaces: watched,
        sharding: { buckets: BUCKETS, key: "namespace" },
        leaderElection: { namespace: leases, identity: id, leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 300 },
      });
      op.on.create(ConfigMap, ({ object }) => void handled.push({ by: id, ns: object.metadata?.namespace ?? "", name: object.metadata?.name ?? "" }));
      return runOperator(op, { client, leaderElection: true, probes: true, logger: pino({ level: "silent" }) });
    };
    const [a, b] = [await replica("a"), await replica("b")];
    try {
      const owned = async (r: OperatorUnderTest) => Number(/^kubeloop_shard_buckets_owned (\d+)$/m.exec(await (await fetch(`${r.probes?.url}/metrics`)).text())?.[1] ?? 0);
      await waitFor("each replica owning half of the buckets", async () => (await owned(a)) === BUCKETS / 2 && (await owned(b)) === BUCKETS / 2, { timeoutMs: 30_000 });
      const owners = bucketOwners(["a", "b"], BUCKETS);
      const ownerOf = (ns: string) => owners[bucketOf(fnv1a64(ns), BUCKETS)];
      for (const ns of watched) for (const name of ["x", "y", "z"]) await client.resource(ConfigMap).namespace(ns).create({ metadata: { name } });
      await waitFor("18 objects handled", async () => handled.length >= 18, { timeoutMs: 30_000 });
      for (const h of handled) assert.equal(h.by, ownerOf(h.ns), `${h.ns}/${h.name} handled by ${h.by}, its namespace's bucket ${bucketOf(fnv1a64(h.ns), BUCKETS)} is ${ownerOf(h.ns)}'s`);
      // a leaves (a graceful stop): b owns every bucket and handles every namespace's new objects.
      await a.stop();
      await waitFor("b owning every bucket", async () => (await owned(b)) === BUCKETS, { timeoutMs: 30_000 });
      for (const ns of watched) await client.resource(ConfigMap).namespace(ns).create({ metadata: { name: "after" } });
      await waitFor("24 objects handled", async () => handled.length >= 24, { timeoutMs: 30_000 });
      assert.deepEqual(handled.filter((h) => h.name === "after").map((h) => h.by), watched.map(() => "b"));
      const keys = handled.map((h) => `${h.ns}/${h.name}`);
      assert.equal(new Set(keys).size, keys.length, `no object handled twice: ${keys.join(", ")}`);
    } finally {
      await a.stop().catch(() => {});
      await b.stop();
    }
  });
});
