// `npm run chaos`: the long reliability run (issue 13). Three phases on local control planes,
// then a soak, and the results written into docs/reliability.md (between the "chaos" markers)
// with an RSS-over-time chart, docs/reliability-rss.svg. The short mode of the same scenarios
// runs in `npm test` (test/chaos.test.ts).
//   faults: every fault in turn, default API server
//   harsh:  every fault in turn, watch cache off and etcd compacted every 5 s (410s on resumes)
//   kills:  the operator SIGKILLed 20 times in a row during churn
//   soak:   1,000 objects under churn with server-side faults every 3 minutes, one operator
//           process throughout (its RSS is the measurement)
// Options: --soak-minutes N (default 30; 0 skips), --phase-seconds N (default 240).
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { startControlPlane } from "../src/entries/testing.js";
import { FAULTS, runChaos, type ChaosPlan, type ChaosReport, type FaultKind } from "../test/chaos/harness.js";

const { values } = parseArgs({ options: { "soak-minutes": { type: "string", default: "30" }, "phase-seconds": { type: "string", default: "240" } } });
const soakMinutes = Number(values["soak-minutes"]);
const phaseMs = Number(values["phase-seconds"]) * 1000;
const docs = fileURLToPath(new URL("../docs/", import.meta.url));
const log = (line: string) => process.stdout.write(`chaos: ${line}\n`);
const HARSH = ["--watch-cache=false", "--etcd-compaction-interval=5s"];
/** RSS may grow by at most this much per hour (slope of a least-squares line after warm-up). */
const RSS_SLOPE_BOUND_MIB_PER_HOUR = 8;

interface Phase {
  name: string;
  flags: string[];
  plan: Omit<ChaosPlan, "cp" | "log">;
}

const phases: Phase[] = [
  { name: "faults", flags: [], plan: { objects: 200, churnPerSecond: 10, durationMs: phaseMs, faults: FAULTS, faultEveryMs: 12_000, faultLengthMs: 5_000, qps: 20 } },
  { name: "harsh", flags: HARSH, plan: { objects: 200, churnPerSecond: 10, durationMs: phaseMs, faults: FAULTS, faultEveryMs: 12_000, faultLengthMs: 5_000, qps: 20 } },
  { name: "kills", flags: [], plan: { objects: 200, churnPerSecond: 10, durationMs: 0, faultCount: 20, faults: ["operator-sigkill"], faultEveryMs: 3_000, faultLengthMs: 0, qps: 20 } },
];
const SOAK_FAULTS: FaultKind[] = ["apiserver-restart", "connections-cut", "429-storm", "etcd-restart", "stream-hang", "503-storm", "slow-responses"];
if (soakMinutes > 0) {
  phases.push({ name: "soak", flags: [], plan: { objects: 1_000, churnPerSecond: 5, durationMs: soakMinutes * 60_000, faults: SOAK_FAULTS, faultEveryMs: 180_000, faultLengthMs: 10_000, qps: 20, convergeTimeoutMs: 300_000 } });
}

const results: { phase: Phase; report: ChaosReport; failures: string[] }[] = [];
for (const phase of phases) {
  log(`phase ${phase.name}: starting a control plane${phase.flags.length ? ` (${phase.flags.join(" ")})` : ""}`);
  const cp = await startControlPlane({ kubeconfig: false, apiServerFlags: phase.flags, onProgress: log });
  try {
    const report = await runChaos({ ...phase.plan, cp, log: (l) => log(`${phase.name}: ${l}`) });
    const failures = check(report, phase.name === "soak");
    results.push({ phase, report, failures });
    log(`phase ${phase.name}: ${failures.length ? `FAILED: ${failures.join("; ")}` : "passed"}`);
  } finally {
    await cp.stop();
  }
}

const soak = results.find((r) => r.phase.name === "soak");
if (soak) writeFileSync(`${docs}reliability-rss.svg`, chart(soak.report));
writeReport(results);
const failed = results.filter((r) => r.failures.length);
log(failed.length ? `${failed.length} phase(s) failed` : "every phase passed; docs/reliability.md updated");
process.exit(failed.length ? 1 : 0);

/** What must hold after every phase (and, for the soak, of memory). */
function check(r: ChaosReport, isSoak: boolean): string[] {
  const failures: string[] = [];
  const list = (what: string, items: string[]) => items.length && failures.push(`${items.length} ${what} (${items.slice(0, 3).join(" | ")})`);
  list("create successes repeated without a kill", r.unexplainedRepeats);
  list("objects whose kept create result is not the last run", r.notKept);
  list("objects not handled at their final spec", r.lastChangeMissed);
  list("deleted objects without their delete handler", r.deleteHandlerMissed);
  list("deleted objects still present", r.notGone);
  list("operator crashes", r.crashes);
  if (isSoak) {
    const fit = rssFit(r);
    if (fit.slopeMiBPerHour > RSS_SLOPE_BOUND_MIB_PER_HOUR) failures.push(`RSS grows ${fit.slopeMiBPerHour.toFixed(1)} MiB/h (bound ${RSS_SLOPE_BOUND_MIB_PER_HOUR})`);
    const peak = Math.max(...r.samples.map((s) => s.tracked));
    if (peak > 3 * r.live + 100) failures.push(`per-object entries peaked at ${peak} for ${r.live} objects`);
  }
  return failures;
}

