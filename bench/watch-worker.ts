// One contender of the watch benchmark, in its own process so its memory is its own.
// argv: <mode> <kubeconfig> <namespace> <objects> <events>
// Prints JSON lines: {"phase":"synced",...} once the initial state is held, then
// {"phase":"events",...} after seeing <events> updates, then exits.
// Each mode imports only what it uses, so a worker's memory is its contender's own.
import { readFileSync } from "node:fs";
import { request } from "node:https";

const [mode, kubeconfig, namespace, objectsArg, eventsArg] = process.argv.slice(2) as [string, string, string, string, string];
const objects = Number(objectsArg);
const wanted = Number(eventsArg);
const started = performance.now();
let cpuAtSync = process.cpuUsage();
let firstEventAt = 0;
let events = 0;

const say = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);
function synced(count: number): void {
  if (count !== objects) throw new Error(`${mode} synced ${count} objects, expected ${objects}`);
  say({ phase: "synced", ms: performance.now() - started, rssMB: process.memoryUsage().rss / 2 ** 20 });
  cpuAtSync = process.cpuUsage();
}
function event(): void {
  if (events === 0) firstEventAt = performance.now();
  if (++events === wanted) {
    const cpu = process.cpuUsage(cpuAtSync);
    say({
      phase: "events",
      count: events,
      ms: performance.now() - firstEventAt,
      cpuMicrosPerEvent: (cpu.user + cpu.system) / events,
      peakRssMB: process.resourceUsage().maxRSS / 1024,
    });
    process.exit(0);
  }
}

if (mode === "kubeloop") {
  const { Client, ConfigMap } = await import("../src/index.js");
  const { reflect } = await import("../src/runtime/reflector.js");
  const { Store } = await import("../src/runtime/store.js");
  const { watch } = await import("../src/runtime/watcher.js");
  const client = await Client.load({ path: kubeconfig, rateLimit: false });
  const store = new Store();
  void store.waitUntilReady().then(() => synced(store.size));
  for await (const e of reflect(watch(client.resource(ConfigMap), { namespace }), store)) {
    if (e.type === "apply") event();
  }
} else if (mode === "client-node") {
  const k8s = await import("@kubernetes/client-node");
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const informer = k8s.makeInformer(kc, `/api/v1/namespaces/${namespace}/configmaps`, () => core.listNamespacedConfigMap({ namespace }));
  informer.on("update", () => event());
  await informer.start();
  synced(informer.list().length);
} else if (mode === "raw") {
  // The limit: one list, parsed; then a watch whose lines are counted, not parsed.
  const YAML = await import("yaml");
  const doc = YAML.parse(readFileSync(kubeconfig, "utf8"));
  const b64 = (s: string) => Buffer.from(s, "base64").toString();
  const tls = {
    ca: b64(doc.clusters[0].cluster["certificate-authority-data"]),
    cert: b64(doc.users[0].user["client-certificate-data"]),
    key: b64(doc.users[0].user["client-key-data"]),
  };
  const server = doc.clusters[0].cluster.server as string;
  const get = (path: string, onData: (chunk: Buffer) => void) =>
    new Promise<void>((resolve, reject) => {
      request(`${server}${path}`, tls, (res) => {
        res.on("data", onData);
        res.on("end", resolve);
      })
        .on("error", reject)
        .end();
    });
  const chunks: Buffer[] = [];
  await get(`/api/v1/namespaces/${namespace}/configmaps`, (c) => chunks.push(c));
  const list = JSON.parse(Buffer.concat(chunks).toString());
  synced(list.items.length);
  await get(`/api/v1/namespaces/${namespace}/configmaps?watch=1&resourceVersion=${list.metadata.resourceVersion}`, (c) => {
    for (let i = c.indexOf(10); i >= 0; i = c.indexOf(10, i + 1)) event();
  });
} else {
  throw new Error(`unknown mode ${mode}`);
}
