// The test command (`npm test` runs it after install, typecheck and lint).
//
// Starts ONE local control plane for the whole run and hands its kubeconfig to every test
// file through KUBELOOP_KUBECONFIG (and a second, with simulated nodes, through
// KUBELOOP_NODES_KUBECONFIG when a file calls sharedClusterWithNodes()), runs the files with Node's test runner, stops the control
// plane, and then checks that no etcd / kube-apiserver / kube-controller-manager of ours is left.
//
//   node --import tsx scripts/test.ts            unit + integration + examples
//   node --import tsx scripts/test.ts --unit     unit tests only (no control plane)
//   node --import tsx scripts/test.ts FILE...    just these files
//
// With KUBELOOP_KUBECONFIG already set, tests run against that cluster and nothing is started.
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { startControlPlane, type ControlPlane } from "../src/entries/testing.js";
import { SHARED_NODES } from "../test/helpers.js";

const root = join(import.meta.dirname, "..");
const args = process.argv.slice(2);
const unitOnly = args.includes("--unit");
const explicit = args.filter((a) => !a.startsWith("--"));

function find(dir: string): string[] {
  let out: string[] = [];
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    if (name === "node_modules" || name.startsWith(".")) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out = out.concat(find(path));
    else if (name.endsWith(".test.ts")) out.push(path);
  }
  return out.sort();
}

const unit = find(join(root, "src"));
const integration = [...find(join(root, "test")), ...find(join(root, "examples"))];
const files = explicit.length > 0 ? explicit : unitOnly ? unit : [...unit, ...integration];
const needsCluster = !unitOnly && files.some((f) => !unit.includes(resolve(f)));

const log = (m: string) => process.stderr.write(`test: ${m}\n`);

// Every process started during this run inherits this marker, so leftovers can be told apart
// from a control plane someone else runs on the same machine.
const runId = `${process.pid}-${Date.now()}`;
const env: NodeJS.ProcessEnv = { ...process.env, KUBELOOP_TEST_RUN: runId };
let cp: ControlPlane | undefined;
// An audit log of what ServiceAccounts ask (metadata only), one per shared cluster: the RBAC
// proofs read it to show that every generated verb is one an operator really uses
// (test/rbac-examples.serial.test.ts). `variable` names it for the tests.
const auditDir = mkdtempSync(join(tmpdir(), "kubeloop-audit-"));
process.on("exit", () => rmSync(auditDir, { recursive: true, force: true }));
writeFileSync(
  join(auditDir, "policy.yaml"),
  'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: ["RequestReceived"]\nrules:\n  - level: Metadata\n    userGroups: ["system:serviceaccounts"]\n  - level: None\n',
);
const audited = (variable: "KUBELOOP_AUDIT_LOG" | "KUBELOOP_NODES_AUDIT_LOG", file: string): string[] => {
  env[variable] = join(auditDir, file);
  return [`--audit-policy-file=${join(auditDir, "policy.yaml")}`, `--audit-log-path=${env[variable]}`];
};
if (needsCluster && !process.env.KUBELOOP_KUBECONFIG) {
  const started = Date.now();
  cp = await startControlPlane({ env, onProgress: log, apiServerFlags: audited("KUBELOOP_AUDIT_LOG", "audit.log") });
  log(`shared control plane ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${cp.kubeconfigPath}`);
  env.KUBELOOP_KUBECONFIG = cp.kubeconfigPath;
}
// A second shared cluster, with simulated nodes (test/helpers.ts sharedClusterWithNodes), only
// when a file to run asks for it.
let nodesCp: ControlPlane | undefined;
if (needsCluster && !process.env.KUBELOOP_NODES_KUBECONFIG && files.some((f) => readFileSync(f, "utf8").includes("sharedClusterWithNodes("))) {
  const started = Date.now();
  nodesCp = await startControlPlane({ kubeconfig: false, env, onProgress: log, nodes: SHARED_NODES, apiServerFlags: audited("KUBELOOP_NODES_AUDIT_LOG", "audit-nodes.log") });
  log(`shared control plane with ${SHARED_NODES} nodes ready in ${((Date.now() - started) / 1000).toFixed(1)} s: ${nodesCp.kubeconfigPath}`);
  env.KUBELOOP_NODES_KUBECONFIG = nodesCp.kubeconfigPath;
}

// Files run 3 at a time: integration tests mostly wait on the API server (GC, leases), so this
// halves the wall time on 2 cores without starving the control plane. Files named
// `*.serial.test.ts` run afterwards, one at a time: they run example operators (cluster-wide,
// under the examples' own names) that must not meet another copy of themselves.
const serial = files.filter((f) => f.endsWith(".serial.test.ts"));
const parallel = files.filter((f) => !serial.includes(f));
const runFiles = (list: string[], concurrency: number) =>
  new Promise<number>((resolve) => {
    if (list.length === 0) return resolve(0);
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "--test", "--test-reporter=spec", `--test-concurrency=${concurrency}`, ...list.map((f) => relative(root, f))],
      { cwd: root, env, stdio: "inherit" },
    );
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on("SIGINT", forward);
    process.on("SIGTERM", forward);
    child.on("exit", (c, s) => {
      process.off("SIGINT", forward);
      process.off("SIGTERM", forward);
      resolve(c ?? (s ? 1 : 0));
    });
  });
const code = (await runFiles(parallel, 3)) || (await runFiles(serial, 1));

let leftover: string[] = [];
for (const plane of [cp, nodesCp]) {
  if (!plane) continue;
  const pids = Object.values(plane.pids);
  await plane.stop();
  leftover = leftover.concat(await survivors(pids));
}
// Test files may start control planes of their own; none of their processes may survive either.
leftover = leftover.concat(ourProcesses());
if (leftover.length > 0) {
  log(`FAIL: control plane processes left running after the suite:\n  ${leftover.join("\n  ")}`);
  process.exit(code || 1);
}
log("no control plane process left running");
process.exit(code);

/** Waits (bounded) for pids to exit; returns those still alive. */
async function survivors(pids: number[]): Promise<string[]> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const alive = pids.filter((p) => {
      try {
        process.kill(p, 0);
        return true;
      } catch {
        return false;
      }
    });
    if (alive.length === 0 || Date.now() > deadline) return alive.map((p) => `pid ${p}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Live control plane processes started during this run (they carry KUBELOOP_TEST_RUN). */
function ourProcesses(): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((n) => /^\d+$/.test(n))) {
    try {
      const environ = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
      if (!environ.includes(`KUBELOOP_TEST_RUN=${runId}`)) continue;
      const state = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0];
      if (state === "Z") continue;
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
      if (/(etcd|kube-apiserver|kube-controller-manager|kubeloop-controlplane)$/.test(cmdline[0] ?? "")) {
        found.push(`pid ${pid}: ${cmdline.slice(0, 3).join(" ")}`);
      }
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}
