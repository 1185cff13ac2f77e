// The side-by-side benchmark (issue 17): kubeloop against client-go, controller-runtime,
// @kubernetes/client-node and kopf, each contender in its own process, on one control plane,
// alternated over several repetitions; medians and per-repetition ratios computed in the run.
//
// A contender is a process that syncs the ConfigMaps of a namespace, prints {"phase":"synced"},
// counts M update events and prints {"phase":"done", p50, p99, ms} (latency send → receipt; ms from
// the first counted event to the last; cpuMicros, the process's CPU over the same span, from
// getrusage in every runtime). Memory is read here from /proc, the same way for every runtime: RSS
// at sync (VmRSS) and peak (VmHWM).
import { spawn, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { ConfigMap, Namespace, type Client } from "../src/entries/index.js";

const root = join(import.meta.dirname, "..");

export type Runtime = "node" | "go" | "python";

export interface Contender {
  id: string;
  label: string;
  runtime: Runtime;
  /** The floor of its runtime: a reader that only splits the watch stream. */
  floor?: boolean;
  /** Skipped above this many objects (a contender that cannot sync them in reasonable time). */
  maxObjects?: number;
  /** Below this many objects, skipped. */
  minObjects?: number;
  /** Only when named in `--only`: a layer of kubeloop on its own, to see what each layer costs (probes). */
  probeOnly?: boolean;
  /** It writes to the objects (handlers keep progress in annotations): objects of its own in the live runs. */
  writes?: boolean;
  /** `replay`: it reads the replayed stream (bench/replay.ts), which never echoes a write. */
  command(kubeconfig: string, namespace: string, objects: number, events: number, replay: boolean): { file: string; args: string[]; env?: Record<string, string> };
}

export interface Run {
  contender: string;
  objects: number;
  bytes: number;
  rep: number;
  /** Spawn → "synced". */
  startToSyncedMs: number;
  rssAfterSyncMiB: number;
  peakRssMiB: number;
  /** Process CPU (all threads) from the first counted event to the last, per event, as the contender measured it (getrusage). */
  cpuMicrosPerEvent: number;
  /** Events the run was asked to read (M; in the replay, its stage's count). */
  events?: number;
  /** Handler contenders: handler calls made for them (several changes may fold into one call). */
  calls?: number;
  /** First patch sent → "done" (all M seen). */
  drainMs: number;
  /** First counted event → last, from the contender. */
  eventsMs: number;
  p50Ms: number;
  p99Ms: number;
  /** The machine was not quiet before the run. */
  noisy: boolean;
}

/** Go peers: built once per source hash into the cache. */
export function goBinary(log: (line: string) => void): string {
  const dir = join(root, "bench", "go");
  const hash = createHash("sha256");
  for (const f of ["go.mod", "go.sum", "main.go", "logger.go"]) hash.update(readFileSync(join(dir, f)));
  const out = join(homedir(), ".cache", "kubeloop", "bench-go", hash.digest("hex").slice(0, 16));
  const binary = join(out, "kubeloop-bench-go");
  if (!existsSync(binary)) {
    log(`building the Go peers (client-go, controller-runtime) into ${out}`);
    mkdirSync(out, { recursive: true });
    execFileSync("go", ["build", "-o", binary, "."], { cwd: dir, stdio: "inherit" });
  }
  return binary;
}

/** The contenders, in the order of the tables. */
export function contenders(goBin: string, kopf: string | undefined): Contender[] {
  // BENCH_NODE_ARGS: extra node flags for the Node contenders (the probe's --profile sets --cpu-prof).
  const nodeArgs = process.env.BENCH_NODE_ARGS?.split(" ").filter(Boolean) ?? [];
  const node = (mode: string) => (kubeconfig: string, ns: string, objects: number, events: number) => ({ file: process.execPath, args: [...nodeArgs, join(root, "bench", "workers", "node.mjs"), mode, kubeconfig, ns, String(objects), String(events)] });
  const go = (mode: string, proto = false) => (kubeconfig: string, ns: string, objects: number, events: number) => ({ file: goBin, args: [mode, "-config", kubeconfig, "-namespace", ns, "-objects", String(objects), "-events", String(events), ...(proto ? ["-proto"] : [])] });
  const list: Contender[] = [
    { id: "node-raw", label: "raw reader, Node (floor)", runtime: "node", floor: true, command: node("raw") },
    { id: "kubeloop-watch", label: "kubeloop watch+store", runtime: "node", command: node("kubeloop-watch") },
    { id: "kubeloop-controller", label: "kubeloop controller", runtime: "node", command: node("kubeloop-controller") },
    // kubeloop's layers, for probes: the client's raw watch, the watcher, the Informer.
    { id: "kubeloop-client", label: "kubeloop client watch (raw)", runtime: "node", probeOnly: true, command: node("kubeloop-client") },
    { id: "kubeloop-watcher", label: "kubeloop watch() (no store)", runtime: "node", probeOnly: true, command: node("kubeloop-watcher") },
    { id: "kubeloop-informer", label: "kubeloop Informer", runtime: "node", probeOnly: true, command: node("kubeloop-informer") },
    { id: "client-node", label: "@kubernetes/client-node 1.4 informer", runtime: "node", command: node("client-node") },
    { id: "go-raw", label: "raw reader, Go (floor)", runtime: "go", floor: true, command: go("raw") },
    { id: "client-go", label: "client-go informer (JSON)", runtime: "go", command: go("informer") },
    { id: "client-go-proto", label: "client-go informer (protobuf)", runtime: "go", command: go("informer", true) },
    { id: "controller-runtime", label: "controller-runtime (JSON)", runtime: "go", command: go("controller") },
    { id: "controller-runtime-proto", label: "controller-runtime (protobuf)", runtime: "go", command: go("controller", true) },
  ];
  // kopf-style handlers on both sides: on.create + on.update, progress and the diff base in
  // annotations (a patch per handled change); synced = every existing object handled as created.
  list.push({ id: "kubeloop-handlers", label: "kubeloop on.create/on.update", runtime: "node", writes: true, maxObjects: 1_000, command: node("kubeloop-handlers") });
  if (kopf) {
    list.push({
      id: "kopf-handlers",
      label: "kopf on.create/on.update",
      runtime: "python",
      writes: true,
      maxObjects: 1_000,
      command: (kubeconfig, ns, objects, events, replay) => ({ file: kopf, args: ["run", "--standalone", "-n", ns, "--quiet", join(root, "bench", "kopf", "peers.py")], env: { KUBECONFIG: kubeconfig, BENCH_MODE: "handlers", BENCH_OBJECTS: String(objects), BENCH_EVENTS: String(events), ...(replay ? { BENCH_REPLAY: "1" } : {}) } }),
    });
    list.push({
      id: "kopf-event",
      label: "kopf on.event",
      runtime: "python",
      maxObjects: 10_000,
      command: (kubeconfig, ns, objects, events) => ({ file: kopf, args: ["run", "--standalone", "-n", ns, "--quiet", join(root, "bench", "kopf", "peers.py")], env: { KUBECONFIG: kubeconfig, BENCH_OBJECTS: String(objects), BENCH_EVENTS: String(events) } }),
    });
  }
  // BENCH_AGAINST: another checkout, built (`npm run build`): each kubeloop contender runs from its
  // build too, as `<id>@before`, in the same rounds (the probe's --against, for before/after).
  const against = process.env.BENCH_AGAINST;
  if (against) {
    const dist = pathToFileURL(join(against, "dist")).href;
    for (const c of list.filter((c) => c.id.startsWith("kubeloop-"))) {
      list.push({ ...c, id: `${c.id}@before`, label: `${c.label} (before)`, command: (...a) => ({ ...c.command(...a), env: { BENCH_DIST: dist } }) });
    }
  }
  return list;
}

function procStatus(pid: number): { rss: number; hwm: number } {
  const text = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(text)?.[1] ?? 0) / 1024;
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}

