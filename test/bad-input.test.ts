// Bad input against the real API server: the longest names Kubernetes allows, unicode in data and
// annotations, objects near the 1.5 MiB request limit, and a handler whose patch the schema
// rejects. Each must give a clear error or just work: no crash, no hot loop, nothing lost.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { Client, ConfigMap, CustomResourceDefinition, Event, Operator, Type, defineResource } from "../src/entries/index.js";
import { installCrd, runOperator, type OperatorUnderTest } from "../src/entries/testing.js";
import { createNamespace, eventually, releaseSharedCluster, sharedCluster, uniqueName } from "./helpers.js";

const quiet = pino({ level: process.env.LOG ?? "silent" });
const Blob = defineResource({ group: `${uniqueName("blob")}.kubeloop.dev`, version: "v1", kind: "Blob", spec: Type.Object({ data: Type.String() }), status: Type.Unknown() });
const Gizmo = defineResource({ group: `${uniqueName("bad")}.kubeloop.dev`, version: "v1", kind: "Gizmo", spec: Type.Object({ size: Type.Integer() }), status: Type.Unknown() });
let client: Client;
const running: OperatorUnderTest[] = [];

before(async () => {
  client = await Client.load({ path: (await sharedCluster()).kubeconfigPath, rateLimit: false });
  await installCrd(client, Gizmo.crd);
  await installCrd(client, Blob.crd);
});
after(async () => {
  for (const op of running) await op.stop().catch(() => {});
  await client?.resource(CustomResourceDefinition).delete(Gizmo.crd.metadata!.name!).catch(() => {});
  await client?.resource(CustomResourceDefinition).delete(Blob.crd.metadata!.name!).catch(() => {});
  await client?.close();
  await releaseSharedCluster();
});

const namespace = () => createNamespace(client, "bad");
async function start(op: Operator): Promise<OperatorUnderTest> {
  const r = await runOperator(op, { client, logger: quiet });
  running.push(r);
  return r;
}
const eventsAbout = async (ns: string, name: string) => (await client.resource(Event).namespace(ns).list()).items.filter((e) => e.regarding?.name === name);
const lastHandled = (o: { metadata?: { annotations?: Record<string, string> } }, operator: string) => o.metadata?.annotations?.[`${operator}.kubeloop.dev/last-handled`];

describe("bad input", () => {
  it("the longest names, digits-only and dotted names, unicode data: handled, with their Events", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    const changes: unknown[] = [];
    const op = new Operator({ name: "names", namespaces: [ns], leaderElection: false });
    op.on.create(ConfigMap, async ({ logger }) => logger.info("seen"));
    op.on.update(ConfigMap, async ({ diff }) => void changes.push(diff));
    await start(op);
    const cms = client.resource(ConfigMap).namespace(ns);
    const names = ["x".repeat(253), `${"a".repeat(63)}.${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(61)}`, "0", "a.b-c.d"];
    const text = "héllo wörld — 日本語 🎉 \u202eRTL \u0000nul";
    for (const name of names) await cms.create({ metadata: { name, annotations: { note: text } }, data: { text } });
    await eventually("every object handled", async () => (await cms.list()).items.filter((c) => lastHandled(c, "names")).length === names.length);
    for (const name of names) {
      await eventually(`the handler's Event about ${name.slice(0, 20)}… (${name.length} chars)`, async () => (await eventsAbout(ns, name)).some((e) => e.note === "seen"));
    }
    await cms.patch(names[0]!, { data: { text: `${text}!` } }, { type: "merge" });
    await eventually("the unicode change handled", async () => changes.length === 1);
    assert.deepEqual(changes[0], [{ op: "change", path: ["data", "text"], old: text, new: `${text}!` }]);
  });

  it("an object of 1.4 MiB (near the 1.5 MiB request limit): handled once per change, the diff base kept compact with a warning Event", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    const runs = { create: 0, update: 0 };
    const op = new Operator({ name: "big", namespaces: [ns], leaderElection: false });
    op.on.create(Blob, async () => void runs.create++);
    op.on.update(Blob, async () => void runs.update++);
    await start(op);
    const blobs = client.resource(Blob).namespace(ns);
    const data = "z".repeat(1_400 * 1024);
    await blobs.create({ metadata: { name: "big" }, spec: { data } });
    await eventually("handled", async () => lastHandled(await blobs.get("big"), "big") !== undefined);
    await blobs.patch("big", { spec: { data: `${data}y` } }, { type: "merge" });
    await eventually("the change handled", async () => runs.update === 1);
    const base = lastHandled(await blobs.get("big"), "big") ?? "";
    assert.ok(base.length < 2_000, `the diff base stays small (${base.length} chars)`);
    assert.ok((await eventsAbout(ns, "big")).some((e) => e.reason === "DiffBaseTooLarge"), "a DiffBaseTooLarge warning");
    await blobs.patch("big", { metadata: { labels: { touched: "yes" } } }, { type: "merge" });
    await eventually("the label change handled", async () => runs.update === 2);
    assert.equal(runs.create, 1);
  });

  it("a handler whose patch the schema rejects: a Warning Event naming the field, retried by its policy, then failed; no hot loop", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    let runs = 0;
    const op = new Operator({ name: "schema", namespaces: [ns], leaderElection: false });
    op.on.create(
      Gizmo,
      async ({ patch }) => {
        runs++;
        (patch as { spec?: Record<string, unknown> }).spec = { size: "big" };
      },
      { attempts: 3, backoffMs: 100 },
    );
    await start(op);
    const gizmos = client.resource(Gizmo).namespace(ns);
    await gizmos.create({ metadata: { name: "g" }, spec: { size: 1 } });
    // A handler that failed for good leaves the change handled (kopf too): the diff base is written.
    await eventually("the change settled", async () => lastHandled(await gizmos.get("g"), "schema") !== undefined, { timeoutMs: 30_000 });
    await eventually("the HandlerFailed Event", async () => (await eventsAbout(ns, "g")).some((e) => e.reason === "HandlerFailed"));
    const events = await eventsAbout(ns, "g");
    assert.ok(events.some((e) => e.type === "Warning" && e.reason === "HandlerWriteRefused" && /spec\.size/.test(e.note ?? "")), `a Warning Event names spec.size: ${JSON.stringify(events.map((e) => [e.reason, e.note]))}`);
    assert.equal(runs, 3, "3 attempts, then a recorded failure");
    assert.equal((await gizmos.get("g")).spec?.size, 1, "the object is untouched");
  });
});
