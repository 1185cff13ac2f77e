import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { Client, Namespace } from "kubeloop";
import { installCrd, runOperator, waitFor, type OperatorUnderTest } from "kubeloop/testing";
import { releaseSharedCluster, sharedCluster, uniqueName } from "../../test/helpers.js";
import { Greeting, op } from "./operator.js";

let client: Client;
let running: OperatorUnderTest;
before(async () => {
  client = await Client.load({ path: (await sharedCluster()).kubeconfigPath, rateLimit: false });
  await installCrd(client, Greeting.crd);
  running = await runOperator(op, { client });
});
after(async () => {
  await running?.stop();
  await client?.close();
  await releaseSharedCluster();
});

it("10-minimal: the create handler's result is the object's status", { timeout: 60_000 }, async () => {
  const ns = uniqueName("ex10");
  await client.resource(Namespace).create({ metadata: { name: ns } });
  await client.resource(Greeting).namespace(ns).create({ metadata: { name: "world" }, spec: { name: "world" } });
  const status = await waitFor("status.greet", async () => ((await client.resource(Greeting).namespace(ns).get("world")).status as { greet?: { message: string } })?.greet);
  assert.deepEqual(status, { message: "hello, world" });
});
