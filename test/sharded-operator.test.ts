// A sharded operator under churn, as users run it: replica processes of one operator
// (test/fixtures/sharded-operator.ts: a two-step create, a field handler, and a controller that
// owns a Secret per parent) split the objects of a namespace, while the objects change, a replica
// is SIGKILLed, one joins and one leaves gracefully. A fencing record like test/fencing.test.ts:
// every write a replica makes (a marker in the annotation `last-write`) is matched, by the server's
// own revision order, with the claims of the writer's member Lease at that revision. A write on an
// object whose bucket its writer did not claim then is an overlap. At the end every change must
// have been handled, no create step run twice except by a replica killed in between, and the
// timers run on the replicas left.
// Run twice: on the shared control plane (ShardedListAndWatch on: the server filters) and on one
// with the gate off (each replica filters what the server sends).
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Client, ConfigMap, Lease, Namespace, Secret, type KubeObject } from "../src/entries/index.js";
import { watch } from "../src/entries/runtime.js";
import { startControlPlane } from "../src/entries/testing.js";
import { DevOverride } from "../src/controller/dev-pause.js";
import { bucketOf, fnv1a64 } from "../src/core/shards.js";
import { MEMBER_LABEL, parseClaims } from "../src/controller/shard-members.js";
import { eventually, releaseSharedCluster, sharedCluster, uniqueName } from "./helpers.js";
import { spawnTs, type Spawned } from "./support.js";

const BUCKETS = 32; // the default: 10 or 11 to each of 3 replicas (16 would give 5 or 6: ±12 % from the buckets alone)
const ITEMS = Number(process.env.SHARDED_ITEMS ?? 240);
const PARENTS = 24;
const LEASE_MS = 8_000; // the fixture's timings: lease 8 s, renew deadline 6 s, retry 0.5 s
const RETRY_MS = 500;
/** A third of the buckets (floor or ceil), as the owned-buckets metric says it. */
const THIRD = new RegExp(`kubeloop_shard_buckets_owned (${Math.floor(BUCKETS / 3)}|${Math.ceil(BUCKETS / 3)})\\b`);
/** How far a replica's share may be from a third: ±15 % at 3,000 objects (the bar); more at the suite's size, where the hash's own spread is larger (±3σ). */
const SPREAD = (n: number) => Math.max(0.15, 3 * Math.sqrt(2 / n));
const fixture = fileURLToPath(new URL("./fixtures/sharded-operator.ts", import.meta.url));
const children: ChildProcess[] = [];

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  await releaseSharedCluster();
});

interface Replica extends Spawned {
  identity: string;
  ready: Promise<string>;
}

function replica(kubeconfig: string, ns: string, identity: string): Replica {
  let resolveReady!: (url: string) => void;
  const ready = new Promise<string>((r) => (resolveReady = r));
  const spawned = spawnTs(fixture, [kubeconfig, ns, identity, "uid", String(BUCKETS)], (line) => {
    const [word, who, url] = line.split(" ");
    if (word === "READY" && who === identity) resolveReady(url ?? "");
  });
  children.push(spawned.process);
  return { ...spawned, identity, ready };
}

/** A member Lease's claims, or a write on an object, at the server's revision. */
type Entry = { rv: number; member: string; claims: Set<number> } | { rv: number; leader: string } | { rv: number; write: string; by: string; uid: string; singular: boolean };

