// Leadership handovers under load, with a fencing record: every write a replica makes is
// matched, by the server's own revision order, with the Lease holder at that revision. A write
// by a replica that did not hold the Lease then is an overlap (two leaders). 20 handovers,
// SIGTERM (graceful: the Lease must be released only after the work has stopped) and SIGKILL
// (the successor waits out the lease) mixed.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Client, ConfigMap, Lease, Namespace, type KubeObject } from "../src/entries/index.js";
import { watch } from "../src/entries/runtime.js";
import { eventually, releaseSharedCluster, sharedCluster, uniqueName } from "./helpers.js";
import { spawnTs, type Spawned } from "./support.js";

const LEASE_MS = 2_000;
const RENEW_MS = 1_500;
const RETRY_MS = 400;
const RECONCILE_MS = 700;
const HANDOVERS = 20;
const fixture = fileURLToPath(new URL("./fixtures/fencing-operator.ts", import.meta.url));

let client: Client;
let kubeconfig: string;
const children: ChildProcess[] = [];
const watches: AbortController[] = [];

before(async () => {
  kubeconfig = (await sharedCluster()).kubeconfigPath;
  client = await Client.load({ path: kubeconfig, rateLimit: false });
});
after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  for (const w of watches) w.abort();
  await client?.close();
  await releaseSharedCluster();
});

interface Replica extends Spawned {
  identity: string;
  ready: Promise<void>;
}

function replica(ns: string, identity: string): Replica {
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));
  const spawned = spawnTs(fixture, [kubeconfig, ns, identity, String(LEASE_MS), String(RENEW_MS), String(RETRY_MS), String(RECONCILE_MS)], (line) => {
    if (line === `READY ${identity}`) resolveReady();
  });
  children.push(spawned.process);
  return { ...spawned, identity, ready };
}

/** A write or a Lease change, at the server's revision. */
type Record = { rv: number; lease: string } | { rv: number; write: string; by: string };

/** Records, from a watch, every Lease holder change and every replica write in `ns`. */
function record(ns: string, into: Record[]): { leaseRv: number; configMapRv: number } {
  const progress = { leaseRv: 0, configMapRv: 0 };
  const stop = new AbortController();
  watches.push(stop);
  const seen = new Set<string>();
  void (async () => {
    for await (const e of watch(client.resource(Lease).namespace(ns), { signal: stop.signal })) {
      if (e.type !== "apply" && e.type !== "initApply") continue;
      progress.leaseRv = Number(e.object.metadata?.resourceVersion);
      into.push({ rv: progress.leaseRv, lease: e.object.spec?.holderIdentity ?? "" });
    }
  })();
  void (async () => {
    for await (const e of watch<KubeObject>(client.resource(ConfigMap).namespace(ns), { signal: stop.signal })) {
      if (e.type !== "apply" && e.type !== "initApply") continue;
      progress.configMapRv = Math.max(progress.configMapRv, Number(e.object.metadata?.resourceVersion));
      const write = e.object.metadata?.annotations?.["last-write"];
      if (!write || seen.has(write)) continue;
      seen.add(write);
      into.push({ rv: Number(e.object.metadata?.resourceVersion), write, by: write.split("/")[0] ?? "" });
    }
  })();
  return progress;
}

/** Writes made while another replica (or nobody) held the Lease. */
function overlaps(records: Record[]): string[] {
  let holder = "";
  const bad: string[] = [];
  for (const r of [...records].sort((a, b) => a.rv - b.rv)) {
    if ("lease" in r) holder = r.lease;
    else if (r.by !== holder) bad.push(`write ${r.write} at revision ${r.rv} while the Lease was held by "${holder}"`);
  }
  return bad;
}

