import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { Client, Deployment, Namespace, Service } from "kubeloop";
import { installCrd, runOperator, waitFor, type OperatorUnderTest } from "kubeloop/testing";
import { releaseSharedCluster, sharedCluster, uniqueName } from "../../test/helpers.js";
import { Website, op } from "./operator.js";

let client: Client;
let running: OperatorUnderTest;
before(async () => {
  client = await Client.load({ path: (await sharedCluster()).kubeconfigPath, rateLimit: false });
  await installCrd(client, Website.crd);
  running = await runOperator(op, { client });
});
after(async () => {
  await running?.stop();
  await client?.close();
  await releaseSharedCluster();
});

it("11-children: adopted children, scaled by a field handler, collected with their owner", { timeout: 120_000 }, async () => {
  const ns = uniqueName("ex11");
  await client.resource(Namespace).create({ metadata: { name: ns } });
  const site = await client.resource(Website).namespace(ns).create({ metadata: { name: "blog", labels: { team: "web" } }, spec: { image: "nginx", replicas: 1 } });
  const deployment = await waitFor("the Deployment", () => client.resource(Deployment).namespace(ns).get("blog"));
  const service = await waitFor("the Service", () => client.resource(Service).namespace(ns).get("blog"));
  for (const child of [deployment, service]) {
    assert.equal(child.metadata?.ownerReferences?.[0]?.uid, site.metadata?.uid);
    assert.equal(child.metadata?.labels?.team, "web", "the owner's labels are copied");
  }
  await client.resource(Website).namespace(ns).patch("blog", { spec: { replicas: 3 } }, { type: "merge" });
  await waitFor("3 replicas", async () => (await client.resource(Deployment).namespace(ns).get("blog")).spec?.replicas === 3);
  await client.resource(Website).namespace(ns).delete("blog");
  // The garbage collector notices a new CRD within 30 s of its creation.
  await waitFor("children collected", async () => (await client.resource(Deployment).namespace(ns).list()).items.length === 0, { timeoutMs: 90_000 });
});