function cpuIdle(): { idle: number; total: number } {
  const [cpu] = readFileSync("/proc/stat", "utf8").split("\n");
  const v = (cpu ?? "").split(/\s+/).slice(1).map(Number);
  return { idle: (v[3] ?? 0) + (v[4] ?? 0), total: v.reduce((a, b) => a + b, 0) };
}

/** Waits (up to maxMs) for a second in which the machine is at least 85% idle; false if none came. */
export async function quiet(maxMs = 30_000): Promise<boolean> {
  const deadline = Date.now() + maxMs;
  while (Date.now() < deadline) {
    const a = cpuIdle();
    await sleep(1000);
    const b = cpuIdle();
    if ((b.idle - a.idle) / Math.max(1, b.total - a.total) >= 0.85) return true;
  }
  return false;
}

/** Creates `objects` ConfigMaps of `bytes` payload in a new namespace; returns its name. */
export async function populate(client: Client, objects: number, bytes: number, log: (line: string) => void): Promise<string> {
  const namespace = `bench-peers-${objects}-${bytes}-${Date.now().toString(36)}`;
  await client.resource(Namespace).create({ metadata: { name: namespace } });
  const cms = client.resource(ConfigMap).namespace(namespace);
  const data = { payload: "x".repeat(bytes), sent: "0" };
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < objects) {
        const i = next++;
        await cms.create({ metadata: { name: `cm-${i}`, labels: { bench: "peers" } }, data });
      }
    }),
  );
  log(`${objects} ConfigMaps of ${bytes} B created in ${namespace}`);
  return namespace;
}