describe("fencing across leadership handovers", () => {
  it(`${HANDOVERS} handovers (SIGTERM and SIGKILL mixed) under load: no write by a replica that did not hold the Lease`, { timeout: 400_000 }, async () => {
    const ns = uniqueName("fence");
    await client.resource(Namespace).create({ metadata: { name: ns } });
    const cms = client.resource(ConfigMap).namespace(ns);
    const records: Record[] = [];
    const progress = record(ns, records);
    for (let i = 0; i < 4; i++) await cms.create({ metadata: { name: `work-${i}`, labels: { fence: "work" } }, data: { gen: "0" } });
    await cms.create({ metadata: { name: "tick", labels: { fence: "tick" } } });

    // Load: a work ConfigMap changes every 100 ms, so reconciles are nearly always in flight.
    let loading = true;
    const load = (async () => {
      for (let gen = 1; loading; gen++) {
        await cms.patch(`work-${gen % 4}`, { data: { gen: String(gen) } }, { type: "merge" }).catch(() => {});
        await new Promise((r) => setTimeout(r, 100));
      }
    })();

    let next = 0;
    const replicas = new Map<string, Replica>();
    const add = () => {
      const r = replica(ns, `r${next++}`);
      replicas.set(r.identity, r);
      return r;
    };
    const holder = async () => (await client.resource(Lease).namespace(ns).get("fencing").catch(() => undefined))?.spec?.holderIdentity ?? "";
    const writesBy = (id: string) => records.filter((r) => "by" in r && r.by === id).length;
    await Promise.all([add().ready, add().ready]);
    const kinds: string[] = [];
    const takeovers: { how: string; ms: number }[] = [];
    try {
      for (let round = 0; round < HANDOVERS; round++) {
        const leader = await eventually("a leader that writes", async () => {
          const h = await holder();
          return replicas.has(h) && writesBy(h) > 0 && h;
        }, { timeoutMs: 30_000, intervalMs: 100 });
        const old = replicas.get(leader)!;
        const how = round % 3 === 2 ? "SIGKILL" : "SIGTERM";
        kinds.push(how);
        old.process.kill(how);
        const code = await old.exited;
        if (how === "SIGTERM") assert.equal(code, 0, `a SIGTERMed replica exits cleanly:\n${old.stderr()}`);
        const goneAt = Date.now();
        replicas.delete(leader);
        const fresh = add();
        await eventually(`a new leader after ${how} of ${leader}`, async () => {
          const h = await holder();
          return h !== leader && replicas.has(h);
        }, { timeoutMs: 30_000, intervalMs: 50 });
        takeovers.push({ how, ms: Date.now() - goneAt });
        await fresh.ready;
      }
    } finally {
      loading = false;
      await load;
      for (const r of replicas.values()) r.process.kill("SIGTERM");
      await Promise.all([...replicas.values()].map((r) => r.exited));
    }
    // Let the record catch up with the last writes.
    const lastConfigMap = Math.max(...(await cms.list()).items.map((c) => Number(c.metadata?.resourceVersion)));
    const lastLease = Number((await client.resource(Lease).namespace(ns).get("fencing")).metadata?.resourceVersion);
    await eventually("the record caught up", async () => progress.configMapRv >= lastConfigMap && progress.leaseRv >= lastLease);
    const bad = overlaps(records);
    const writes = records.filter((r) => "by" in r).length;
    const transitions = records.filter((r) => "lease" in r).length;
    process.stdout.write(`# ${HANDOVERS} handovers (${kinds.filter((k) => k === "SIGTERM").length} SIGTERM, ${kinds.filter((k) => k === "SIGKILL").length} SIGKILL): ${writes} writes, ${transitions} Lease updates, ${bad.length} overlaps\n`);
    const slowest = (how: string) => Math.max(...takeovers.filter((t) => t.how === how).map((t) => t.ms));
    process.stdout.write(`# takeover after the old leader exited: ≤ ${slowest("SIGTERM")} ms after SIGTERM (Lease released), ≤ ${slowest("SIGKILL")} ms after SIGKILL (lease ${LEASE_MS} ms, retry ${RETRY_MS} ms)\n`);
    assert.deepEqual(bad, [], `writes by a replica that did not hold the Lease:\n${bad.slice(0, 10).join("\n")}`);
    // Within lease + retry (client-go jitters the retry by up to 20 %), with room for a loaded
    // machine; a successor waiting for a default 15 s lease, or one that never acquires, fails.
    const bound = LEASE_MS + 2 * RETRY_MS + 2_000;
    assert.ok(takeovers.every((t) => t.ms <= bound), `every takeover within ${bound} ms: ${JSON.stringify(takeovers)}`);
    assert.ok(writes > HANDOVERS * 2, `enough writes to mean something (${writes})`);
    // Leave nothing behind: the timer's finalizer would hold the namespace.
    await cms.patch("tick", { metadata: { finalizers: null } }, { type: "merge" }).catch(() => {});
    await client.resource(Namespace).delete(ns);
  });
});
