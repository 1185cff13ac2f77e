// Watch benchmark: initial sync time and memory for N objects, and update events through
// watch (+ store), for kubeloop, @kubernetes/client-node's informer and a raw reader (the limit).
// Each contender runs alone, in its own process, against the same API server.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { Client, ConfigMap, Namespace } from "../src/index.js";

export interface WatchMeasurement {
  contender: string;
  objects: number;
  syncMs: number;
  rssAfterSyncMB: number;
  peakRssMB: number;
  events: number;
  eventsPerSecond: number;
  cpuMicrosPerEvent: number;
}

export const CONTENDERS = ["raw", "kubeloop", "client-node"] as const;
const LABEL: Record<string, string> = { raw: "raw reader (limit)", kubeloop: "kubeloop watch+store", "client-node": "@kubernetes/client-node 1.4 informer" };

export async function benchWatch(options: {
  kubeconfigPath: string;
  sizes?: number[];
  events?: number;
  log?: (line: string) => void;
}): Promise<WatchMeasurement[]> {
  const log = options.log ?? (() => {});
  const events = options.events ?? 3_000;
  const client = await Client.load({ path: options.kubeconfigPath, rateLimit: false });
  const results: WatchMeasurement[] = [];
  for (const size of options.sizes ?? [10_000, 50_000]) {
    const namespace = `bench-watch-${size}-${Date.now().toString(36)}`;
    await client.resource(Namespace).create({ metadata: { name: namespace } });
    const cms = client.resource(ConfigMap).namespace(namespace);
    const data = { payload: "x".repeat(200) };
    for (let i = 0; i < size; i += 200) {
      await Promise.all(Array.from({ length: Math.min(200, size - i) }, (_, j) => cms.create({ metadata: { name: `cm-${i + j}`, labels: { bench: "watch" } }, data })));
    }
    log(`${size} ConfigMaps created in ${namespace}`);
    for (const contender of CONTENDERS) {
      const m = await runContender(contender, options.kubeconfigPath, namespace, size, events, async () => {
        let n = 0;
        await Promise.all(
          Array.from({ length: 50 }, async () => {
            while (n < events) {
              const i = n++;
              // A value no earlier round wrote: an unchanged object would produce no event.
              await cms.patch(`cm-${i % size}`, { data: { n: `${contender}-${i}` } }, { type: "merge" });
            }
          }),
        );
      });
      log(`${size}: ${LABEL[contender]} synced in ${m.syncMs.toFixed(0)} ms, ${m.rssAfterSyncMB.toFixed(0)} MB; ${m.eventsPerSecond.toFixed(0)} events/s`);
      results.push(m);
    }
    await client.resource(Namespace).delete(namespace);
  }
  await client.close();
  return results;
}

function runContender(
  contender: string,
  kubeconfig: string,
  namespace: string,
  objects: number,
  events: number,
  produce: () => Promise<void>,
): Promise<WatchMeasurement> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ["--import", "tsx", join(import.meta.dirname, "watch-worker.ts"), contender, kubeconfig, namespace, String(objects), String(events)],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const deadline = setTimeout(() => child.kill("SIGKILL"), 300_000);
    let buffer = "";
    const partial: Partial<WatchMeasurement> = { contender: LABEL[contender] ?? contender, objects };
    child.stdout.on("data", (d: Buffer) => {
      buffer += d.toString();
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const line = JSON.parse(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
        if (line.phase === "synced") {
          Object.assign(partial, { syncMs: line.ms, rssAfterSyncMB: line.rssMB });
          produce().catch(reject);
        } else if (line.phase === "events") {
          Object.assign(partial, {
            events: line.count,
            eventsPerSecond: line.count / (line.ms / 1000),
            cpuMicrosPerEvent: line.cpuMicrosPerEvent,
            peakRssMB: line.peakRssMB,
          });
        }
      }
    });
    child.on("exit", (code) => {
      clearTimeout(deadline);
      if (partial.events === undefined) reject(new Error(`${contender} worker exited ${code} before finishing`));
      else resolve(partial as WatchMeasurement);
    });
  });
}
