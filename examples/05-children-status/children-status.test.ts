import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { Client, ConfigMap, Deployment, Event, Namespace, Pod, Service } from "kubeloop";
import { installCrd, runOperator, waitFor, type OperatorUnderTest } from "kubeloop/testing";
import { releaseSharedCluster, sharedClusterWithNodes, uniqueName } from "../../test/helpers.js";
import { App, op } from "./operator.js";

let client: Client;
let running: OperatorUnderTest;
before(async () => {
  // A cluster with simulated nodes: the Deployment's Pods are scheduled and become Ready.
  client = await Client.load({ path: (await sharedClusterWithNodes()).kubeconfigPath, rateLimit: false });
  await installCrd(client, App.crd);
  running = await runOperator(op, { client });
});
after(async () => {
  await running?.stop();
  await client?.close();
  await releaseSharedCluster();
});

it("05-children-status: owns a Deployment, Service and ConfigMap and reports their state", { timeout: 60_000 }, async () => {
  const ns = uniqueName("ex05");
  await client.resource(Namespace).create({ metadata: { name: ns } });
  const apps = client.resource(App).namespace(ns);
  const app = await apps.create({ metadata: { name: "shop" }, spec: { image: "nginx", replicas: 2, port: 8080, config: { MODE: "prod", LEVEL: "info" } } });
  const service = await waitFor("the Service", () => client.resource(Service).namespace(ns).get("shop"));
  const deployment = await client.resource(Deployment).namespace(ns).get("shop");
  const config = await client.resource(ConfigMap).namespace(ns).get("shop-config");
  for (const child of [service, deployment, config]) assert.equal(child.metadata?.ownerReferences?.[0]?.uid, app.metadata?.uid);

  let status = await waitFor("status with the cluster IP", async () => {
    const s = (await apps.get("shop")).status;
    return s?.clusterIP ? s : undefined;
  });
  assert.equal(status.clusterIP, service.spec?.clusterIP);
  assert.deepEqual(status.configKeys, ["LEVEL", "MODE"]);

  // The Deployment's 2 Pods become Ready on the simulated nodes; the App says so.
  status = await waitFor("Ready", async () => {
    const s = (await apps.get("shop")).status;
    return s?.conditions?.find((c) => c.type === "Ready")?.status === "True" ? s : undefined;
  });
  assert.equal(status.readyReplicas, 2);
  await waitFor("the Ready Event", async () => (await client.resource(Event).namespace(ns).list()).items.some((e) => e.regarding?.name === "shop" && e.reason === "Ready" && e.note === "2/2 replicas ready"));
  const pods = (await client.resource(Pod).namespace(ns).list({ labelSelector: "app.kubernetes.io/name=shop" })).items;
  assert.equal(pods.filter((p) => p.status?.phase === "Running").length, 2, "2 Pods Running");

  // Scaled up: the third Pod's readiness reaches the App's status.
  await apps.patch("shop", { spec: { replicas: 3 } }, { type: "merge" });
  await waitFor("3/3 ready in the App's status", async () => (await apps.get("shop")).status?.readyReplicas === 3);

  // A child changed behind the operator's back is put back.
  await client.resource(ConfigMap).namespace(ns).patch("shop-config", { data: { MODE: "debug" } }, { type: "merge" });
  await waitFor("config restored", async () => (await client.resource(ConfigMap).namespace(ns).get("shop-config")).data?.MODE === "prod");
});
