// Client micro-benchmark: get and list throughput, and the client's own CPU per call, for
// kubeloop's client and @kubernetes/client-node on the same API server in the same run.
//
// Both clients run in this one process, in alternating rounds (so drift in the shared machine
// affects both alike), without client-side rate limits, at the same concurrency. Throughput is
// bounded by the API server (a separate process on the same 2 cores); the CPU column is what
// the client itself spends per call: parsing, object conversion, HTTP.
import * as k8s from "@kubernetes/client-node";
import { Client, ConfigMap, Namespace } from "../src/entries/index.js";

export interface ClientBenchOptions {
  kubeconfigPath: string;
  objects?: number;
  gets?: number;
  lists?: number;
  concurrency?: number;
  rounds?: number;
  log?: (line: string) => void;
}

export interface Measurement {
  client: string;
  operation: string;
  opsPerSecond: number;
  cpuMicrosPerOp: number;
}

interface Contender {
  name: string;
  get(name: string): Promise<unknown>;
  list(): Promise<number>;
}

export async function benchClient(options: ClientBenchOptions): Promise<Measurement[]> {
  const objects = options.objects ?? 200;
  const gets = options.gets ?? 2000;
  const lists = options.lists ?? 60;
  const concurrency = options.concurrency ?? 16;
  const rounds = options.rounds ?? 3;
  const log = options.log ?? (() => {});
  const namespace = `bench-client-${Date.now().toString(36)}`;

  const ours = await Client.load({ path: options.kubeconfigPath, rateLimit: false });
  await ours.resource(Namespace).create({ metadata: { name: namespace } });
  const cms = ours.resource(ConfigMap).namespace(namespace);
  const names = Array.from({ length: objects }, (_, i) => `cm-${i}`);
  const data = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`key-${i}`, "x".repeat(100)]));
  for (let i = 0; i < names.length; i += 25) {
    await Promise.all(names.slice(i, i + 25).map((name) => cms.create({ metadata: { name, labels: { bench: "client" } }, data })));
  }

  const kc = new k8s.KubeConfig();
  kc.loadFromFile(options.kubeconfigPath);
  const core = kc.makeApiClient(k8s.CoreV1Api);

  const contenders: Contender[] = [
    { name: "kubeloop", get: (name) => cms.get(name), list: async () => (await cms.list()).items.length },
    {
      name: "@kubernetes/client-node 1.4",
      get: (name) => core.readNamespacedConfigMap({ name, namespace }),
      list: async () => (await core.listNamespacedConfigMap({ namespace })).items.length,
    },
  ];

  const results = new Map<string, { ops: number; seconds: number; cpu: number }>();
  const record = (client: string, operation: string, ops: number, seconds: number, cpu: number) => {
    const key = `${client}\0${operation}`;
    const prev = results.get(key) ?? { ops: 0, seconds: 0, cpu: 0 };
    results.set(key, { ops: prev.ops + ops, seconds: prev.seconds + seconds, cpu: prev.cpu + cpu });
  };

  // Warm up connections and JIT for both.
  for (const c of contenders) await runConcurrent(200, concurrency, (i) => c.get(names[i % objects]!));

  for (let round = 0; round < rounds; round++) {
    for (const c of round % 2 === 0 ? contenders : [...contenders].reverse()) {
      const g = await timed(() => runConcurrent(gets, concurrency, (i) => c.get(names[i % objects]!)));
      record(c.name, "get", gets, g.seconds, g.cpuMicros);
      const l = await timed(() =>
        runConcurrent(lists, 4, async () => {
          const n = await c.list();
          if (n !== objects) throw new Error(`${c.name} listed ${n} objects, expected ${objects}`);
        }),
      );
      record(c.name, `list (${objects} objects)`, lists, l.seconds, l.cpuMicros);
      log(`round ${round + 1}/${rounds}: ${c.name} get ${(gets / g.seconds).toFixed(0)}/s, list ${(lists / l.seconds).toFixed(1)}/s`);
    }
  }

  await ours.resource(Namespace).delete(namespace);
  await ours.close();
  return [...results.entries()].map(([key, r]) => {
    const [client, operation] = key.split("\0") as [string, string];
    return { client, operation, opsPerSecond: r.ops / r.seconds, cpuMicrosPerOp: r.cpu / r.ops };
  });
}

async function timed(fn: () => Promise<void>): Promise<{ seconds: number; cpuMicros: number }> {
  const cpu = process.cpuUsage();
  const start = performance.now();
  await fn();
  const used = process.cpuUsage(cpu);
  return { seconds: (performance.now() - start) / 1000, cpuMicros: used.user + used.system };
}

async function runConcurrent(total: number, concurrency: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) await task(next++);
    }),
  );
}