/** Least-squares line through the RSS samples of the longest-lived process, after the first 5 minutes. */
function rssFit(r: ChaosReport): { slopeMiBPerHour: number; meanMiB: number; samples: ChaosReport["samples"] } {
  const byPid = new Map<number, ChaosReport["samples"]>();
  for (const s of r.samples) byPid.set(s.pid, [...(byPid.get(s.pid) ?? []), s]);
  const longest = [...byPid.values()].sort((a, b) => b.length - a.length)[0] ?? [];
  const warm = longest.filter((s) => s.t >= (longest[0]?.t ?? 0) + 300);
  const points = warm.length >= 10 ? warm : longest;
  const n = points.length;
  const mx = points.reduce((a, s) => a + s.t, 0) / n;
  const my = points.reduce((a, s) => a + s.rss, 0) / n;
  const slope = points.reduce((a, s) => a + (s.t - mx) * (s.rss - my), 0) / (points.reduce((a, s) => a + (s.t - mx) ** 2, 0) || 1);
  return { slopeMiBPerHour: (slope * 3600) / 2 ** 20, meanMiB: my / 2 ** 20, samples: longest };
}

/** An SVG line chart of RSS (MiB) over minutes, with the fitted line. */
function chart(r: ChaosReport): string {
  const { samples, slopeMiBPerHour, meanMiB } = rssFit(r);
  const W = 720, H = 300, L = 60, B = 40, T = 30, R = 20;
  const t0 = samples[0]?.t ?? 0;
  const xs = samples.map((s) => (s.t - t0) / 60);
  const ys = samples.map((s) => s.rss / 2 ** 20);
  const xMax = Math.max(1, ...xs);
  const step = Math.max(...ys, 1) > 200 ? 50 : 25;
  const yMax = Math.ceil(Math.max(...ys, 1) / step) * step;
  const x = (v: number) => L + (v / xMax) * (W - L - R);
  const y = (v: number) => H - B - (v / yMax) * (H - B - T);
  const path = xs.map((v, i) => `${i ? "L" : "M"}${x(v).toFixed(1)},${y(ys[i] ?? 0).toFixed(1)}`).join(" ");
  const ticks = Array.from({ length: yMax / step + 1 }, (_, i) => i * step);
  const minutes = Array.from({ length: Math.floor(xMax / 5) + 1 }, (_, i) => i * 5);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">
<rect width="${W}" height="${H}" fill="white"/>
<text x="${L}" y="18">Operator RSS during the soak (MiB; ${r.live} objects; fitted slope after 5 min ${slopeMiBPerHour.toFixed(1)} MiB/h, mean ${meanMiB.toFixed(0)} MiB)</text>
${ticks.map((v) => `<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/><text x="${L - 8}" y="${y(v) + 4}" text-anchor="end">${v.toFixed(0)}</text>`).join("\n")}
${minutes.map((m) => `<text x="${x(m)}" y="${H - B + 18}" text-anchor="middle">${m}</text>`).join("\n")}
<text x="${(L + W - R) / 2}" y="${H - 6}" text-anchor="middle">minutes</text>
<path d="${path}" fill="none" stroke="#1f6feb" stroke-width="1.5"/>
</svg>
`;
}

function writeReport(rows: typeof results): void {
  const file = `${docs}reliability.md`;
  const text = readFileSync(file, "utf8");
  const begin = "<!-- chaos:begin -->";
  const end = "<!-- chaos:end -->";
  const line = (r: (typeof results)[number]) => {
    const { report: p, phase } = r;
    const faults = Object.entries(p.injected).map(([k, v]) => `${k} ×${v}`).join(", ");
    const verified = `${p.driver.creates} creates, ${p.driver.updates} changes, ${p.driver.deletes} deletes; ${p.createRuns} create runs, ${p.repeatsAfterKill} repeats after a SIGKILL, ${p.unexplainedRepeats.length} other repeats; ${p.notKept.length + p.lastChangeMissed.length} not handled; ${p.deleteHandlerMissed.length + p.notGone.length} deletions missed; ${p.vanished} removed with the finalizer by the API server's race (${p.vanishedLostToKill.length} lost to a SIGKILL); ${p.crashes.length} crashes; ${p.lists} lists of Items (${p.gone} HTTP 410)`;
    const storm = p.stormRate.maxPerSecond ? `; in storms ≤ ${p.stormRate.maxPerSecond} requests/s (mean ${p.stormRate.meanPerSecond.toFixed(1)})` : "";
    const memory = phase.name === "soak" ? `; RSS slope ${rssFit(p).slopeMiBPerHour.toFixed(1)} MiB/h (bound ${RSS_SLOPE_BOUND_MIB_PER_HOUR}), mean ${rssFit(p).meanMiB.toFixed(0)} MiB, per-object entries ≤ ${Math.max(...p.samples.map((s) => s.tracked))}` : "";
    return `| ${phase.name} | ${phase.flags.join(" ") || "default"}; ${phase.plan.objects} objects, ${phase.plan.churnPerSecond} changes/s for ${Math.round(p.churnMs / 1000)} s | ${faults} | ${verified}${storm}${memory} | ${r.failures.length ? `**failed**: ${r.failures.join("; ")}` : `passed; converged ${(p.convergeMs / 1000).toFixed(1)} s after the churn`} |`;
  };
  const section = [
    begin,
    `Last \`npm run chaos\`: ${new Date().toISOString().slice(0, 10)}, Kubernetes v1.37.1 local control plane, one operator process (test/fixtures/chaos-operator.ts) through the HTTP and TCP fault proxies.`,
    "",
    "| phase | cluster and load | injected | verified | result |",
    "| --- | --- | --- | --- | --- |",
    ...rows.map(line),
    ...(soak ? ["", "![Operator RSS during the soak](reliability-rss.svg)"] : []),
    end,
  ].join("\n");
  const updated = text.includes(begin) ? text.replace(new RegExp(`${begin}[\\s\\S]*${end}`), section) : `${text.trimEnd()}\n\n## Long run (\`npm run chaos\`)\n\n${section}\n`;
  writeFileSync(file, updated);
}
