// `npm run demo`: the main job on the embedded default. Starts the local control plane, runs
// the ConfigMapSet example operator (examples/06-configmapset) in this process, and scripts a
// short scenario against it, printing what happens. Exits 0 when every step was observed.
// (The pod autoscaler example replaces this scenario with the CLI issue.)
import { pino } from "pino";
import { Client, ConfigMap, Event, Namespace, NotFoundError, type RunningOperator } from "kubeloop";
import { startControlPlane } from "kubeloop/testing";
import { installCrd, op, REGISTRY } from "../examples/06-configmapset/operator.js";
import { ConfigMapSet } from "../examples/06-configmapset/resource.js";

const t0 = Date.now();
const say = (m: string) => process.stdout.write(`[${((Date.now() - t0) / 1000).toFixed(1).padStart(5)} s] ${m}\n`);

async function until<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check().catch(() => undefined);
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`demo: gave up after ${timeoutMs / 1000} s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const cp = await startControlPlane({ env: process.env, onProgress: (m) => process.stderr.write(`kubeloop: ${m}\n`) });
say(`control plane up at ${cp.server} (KUBECONFIG=${cp.kubeconfigPath})`);
const client = await Client.load({ path: cp.kubeconfigPath, rateLimit: { qps: 20, burst: 30 } });
const stop = new AbortController();
let done: Promise<void> = Promise.resolve();
let code = 0;
try {
  await installCrd(client);
  const ns = "demo";
  await client.resource(Namespace).create({ metadata: { name: ns } }).catch(() => {});
  say("CRD configmapsets.examples.kubeloop.dev installed; starting the ConfigMapSet operator");
  const running = await new Promise<RunningOperator>((resolve, reject) => {
    done = op.run({ client, signal: stop.signal, handleSignals: false, probes: { port: 0, host: "127.0.0.1" }, logger: pino({ level: process.env.DEMO_LOG ?? "warn" }, pino.destination(2)), onStarted: resolve });
    done.catch(reject);
  });
  say(`operator running; metrics at ${running.probes?.url}/metrics`);

  const sets = client.resource(ConfigMapSet).namespace(ns);
  const cms = client.resource(ConfigMap).namespace(ns);
  const children = async () =>
    (await cms.list({ labelSelector: "examples.kubeloop.dev/set=web" })).items.filter((c) => !c.metadata?.deletionTimestamp).map((c) => c.metadata?.name ?? "").sort();
  const expect = (names: string[]) => until(`ConfigMaps ${names.join(", ")}`, async () => JSON.stringify(await children()) === JSON.stringify(names));

  say("create ConfigMapSet web with replicas: 3");
  await sets.create({ metadata: { name: "web", namespace: ns }, spec: { replicas: 3, data: { greeting: "hello" } } });
  await expect(["web-0", "web-1", "web-2"]);
  const ready = await until("status", async () => {
    const s = await sets.get("web");
    return s.status?.replicas === 3 ? s : undefined;
  });
  say(`  → ConfigMaps: ${(await children()).join(", ")}; status.replicas=${ready.status?.replicas}, Ready=${ready.status?.conditions?.[0]?.status}, finalizers=${ready.metadata?.finalizers?.join(",")}`);

  const before = (await cms.get("web-1")).metadata?.uid;
  say("delete ConfigMap web-1 behind the operator's back");
  await cms.delete("web-1");
  await until("web-1 back", async () => (await cms.get("web-1")).metadata?.uid !== before);
  say("  → web-1 is back (a new object, owned by web)");

  say("scale to 5");
  await sets.patch("web", { spec: { replicas: 5 } }, { type: "merge" });
  await expect(["web-0", "web-1", "web-2", "web-3", "web-4"]);
  say(`  → ConfigMaps: ${(await children()).join(", ")}`);

  say("scale to 1 and change the data");
  await sets.patch("web", { spec: { replicas: 1, data: { greeting: "bonjour" } } }, { type: "merge" });
  await expect(["web-0"]);
  await until("new data", async () => (await cms.get("web-0")).data?.greeting === "bonjour");
  say(`  → ConfigMaps: ${(await children()).join(", ")}; web-0 data: ${JSON.stringify((await cms.get("web-0")).data)}`);

  const events = (await client.resource(Event).namespace(ns).list()).items.filter((e) => e.regarding?.name === "web");
  for (const e of events) say(`  event ${e.reason}: ${e.note}${e.series ? ` (×${e.series.count})` : ""}`);
  const metrics = await (await fetch(`${running.probes?.url}/metrics`)).text();
  for (const line of metrics.split("\n").filter((l) => l.startsWith("controller_runtime_reconcile_total{"))) say(`  metric ${line}`);

  say("delete ConfigMapSet web: the finalizer unregisters it, then the garbage collector removes its ConfigMaps");
  await sets.delete("web");
  await until("web deleted", async () => sets.get("web").then(() => false, (e) => e instanceof NotFoundError));
  say(`  → web is gone; registry entry: ${JSON.stringify((await cms.get(REGISTRY)).data?.web ?? null)}`);
  await expect([]).catch(() => {});
  await until("children collected", async () => (await children()).length === 0, 90_000);
  say("  → its ConfigMaps were garbage-collected");
  say("demo finished");
} catch (error) {
  say(`demo failed: ${error instanceof Error ? error.message : String(error)}`);
  code = 1;
} finally {
  stop.abort();
  await done.catch(() => {});
  await client.close();
  await cp.stop();
  say("operator and control plane stopped");
}
process.exit(code);
