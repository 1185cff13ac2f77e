// Runs the example's operator in its own process (for the restart test): one namespace, no
// leader election, no probes. Prints "STARTED" once running.
// Usage: node --import tsx run.ts KUBECONFIG NAMESPACE
import { pino } from "pino";
import { Client } from "kubeloop";
import { op } from "./operator.js";

const [kubeconfig, namespace] = process.argv.slice(2) as [string, string];
const client = await Client.load({ path: kubeconfig, rateLimit: false });
await op.run({ client, namespaces: [namespace], leaderElection: false, probes: false, logger: pino({ level: "warn" }, pino.destination(2)), onStarted: () => process.stdout.write("STARTED\n") });
await client.close();
