import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { Client, Namespace, Pod } from "kubeloop";
import { releaseSharedCluster, sharedCluster, uniqueName } from "../../test/helpers.js";
import { listPods } from "./operator.js";

let client: Client;
before(async () => {
  client = await Client.load({ path: (await sharedCluster()).kubeconfigPath, rateLimit: false });
});
after(async () => {
  await client?.close();
  await releaseSharedCluster();
});

it("02-list-pods: lists every pod of a namespace across pages", async () => {
  const ns = uniqueName("ex02");
  await client.resource(Namespace).create({ metadata: { name: ns } });
  const pods = client.resource(Pod).namespace(ns);
  for (let i = 0; i < 120; i++) await pods.create({ metadata: { name: `p-${i}` }, spec: { containers: [{ name: "c", image: "busybox" }] } });
  const lines = await listPods(client, ns);
  assert.equal(lines.length, 120, "more than one page of 100");
  assert.deepEqual(lines.find((l) => l.name === "p-7"), { name: "p-7", phase: "Pending", node: "<unscheduled>" });
});