/** Records every member Lease change and every marked write in `ns`; resolves the progress so far. */
function record(client: Client, ns: string, into: Entry[], stop: AbortSignal): { leaseRv: number; writeRv: number; renewedAt: Map<string, number> } {
  // renewedAt: when this process saw each member's last Lease change (its last renewal, a watch's delay later).
  const progress = { leaseRv: 0, writeRv: 0, renewedAt: new Map<string, number>() };
  void (async () => {
    for await (const e of watch(client.resource(Lease).namespace(ns), { signal: stop })) {
      if (e.type !== "apply" && e.type !== "initApply" && e.type !== "delete") continue;
      progress.leaseRv = Math.max(progress.leaseRv, Number(e.object.metadata?.resourceVersion));
      if (!e.object.metadata?.labels?.[MEMBER_LABEL]) {
        into.push({ rv: Number(e.object.metadata?.resourceVersion), leader: e.type === "delete" ? "" : (e.object.spec?.holderIdentity ?? "") });
        continue;
      }
      const member = e.object.spec?.holderIdentity ?? "";
      progress.renewedAt.set(member, Date.now());
      into.push({ rv: Number(e.object.metadata?.resourceVersion), member, claims: e.type === "delete" ? new Set() : parseClaims(e.object.metadata?.annotations?.["kubeloop.dev/shard-claims"]) });
    }
  })();
  const seen = new Set<string>();
  for (const kind of [ConfigMap, Secret] as const) {
    void (async () => {
      for await (const e of watch<KubeObject>(client.resource(kind as typeof ConfigMap).namespace(ns), { signal: stop })) {
        if (e.type !== "apply" && e.type !== "initApply") continue;
        const rv = Number(e.object.metadata?.resourceVersion);
        progress.writeRv = Math.max(progress.writeRv, rv);
        const annotations = e.object.metadata?.annotations ?? {};
        const write = annotations["last-write"];
        if (!write || seen.has(write)) continue;
        seen.add(write);
        // A child's writes count against its parent's bucket: the parent is what its writer acts on.
        into.push({ rv, write, by: write.split("/")[0] ?? "", uid: annotations["parent-uid"] ?? e.object.metadata?.uid ?? "", singular: annotations.singular === "yes" });
      }
    })();
  }
  return progress;
}

/**
 * Writes on an object whose bucket the writer's member Lease did not claim at that revision, and
 * writes of the controller kept whole by a replica that did not hold the leader Lease then.
 */
function overlaps(entries: Entry[]): string[] {
  const claims = new Map<string, Set<number>>();
  let leader = "";
  const bad: string[] = [];
  for (const e of [...entries].sort((a, b) => a.rv - b.rv)) {
    if ("member" in e) claims.set(e.member, e.claims);
    else if ("leader" in e) leader = e.leader;
    else if (e.singular) {
      if (e.by !== leader) bad.push(`singular write ${e.write} at revision ${e.rv} while "${leader}" held the leader Lease`);
    } else {
      const bucket = bucketOf(fnv1a64(e.uid), BUCKETS);
      if (!claims.get(e.by)?.has(bucket)) bad.push(`write ${e.write} at revision ${e.rv} on bucket ${bucket}, which ${e.by} did not claim (it claimed ${[...(claims.get(e.by) ?? [])].join(",") || "nothing"})`);
    }
  }
  return bad;
}

async function metricsOf(url: string): Promise<string> {
  return (await fetch(`${url}/metrics`)).text();
}

/** Each replica's state, for a failure message: exited or not, its last lines and log. */
function states(rs: Iterable<Replica>): string {
  return [...rs].map((r) => `${r.identity}: ${r.process.exitCode ?? r.process.signalCode ?? "running"}; last lines: ${r.lines.slice(-3).join(" | ")}; stderr: ${r.stderr().slice(-800)}`).join("\n");
}

