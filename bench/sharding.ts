// The sharding figures (issue 33): one sharded operator (bench/workers/node.mjs kubeloop-sharded:
// a controller with a no-op reconcile on ConfigMaps, 32 buckets) run as 1, 2 and 4 replica
// processes on N objects, on a server that filters (ShardedListAndWatch on) and on one that does
// not (each replica filters what it receives). Per replica: start → settled (its share cached,
// ownership balanced), RSS once settled, and its CPU over M changes spread over all objects, per
// change made in the cluster. The API server's own counters of sharded watches are read before
// and after, where it has them.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parse } from "yaml";
import { Client } from "../src/entries/index.js";
import { churn, median, populate, quiet } from "./peers.js";

const root = join(import.meta.dirname, "..");
const BUCKETS = 32;

/** One replica's figures in one run. */
export interface ShardReplica {
  startToSettledMs: number;
  rssMiB: number;
  /** V8's heap in use after a full GC, once settled. */
  heapMiB: number;
  cached: number;
  owned: number;
  /** Its CPU over the changes, per change made in the cluster (all replicas'), µs. */
  cpuMicrosPerChange: number;
  /** The same, less what it spends idle over as long (Lease renewals, timers): the cost of the changes themselves. */
  netCpuMicrosPerChange: number;
  /** Update events it received over the changes (its share of them). */
  eventsSeen: number;
  /** Its CPU less idle per event it received, µs. */
  netCpuMicrosPerEvent: number;
}

/** One run: R replicas on N objects, with the server's filtering or the replicas'. */
export interface ShardRun {
  filtering: "server" | "client";
  replicas: number;
  objects: number;
  changes: number;
  /** The pace of the changes (a paced churn), per second. */
  changesPerSecond: number;
  /** A reference run: one replica at the pace N replicas each receive (not one of the 1/2/4 runs). */
  reference?: boolean;
  each: ShardReplica[];
  /** The API server's sharded-watch counters over the run (absent where it has none). */
  server?: Record<string, number>;
  /** An idle replica (no object) as the baseline of memory. */
  baselineRssMiB?: number;
  /** Its heap after a full GC. */
  baselineHeapMiB?: number;
}

interface Status {
  owned: number;
  cached: number;
  seen: number;
}

/** Process CPU (user + system) of `pid` in µs, from /proc. */
function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return ((Number(fields[11]) + Number(fields[12])) * 1_000_000) / 100;
}

function rssMiB(pid: number): number {
  return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0) / 1024;
}

/** The API server's /metrics lines about sharded watches (summed per name), through the kubeconfig's admin credentials. */
async function serverCounters(kubeconfig: string): Promise<Record<string, number>> {
  const doc = parse(readFileSync(kubeconfig, "utf8"));
  const b64 = (s?: string) => (s ? Buffer.from(s, "base64") : undefined);
  const cluster = doc.clusters[0].cluster;
  const user = doc.users[0].user ?? {};
  const text = await new Promise<string>((resolve, reject) => {
    request(`${cluster.server}/metrics`, { ca: b64(cluster["certificate-authority-data"]), cert: b64(user["client-certificate-data"]), key: b64(user["client-key-data"]), headers: user.token ? { authorization: `Bearer ${user.token}` } : {} }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve(body));
    })
      .on("error", reject)
      .end();
  });
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    const m = /^(apiserver_watch_[a-z_]*shard[a-z_]*|apiserver_watch_filtered_events_total)(\{[^}]*\})? ([0-9.e+]+)$/.exec(line);
    if (m) out[m[1] as string] = (out[m[1] as string] ?? 0) + Number(m[3]);
  }
  return out;
}

