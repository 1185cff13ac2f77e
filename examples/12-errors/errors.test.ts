import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { Client, ConfigMap, Event, Namespace } from "kubeloop";
import { installCrd, runOperator, waitFor, type OperatorUnderTest } from "kubeloop/testing";
import { releaseSharedCluster, sharedCluster, uniqueName } from "../../test/helpers.js";
import { Task, op } from "./operator.js";

let client: Client;
let running: OperatorUnderTest;
before(async () => {
  client = await Client.load({ path: (await sharedCluster()).kubeconfigPath, rateLimit: false });
  await installCrd(client, Task.crd);
  running = await runOperator(op, { client });
});
after(async () => {
  await running?.stop();
  await client?.close();
  await releaseSharedCluster();
});

it("12-errors: a temporary error waits for its dependency; a permanent one is recorded once", { timeout: 60_000 }, async () => {
  const ns = uniqueName("ex12");
  await client.resource(Namespace).create({ metadata: { name: ns } });
  const tasks = client.resource(Task).namespace(ns);
  await tasks.create({ metadata: { name: "waits" }, spec: { config: "settings", command: "backup" } });
  await tasks.create({ metadata: { name: "broken" }, spec: { config: "settings", command: " " } });
  await waitFor("a retry recorded in progress", async () => /"retries":[1-9]/.test((await tasks.get("waits")).metadata?.annotations?.["tasks.kubeloop.dev/progress"] ?? ""));
  assert.equal(((await tasks.get("waits")).status as { run?: unknown })?.run, undefined);
  await client.resource(ConfigMap).namespace(ns).create({ metadata: { name: "settings" }, data: { target: "s3" } });
  const result = await waitFor("the task ran", async () => ((await tasks.get("waits")).status as { run?: { ran: string; attempts: number } })?.run);
  assert.equal(result.ran, "backup");
  assert.ok(result.attempts >= 2);
  await waitFor("a warning for the broken task", async () =>
    (await client.resource(Event).namespace(ns).list()).items.some((e) => e.regarding?.name === "broken" && e.type === "Warning" && /command is empty/.test(e.note ?? "")),
  );
  const broken = await waitFor("broken is done (failed)", async () => {
    const t = await tasks.get("broken");
    return t.metadata?.annotations?.["tasks.kubeloop.dev/last-handled"] ? t : undefined;
  });
  assert.equal((broken.status as { run?: unknown })?.run, undefined);
});
