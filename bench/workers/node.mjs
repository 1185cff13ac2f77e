// Node contenders of the side-by-side benchmark (bench/peers.ts), plain JavaScript importing the
// built package (dist/, or BENCH_DIST's), so no TypeScript tooling runs in the measured process: as deployed.
//
//   node bench/workers/node.mjs <raw|kubeloop-watch|kubeloop-controller|kubeloop-handlers|kubeloop-sharded|kubeloop-client|kubeloop-watcher|kubeloop-informer|client-node> <kubeconfig> <namespace> <objects> <events>
//
// Syncs the namespace's ConfigMaps, prints {"phase":"synced"}, counts <events> update events
// (each patch carries data.sent, the sender's clock in ms), prints {"phase":"done",p50,p99,ms}
// (send → receipt latency; first counted event → last, ms) and exits. Memory and CPU are read by the harness from /proc. Each mode
// imports only what it uses.
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { request as httpRequest } from "node:http";
import { performance } from "node:perf_hooks";

const [mode, kubeconfig, namespace, objectsArg, eventsArg] = process.argv.slice(2);
// BENCH_DIST: another build of kubeloop (the probe's --against), else this checkout's.
const dist = process.env.BENCH_DIST ?? new URL("../../dist", import.meta.url).href;
const objects = Number(objectsArg);
const wanted = Number(eventsArg);
const latencies = [];

// Asked to stop (the harness, once done): exit normally, so a --cpu-prof profile is written.
process.on("SIGTERM", () => process.exit(0));
const say = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);
function synced(count) {
  if (count !== objects) throw new Error(`${mode} synced ${count} objects, expected ${objects}`);
  say({ phase: "synced" });
}
let firstAt = 0;
let cpuAtFirst;
// BENCH_ALLOC_DIR (the probe's --alloc): V8's sampling heap profiler over the counted events,
// objects collected since included, written as <mode>-<pid>.heapprofile (what each event allocates).
const allocDir = process.env.BENCH_ALLOC_DIR;
let allocSession;
async function allocStart() {
  const { Session } = await import("node:inspector");
  allocSession = new Session();
  allocSession.connect();
  allocSession.post("HeapProfiler.startSampling", { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
}
// BENCH_THREADS_FILE (the probe's --threads): CPU per thread over the counted events (main
// thread user/system, V8's helper threads, libuv's), one JSON line per run appended to the file.
const threadsFile = process.env.BENCH_THREADS_FILE;
let threadsAtFirst;
function threadTimes() {
  const out = {};
  for (const tid of readdirSync("/proc/self/task")) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
      const name = tid === String(process.pid) ? "main" : stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")"));
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      const ticks = (i) => (Number(fields[i]) * 1000) / 100; // clock ticks (100 Hz) → ms
      out[`${name}.user`] = (out[`${name}.user`] ?? 0) + ticks(11);
      out[`${name}.system`] = (out[`${name}.system`] ?? 0) + ticks(12);
    } catch {
      // a thread that ended meanwhile
    }
  }
  return out;
}
function threadsStop() {
  const now = threadTimes();
  const ms = Object.fromEntries(Object.entries(now).map(([k, v]) => [k, v - (threadsAtFirst[k] ?? 0)]).filter(([, v]) => v > 0));
  appendFileSync(threadsFile, `${JSON.stringify({ mode, pid: process.pid, events: wanted, ms })}\n`);
}
function allocStop() {
  allocSession?.post("HeapProfiler.stopSampling", (error, result) => {
    if (!error) writeFileSync(`${allocDir}/${mode}-${process.pid}.heapprofile`, JSON.stringify(result.profile));
  });
}
// Every update counts, before "synced" too: in the replay the stream floods in at once (live,
// the harness patches only after "synced").
function seen(sent) {
  if (latencies.length >= wanted) return;
  if (latencies.length === 0) {
    firstAt = performance.now();
    cpuAtFirst = process.cpuUsage();
    if (allocDir) void allocStart();
    if (threadsFile) threadsAtFirst = threadTimes();
  }
  latencies.push(Date.now() - Number(sent));
  if (latencies.length === wanted) {
    if (allocDir) allocStop();
    if (threadsFile) threadsStop();
    latencies.sort((a, b) => a - b);
    const at = (q) => latencies[Math.floor(q * (latencies.length - 1))];
    const cpu = process.cpuUsage(cpuAtFirst);
    say({ phase: "done", count: latencies.length, p50: at(0.5), p99: at(0.99), ms: performance.now() - firstAt, cpuMicros: cpu.user + cpu.system });
    // Stay: the harness reads this process's memory and CPU, then kills it.
  }
}