/** Spawns the replicas of one operator; resolves their statuses as they come, and how to stop them. */
function replicas(kubeconfig: string, namespace: string, count: number, operator: string): { pids: number[]; spawnedAt: number; statuses: Map<number, Status[]>; heaps: Map<number, number>; stop: () => void } {
  const statuses = new Map<number, Status[]>();
  const heaps = new Map<number, number>();
  const pids: number[] = [];
  const spawnedAt = performance.now();
  for (let i = 0; i < count; i++) {
    // BENCH_NODE_ARGS: more Node flags for the replicas (a probe's --cpu-prof --cpu-prof-dir=DIR; the profile is written on SIGTERM).
    const nodeArgs = process.env.BENCH_NODE_ARGS?.split(" ").filter(Boolean) ?? [];
    const child = spawn(process.execPath, [...nodeArgs, "--expose-gc", join(root, "bench", "workers", "node.mjs"), "kubeloop-sharded", kubeconfig, namespace, "0", "0"], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, BENCH_OPERATOR: operator, BENCH_IDENTITY: `${operator}-${i}` },
      detached: true,
    });
    const pid = child.pid as number;
    pids.push(pid);
    statuses.set(pid, []);
    let buffer = "";
    child.stdout.on("data", (d: Buffer) => {
      buffer += d.toString();
      for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n")) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        try {
          const s = JSON.parse(line) as Status & { phase: string; heapUsedMiB?: number };
          if (s.phase === "status") statuses.get(pid)?.push({ ...s, at: performance.now() } as Status);
          if (s.phase === "heap") heaps.set(pid, s.heapUsedMiB ?? 0);
        } catch {
          // a log line
        }
      }
    });
  }
  const stop = () => {
    for (const pid of pids) {
      try {
        process.kill(-pid, process.env.BENCH_NODE_ARGS ? "SIGTERM" : "SIGKILL");
      } catch {
        // gone
      }
    }
  };
  process.once("exit", stop);
  return { pids, spawnedAt, statuses, heaps, stop };
}

async function until(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`sharding bench: timed out waiting for ${what}`);
    await sleep(100);
  }
}

/** R replicas on the objects of `namespace`: settle, measure, change M objects, measure. */
async function runOnce(client: Client, kubeconfig: string, namespace: string, objects: number, r: number, changes: number, filtering: "server" | "client", perSecond: number): Promise<ShardRun> {
  const operator = `bench-shard-${r}-${Date.now().toString(36)}`;
  const before = await serverCounters(kubeconfig).catch(() => ({}));
  const run = replicas(kubeconfig, namespace, r, operator);
  try {
    const last = (pid: number) => run.statuses.get(pid)?.at(-1);
    const balanced = (s: Status | undefined) => s !== undefined && (s.owned === Math.floor(BUCKETS / r) || s.owned === Math.ceil(BUCKETS / r));
    // Settled: balanced ownership, every object cached once, and no change for a second.
    let settledSince = 0;
    let previous = "";
    await until(`${r} replicas to settle on ${objects} objects`, () => {
      const now = run.pids.map(last);
      const key = JSON.stringify(now.map((s) => [s?.owned, s?.cached]));
      const ok = now.every(balanced) && now.reduce((n, s) => n + (s?.cached ?? 0), 0) === objects;
      if (!ok || key !== previous) settledSince = ok ? performance.now() : 0;
      previous = key;
      return ok && performance.now() - settledSince > 1_000;
    }, 10 * 60_000);
    const each = run.pids.map((pid) => {
      const history = run.statuses.get(pid) as (Status & { at: number })[];
      const final = history.at(-1) as Status;
      const reached = history.find((s) => s.cached === final.cached && s.owned === final.owned) as Status & { at: number };
      return { pid, startToSettledMs: reached.at - run.spawnedAt, rssMiB: rssMiB(pid), cached: final.cached, owned: final.owned, seen: final.seen, cpu: 0 };
    });
    for (const pid of run.pids) process.kill(pid, "SIGUSR2");
    await until("the heaps after a full GC", () => run.pids.every((pid) => run.heaps.has(pid)), 60_000);
    await quiet(15_000);
    // Idle for 5 s: each replica's CPU rate with nothing changing.
    const idleFrom = each.map((e) => cpuMicros(e.pid));
    const idleStart = performance.now();
    await sleep(5_000);
    const idleMs = performance.now() - idleStart;
    const idleRate = each.map((e, i) => (cpuMicros(e.pid) - (idleFrom[i] as number)) / idleMs);
    for (const e of each) e.cpu = cpuMicros(e.pid);
    const seenBefore = each.reduce((n, e) => n + (last(e.pid)?.seen ?? 0), 0);
    const churnStart = performance.now();
    const seenFrom = each.map((e) => last(e.pid)?.seen ?? 0);
    await churn(client, namespace, objects, changes, operator, perSecond);
    await until(`${r} replicas to see ${changes} changes`, () => run.pids.reduce((n, pid) => n + (last(pid)?.seen ?? 0), 0) - seenBefore >= changes, 5 * 60_000);
    const churnMs = performance.now() - churnStart;
    const after = await serverCounters(kubeconfig).catch(() => ({}) as Record<string, number>);
    const server = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - ((before as Record<string, number>)[k] ?? 0)]));
    return {
      filtering,
      replicas: r,
      objects,
      changes,
      changesPerSecond: perSecond,
      each: each.map((e, i) => {
        const spent = cpuMicros(e.pid) - e.cpu;
        const net = spent - (idleRate[i] as number) * churnMs;
        const seen = (last(e.pid)?.seen ?? 0) - (seenFrom[i] as number);
        const tenth = (n: number) => Math.round(n * 10) / 10;
        return { startToSettledMs: Math.round(e.startToSettledMs), rssMiB: Math.round(e.rssMiB), heapMiB: Math.round(run.heaps.get(e.pid) ?? 0), cached: e.cached, owned: e.owned, cpuMicrosPerChange: tenth(spent / changes), netCpuMicrosPerChange: tenth(net / changes), eventsSeen: seen, netCpuMicrosPerEvent: tenth(net / Math.max(1, seen)) };
      }),
      ...(Object.keys(server).length ? { server } : {}),
    };
  } finally {
    run.stop();
  }
}

