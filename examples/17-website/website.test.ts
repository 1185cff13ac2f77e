// e2e on a local control plane with simulated nodes (the Pods are scheduled, run and become
// Ready): the children, the Ready replicas in the Website's status, a changed image rolled out
// and waited for (held back by a quota meanwhile), a changed hostname, a failed Pod reported and cleared, and the children
// collected with the Website.
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { Client, ConfigMap, Deployment, Event, Namespace, Pod, Service, kindOf } from "kubeloop";
import { failPod, installCrd, runOperator, waitFor, waitForRollout, type OperatorUnderTest } from "kubeloop/testing";
import { releaseSharedCluster, sharedClusterWithNodes, uniqueName } from "../../test/helpers.js";
import { Website, op } from "./operator.js";

// A namespace's quota (core/v1), to hold a rollout back.
const ResourceQuota = kindOf<{ metadata?: { name?: string }; spec?: { hard?: Record<string, string> }; status?: { hard?: Record<string, string> } }>("v1", "ResourceQuota", { plural: "resourcequotas", namespaced: true });

let client: Client;
let running: OperatorUnderTest;
let made: string | undefined; // the test's namespace
before(async () => {
  client = await Client.load({ path: (await sharedClusterWithNodes()).kubeconfigPath, rateLimit: false });
  await installCrd(client, Website.crd);
  running = await runOperator(op, { client });
});
after(async () => {
  await running?.stop();
  // Its namespace goes also when the test failed half-way: nothing of it is left for the next run's operator.
  if (made) await client.resource(Namespace).delete(made).catch(() => {});
  await client?.close();
  await releaseSharedCluster();
});

