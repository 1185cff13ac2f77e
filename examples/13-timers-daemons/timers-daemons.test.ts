import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { Client, ConfigMap, Namespace, NotFoundError } from "kubeloop";
import { installCrd, runOperator, waitFor, type OperatorUnderTest } from "kubeloop/testing";
import { releaseSharedCluster, sharedCluster, uniqueName } from "../../test/helpers.js";
import { Monitor, op } from "./operator.js";

let client: Client;
let running: OperatorUnderTest;
before(async () => {
  client = await Client.load({ path: (await sharedCluster()).kubeconfigPath, rateLimit: false });
  await installCrd(client, Monitor.crd);
  running = await runOperator(op, { client });
});
after(async () => {
  await running?.stop();
  await client?.close();
  await releaseSharedCluster();
});

type MonitorStatus = { beats?: number; target?: string } | undefined;

it("13-timers-daemons: heartbeats after idle, a daemon reporting its target, both ended by deletion", { timeout: 60_000 }, async () => {
  const ns = uniqueName("ex13");
  await client.resource(Namespace).create({ metadata: { name: ns } });
  const monitors = client.resource(Monitor).namespace(ns);
  const created = Date.now();
  await monitors.create({ metadata: { name: "m" }, spec: { target: "app-config" } });
  await waitFor("the daemon reports the target absent", async () => ((await monitors.get("m")).status as MonitorStatus)?.target === "absent");
  await client.resource(ConfigMap).namespace(ns).create({ metadata: { name: "app-config" } });
  await waitFor("the daemon sees the target", async () => ((await monitors.get("m")).status as MonitorStatus)?.target === "present");
  await waitFor("two heartbeats", async () => (((await monitors.get("m")).status as MonitorStatus)?.beats ?? 0) >= 2, { timeoutMs: 20_000 });
  const first = new Date(((await monitors.get("m")).status as { lastBeat: string }).lastBeat).getTime();
  assert.ok(first - created >= 2_000, "no heartbeat before the object was idle for 2 s");
  await monitors.delete("m");
  await waitFor("deleted (daemon and timer stopped, finalizer released)", async () => monitors.get("m").then(() => false, (e) => e instanceof NotFoundError));
});