/** The scenario, on the cluster of `kubeconfig`; `serverFilters`: whether its API server applies shard selectors. */
async function scenario(kubeconfig: string, serverFilters: boolean): Promise<void> {
  const client = await Client.load({ path: kubeconfig, rateLimit: false });
  const stop = new AbortController();
  const ns = uniqueName("sharded");
  await client.resource(Namespace).create({ metadata: { name: ns } });
  const cms = client.resource(ConfigMap).namespace(ns);
  const entries: Entry[] = [];
  const progress = record(client, ns, entries, stop.signal);
  const replicas = new Map<string, Replica>();
  const everyone: Replica[] = []; // those gone too, for failure messages
  const killed = new Set<string>();
  let next = 0;
  const add = () => {
    const r = replica(kubeconfig, ns, `r${next++}`);
    replicas.set(r.identity, r);
    everyone.push(r);
    return r;
  };
  let churning = true;
  let churn: Promise<void> = Promise.resolve();
  try {
    for (let i = 0; i < ITEMS; i += 40) {
      await Promise.all(Array.from({ length: Math.min(40, ITEMS - i) }, (_, j) => cms.create({ metadata: { name: `item-${i + j}`, labels: { role: "item", ...((i + j) % 10 === 0 ? { tick: "yes" } : {}) } }, data: { gen: "0" } })));
    }
    for (let i = 0; i < PARENTS; i++) await cms.create({ metadata: { name: `parent-${i}`, labels: { role: "parent" } }, data: { gen: "0" } });
    await cms.create({ metadata: { name: "summary", labels: { role: "summary" } }, data: { gen: "0" } });
    const urls = await Promise.all([add(), add(), add()].map((r) => r.ready));

    // Spread: each replica's caches hold its share only, about a third.
    await eventually("three replicas with about a third of the buckets each", async () => {
      const texts = await Promise.all(urls.map(metricsOf));
      return texts.every((t) => THIRD.test(t));
    }, { timeoutMs: 30_000, intervalMs: 200 }).catch((error: unknown) => {
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n${states(everyone)}`);
    });
    // Each share's objects come by a relist after its buckets were acquired.
    const total = (await cms.list()).items.length; // with the namespace's kube-root-ca.crt, where a controller made one
    const cachedNow = () => Promise.all(urls.map(async (u) => Number(/kubeloop_shard_cached_objects\{kind="ConfigMap",selector=""\} (\d+)/.exec(await metricsOf(u))?.[1])));
    let cached: number[] = [];
    await eventually("the shares add up to every object", async () => (cached = await cachedNow()).reduce((a, b) => a + b, 0) === total, { timeoutMs: 30_000, intervalMs: 200 }).catch(() => {
      throw new Error(`the shares add up to every object, none twice: ${cached.join(" + ")} against ${total}`);
    });
    for (const n of cached) assert.ok(Math.abs(n - total / 3) <= SPREAD(total) * (total / 3), `each replica caches a third ±${Math.round(SPREAD(total) * 100)} %: ${cached.join(", ")} of ${total}`);
    // Ready once synced and leadership settled (a follower has seen who leads: on a busy machine, a moment after the caches).
    let readyz = "";
    await eventually("the first replica ready", async () => {
      const res = await fetch(`${urls[0]}/readyz`);
      readyz = await res.text();
      return res.status === 200;
    }, { timeoutMs: 30_000, intervalMs: 200 }).catch(() => {
      throw new Error(`/readyz of r0 never 200: ${readyz}`);
    });
    assert.match(readyz, new RegExp(`^ok\\nsharding: buckets [0-9,-]+ of ${BUCKETS} by uid, 3 member\\(s\\), filtering: ${serverFilters ? "server" : "client"}`), readyz);

    // Churn: items and parents change, children are deleted (the controller makes them again).
    churn = (async () => {
      for (let gen = 1; churning; gen++) {
        const patches = [
          cms.patch(`item-${(gen * 7) % ITEMS}`, { data: { gen: String(gen) } }, { type: "merge" }),
          cms.patch(`parent-${gen % PARENTS}`, { data: { gen: String(gen) } }, { type: "merge" }),
          ...(gen % 5 === 0 ? [client.resource(Secret).namespace(ns).delete(`parent-${(gen * 3) % PARENTS}`)] : []),
          ...(gen % 3 === 0 ? [cms.patch("summary", { data: { gen: String(gen) } }, { type: "merge" })] : []),
        ];
        await Promise.allSettled(patches);
        await new Promise((r) => setTimeout(r, 40));
      }
    })();
    const writesSoFar = () => entries.filter((e) => "write" in e).length;
    const before = writesSoFar();
    await eventually("the churn under way", async () => writesSoFar() >= before + 100, { timeoutMs: 60_000, intervalMs: 100 });

    // SIGKILL one, while it holds its third: its buckets are taken once its Lease has gone a lease
    // duration unrenewed.
    const victim = replicas.get("r1") as Replica;
    await eventually("r1 holding its third", async () => THIRD.test(await metricsOf(urls[1] as string)), { timeoutMs: 30_000, intervalMs: 100 }).catch((error: unknown) => {
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n${states(everyone)}`);
    });
    victim.process.kill("SIGKILL");
    await victim.exited;
    killed.add("r1");
    replicas.delete("r1");
    const killedAt = Date.now();
    await eventually("the survivors own every bucket", async () => {
      const texts = await Promise.all([urls[0], urls[2]].map((u) => metricsOf(u as string)));
      return texts.map((t) => Number(/kubeloop_shard_buckets_owned (\d+)/.exec(t)?.[1])).reduce((a, b) => a + b, 0) === BUCKETS;
    }, { timeoutMs: 30_000, intervalMs: 100 }).catch((error: unknown) => {
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n${states(everyone)}`);
    });
    const takenAt = Date.now();
    const takeover = takenAt - killedAt;
    // Counted from the victim's last renewal as seen here (the others count the lease from when
    // they saw it, no earlier): the kill may come up to a renewal period and a slow tick after it.
    const sinceRenewal = takenAt - (progress.renewedAt.get("r1") ?? killedAt);

    // One joins, one leaves gracefully.
    const joined = add();
    const joinedUrl = await joined.ready;
    await eventually("the newcomer owns its third", async () => THIRD.test(await metricsOf(joinedUrl)), { timeoutMs: 30_000, intervalMs: 200 }).catch((error: unknown) => {
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n${states(everyone)}`);
    });
    const leaver = replicas.get("r0") as Replica;
    leaver.process.kill("SIGTERM");
    assert.equal(await leaver.exited, 0, `a SIGTERMed replica exits cleanly:\n${leaver.stderr()}`);
    replicas.delete("r0");
    const leftAt = Date.now();
    await eventually("the two left own every bucket", async () => {
      const texts = await Promise.all([urls[2] as string, joinedUrl].map(metricsOf));
      return texts.map((t) => Number(/kubeloop_shard_buckets_owned (\d+)/.exec(t)?.[1])).reduce((a, b) => a + b, 0) === BUCKETS;
    }, { timeoutMs: 30_000, intervalMs: 100 }).catch((error: unknown) => {
      throw new Error(`${error instanceof Error ? error.message : String(error)}\n${states(everyone)}`);
    });
    const handover = Date.now() - leftAt;
    await new Promise((r) => setTimeout(r, 2_000));
    churning = false;
    await churn;

    // Every change handled: both create steps, the last gen, every child at its parent's gen.
    let unhandled: string[] = [];
    await eventually("every change handled", async () => {
      const items = (await cms.list({ labelSelector: "role=item" })).items;
      const parents = (await cms.list({ labelSelector: "role=parent" })).items;
      const secrets = new Map((await client.resource(Secret).namespace(ns).list()).items.map((s) => [s.metadata?.name, s]));
      const summary = await cms.get("summary");
      const a = (o: KubeObject) => o.metadata?.annotations ?? {};
      unhandled = [
        ...items.filter((i) => a(i)["handled-gen"] !== (i as { data?: { gen?: string } }).data?.gen).map((i) => `${i.metadata?.name}: gen ${i.data?.gen} handled ${a(i)["handled-gen"]}`),
        ...items.filter((i) => !a(i).stepA || !a(i).stepB).map((i) => `${i.metadata?.name}: stepA ${a(i).stepA} stepB ${a(i).stepB}`),
        ...parents.filter((p) => a(secrets.get(p.metadata?.name) ?? {}).gen !== p.data?.gen).map((p) => `${p.metadata?.name}: gen ${p.data?.gen}, child ${a(secrets.get(p.metadata?.name) ?? {}).gen}`),
        ...(a(summary)["handled-gen"] !== summary.data?.gen ? [`summary: gen ${summary.data?.gen} handled ${a(summary)["handled-gen"]}`] : []),
      ];
      return unhandled.length === 0;
    }, { timeoutMs: 60_000 + 40 * ITEMS, intervalMs: 500 }).catch(() => {
      throw new Error(`${unhandled.length} changes not handled:\n${unhandled.slice(0, 20).join("\n")}\nreplica logs:\n${[...replicas.values()].map((r) => r.stderr()).join("\n")}`);
    });
    // Timers run on the owners of their objects' buckets: after the moves, on the two replicas left.
    const left = new Set(replicas.keys());
    await eventually("every timer runs on a replica that is left", async () => {
      const ticking = (await cms.list({ labelSelector: "tick=yes" })).items;
      return ticking.length > 0 && ticking.every((i) => left.has(i.metadata?.annotations?.ticked ?? ""));
    }, { timeoutMs: 30_000, intervalMs: 500 });
    const runs = new Map<string, string[]>();
    for (const r of [...replicas.values(), victim, leaver]) {
      for (const line of r.lines) {
        const [word, step, uid, who] = line.split(" ");
        if (word === "RUN") runs.set(`${step} ${uid}`, [...(runs.get(`${step} ${uid}`) ?? []), who as string]);
      }
    }
    const items = (await cms.list({ labelSelector: "role=item" })).items;
    for (const i of items) for (const step of ["stepA", "stepB"]) assert.ok(runs.has(`${step} ${i.metadata?.uid}`), `${step} ran for ${i.metadata?.name}`);
    // Runs by a killed replica may have ended without their record; any other runs once at most.
    const twice = [...runs].filter(([, who]) => who.filter((w) => !killed.has(w)).length > 1);
    assert.deepEqual(twice, [], "no create step ran twice, except where a replica was killed before its record");

    for (const r of replicas.values()) r.process.kill("SIGTERM");
    await Promise.all([...replicas.values()].map((r) => r.exited));
    const lastWrite = Math.max(...(await cms.list()).items.map((c) => Number(c.metadata?.resourceVersion)));
    await eventually("the record caught up", async () => progress.writeRv >= lastWrite);
    const bad = overlaps(entries);
    const writes = entries.filter((e) => "by" in e);
    const singular = writes.filter((e) => "singular" in e && e.singular);
    const moves = entries.filter((e) => "member" in e).length;
    process.stdout.write(`# ${serverFilters ? "server" : "client"} filtering, ${total} objects: cached ${cached.join(" / ")}; ${writes.length} writes (${singular.length} by the leader's controller kept whole) by ${new Set(writes.map((w) => "by" in w && w.by)).size} replicas, ${moves} member Lease changes, ${bad.length} overlaps; SIGKILL taken over in ${takeover} ms (${sinceRenewal} ms after its last renewal), graceful leave in ${handover} ms\n`);
    assert.deepEqual(bad, [], `writes on buckets their writer did not claim:\n${bad.slice(0, 10).join("\n")}`);
    assert.ok(writes.length > ITEMS * 2, `enough writes to mean something (${writes.length})`);
    assert.ok(singular.length > 0, "the controller kept whole wrote (on the leader)");
    assert.ok(sinceRenewal >= LEASE_MS - 1_000, `a SIGKILLed replica's buckets taken only after its lease duration since its last renewal: ${sinceRenewal} ms after it, ${takeover} ms after the kill`);
    assert.ok(takeover <= LEASE_MS + 4 * RETRY_MS + 6_000, `a SIGKILLed replica's buckets taken within lease + retry (and room for a loaded machine): ${takeover} ms after the kill`);
    assert.ok(handover < LEASE_MS, `a graceful leaver's buckets taken at once, not after its lease: ${handover} ms`);
  } finally {
    churning = false;
    await churn.catch(() => {});
    for (const r of replicas.values()) if (r.process.exitCode === null) r.process.kill("SIGKILL");
    stop.abort();
    await client.resource(Namespace).delete(ns).catch(() => {});
    await client.close();
  }
}

