// `npm run demo`: the main job on the embedded default. Runs the pod autoscaler example under
// `kubeloop dev` (local control plane, its CRDs, the operator) and scripts a scenario against
// it: a Deployment and a PodAutoscaler, load raised and lowered through a WorkQueue, printing
// what the operator does. Exits 0 when every step was observed, 1 otherwise.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { Client, Deployment, Event, Namespace, Pod } from "kubeloop";
import { PodAutoscaler, WorkQueue } from "../examples/01-pod-autoscaler/operator.js";

const root = join(import.meta.dirname, "..");
const t0 = Date.now();
const say = (m: string) => process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${m}\n`);

async function until<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

say("starting: kubeloop dev examples/01-pod-autoscaler/operator.ts");
const dev = spawn(process.execPath, [join(root, "bin", "kubeloop.mjs"), "dev", join(root, "examples", "01-pod-autoscaler", "operator.ts"), "--", "--log-format", "plain", "--metrics-bind", "127.0.0.1:0"], {
  cwd: root,
  stdio: ["ignore", "pipe", "pipe"],
});
let kubeconfig = "";
let synced = false;
const devExited = new Promise<number | null>((r) => dev.on("exit", (code) => r(code)));
const lines = (stream: NodeJS.ReadableStream, onLine: (l: string) => void) => {
  let buffer = "";
  stream.on("data", (d: Buffer) => {
    buffer += d.toString();
    const parts = buffer.split("\n");
    buffer = parts.pop() ?? "";
    parts.forEach(onLine);
  });
};
lines(dev.stdout, (l) => {
  if (l.startsWith("KUBECONFIG=")) kubeconfig = l.slice("KUBECONFIG=".length);
  if (l.includes("caches synced")) synced = true;
  if (/Scaled(Up|Down)|ERROR|WARN/.test(l)) process.stdout.write(`         operator │ ${l}\n`);
});
lines(dev.stderr, (l) => process.stderr.write(`${l}\n`));

let code = 0;
let client: Client | undefined;
try {
  await until("the local control plane", async () => kubeconfig !== "" || (dev.exitCode !== null ? Promise.reject(new Error("kubeloop dev exited")) : false), 900_000);
  say(`control plane up; KUBECONFIG=${kubeconfig}`);
  await until("the operator to start", async () => synced, 120_000);
  say("operator running (CRDs PodAutoscaler and WorkQueue installed by kubeloop dev)");
  client = await Client.load({ path: kubeconfig, rateLimit: false });
  const ns = "demo";
  await client.resource(Namespace).create({ metadata: { name: ns } });
  const deployments = client.resource(Deployment).namespace(ns);
  const queues = client.resource(WorkQueue).namespace(ns);
  const autoscalers = client.resource(PodAutoscaler).namespace(ns);
  const labels = { app: "worker" };
  await deployments.create({
    metadata: { name: "worker" },
    spec: { replicas: 1, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: "worker", image: "busybox" }] } } },
  });
  await queues.create({ metadata: { name: "jobs" }, spec: { items: [] } });
  await autoscalers.create({
    metadata: { name: "worker" },
    spec: { target: "worker", minReplicas: 1, maxReplicas: 6, metric: { workQueue: "jobs", targetItemsPerReplica: 3 }, stabilizationWindowSeconds: 5 },
  });
  say("created Deployment worker (1 replica), WorkQueue jobs (empty), PodAutoscaler worker: 1..6 replicas, 3 items per replica, 5 s window");
  const replicas = async () => (await deployments.get("worker")).spec?.replicas;
  const load = async (n: number) => {
    await queues.patch("jobs", { spec: { items: Array.from({ length: n }, (_, i) => `job-${i}`) } }, { type: "merge" });
    say(`load: ${n} items in the queue`);
  };
  // The Pods follow (kubeloop dev runs 3 simulated nodes): as many Ready as replicas, and no other left.
  const pods = client.resource(Pod).namespace(ns);
  const readyPods = async () => {
    const items = (await pods.list({ labelSelector: "app=worker" })).items;
    const ready = items.filter((p) => !p.metadata?.deletionTimestamp && p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"));
    return { all: items.length, ready };
  };
  const expect = async (n: number, why: string) => {
    const started = Date.now();
    await until(`${n} replicas`, async () => (await replicas()) === n);
    const s = (await autoscalers.get("worker")).status;
    const limited = s?.conditions?.find((c) => c.type === "ScalingLimited");
    say(`  → ${n} replicas after ${((Date.now() - started) / 1000).toFixed(1)} s (${why}); status: items=${s?.currentItems ?? "?"} desired=${s?.desiredReplicas ?? "?"}${limited?.status === "True" ? `, limited: ${limited.reason}` : ""}`);
    await podsFollow(n, started);
  };
  const podsFollow = async (n: number, started: number) => {
    await until(`${n} Ready Pods and no other`, async () => {
      const now = await readyPods();
      return now.ready.length === n && now.all === n;
    });
    const byNode = new Map<string, number>();
    for (const p of (await readyPods()).ready) byNode.set(p.spec?.nodeName ?? "?", (byNode.get(p.spec?.nodeName ?? "?") ?? 0) + 1);
    say(`    kubectl get pods: ${n} Ready after ${((Date.now() - started) / 1000).toFixed(1)} s, on ${[...byNode].sort().map(([node, count]) => `${node} (${count})`).join(", ")}`);
  };

  await until("the first status", async () => (await autoscalers.get("worker")).status?.currentReplicas === 1);
  say("  → status written: 1 replica (the minimum)");
  await podsFollow(1, Date.now());
  await load(10);
  await expect(4, "ceil(10 / 3), at once");
  await load(30);
  await expect(6, "10 wanted, capped at maxReplicas");
  await load(4);
  await until("the drop to be seen", async () => (await autoscalers.get("worker")).status?.desiredReplicas === 2);
  say(`  → recommendation 2, still ${await replicas()} replicas: the stabilization window holds the scale-down`);
  await expect(2, "after the 5 s window");
  await load(0);
  await expect(1, "the minimum, after the window");

  const events = (await client.resource(Event).namespace(ns).list()).items.filter((e) => e.regarding?.kind === "PodAutoscaler").sort((a, b) => String(a.eventTime).localeCompare(String(b.eventTime)));
  say("events on PodAutoscaler worker:");
  for (const e of events) say(`  ${e.reason}: ${e.note}`);
  if (!events.some((e) => e.reason === "ScaledUp") || !events.some((e) => e.reason === "ScaledDown")) throw new Error("expected ScaledUp and ScaledDown events");
  say("demo finished");
} catch (error) {
  say(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
  code = 1;
} finally {
  await client?.close();
  dev.kill("SIGINT");
  const devCode = await Promise.race([devExited, new Promise<number | null>((r) => setTimeout(() => r(-1), 30_000))]);
  if (devCode !== 0) {
    say(`kubeloop dev did not stop cleanly (${devCode})`);
    dev.kill("SIGKILL");
    code = 1;
  } else say("kubeloop dev stopped (operator and control plane)");
}
process.exit(code);
