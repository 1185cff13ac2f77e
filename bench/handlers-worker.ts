// The kubeloop side of the handler benchmark: a no-op create handler, printing
// "H <name> <epoch ms>" per invocation. Usage: handlers-worker.ts KUBECONFIG NAMESPACE
import { pino } from "pino";
import { Client, Operator } from "../src/index.js";
import { BenchItem } from "./handlers.js";

const [kubeconfig, namespace] = process.argv.slice(2) as [string, string];
const client = await Client.load({ path: kubeconfig, rateLimit: false });
const op = new Operator({ name: "bench", concurrency: Number(process.env.BENCH_CONCURRENCY ?? 16), leaderElection: false, probes: false, namespaces: [namespace], eventLevel: "off", logger: pino({ level: "warn" }, pino.destination(2)) });
op.on.create(BenchItem, function created({ object }) {
  process.stdout.write(`H ${object.metadata?.name} ${Date.now()}\n`);
});
await op.run({ client });
await client.close();