describe("a dev run pauses every sharded replica", () => {
  it("each lets its buckets go and says so on its member Lease before the dev run acts; nothing is handled meanwhile; all is handled once it ends", { timeout: 120_000 }, async () => {
    const kubeconfig = (await sharedCluster()).kubeconfigPath;
    const client = await Client.load({ path: kubeconfig, rateLimit: false });
    const ns = uniqueName("sharded-dev");
    await client.resource(Namespace).create({ metadata: { name: ns } });
    const cms = client.resource(ConfigMap).namespace(ns);
    const started: Replica[] = [];
    try {
      await Promise.all(Array.from({ length: 40 }, (_, i) => cms.create({ metadata: { name: `item-${i}`, labels: { role: "item" } }, data: { gen: "0" } })));
      started.push(replica(kubeconfig, ns, "d0"), replica(kubeconfig, ns, "d1"));
      const urls = await Promise.all(started.map((r) => r.ready));
      const handled = async (gen: string) => (await cms.list({ labelSelector: "role=item" })).items.filter((i) => i.metadata?.annotations?.["handled-gen"] === gen).length;
      await eventually("both replicas own half and handled every item", async () => (await Promise.all(urls.map(metricsOf))).every((t) => /kubeloop_shard_buckets_owned 16\b/.test(t)) && (await handled("0")) === 40, { timeoutMs: 30_000, intervalMs: 200 });

      const logs: string[] = [];
      const dev = await DevOverride.take(client, { namespace: ns, name: "sharded-test-dev" }, { leaderLease: { namespace: ns, name: "sharded-test-leader" }, members: "sharded-test", leaseDurationMs: 5_000, renewMs: 1_000, log: (m) => logs.push(m) });
      try {
        const members = (await client.resource(Lease).namespace(ns).list({ labelSelector: MEMBER_LABEL })).items;
        assert.equal(members.length, 2, "two member Leases");
        for (const m of members) {
          assert.equal(m.metadata?.annotations?.["kubeloop.dev/shard-claims"], "", `${m.spec?.holderIdentity} claims nothing while paused`);
          assert.equal(m.metadata?.annotations?.["kubeloop.dev/paused"], dev.identity, `${m.spec?.holderIdentity} says it paused for the dev run`);
        }
        assert.ok(logs.some((l) => /2 sharded replica\(s\) paused/.test(l)), logs.join("\n"));
        for (const url of urls) {
          const readyz = await fetch(`${url}/readyz`);
          assert.equal(readyz.status, 503);
          assert.match(await readyz.text(), new RegExp(`paused by the dev run ${dev.identity}`));
        }
        await Promise.all(Array.from({ length: 40 }, (_, i) => cms.patch(`item-${i}`, { data: { gen: "1" } }, { type: "merge" })));
        // Nothing may handle them while the dev run holds its Lease: give the replicas time to (wrongly) act.
        await new Promise((r) => setTimeout(r, 3_000));
        assert.equal(await handled("1"), 0, "no change handled during the pause");
      } finally {
        await dev.release();
      }
      await eventually("every change handled once the dev run ended", async () => (await handled("1")) === 40, { timeoutMs: 30_000, intervalMs: 200 });
    } finally {
      for (const r of started) r.process.kill("SIGTERM");
      await Promise.all(started.map((r) => r.exited));
      await client.resource(Namespace).delete(ns).catch(() => {});
      await client.close();
    }
  });
});

describe("a sharded operator's replicas under churn", () => {
  it("with server-side filtering: no write outside its writer's claimed buckets, every change handled, SIGKILL / join / leave", { timeout: 300_000 }, async () => {
    await scenario((await sharedCluster()).kubeconfigPath, true);
  });

  describe("on a server without ShardedListAndWatch", () => {
    let off: Awaited<ReturnType<typeof startControlPlane>>;
    before(async () => {
      off = await startControlPlane({ kubeconfig: false, controllers: [], featureGates: { ShardedListAndWatch: false } });
    });
    after(async () => {
      await off?.stop();
    });
    it("the same with client-side filtering", { timeout: 300_000 }, async () => {
      await scenario(off.kubeconfigPath, false);
    });
  });
});