it("17-website: keeps its children, reports Ready replicas, rolls out a new image and waits for it, reports a failed Pod", { timeout: 300_000 }, async () => {
  const ns = (made = uniqueName("ex17"));
  await client.resource(Namespace).create({ metadata: { name: ns } });
  const sites = client.resource(Website).namespace(ns);
  const pods = client.resource(Pod).namespace(ns);
  const site = await sites.create({ metadata: { name: "shop" }, spec: { image: "nginx:1.27", replicas: 3, hostname: "shop.example.com" } });

  // The children, owned by the Website.
  const deployment = await waitFor("the Deployment", () => client.resource(Deployment).namespace(ns).get("shop"));
  const service = await waitFor("the Service", () => client.resource(Service).namespace(ns).get("shop"));
  const config = await waitFor("the ConfigMap", () => client.resource(ConfigMap).namespace(ns).get("shop-nginx"));
  for (const child of [deployment, service, config]) assert.equal(child.metadata?.ownerReferences?.[0]?.uid, site.metadata?.uid, `${child.kind} owned by the Website`);
  assert.match(config.data?.["default.conf"] ?? "", /server_name shop\.example\.com;/);

  // The first rollout: 3 Pods Ready on the nodes, and the Website says so.
  await waitFor("the Website reports nginx:1.27 on 3 Ready replicas", async () => {
    const s = (await sites.get("shop")).status;
    return s?.image === "nginx:1.27" && s.readyReplicas === 3;
  }, { timeoutMs: 60_000 }).catch(async (error: unknown) => {
    const d = await client.resource(Deployment).namespace(ns).get("shop");
    throw new Error(`${String(error)}; the Website's status: ${JSON.stringify((await sites.get("shop")).status)}, the Deployment's: ${JSON.stringify(d.status)}`);
  });
  const running127 = (await pods.list()).items.filter((p) => p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"));
  assert.equal(running127.length, 3, "3 Ready Pods");
  assert.ok(running127.every((p) => p.spec?.nodeName?.startsWith("kubeloop-node-")), "on the simulated nodes");

  // A new image, whose rollout is held: a quota of 3 Pods leaves no room for the surge Pod, so
  // the Website says where the rollout stands and keeps reporting the old image.
  const quotas = client.resource(ResourceQuota).namespace(ns);
  await quotas.create({ metadata: { name: "hold" }, spec: { hard: { pods: "3" } } });
  await waitFor("the quota in force", async () => (await quotas.get("hold")).status?.hard?.pods === "3");
  await sites.patch("shop", { spec: { image: "nginx:1.28" } }, { type: "merge" });
  const held = await waitFor("the rollout reported in progress", async () => {
    const s = (await sites.get("shop")).status;
    return /^nginx:1\.28: \d of 3 updated/.test(s?.rollout ?? "") ? s : undefined;
  }, { timeoutMs: 30_000 });
  assert.equal(held?.image, "nginx:1.27", "the new image is not reported before its rollout is complete");
  // Released: the rollout completes, and only then does the Website report the new image.
  await quotas.delete("hold");
  await waitFor("the Website reports nginx:1.28", async () => (await sites.get("shop")).status?.image === "nginx:1.28", { timeoutMs: 60_000 });
  assert.equal((await sites.get("shop")).status?.rollout, "nginx:1.28: complete");
  // When it did, the rollout was complete: waitForRollout has nothing left to wait for.
  await waitForRollout(client, { namespace: ns, name: "shop" }, { timeoutMs: 1_000 });
  const after128 = (await pods.list()).items.filter((p) => !p.metadata?.deletionTimestamp && p.status?.phase === "Running");
  assert.deepEqual(after128.map((p) => p.spec?.containers[0]?.image), ["nginx:1.28", "nginx:1.28", "nginx:1.28"]);
  await waitFor("the RolledOut Event", async () => (await client.resource(Event).namespace(ns).list()).items.some((e) => e.regarding?.name === "shop" && e.reason === "RolledOut" && e.note === "nginx:1.28 runs on 3 replicas"));

  // A new hostname: nginx's server block follows.
  await sites.patch("shop", { spec: { hostname: "www.shop.example.com" } }, { type: "merge" });
  await waitFor("the ConfigMap follows the hostname", async () => (await client.resource(ConfigMap).namespace(ns).get("shop-nginx")).data?.["default.conf"]?.includes("server_name www.shop.example.com;"));

  // A Pod fails (its container OOM-killed): the Website reports it, with a Warning Event, the
  // failed Pod is cleared away, and its replacement makes 3 Ready again.
  const victim = after128[0]?.metadata?.name as string;
  const failed = await failPod(client, { namespace: ns, name: victim }, { exitCode: 137, reason: "OOMKilled" });
  assert.equal(failed.status?.phase, "Failed");
  const failure = await waitFor("the failure in the Website's status", async () => {
    const f = (await sites.get("shop")).status?.lastFailure;
    return f?.pod === victim ? f : undefined;
  });
  assert.deepEqual({ reason: failure.reason, exitCode: failure.exitCode }, { reason: "OOMKilled", exitCode: 137 });
  await waitFor("the PodFailed Warning on the Website", async () =>
    (await client.resource(Event).namespace(ns).list()).items.some((e) => e.regarding?.kind === "Website" && e.regarding.name === "shop" && e.type === "Warning" && e.reason === "PodFailed" && e.note === `Pod ${victim} failed: OOMKilled (exit code 137)`),
  );
  await waitFor("the failed Pod gone", async () => !(await pods.list()).items.some((p) => p.metadata?.name === victim));
  await waitFor("3 Ready again, in the Website's status", async () => (await sites.get("shop")).status?.readyReplicas === 3);
  const now = (await pods.list()).items;
  assert.equal(now.filter((p) => p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True")).length, 3);

  // Deleted: the garbage collector takes the children (it learns a new CRD within 30 s).
  await sites.delete("shop");
  await waitFor("the children collected", async () => (await client.resource(Deployment).namespace(ns).list()).items.length === 0 && (await client.resource(ConfigMap).namespace(ns).list()).items.every((c) => c.metadata?.name !== "shop-nginx"), { timeoutMs: 90_000 });
});
