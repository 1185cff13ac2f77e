// Correctness of the handler level against the real API server: co-tenancy of two operators on
// one kind, status writes after a 404, timers and daemons that stop with their reason, and
// per-object state bounded by the cache.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { Client, ConfigMap, CustomResourceDefinition, Namespace, NotFoundError, Operator, Type, defineResource } from "../src/index.js";
import { PatchWriter } from "../src/handlers/context.js";
import { runOperator, type OperatorUnderTest } from "../src/testing.js";
import { eventually, releaseSharedCluster, sharedCluster, uniqueName } from "./helpers.js";

const quiet = pino({ level: "silent" });
const Gadget = defineResource({
  group: `${uniqueName("co")}.kubeloop.dev`,
  version: "v1",
  kind: "Gadget",
  spec: Type.Object({ size: Type.Integer() }),
  status: Type.Unknown(),
});

let client: Client;
let kubeconfig: string;
const running: OperatorUnderTest[] = [];

before(async () => {
  kubeconfig = (await sharedCluster()).kubeconfigPath;
  client = await Client.load({ path: kubeconfig, rateLimit: false });
  await client.resource(CustomResourceDefinition).create(Gadget.crd);
  await eventually("CRD established", async () =>
    (await client.resource(CustomResourceDefinition).get(Gadget.crd.metadata!.name!)).status?.conditions?.some((c) => c.type === "Established" && c.status === "True"),
  );
  await eventually("served", async () => (await client.resource(Gadget).list()) && true);
});
after(async () => {
  for (const op of running) await op.stop().catch(() => {});
  await client?.resource(CustomResourceDefinition).delete(Gadget.crd.metadata!.name!).catch(() => {});
  await client?.close();
  await releaseSharedCluster();
});

async function namespace(): Promise<string> {
  const ns = uniqueName("corr");
  await client.resource(Namespace).create({ metadata: { name: ns } });
  return ns;
}

async function start(op: Operator): Promise<OperatorUnderTest> {
  const r = await runOperator(op, { client, logger: quiet });
  running.push(r);
  return r;
}

describe("co-tenancy", () => {
  it("two kubeloop operators with update handlers on one kind: one change, one run each, small annotations", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    const counts = { alpha: 0, beta: 0 };
    const make = (name: "alpha" | "beta") => {
      const op = new Operator({ name, namespaces: [ns], leaderElection: false });
      op.on.update(Gadget, async () => void counts[name]++);
      return op;
    };
    const alpha = await start(make("alpha"));
    const beta = await start(make("beta"));
    const gadgets = client.resource(Gadget).namespace(ns);
    await gadgets.create({ metadata: { name: "g" }, spec: { size: 1 } });
    const handledBoth = (size: number) => async () => {
      const a = (await gadgets.get("g")).metadata?.annotations ?? {};
      return [a["alpha.kubeloop.dev/last-handled"], a["beta.kubeloop.dev/last-handled"]].every((v) => v !== undefined && (JSON.parse(v) as { spec: { size: number } }).spec.size === size);
    };
    await eventually("both handled the create", handledBoth(1));
    await gadgets.patch("g", { spec: { size: 2 } }, { type: "merge" });
    await eventually("both handled the change", handledBoth(2));
    await gadgets.patch("g", { spec: { size: 3 } }, { type: "merge" });
    await eventually("both handled the second change", handledBoth(3));
    // Ping-pong would have run the update handlers on each other's writes all along.
    assert.deepEqual(counts, { alpha: 2, beta: 2 }, "each update handler ran once per spec change");
    const size = JSON.stringify((await gadgets.get("g")).metadata?.annotations).length;
    assert.ok(size < 400, `annotations stay small (${size} bytes)`);
    await alpha.stop();
    await beta.stop();
  });
});

describe("status writes", () => {
  it("a 404 on a status write (object just deleted) does not send later status writes to the main resource", { timeout: 30_000 }, async () => {
    const ns = await namespace();
    const gadgets = client.resource(Gadget).namespace(ns);
    const writer = new PatchWriter(client, Gadget);
    const doomed = await gadgets.create({ metadata: { name: "doomed" }, spec: { size: 1 } });
    await gadgets.delete("doomed");
    await assert.rejects(writer.write(doomed, { status: { phase: "x" } }), NotFoundError);
    const alive = await gadgets.create({ metadata: { name: "alive" }, spec: { size: 1 } });
    await writer.write(alive, { status: { phase: "Ready" } });
    assert.deepEqual((await gadgets.get("alive")).status, { phase: "Ready" }, "the status landed (through the status subresource)");
  });
});