if (mode === "kubeloop-watch") {
  const { Client, ConfigMap } = await import(`${dist}/index.js`);
  const { reflect, Store, createStore, watch } = await import(`${dist}/runtime.js`);
  const client = await Client.load({ path: kubeconfig, rateLimit: false });
  // createStore() since issue 32; a build from before it (`--against`) writes through the Store.
  const { store, writer } = createStore ? createStore() : ((s) => ({ store: s, writer: s }))(new Store());
  void store.waitUntilReady().then(() => synced(store.size));
  for await (const e of reflect(watch(client.resource(ConfigMap), { namespace }), writer)) {
    if (e.type === "apply") seen(e.object.data?.sent);
  }
} else if (mode === "kubeloop-client") {
  // The client layer alone: a list, then the raw watch from its resourceVersion (no watcher, no store).
  const { Client, ConfigMap } = await import(`${dist}/index.js`);
  const client = await Client.load({ path: kubeconfig, rateLimit: false });
  const cms = client.resource(ConfigMap).namespace(namespace);
  const list = await cms.list();
  synced(list.items.length);
  for await (const e of cms.watch({ resourceVersion: list.metadata.resourceVersion })) {
    if (e.type === "MODIFIED") seen(e.object.data?.sent);
  }
} else if (mode === "kubeloop-watcher") {
  // The watcher without a store.
  const { Client, ConfigMap } = await import(`${dist}/index.js`);
  const { watch } = await import(`${dist}/runtime.js`);
  const client = await Client.load({ path: kubeconfig, rateLimit: false });
  let count = 0;
  for await (const e of watch(client.resource(ConfigMap), { namespace })) {
    if (e.type === "initApply") count++;
    else if (e.type === "initDone") synced(count);
    else if (e.type === "apply") seen(e.object.data?.sent);
  }
} else if (mode === "kubeloop-informer") {
  // The Informer (the cache a controller reads) with one listener.
  const { Client, ConfigMap } = await import(`${dist}/index.js`);
  const { Informer } = await import(`${dist}/runtime.js`);
  const client = await Client.load({ path: kubeconfig, rateLimit: false });
  const informer = new Informer(client, ConfigMap, { namespace });
  informer.subscribe((e) => {
    if (e.type === "apply" && e.old) seen(e.object.data?.sent);
  });
  informer.start();
  await informer.waitUntilReady();
  synced(informer.store.size);
} else if (mode === "kubeloop-controller") {
  // A controller with a no-op reconcile (reads its object from the cache), as a user writes it.
  // Synced: once the operator started (caches synced), the cache's count, as controller-runtime's
  // WaitForCacheSync and a list.
  const { Client, ConfigMap, Operator } = await import(`${dist}/index.js`);
  const client = await Client.load({ path: kubeconfig, rateLimit: false });
  const op = new Operator({ name: "bench", leaderElection: false, namespaces: [namespace], logLevel: "error" });
  let started = false;
  let reported = false;
  let cache;
  const report = async () => {
    if (!started || !cache || reported) return;
    reported = true;
    synced((await cache.list(ConfigMap, { namespace })).length);
  };
  op.controller(ConfigMap)
    .withEventFilter((e) => {
      if (e.type === "apply" && e.old) seen(e.object.data?.sent);
      return true;
    })
    .reconcile(async (ref, ctx) => {
      cache = ctx.cache;
      await report();
    });
  void op.run({ client, probes: false, handleSignals: false, onStarted: () => ((started = true), report()) });
} else if (mode === "kubeloop-sharded") {
  // One replica of a sharded operator (bench/sharding.ts): a controller with a no-op reconcile on
  // the namespace's ConfigMaps, sharded over 32 buckets with the others of BENCH_OPERATOR. Prints
  // {"phase":"status", owned, cached, seen} every 200 ms once started (buckets acted on, objects in
  // its sharded cache, update events seen); the harness decides when the replicas have settled
  // and reads memory and CPU from /proc.
  const { Client, ConfigMap, Operator } = await import(`${dist}/index.js`);
  const client = await Client.load({ path: kubeconfig, rateLimit: false });
  const identity = process.env.BENCH_IDENTITY;
  const op = new Operator({
    name: process.env.BENCH_OPERATOR,
    namespaces: [namespace],
    logLevel: "error",
    leaderElection: { namespace, identity },
    sharding: { buckets: 32 },
  });
  let count = 0;
  op.controller(ConfigMap)
    .withEventFilter((e) => {
      if (e.type === "apply" && e.old) count++;
      return true;
    })
    .reconcile(async () => {});
  void op.run({
    client,
    probes: false,
    handleSignals: false,
    onStarted: ({ manager }) => {
      const sharded = manager.informers.all().filter((i) => i.scope.share);
      // SIGUSR2 (the harness, once settled): a full GC, then the heap in use: the cache's memory
      // without what RSS also holds (heap headroom, freed pages not returned, buffers).
      process.on("SIGUSR2", () => {
        globalThis.gc?.();
        say({ phase: "heap", heapUsedMiB: process.memoryUsage().heapUsed / 2 ** 20 });
      });
      // The share is what the replica acts on (kept at its active buckets); cheap to read, unlike /metrics.
      setInterval(() => say({ phase: "status", owned: sharded[0]?.scope.share.buckets.length ?? 0, cached: sharded.reduce((n, i) => n + i.store.size, 0), seen: count }), 200);
    },
  });
} else if (mode === "kubeloop-handlers") {
  // kopf-style handlers: on.create and on.update (progress and the diff base kept in annotations,
  // one patch per handled change). Synced: every existing object handled as created.
  const { Client, ConfigMap, Operator } = await import(`${dist}/index.js`);
  const client = await Client.load({ path: kubeconfig, rateLimit: false });
  // BENCH_CONCURRENCY: the handlers' concurrency (a probe's experiment; default: the Operator's).
  const concurrency = process.env.BENCH_CONCURRENCY ? { concurrency: Number(process.env.BENCH_CONCURRENCY) } : {};
  const op = new Operator({ name: "bench", leaderElection: false, namespaces: [namespace], logLevel: "error", eventLevel: "off", ...concurrency });
  const created = new Set();
  let isSynced = false;
  // Handlers may fold several changes of an object into one call: done when every object was
  // handled at its last change (seq ≥ events − objects); CPU is still counted per change made.
  const last = new Map();
  let calls = 0;
  const handled = (object) => {
    if (calls === 0) {
      firstAt = performance.now();
      cpuAtFirst = process.cpuUsage();
    }
    calls++;
    latencies.push(Date.now() - Number(object.data?.sent));
    const seq = Number(object.data?.seq ?? -1);
    if (seq >= wanted - objects) last.set(object.metadata.name, seq);
    if (last.size === objects && latencies.length > 0) {
      latencies.sort((a, b) => a - b);
      const at = (q) => latencies[Math.floor(q * (latencies.length - 1))];
      const cpu = process.cpuUsage(cpuAtFirst);
      say({ phase: "done", count: wanted, calls, p50: at(0.5), p99: at(0.99), ms: performance.now() - firstAt, cpuMicros: cpu.user + cpu.system });
      last.clear();
    }
  };
  // Live, every change after the sync is an update. In the replay (bench/replay.ts) the replayed
  // objects carry no diff base, so each change after the sync is handled as a create.
  op.on.create(ConfigMap, ({ object }) => {
    if (isSynced) return handled(object);
    created.add(object.metadata.name);
    if (created.size === objects) {
      isSynced = true;
      synced(created.size);
    }
  });
  op.on.update(ConfigMap, ({ object }) => handled(object));
  void op.run({ client, probes: false, handleSignals: false });
} else if (mode === "client-node") {
  const k8s = await import("@kubernetes/client-node");
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const informer = k8s.makeInformer(kc, `/api/v1/namespaces/${namespace}/configmaps`, () => core.listNamespacedConfigMap({ namespace }));
  informer.on("update", (o) => seen(o.data?.sent));
  await informer.start();
  synced(informer.list().length);
} else if (mode === "raw") {
  // The floor: one list, parsed; then the watch stream's lines split and counted, each line's
  // data.sent found by a string search (no JSON.parse), as the Go raw reader does.
  const YAML = await import("yaml");
  const doc = YAML.parse(readFileSync(kubeconfig, "utf8"));
  const b64 = (s) => (s ? Buffer.from(s, "base64").toString() : undefined);
  const cluster = doc.clusters[0].cluster;
  const user = doc.users[0].user ?? {};
  const tls = { ca: b64(cluster["certificate-authority-data"]), cert: b64(user["client-certificate-data"]), key: b64(user["client-key-data"]) };
  const server = cluster.server;
  const request = server.startsWith("https:") ? httpsRequest : httpRequest;
  const get = (path, onData) =>
    new Promise((resolve, reject) => {
      request(`${server}${path}`, { ...tls, headers: user.token ? { authorization: `Bearer ${user.token}` } : {} }, (res) => {
        res.on("data", onData);
        res.on("end", resolve);
      })
        .on("error", reject)
        .end();
    });
  const chunks = [];
  await get(`/api/v1/namespaces/${namespace}/configmaps`, (c) => chunks.push(c));
  const list = JSON.parse(Buffer.concat(chunks).toString());
  synced(list.items.length);
  let rest = "";
  await get(`/api/v1/namespaces/${namespace}/configmaps?watch=1&resourceVersion=${list.metadata.resourceVersion}`, (c) => {
    const text = rest + c.toString();
    let start = 0;
    for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n", start)) {
      const at = text.indexOf('"sent":"', start);
      seen(at >= 0 && at < nl ? text.slice(at + 8, text.indexOf('"', at + 8)) : "");
      start = nl + 1;
    }
    rest = text.slice(start);
  });
} else {
  throw new Error(`unknown mode ${mode}`);
}
