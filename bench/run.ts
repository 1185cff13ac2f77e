// `npm run bench`: runs the benchmarks on one local control plane (or KUBELOOP_KUBECONFIG's
// cluster) and writes docs/benchmarks.md. Figures are from one run on this machine; compare
// ratios, not absolute numbers.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { startControlPlane } from "../src/entries/testing.js";
import { benchClient, type Measurement } from "./client.js";
import { contenders, goBinary } from "./peers.js";
import { kopfExecutable, renderSideBySide, sideBySide } from "./side-by-side.js";
import { renderSharding, shardingBench, type ShardRun } from "./sharding.js";

const log = (line: string) => process.stderr.write(`bench: ${line}\n`);
const root = join(import.meta.dirname, "..");
// --quick: 1,000 and 10,000 objects, two repetitions, a shorter replay (about 12 minutes);
// default: 1,000, 10,000 and 100,000 objects (and 100,000 of 2 KiB), three repetitions.
const quick = process.argv.includes("--quick");
// A probe (to compare a few contenders or profile one; prints, writes no docs):
//   npm run bench -- --only kubeloop-watch,client-node [--objects 10000] [--bytes 200] [--reps 1] [--profile DIR] [--alloc DIR] [--threads FILE] [--replay EVENTS [--paced RATE] [--replay-only]] [--against DIR]
// --bytes: the size of each object's data (default 200).
// --replay: also the replay ceiling, EVENTS events per contender (prints the replay runs too).
// --paced RATE: the replay at RATE events per second, one per write, as a live server sends them:
//   per-read costs without the API server's CPU (handler contenders still get the full-speed replay).
// --profile: the Node contenders write CPU profiles (--cpu-prof) into DIR.
// --alloc DIR: the Node contenders write what they allocate over the counted events (V8's sampling
//   heap profiler, collected objects included) into DIR as <mode>-<pid>.heapprofile.
// --threads FILE: the Node contenders append their CPU per thread over the counted events (ms;
//   main thread user and system, V8's and libuv's threads) to FILE, one JSON line per run.
// --against DIR: another checkout, built (`npm run build` there): each kubeloop contender named in
//   --only also runs from its build as `<id>@before`, alternating with this one (before/after).
// --replay-only: no live runs, only the replay stage (with --replay).
// The sharding figures alone (1, 2 and 4 replicas; also part of the full run): writes their
// section of docs/benchmarks.md and docs/benchmarks/sharding.json:
//   npm run bench -- --sharding [--objects 100000] [--changes 10000] [--pace 400] [--replicas 1,2,4]
// (--pace: the changes per second; also 1 replica at the pace each of N receives, for reference)
const flag = (name: string) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const only = flag("--only")?.split(",");
const profile = flag("--profile");
if (profile) process.env.BENCH_NODE_ARGS = `--cpu-prof --cpu-prof-dir=${profile}`;
const threads = flag("--threads");
if (threads) process.env.BENCH_THREADS_FILE = resolve(threads);
const alloc = flag("--alloc");
if (alloc) process.env.BENCH_ALLOC_DIR = resolve(alloc);
const against = flag("--against");
if (against) process.env.BENCH_AGAINST = resolve(against);

const cp = await startControlPlane({ onProgress: log });
try {
  log(`control plane at ${cp.server}`);
  if (process.argv.includes("--sharding")) {
    const runs = await sharding(Number(flag("--objects") ?? 100_000));
    const docs = join(root, "docs", "benchmarks.md");
    const section = renderSharding(runs);
    const current = readFileSync(docs, "utf8");
    const start = current.indexOf("## Sharding: 1, 2 and 4 replicas");
    const end = start < 0 ? -1 : current.indexOf("\n## ", start + 1);
    writeFileSync(docs, start < 0 ? `${current.trimEnd()}\n\n${section}` : `${current.slice(0, start)}${section}${end < 0 ? "" : current.slice(end + 1)}`);
    process.stdout.write(section);
  } else if (only) {
    const results = await sideBySide({
      kubeconfig: cp.kubeconfigPath,
      sizes: [[Number(flag("--objects") ?? 10_000), Number(flag("--bytes") ?? 200)]],
      events: 10_000,
      reps: Number(flag("--reps") ?? 1),
      replayEvents: Number(flag("--replay") ?? 0),
      ...(flag("--paced") ? { replayPace: Number(flag("--paced")) } : {}),
      replayOnly: process.argv.includes("--replay-only"),
      replayAt: Number(flag("--objects") ?? 10_000),
      only,
      log,
    });
    process.stdout.write(`${JSON.stringify({ live: results.live, replay: results.replay, failures: results.failures }, null, 1)}\n`);
  } else await full();
} finally {
  await cp.stop();
}