/** The figures at each replica count, on each server given (its filtering named). */
export async function shardingBench(o: { servers: { kubeconfig: string; filtering: "server" | "client" }[]; objects: number; changes: number; replicas: number[]; perSecond: number; log: (line: string) => void }): Promise<ShardRun[]> {
  const runs: ShardRun[] = [];
  for (const server of o.servers) {
    const client = await Client.load({ path: server.kubeconfig, rateLimit: false });
    try {
      // The baseline: one replica with nothing to cache (the process, the client, the operator).
      const empty = await populate(client, 0, 200, o.log);
      const idle = await runOnce(client, server.kubeconfig, empty, 0, 1, 0, server.filtering, o.perSecond).catch(() => undefined);
      const namespace = await populate(client, o.objects, 200, o.log);
      // With the server's filtering, also one replica at the pace each of N replicas receives: the
      // cost of an event at that rate without sharding (an event costs more CPU the fewer come).
      const references = server.filtering === "server" ? o.replicas.filter((r) => r > 1) : [];
      for (const [r, reference] of [...o.replicas.map((r) => [r, false] as const), ...references.map((r) => [r, true] as const)]) {
        const pace = reference ? o.perSecond / r : o.perSecond;
        o.log(`sharding: ${reference ? 1 : r} replica(s), ${o.objects} objects, ${server.filtering} filtering, ${pace} changes/s`);
        const run = await runOnce(client, server.kubeconfig, namespace, o.objects, reference ? 1 : r, reference ? Math.round(o.changes / r) : o.changes, server.filtering, pace);
        if (reference) run.reference = true;
        if (idle) {
          run.baselineRssMiB = median(idle.each.map((e) => e.rssMiB));
          run.baselineHeapMiB = median(idle.each.map((e) => e.heapMiB));
        }
        o.log(`sharding: ${JSON.stringify(run)}`);
        runs.push(run);
      }
    } finally {
      await client.close();
    }
  }
  return runs;
}

