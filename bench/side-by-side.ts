// The side-by-side run (issue 17): every contender of bench/peers.ts against the live control
// plane at several sizes, then against the replayed stream; medians and ratios; results JSON,
// markdown and SVG charts. Called by bench/run.ts (`npm run bench`, `npm run bench -- --quick`).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { cpus, homedir, loadavg, totalmem, tmpdir } from "node:os";
import { join } from "node:path";
import { Client, Namespace } from "../src/entries/index.js";
import { churn, contenders, goBinary, median, populate, quiet, runOnce, type Contender, type Run } from "./peers.js";
import { capture, replayServer } from "./replay.js";

const root = join(import.meta.dirname, "..");
const KOPF_VERSION = "1.45.2";

export interface SideBySideOptions {
  kubeconfig: string;
  /** [objects, bytes of payload] per live stage. */
  sizes: [number, number][];
  events: number;
  reps: number;
  replayEvents: number;
  /** The size (objects of 200 B) whose namespace the replay is captured from. */
  replayAt: number;
  /** The replay at this many events per second, one per write (a probe of per-read costs); default: as fast as read. */
  replayPace?: number;
  /** Only the replay stage (no live runs): a probe of per-event costs. */
  replayOnly?: boolean;
  /** Only these contenders (ids). Default: all. */
  only?: string[];
  log: (line: string) => void;
}

export interface Results {
  date: string;
  machine: string;
  versions: Record<string, string>;
  live: Run[];
  replay: Run[];
  /** Runs that did not finish, with why. */
  failures: { stage: string; contender: string; rep: number; error: string }[];
  /** Events each replay run counted. */
  replayEvents: number;
  importMs: number[];
  importRssMiB: number[];
}