/** The whole benchmark: every contender, every size; writes docs/benchmarks.md and docs/benchmarks/. */
async function full(): Promise<void> {
  const client = await benchClient({ kubeconfigPath: cp.kubeconfigPath, log });
  const results = await sideBySide({
    kubeconfig: cp.kubeconfigPath,
    sizes: quick ? [[1_000, 200], [10_000, 200]] : [[1_000, 200], [10_000, 200], [100_000, 200], [100_000, 2_048]],
    events: 10_000,
    reps: quick ? 2 : 3,
    replayEvents: quick ? 50_000 : 100_000,
    replayAt: 10_000,
    log,
  });
  const out = join(root, "docs", "benchmarks");
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, "peers.json"), `${JSON.stringify(results, null, 1)}\n`);
  const { markdown, charts } = renderSideBySide(results, contenders(goBinary(log), kopfExecutable(log)));
  for (const [file, svg] of Object.entries(charts)) writeFileSync(join(out, file), svg);
  const report = render(client) + markdown + "\n" + renderSharding(await sharding(100_000));
  writeFileSync(join(root, "docs", "benchmarks.md"), report);
  process.stdout.write(report);
}

/** The sharding figures on this control plane (the gate on) and on one started with it off; written to docs/benchmarks/sharding.json. */
async function sharding(objects: number): Promise<ShardRun[]> {
  log("building the package (dist/) for the replicas");
  execFileSync("npm", ["run", "build", "--silent"], { cwd: root, stdio: "inherit" });
  const off = await startControlPlane({ kubeconfig: false, controllers: [], featureGates: { ShardedListAndWatch: false }, onProgress: log });
  try {
    const runs = await shardingBench({
      servers: [
        { kubeconfig: cp.kubeconfigPath, filtering: "server" },
        { kubeconfig: off.kubeconfigPath, filtering: "client" },
      ],
      objects,
      changes: Number(flag("--changes") ?? 10_000),
      perSecond: Number(flag("--pace") ?? 400),
      replicas: (flag("--replicas") ?? "1,2,4").split(",").map(Number),
      log,
    });
    mkdirSync(join(root, "docs", "benchmarks"), { recursive: true });
    writeFileSync(join(root, "docs", "benchmarks", "sharding.json"), `${JSON.stringify(runs, null, 1)}\n`);
    return runs;
  } finally {
    await off.stop();
  }
}

function render(client: Measurement[]): string {
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
  const lines = [
    "# Benchmarks",
    "",
    `Written by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)} (${machine}).`,
    "One run, one machine, every contender against the same local control plane in the same run:",
    "read the ratios, not the absolute figures.",
    "",
    "## Client: get and list",
    "",
    "200 ConfigMaps of ~1 KiB; 2,000 gets at concurrency 16 and 60 lists of all 200 at concurrency 4,",
    "three alternating rounds per client, no client-side rate limit. Throughput is bounded by the API",
    "server sharing the two cores; *client CPU* is what the client process itself spends per call.",
    "Both clients keep connections alive (checked: 100 sequential gets open one connection each),",
    "so the CPU gap is not TLS handshakes; kubeloop keeps objects as plain JSON, client-node converts",
    "each response into its model classes.",
    "",
    "| client | operation | calls/s | client CPU per call (µs) |",
    "| --- | --- | ---: | ---: |",
    ...client.map((m) => `| ${m.client} | ${m.operation} | ${m.opsPerSecond.toFixed(1)} | ${m.cpuMicrosPerOp.toFixed(0)} |`),
    "",
  ];
  const ops = [...new Set(client.map((m) => m.operation))];
  lines.push("Ratios (kubeloop ÷ client-node; throughput higher is better, CPU lower is better):", "");
  for (const op of ops) {
    const ours = client.find((m) => m.operation === op && m.client === "kubeloop");
    const theirs = client.find((m) => m.operation === op && m.client !== "kubeloop");
    if (!ours || !theirs) continue;
    lines.push(
      `- ${op}: throughput ×${(ours.opsPerSecond / theirs.opsPerSecond).toFixed(2)}, client CPU per call ×${(ours.cpuMicrosPerOp / theirs.cpuMicrosPerOp).toFixed(2)}`,
    );
  }
  lines.push("", "```text", ...chart(client), "```", "");
  return lines.join("\n");
}

/** A text bar chart of calls/s per operation. */
function chart(ms: Measurement[]): string[] {
  const out: string[] = [];
  for (const op of [...new Set(ms.map((m) => m.operation))]) {
    const rows = ms.filter((m) => m.operation === op);
    const max = Math.max(...rows.map((m) => m.opsPerSecond));
    out.push(`${op}, calls/s`);
    for (const m of rows) out.push(`  ${m.client.padEnd(28)} ${"█".repeat(Math.max(1, Math.round((m.opsPerSecond / max) * 40)))} ${m.opsPerSecond.toFixed(0)}`);
  }
  return out;
}