/** The sharding section of docs/benchmarks.md. */
export function renderSharding(all: ShardRun[]): string {
  const runs = all.filter((r) => !r.reference);
  const pace = runs[0]?.changesPerSecond ?? 0;
  const lines = [
    "## Sharding: 1, 2 and 4 replicas",
    "",
    "One sharded operator (a controller with a no-op reconcile on ConfigMaps, 32 buckets; `bench/sharding.ts`)",
    "run as 1, 2 and 4 replica processes on the same objects, on a server that filters each watch",
    "(ShardedListAndWatch on) and on one that does not (each replica filters what it receives).",
    `The changes are paced (${pace} per second), so that runs compare at the same rate of change.`,
    "Per replica: start → settled (ownership balanced, its share cached), RSS once settled, V8's heap",
    "in use after a full GC then, and the cache's memory: that heap less an idle replica's (no object;",
    "the process, the client and the operator). CPU over the changes per change made in the cluster",
    "(also less what it spends idle over as long, measured over 5 s before: Lease renewals, timers).",
    "Medians over the replicas of a run (min–max in brackets); the goal: with N replicas and the",
    "server filtering, each replica's cache memory and CPU per change (less idle CPU) ≤ 1.2/N of one replica's.",
    "",
    "| filtering | replicas | objects cached each | start → settled (s) | RSS (MiB) | heap after GC (MiB) | cache memory (MiB, heap − idle) | CPU per change (µs) | less idle CPU (µs) | vs 1 replica: cache memory, CPU less idle | goal 1.2/N |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
  ];
  const cache = (r: ShardRun) => median(r.each.map((e) => e.heapMiB)) - (r.baselineHeapMiB ?? 0);
  for (const run of runs) {
    const one = runs.find((r) => r.filtering === run.filtering && r.replicas === 1);
    const m = (f: (e: ShardReplica) => number) => median(run.each.map(f));
    const span = (f: (e: ShardReplica) => number) => (run.each.length > 1 ? ` (${Math.min(...run.each.map(f))}–${Math.max(...run.each.map(f))})` : "");
    const ratio = one && run !== one ? `×${(cache(run) / cache(one)).toFixed(2)}, ×${(m((e) => e.netCpuMicrosPerChange) / median(one.each.map((e) => e.netCpuMicrosPerChange))).toFixed(2)}` : "";
    lines.push(
      `| ${run.filtering} | ${run.replicas} | ${m((e) => e.cached)}${span((e) => e.cached)} | ${(m((e) => e.startToSettledMs) / 1000).toFixed(1)} | ${m((e) => e.rssMiB)}${span((e) => e.rssMiB)} | ${m((e) => e.heapMiB)}${span((e) => e.heapMiB)} | ${run.baselineHeapMiB !== undefined ? cache(run).toFixed(1) : "?"} | ${m((e) => e.cpuMicrosPerChange).toFixed(1)}${span((e) => e.cpuMicrosPerChange)} | ${m((e) => e.netCpuMicrosPerChange).toFixed(1)} | ${ratio} | ${run.replicas > 1 ? `×${(1.2 / run.replicas).toFixed(2)}` : ""} |`,
    );
  }
  const references = all.filter((r) => r.reference);
  if (references.length) {
    lines.push(
      "",
      "CPU per event a replica receives (less idle), against one replica alone receiving events at the same pace",
      "(1/N of the changes at 1/N of the pace): what an event costs a sharded replica, apart from how",
      "often events come (an event costs more CPU the fewer come: at a lower rate each finds the",
      "process's caches and code colder, on a machine it shares with the API server and etcd).",
      "",
      "| replicas | events each receives per second | µs per event, each replica (less idle) | one replica alone at that pace | ratio |",
      "| ---: | ---: | ---: | ---: | ---: |",
    );
    for (const ref of references) {
      const n = Math.round(pace / ref.changesPerSecond);
      const run = runs.find((r) => r.filtering === "server" && r.replicas === n);
      if (!run) continue;
      const each = median(run.each.map((e) => e.netCpuMicrosPerEvent));
      const alone = median(ref.each.map((e) => e.netCpuMicrosPerEvent));
      lines.push(`| ${n} | ${ref.changesPerSecond} | ${each.toFixed(1)} | ${alone.toFixed(1)} | ×${(each / alone).toFixed(2)} |`);
    }
  }
  const counters = runs.filter((r) => r.server).map((r) => `- ${r.filtering} filtering, ${r.replicas} replica(s): ${Object.entries(r.server ?? {}).map(([k, v]) => `${k} +${v}`).join(", ")}`);
  if (counters.length) lines.push("", "The API server's sharded-watch counters over each run:", "", ...counters);
  lines.push("", `Idle replica (no object): ${runs[0]?.baselineRssMiB ?? "?"} MiB RSS, ${runs[0]?.baselineHeapMiB ?? "?"} MiB heap after GC. ${runs[0]?.objects ?? 0} objects of 200 B, ${runs[0]?.changes ?? 0} changes per run at ${pace} per second.`, "");
  return lines.join("\n");
}