/** The kopf executable, installed on first use into a cached virtualenv. */
export function kopfExecutable(log: (m: string) => void): string {
  const venv = join(homedir(), ".cache", "kubeloop", `kopf-${KOPF_VERSION}`);
  const kopf = join(venv, "bin", "kopf");
  if (existsSync(kopf)) return kopf;
  log(`installing kopf ${KOPF_VERSION} into ${venv}`);
  for (const [cmd, args] of [
    ["python3", ["-m", "venv", venv]],
    [join(venv, "bin", "pip"), ["install", "-q", `kopf==${KOPF_VERSION}`]],
  ] as const) {
    const r = spawnSync(cmd, args, { stdio: "inherit" });
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (exit ${r.status})`);
  }
  return kopf;
}

/** `import("kubeloop")` (the built package) in a fresh process: time and RSS growth, `n` times. */
function importCost(n: number): { ms: number[]; rssMiB: number[] } {
  const script = `const r0 = process.memoryUsage().rss; const t = performance.now(); await import(${JSON.stringify(join(root, "dist", "index.js"))}); console.log(JSON.stringify({ ms: performance.now() - t, rss: (process.memoryUsage().rss - r0) / 2 ** 20 }));`;
  const ms: number[] = [];
  const rssMiB: number[] = [];
  for (let i = 0; i < n; i++) {
    const out = JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" })) as { ms: number; rss: number };
    ms.push(out.ms);
    rssMiB.push(out.rss);
  }
  return { ms, rssMiB };
}

export async function sideBySide(o: SideBySideOptions): Promise<Results> {
  o.log("building the package (dist/) for the Node contenders");
  execFileSync("npm", ["run", "build", "--silent"], { cwd: root, stdio: "inherit" });
  const go = goBinary(o.log);
  const kopf = kopfExecutable(o.log);
  const all = contenders(go, kopf).filter((c) => (o.only ? o.only.includes(c.id.replace(/@before$/, "")) : !c.probeOnly && !c.id.endsWith("@before")));
  const client = await Client.load({ path: o.kubeconfig, rateLimit: false });
  const live: Run[] = [];
  const replay: Run[] = [];
  const failures: Results["failures"] = [];
  let replayEvents = o.replayEvents;
  try {
    for (const [objects, bytes] of o.sizes) {
      const namespace = await populate(client, objects, bytes, o.log);
      const here = all.filter((c) => (c.maxObjects ?? Infinity) >= objects && (c.minObjects ?? 0) <= objects);
      for (let rep = 1; rep <= (o.replayOnly ? 0 : o.reps); rep++) {
        // Alternate: each repetition starts one contender later.
        const order = here.map((_, i) => here[(i + rep - 1) % here.length] as Contender);
        for (const c of order) {
          const noisy = !(await quiet());
          // A contender that writes (handlers) gets objects of its own: the last one's bookkeeping
          // would make them look handled already.
          const ns = c.writes ? await populate(client, objects, bytes, () => {}) : namespace;
          try {
            const run = await runOnce(c, { kubeconfig: o.kubeconfig, namespace: ns, objects, bytes, events: o.events, rep, noisy, timeoutMs: 600_000 }, () => churn(client, ns, objects, o.events, `${c.id}-${rep}`));
            live.push(run);
            o.log(`${objects}×${bytes} B rep ${rep} ${c.id}: start→synced ${run.startToSyncedMs.toFixed(0)} ms, RSS ${run.rssAfterSyncMiB.toFixed(0)} MiB, ${run.cpuMicrosPerEvent.toFixed(1)} µs/event${noisy ? " (noisy)" : ""}`);
          } catch (error) {
            o.log(`${objects}×${bytes} B rep ${rep} ${c.id}: FAILED ${String(error).slice(-600)}`);
            failures.push({ stage: `${objects} × ${bytes} B`, contender: c.id, rep, error: String(error).split("\n")[0] ?? "" });
          } finally {
            if (ns !== namespace) await client.resource(Namespace).delete(ns);
          }
        }
      }
      // The replay is captured from the 10,000-object namespace (the issue's reference size); a
      // probe of one size replays at that size.
      if (objects === o.replayAt && (bytes === 200 || o.sizes.length === 1) && o.replayEvents > 0) replayEvents = await replayStage(client, namespace, objects, bytes, all, o, replay, failures);
      await client.resource(Namespace).delete(namespace);
    }
  } finally {
    await client.close();
  }
  const imports = importCost(5);
  const versions = {
    kubeloop: (JSON.parse(execFileSync("node", ["-p", "JSON.stringify(require('./package.json').version)"], { cwd: root, encoding: "utf8" })) as string),
    node: process.version,
    go: execFileSync("go", ["env", "GOVERSION"], { encoding: "utf8" }).trim(),
    "client-go / controller-runtime": "v0.37.1 / v0.25.2",
    "@kubernetes/client-node": "1.4.0",
    kopf: KOPF_VERSION,
    kubernetes: "v1.37.1",
  };
  return { date: new Date().toISOString(), machine: `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, load ${loadavg()[0]?.toFixed(2)}`, versions, live, replay, failures, replayEvents, importMs: imports.ms, importRssMiB: imports.rssMiB };
}

/** The replay stage; returns the number of events each run read. */
async function replayStage(client: Client, namespace: string, objects: number, bytes: number, all: Contender[], o: SideBySideOptions, out: Run[], failures: Results["failures"]): Promise<number> {
  o.log(`capturing ${Math.min(o.events, 10_000)} watch events from ${namespace}`);
  const recording = await capture(client, o.kubeconfig, namespace, objects, Math.min(o.events, 10_000));
  // Whole passes of the recording: a handler contender is done when every object was handled at
  // one of the last changes, which a partial last pass would not hold for every object. Handler
  // contenders read two passes (kopf handles ~500 changes a second: 100,000 would take minutes).
  const R = recording.events.length;
  const passes = Math.max(1, Math.round(o.replayEvents / R));
  const total = passes * R;
  const handlerTotal = Math.min(total, 2 * R);
  if (total !== o.replayEvents) o.log(`replaying ${total} events (${passes} whole passes of ${R}) instead of ${o.replayEvents}`);
  const server = await replayServer(recording, total, o.replayPace);
  const handlerServer = await replayServer(recording, handlerTotal);
  const dir = join(tmpdir(), `kubeloop-replay-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const kubeconfig = server.kubeconfig(join(dir, "kubeconfig"));
  const handlerKubeconfig = handlerServer.kubeconfig(join(dir, "kubeconfig-handlers"));
  // Protobuf is the same as JSON here (the recording is JSON).
  const here = all.filter((c) => !c.id.endsWith("-proto"));
  try {
    for (let rep = 1; rep <= o.reps; rep++) {
      for (const c of here.map((_, i) => here[(i + rep - 1) % here.length] as Contender)) {
        const noisy = !(await quiet());
        try {
          const [via, events] = c.writes ? [handlerServer, handlerTotal] : [server, total];
          const release = via.hold();
          const run = await runOnce(c, { kubeconfig: c.writes ? handlerKubeconfig : kubeconfig, namespace, objects, bytes, events, rep, noisy, timeoutMs: 600_000, replay: true }, async () => release());
          out.push(run);
          o.log(`replay rep ${rep} ${c.id}: ${(events / (run.eventsMs / 1000)).toFixed(0)} events/s, ${run.cpuMicrosPerEvent.toFixed(1)} µs/event${run.calls === undefined ? "" : `, ${run.calls} handler calls`}`);
        } catch (error) {
          o.log(`replay rep ${rep} ${c.id}: FAILED ${String(error).slice(0, 300)}`);
          failures.push({ stage: "replay", contender: c.id, rep, error: String(error).split("\n")[0] ?? "" });
        }
      }
    }
  } finally {
    await server.close();
    await handlerServer.close();
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// The report.

type Figure = (r: Run) => number;
const byContender = (runs: Run[], objects: number, bytes: number) => {
  const m = new Map<string, Run[]>();
  for (const r of runs.filter((x) => x.objects === objects && x.bytes === bytes)) m.set(r.contender, [...(m.get(r.contender) ?? []), r]);
  return m;
};
const med = (runs: Run[] | undefined, f: Figure) => (runs?.length ? median(runs.map(f)) : NaN);
const fmt = (v: number, digits = 0) => (Number.isFinite(v) ? v.toFixed(digits) : "–");

/** Median over repetitions of (ours ÷ theirs) within each repetition. */
function ratio(runs: Run[], objects: number, bytes: number, ours: string, theirs: string, f: Figure): number {
  const per: number[] = [];
  for (const a of runs.filter((r) => r.contender === ours && r.objects === objects && r.bytes === bytes)) {
    const b = runs.find((r) => r.contender === theirs && r.objects === objects && r.bytes === bytes && r.rep === a.rep);
    if (b && f(b) > 0) per.push(f(a) / f(b));
  }
  return per.length ? median(per) : NaN;
}

export function renderSideBySide(res: Results, list: Contender[]): { markdown: string; charts: Record<string, string> } {
  const label = (id: string) => list.find((c) => c.id === id)?.label ?? id;
  const runtimeOf = (id: string) => list.find((c) => c.id === id)?.runtime;
  const floorOf = (id: string) => list.find((c) => c.floor && c.runtime === runtimeOf(id))?.id;
  const sizes = [...new Set(res.live.map((r) => `${r.objects}:${r.bytes}`))].map((s) => s.split(":").map(Number) as [number, number]);
  const lines: string[] = [
    "## Side by side: kubeloop, client-go, controller-runtime, client-node, kopf",
    "",
    `Written by \`npm run bench\` on ${res.date.slice(0, 10)} (${res.machine}); results: \`docs/benchmarks/peers.json\`.`,
    `Versions: ${Object.entries(res.versions).map(([k, v]) => `${k} ${v}`).join(", ")}.`,
    "",
    "Each contender is its own process against the same local control plane (bench/peers.ts; Node",
    "contenders run the built package, no TypeScript tooling; Go peers are one binary built from the",
    "module proxy, bench/go; kopf from PyPI). Per size: N ConfigMaps, then each contender syncs and",
    "counts M update events made by 50 concurrent merge patches, one contender after the other,",
    "alternated over the repetitions (each repetition starts one contender later), after waiting for",
    "a second in which the machine is ≥ 85% idle (a run without one is marked noisy). Figures are",
    "medians over repetitions; ratios are medians of per-repetition ratios. *CPU per event* is the",
    "contender's own process CPU (getrusage, all threads) from its first counted event to its last,",
    "÷ M; *above floor* subtracts the raw reader of the same runtime (a process that only splits the",
    "watch stream). RSS is read from /proc (VmRSS at sync, VmHWM peak). Events/s is bounded by the",
    "API server's write rate on two cores, so it ranks nobody: the replay ceiling below does.",
    "The Go peers' *JSON* rows set `application/json` in their rest.Config; the *protobuf* rows ask",
    "for protobuf, which is also what client-go's generated clients and controller-runtime use for",
    "built-in kinds when no content type is set (before 2026-12-01 the JSON rows were protobuf too:",
    "bench/findings.md). kubeloop and client-node speak JSON.",
    "",
  ];
  for (const [objects, bytes] of sizes) {
    const m = byContender(res.live, objects, bytes);
    const noisy = res.live.filter((r) => r.objects === objects && r.bytes === bytes && r.noisy).length;
    lines.push(`### ${objects.toLocaleString("en")} objects of ${bytes} B${noisy ? ` (${noisy} noisy runs)` : ""}`, "");
    lines.push("| contender | start → synced (ms) | RSS after sync (MiB) | peak RSS (MiB) | CPU / event (µs) | above floor (µs) | p50 / p99 latency (ms) | drain (ms) | runs |");
    lines.push("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (const [id, runs] of m) {
      const floor = floorOf(id);
      const above = floor && floor !== id ? med(runs, (r) => r.cpuMicrosPerEvent) - med(m.get(floor), (r) => r.cpuMicrosPerEvent) : NaN;
      lines.push(`| ${label(id)} | ${fmt(med(runs, (r) => r.startToSyncedMs))} | ${fmt(med(runs, (r) => r.rssAfterSyncMiB))} | ${fmt(med(runs, (r) => r.peakRssMiB))} | ${fmt(med(runs, (r) => r.cpuMicrosPerEvent), 1)} | ${fmt(above, 1)} | ${fmt(med(runs, (r) => r.p50Ms))} / ${fmt(med(runs, (r) => r.p99Ms))} | ${fmt(med(runs, (r) => r.drainMs))} | ${runs.length} |`);
    }
    lines.push("");
    const pairs: [string, string][] = [["kubeloop-watch", "client-go"], ["kubeloop-controller", "controller-runtime"], ["kubeloop-watch", "client-node"], ["kubeloop-handlers", "kopf-handlers"]];
    const said: string[] = [];
    for (const [a, b] of pairs) {
      if (!m.has(a) || !m.has(b)) continue;
      said.push(`- ${label(a)} ÷ ${label(b)}: start → synced ×${fmt(ratio(res.live, objects, bytes, a, b, (r) => r.startToSyncedMs), 2)}, RSS after sync ×${fmt(ratio(res.live, objects, bytes, a, b, (r) => r.rssAfterSyncMiB), 2)}, CPU per event ×${fmt(ratio(res.live, objects, bytes, a, b, (r) => r.cpuMicrosPerEvent), 2)}`);
    }
    if (said.length) lines.push("Ratios (lower is better):", "", ...said, "");
  }
  // Memory per cached object: the RSS growth between two sizes of the same payload.
  const perObject: string[] = [];
  for (const id of new Set(res.live.map((r) => r.contender))) {
    const at = (n: number, b: number) => med(res.live.filter((r) => r.contender === id && r.objects === n && r.bytes === b), (r) => r.rssAfterSyncMiB);
    const small = at(1_000, 200);
    const large = at(10_000, 200);
    const huge = at(100_000, 200);
    const kib = (a: number, b: number, n: number) => ((b - a) * 1024) / n;
    if (Number.isFinite(small) && Number.isFinite(large)) perObject.push(`| ${label(id)} | ${fmt(kib(small, large, 9_000), 2)} | ${fmt(kib(large, huge, 90_000), 2)} |`);
  }
  if (perObject.length) {
    lines.push("### Memory per cached object", "", "RSS growth per object between sizes (KiB; 200 B payload, ~0.5 KiB as JSON on the wire):", "");
    lines.push("| contender | 1k → 10k | 10k → 100k |", "| --- | ---: | ---: |", ...perObject, "");
  }
  const rm = byContender(res.replay, res.replay[0]?.objects ?? 0, 200);
  const handlerRun = res.replay.find((r) => r.calls !== undefined);
  if (rm.size) {
    lines.push("### Replay ceiling", "", `A watch stream captured from the real server (merge-patch events on the ${(res.replay[0]?.objects ?? 0).toLocaleString("en")}-object`, `namespace, ${res.replayEvents.toLocaleString("en")} events per run${handlerRun ? `; handler contenders ${eventsOf(res, handlerRun).toLocaleString("en")}` : ""})`, "served from a local HTTP server, repeated until each contender has read the events", "it counts (bench/replay.ts): the API server is out of the way, so events/s is each framework's", "own ceiling. Protobuf variants are left out (the recording is JSON). Handler contenders write their", "progress: the server answers each PATCH with the patch merged into a bare object at resourceVersion", "\"1\" and never echoes it, so every replayed change is a create for kubeloop's and kopf's handlers", "alike, and neither waits for its write to come back (kopf: consistency timeout 0). A handler", "contender's events/s counts from its first handler call after the sync until every object was", "handled at its last replayed change (it may fold several changes into one call).", "");
    lines.push("| contender | events/s | CPU / event (µs) | handler calls | runs |", "| --- | ---: | ---: | ---: | ---: |");
    for (const [id, runs] of rm) lines.push(`| ${label(id)} | ${fmt(med(runs, (r) => (r.eventsMs > 0 ? (1000 * eventsOf(res, r)) / r.eventsMs : NaN)))} | ${fmt(med(runs, (r) => r.cpuMicrosPerEvent), 1)} | ${fmt(med(runs, (r) => r.calls ?? NaN))} | ${runs.length} |`);
    lines.push("");
  }
  if (res.failures?.length) {
    lines.push("### Runs that did not finish", "", "Left out of the medians above:", "", ...res.failures.map((f) => `- ${f.stage}, ${label(f.contender)}, repetition ${f.rep}: ${f.error}`), "");
  }
  lines.push("### Import", "", `\`import("kubeloop")\` (dist/) in a fresh Node process: ${fmt(median(res.importMs))} ms, +${fmt(median(res.importRssMiB))} MiB RSS (median of ${res.importMs.length}).`, "");
  lines.push(...goals(res, sizes, label, floorOf));
  const findings = join(root, "bench", "findings.md");
  if (existsSync(findings)) lines.push(readFileSync(findings, "utf8").trim(), "");
  lines.push("Reproduce: `npm run bench` (1,000, 10,000 and 100,000 objects, and 100,000 of 2 KiB; three repetitions) or `npm run bench -- --quick` (1,000 and 10,000 objects, two repetitions; about 25 minutes on this machine). `node --import tsx bench/report.ts` re-renders this section and the charts from the JSON.", "");
  const charts: Record<string, string> = {};
  const ten = byContender(res.live, 10_000, 200);
  if (ten.size) {
    charts["benchmarks-cpu.svg"] = barChart("CPU per event, 10,000 objects (µs, lower is better)", [...ten].map(([id, runs]) => [label(id), med(runs, (r) => r.cpuMicrosPerEvent)]));
    charts["benchmarks-rss.svg"] = barChart("RSS after sync, 10,000 objects (MiB, lower is better)", [...ten].map(([id, runs]) => [label(id), med(runs, (r) => r.rssAfterSyncMiB)]));
    charts["benchmarks-start.svg"] = barChart("Process start → synced, 10,000 objects (ms, lower is better)", [...ten].map(([id, runs]) => [label(id), med(runs, (r) => r.startToSyncedMs)]));
  }
  // Handler contenders are in the table only: their rate is another scale (they write, and kopf's is ~1% of the others').
  const readers = [...rm].filter(([, runs]) => runs.every((r) => r.calls === undefined));
  if (readers.length) charts["benchmarks-replay.svg"] = barChart("Replay ceiling (events/s, higher is better)", readers.map(([id, runs]) => [label(id), med(runs, (r) => (1000 * eventsOf(res, r)) / r.eventsMs)]));
  if (Object.keys(charts).length) lines.push(...Object.keys(charts).map((f) => `![${f}](benchmarks/${f})`), "");
  return { markdown: lines.join("\n"), charts };
}

/**
 * Issue 17's goals, each checked against this run's figures: the figure on both sides and
 * whether it is met (a goal a run has no figure for says so).
 */
function goals(res: Results, sizes: [number, number][], label: (id: string) => string, floorOf: (id: string) => string | undefined): string[] {
  const rows: string[] = [];
  const verdict = (ok: boolean | undefined) => (ok === undefined ? "no figure" : ok ? "met" : "not met");
  const row = (goal: string, ours: number, theirs: number, unit: string, lowerIsBetter: boolean, digits = 0) => {
    const known = Number.isFinite(ours) && Number.isFinite(theirs);
    // A reference at or below zero (a figure above its floor that the floor's noise outweighed) has no meaningful ratio.
    const ratio = known && theirs > 0 ? `×${(ours / theirs).toFixed(2)}` : known ? "– (reference ≤ 0: within its floor's noise)" : "–";
    rows.push(`| ${goal} | ${fmt(ours, digits)} ${unit} | ${fmt(theirs, digits)} ${unit} | ${ratio} | ${verdict(known ? (lowerIsBetter ? ours <= theirs : ours >= theirs) : undefined)} |`);
  };
  const live = (id: string, n: number, b: number, f: Figure) => med(res.live.filter((r) => r.contender === id && r.objects === n && r.bytes === b), f);
  const aboveFloor = (id: string, n: number, b: number) => live(id, n, b, (r) => r.cpuMicrosPerEvent) - live(floorOf(id) ?? "", n, b, (r) => r.cpuMicrosPerEvent);
  const perObject = (id: string, from: number, to: number) => ((live(id, to, 200, (r) => r.rssAfterSyncMiB) - live(id, from, 200, (r) => r.rssAfterSyncMiB)) * 1024) / (to - from);
  const replay = (id: string) => med(res.replay.filter((r) => r.contender === id), (r) => (r.eventsMs > 0 ? (1000 * eventsOf(res, r)) / r.eventsMs : NaN));
  for (const [n, b] of sizes) {
    const at = `${n.toLocaleString("en")} × ${b} B`;
    row(`CPU per event above the floor ≤ client-go's (${at})`, aboveFloor("kubeloop-watch", n, b), aboveFloor("client-go", n, b), "µs", true, 1);
    row(`… controller ≤ controller-runtime's (${at})`, aboveFloor("kubeloop-controller", n, b), aboveFloor("controller-runtime", n, b), "µs", true, 1);
    row(`start → synced ≤ client-go's (${at})`, live("kubeloop-watch", n, b, (r) => r.startToSyncedMs), live("client-go", n, b, (r) => r.startToSyncedMs), "ms", true);
  }
  // For the record: against client-go as it runs when no content type is set (protobuf for built-in kinds).
  for (const [n, b] of sizes) {
    const at = `${n.toLocaleString("en")} × ${b} B`;
    row(`for the record, client-go with protobuf (its default): CPU per event above the floor (${at})`, aboveFloor("kubeloop-watch", n, b), aboveFloor("client-go-proto", n, b), "µs", true, 1);
    row(`for the record, client-go with protobuf (its default): start → synced (${at})`, live("kubeloop-watch", n, b, (r) => r.startToSyncedMs), live("client-go-proto", n, b, (r) => r.startToSyncedMs), "ms", true);
  }
  for (const [from, to] of [[1_000, 10_000], [10_000, 100_000]] as const) {
    row(`RSS per cached object ≤ client-go's (${from.toLocaleString("en")} → ${to.toLocaleString("en")})`, perObject("kubeloop-watch", from, to), perObject("client-go", from, to), "KiB", true, 2);
  }
  const importMs = res.importMs.length ? median(res.importMs) : NaN;
  rows.push(`| import ≤ 100 ms (\`import("kubeloop")\`, before any start) | ${fmt(importMs)} ms | 100 ms | – | ${verdict(Number.isFinite(importMs) ? importMs <= 100 : undefined)} |`);
  row("replay ceiling ≥ client-go's (watch+store)", replay("kubeloop-watch"), replay("client-go"), "events/s", false);
  row("replay ceiling ≥ controller-runtime's (controller)", replay("kubeloop-controller"), replay("controller-runtime"), "events/s", false);
  const handlers = sizes.find(([n]) => n === 1_000);
  if (handlers) row("handlers: CPU per handled change ≤ 0.2 × kopf's", live("kubeloop-handlers", 1_000, 200, (r) => r.cpuMicrosPerEvent), 0.2 * live("kopf-handlers", 1_000, 200, (r) => r.cpuMicrosPerEvent), "µs", true, 1);
  row("handlers ≥ 5 × kopf's rate in the replay ceiling", replay("kubeloop-handlers"), 5 * replay("kopf-handlers"), "events/s", false);
  for (const [n, b] of sizes) {
    const at = `${n.toLocaleString("en")} × ${b} B`;
    row(`≥ client-node: start → synced (${at})`, live("kubeloop-watch", n, b, (r) => r.startToSyncedMs), live("client-node", n, b, (r) => r.startToSyncedMs), "ms", true);
    row(`≥ client-node: RSS after sync (${at})`, live("kubeloop-watch", n, b, (r) => r.rssAfterSyncMiB), live("client-node", n, b, (r) => r.rssAfterSyncMiB), "MiB", true);
    row(`≥ client-node: CPU per event (${at})`, live("kubeloop-watch", n, b, (r) => r.cpuMicrosPerEvent), live("client-node", n, b, (r) => r.cpuMicrosPerEvent), "µs", true, 1);
  }
  row("≥ client-node: replay ceiling", replay("kubeloop-watch"), replay("client-node"), "events/s", false);
  return [
    "### Against the goals",
    "",
    `The goals of issue 17 (a benchmark, not a test), checked against this run: kubeloop's figure, the reference's (${label("client-go")}, ${label("controller-runtime")}, kopf, ${label("client-node")}), their ratio.`,
    "",
    "| goal | kubeloop | reference | ratio | |",
    "| --- | ---: | ---: | ---: | --- |",
    ...rows,
    "",
  ];
}

/** Events a replay run counted (runs from before `events` was recorded all read `replayEvents`). */
function eventsOf(res: Results, r: Run): number {
  return r.events ?? res.replayEvents;
}

/** A horizontal bar chart as SVG (no dependency: a few rects and texts). */
export function barChart(title: string, rows: [string, number][]): string {
  const valid = rows.filter(([, v]) => Number.isFinite(v));
  const max = Math.max(1, ...valid.map(([, v]) => v));
  const rowH = 22;
  const labelW = 300;
  const barW = 380;
  const h = 40 + valid.length * rowH;
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
  const bars = valid
    .map(([name, v], i) => {
      const y = 30 + i * rowH;
      const w = Math.max(1, (v / max) * barW);
      const ours = name.startsWith("kubeloop");
      return `<text x="${labelW - 6}" y="${y + 14}" text-anchor="end">${esc(name)}</text><rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${ours ? "#2b6cb0" : "#a0aec0"}"/><text x="${labelW + w + 4}" y="${y + 14}">${v >= 100 ? v.toFixed(0) : v.toFixed(1)}</text>`;
    })
    .join("");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${labelW + barW + 80}" height="${h}" font-family="sans-serif" font-size="12"><text x="8" y="18" font-weight="bold">${esc(title)}</text>${bars}</svg>\n`;
}
