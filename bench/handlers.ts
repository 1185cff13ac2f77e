// Handler benchmark: 1,000 custom objects created at once, a no-op create handler, kubeloop vs
// kopf (from PyPI, in a virtualenv cached in ~/.cache/kubeloop), each as its own process on the
// same API server in the same run. Measures handler invocations per second (first create sent
// → last handler call), create→handler latency (request sent → handler called) and the
// operator process's CPU time.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { Client, CustomResourceDefinition, Namespace, Type, defineResource } from "../src/index.js";
import { installCrd } from "../src/testing.js";

export const BenchItem = defineResource({
  group: "bench.kubeloop.dev",
  version: "v1",
  kind: "BenchItem",
  spec: Type.Object({ n: Type.Integer() }),
  status: Type.Unknown(),
});

export interface HandlerMeasurement {
  operator: string;
  objects: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  cpuSeconds: number;
}

const KOPF_VERSION = "1.45.2";

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

function cpuSeconds(pid: number | undefined): number {
  if (!pid) return 0;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks
  } catch {
    return 0;
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;
}

async function measure(
  client: Client,
  operator: string,
  objects: number,
  launch: (namespace: string) => ChildProcess,
  log: (m: string) => void,
): Promise<HandlerMeasurement> {
  const ns = `bench-${operator.split(" ")[0]}-${Date.now().toString(36)}`;
  await client.resource(Namespace).create({ metadata: { name: ns } });
  const child = launch(ns);
  const handled = new Map<string, number>();
  let buffer = "";
  child.stdout?.on("data", (d: Buffer) => {
    buffer += d.toString();
    const lines = buffer.split("\n");
    buffer = lines.pop() ?? "";
    for (const line of lines) {
      const [tag, name, at] = line.split(" ");
      if (tag === "H" && name && !handled.has(name)) handled.set(name, Number(at));
    }
  });
  const exited = new Promise<void>((r) => child.on("exit", () => r()));
  const items = client.resource(BenchItem).namespace(ns);
  const waitFor = async (what: string, done: () => boolean, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (child.exitCode !== null) throw new Error(`${operator} exited (${child.exitCode}) while waiting for ${what}`);
      if (Date.now() > deadline) throw new Error(`${operator}: timed out waiting for ${what} (${handled.size} handled)`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  try {
    // Warm-up: the operator is up when it has handled one object.
    await items.create({ metadata: { name: "warmup" }, spec: { n: -1 } });
    await waitFor("the warm-up object", () => handled.has("warmup"), 120_000);
    const cpuBefore = cpuSeconds(child.pid);
    const sent = new Map<string, number>();
    let next = 0;
    const started = Date.now();
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        while (next < objects) {
          const name = `item-${next++}`;
          sent.set(name, Date.now());
          await items.create({ metadata: { name }, spec: { n: next } });
        }
      }),
    );
    log(`${operator}: ${objects} objects created in ${Date.now() - started} ms`);
    await waitFor(`${objects} handler calls`, () => [...sent.keys()].every((n) => handled.has(n)), 300_000);
    const cpu = cpuSeconds(child.pid) - cpuBefore;
    const last = Math.max(...[...sent.keys()].map((n) => handled.get(n) as number));
    const latencies = [...sent].map(([n, at]) => (handled.get(n) as number) - at).sort((a, b) => a - b);
    const m = { operator, objects, perSecond: objects / ((last - started) / 1000), p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99), cpuSeconds: cpu };
    log(`${operator}: ${m.perSecond.toFixed(0)} handlers/s, p50 ${m.p50Ms} ms, p99 ${m.p99Ms} ms, CPU ${cpu.toFixed(2)} s`);
    return m;
  } finally {
    child.kill("SIGTERM");
    await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
    if (child.exitCode === null) child.kill("SIGKILL");
    await client.resource(Namespace).delete(ns).catch(() => {});
  }
}

/** Runs kubeloop and kopf against the cluster of `kubeconfigPath`. */
export async function benchHandlers(o: { kubeconfigPath: string; objects?: number; log: (m: string) => void }): Promise<HandlerMeasurement[]> {
  const objects = o.objects ?? 1_000;
  const client = await Client.load({ path: o.kubeconfigPath, rateLimit: false });
  try {
    await installCrd(client, BenchItem.crd);
    const kopf = kopfExecutable(o.log);
    const root = join(import.meta.dirname, "..");
    const env = { ...process.env, KUBECONFIG: o.kubeconfigPath };
    const results: HandlerMeasurement[] = [];
    results.push(
      await measure(client, "kubeloop", objects, (ns) => spawn(process.execPath, ["--import", "tsx", join(root, "bench", "handlers-worker.ts"), o.kubeconfigPath, ns], { env, stdio: ["ignore", "pipe", "inherit"] }), o.log),
    );
    results.push(
      await measure(client, `kopf ${KOPF_VERSION}`, objects, (ns) => spawn(kopf, ["run", "--standalone", "--namespace", ns, "--quiet", join(root, "bench", "kopf", "handler.py")], { env, stdio: ["ignore", "pipe", "inherit"] }), o.log),
    );
    await client.resource(CustomResourceDefinition).delete(BenchItem.crd.metadata?.name ?? "").catch(() => {});
    return results;
  } finally {
    await client.close();
  }
}