/**
 * M merge patches at concurrency 50, object i % N for patch i, each carrying the send time and i
 * (`seq`: handlers may fold several changes into one call, so they are done when every object was
 * handled at its last patch, seq ≥ M − N); resolves when all were accepted. With `perSecond`,
 * patch i is not sent before i / perSecond seconds from the start (a paced churn: runs compare at
 * the same rate of change, whatever else the machine does).
 */
export async function churn(client: Client, namespace: string, objects: number, events: number, tag: string, perSecond?: number): Promise<void> {
  const cms = client.resource(ConfigMap).namespace(namespace);
  const start = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (next < events) {
        const i = next++;
        const wait = perSecond ? start + (i * 1000) / perSecond - performance.now() : 0;
        if (wait > 0) await sleep(wait);
        await cms.patch(`cm-${i % objects}`, { data: { sent: String(Date.now()), seq: String(i), n: `${tag}-${i}` } }, { type: "merge" });
      }
    }),
  );
}

// Contenders run in their own process groups (detached), so a stop of this process would not
// reach them: every live group is killed when this process exits or is interrupted.
const live = new Set<number>();
const killGroup = (pid: number) => {
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // gone
  }
};
/** Done: SIGTERM first (a Node contender run with --cpu-prof writes its profile on the way out), SIGKILL 3 s later. */
const stopGroup = (pid: number) => {
  try {
    process.kill(-pid, "SIGTERM");
  } catch {
    return;
  }
  setTimeout(() => killGroup(pid), 3_000).unref();
};
process.on("exit", () => live.forEach(killGroup));
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    live.forEach(killGroup);
    process.exit(130);
  });
}

/** One contender, once: spawn, wait for sync, churn (or let a replay stream), wait for done. */
export function runOnce(
  contender: Contender,
  spec: { kubeconfig: string; namespace: string; objects: number; bytes: number; events: number; rep: number; noisy: boolean; timeoutMs: number; replay?: boolean },
  produce: () => Promise<void>,
): Promise<Run> {
  const { file, args, env } = contender.command(spec.kubeconfig, spec.namespace, spec.objects, spec.events, spec.replay ?? false);
  return new Promise((resolve, reject) => {
    const spawned = performance.now();
    const child = spawn(file, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...env }, detached: true });
    const pid = child.pid as number;
    live.add(pid);
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const deadline = setTimeout(() => killGroup(pid), spec.timeoutMs);
    const partial: Partial<Run> = { contender: contender.id, objects: spec.objects, bytes: spec.bytes, rep: spec.rep, noisy: spec.noisy };
    let firstSent = 0;
    let done: Partial<Run> | undefined;
    let buffer = "";
    child.stdout.on("data", (d: Buffer) => {
      buffer += d.toString();
      for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n")) {
        const text = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        let line: { phase?: string; p50?: number; p99?: number; ms?: number; cpuMicros?: number; calls?: number };
        try {
          line = JSON.parse(text);
        } catch {
          continue; // a log line
        }
        if (line.phase === "synced") {
          partial.startToSyncedMs = performance.now() - spawned;
          partial.rssAfterSyncMiB = procStatus(pid).rss;
          firstSent = performance.now();
          // Once every change was made, two minutes (or 4 ms per event, for the slowest contenders:
          // kopf's on.event takes ~110 s for a replay of 100,000 events) to see them all: a
          // contender that missed some (e.g. a relist folded them) would otherwise wait for the
          // whole deadline.
          produce().then(() => setTimeout(() => killGroup(pid), Math.max(120_000, 4 * spec.events)).unref(), reject);
        } else if (line.phase === "done") {
          done = { events: spec.events, ...(line.calls === undefined ? {} : { calls: line.calls }), cpuMicrosPerEvent: (line.cpuMicros ?? 0) / spec.events, drainMs: performance.now() - firstSent, eventsMs: line.ms ?? 0, p50Ms: line.p50 ?? 0, p99Ms: line.p99 ?? 0 };
        }
        // Done and synced (in a replay, "done" may come first): read the peak, stop it.
        if (done && partial.rssAfterSyncMiB !== undefined && partial.peakRssMiB === undefined) {
          Object.assign(partial, done, { peakRssMiB: procStatus(pid).hwm });
          stopGroup(pid);
        }
      }
    });
    child.on("exit", (code, signal) => {
      clearTimeout(deadline);
      killGroup(pid); // anything left in its group
      live.delete(pid);
      if (partial.peakRssMiB === undefined) reject(new Error(`${contender.id} (${spec.objects} objects) ended (${code ?? signal}) before it was done:\n${stderr}`));
      else resolve(partial as Run);
    });
  });
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}
