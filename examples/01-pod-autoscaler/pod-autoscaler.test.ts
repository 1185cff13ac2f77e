// e2e: scale up, the max bound, a scale-down held by the stabilization window, the min bound,
// a lowered maximum applied at once,
// status and Events, against the local control plane with simulated nodes: the Deployment's
// Ready Pods follow the scale.
import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { Client, Deployment, Event, Namespace, Pod } from "kubeloop";
import { installCrd, runOperator, waitFor, type OperatorUnderTest } from "kubeloop/testing";
import { releaseSharedCluster, sharedClusterWithNodes, uniqueName } from "../../test/helpers.js";
import { PodAutoscaler, WorkQueue, crds, op } from "./operator.js";

let client: Client;
let running: OperatorUnderTest;
before(async () => {
  client = await Client.load({ path: (await sharedClusterWithNodes()).kubeconfigPath, rateLimit: false });
  for (const crd of crds) await installCrd(client, crd);
  running = await runOperator(op, { client });
});
after(async () => {
  await running?.stop();
  await client?.close();
  await releaseSharedCluster();
});

it("01-pod-autoscaler: scales with the queue within bounds, waits out the window to scale down", { timeout: 120_000 }, async () => {
  const ns = uniqueName("ex01");
  await client.resource(Namespace).create({ metadata: { name: ns } });
  const deployments = client.resource(Deployment).namespace(ns);
  const queues = client.resource(WorkQueue).namespace(ns);
  const autoscalers = client.resource(PodAutoscaler).namespace(ns);
  const labels = { app: "worker" };
  await deployments.create({
    metadata: { name: "worker" },
    spec: { replicas: 1, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: "w", image: "busybox" }] } } },
  });
  await queues.create({ metadata: { name: "jobs" }, spec: { items: [] } });
  const WINDOW_S = 4;
  await autoscalers.create({
    metadata: { name: "worker" },
    spec: { target: "worker", minReplicas: 1, maxReplicas: 5, metric: { workQueue: "jobs", targetItemsPerReplica: 2 }, stabilizationWindowSeconds: WINDOW_S },
  });
  const replicas = async () => (await deployments.get("worker")).spec?.replicas;
  // The Pods follow: as many Ready as replicas, and no other left (the simulated nodes run them).
  const podsFollow = (n: number) =>
    waitFor(`${n} Ready Pods and no other`, async () => {
      const items = (await client.resource(Pod).namespace(ns).list({ labelSelector: "app=worker" })).items;
      return items.length === n && items.every((p) => !p.metadata?.deletionTimestamp && p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"));
    }, { timeoutMs: 30_000 });
  const setItems = (n: number) => queues.patch("jobs", { spec: { items: Array.from({ length: n }, (_, i) => `job-${i}`) } }, { type: "merge" });

  // Empty queue: the minimum (1).
  await waitFor("status at min", async () => (await autoscalers.get("worker")).status?.currentReplicas === 1);
  let status = (await autoscalers.get("worker")).status!;
  assert.equal(status.conditions?.find((c) => c.type === "ScalingLimited")?.reason, "TooFewReplicas");

  // 6 items, 2 per replica → 3, at once.
  await setItems(6);
  await waitFor("scaled up to 3", async () => (await replicas()) === 3);
  await podsFollow(3);
  // 40 items → 20 wanted, capped at 5.
  await setItems(40);
  await waitFor("capped at 5", async () => (await replicas()) === 5);
  status = await waitFor("status at max", async () => {
    const s = (await autoscalers.get("worker")).status;
    return s?.currentItems === 40 ? s : undefined;
  });
  assert.equal(status.desiredReplicas, 5);
  assert.equal(status.conditions?.find((c) => c.type === "ScalingLimited")?.reason, "TooManyReplicas");
  assert.equal(status.conditions?.find((c) => c.type === "AbleToScale")?.status, "True");
  assert.ok(status.lastScaleTime);

  // Load drops to 2 items → 1 replica wanted, but not before the window has passed.
  const dropped = Date.now();
  await setItems(2);
  await waitFor("recommendation seen", async () => (await autoscalers.get("worker")).status?.desiredReplicas === 1);
  assert.equal(await replicas(), 5, "still 5 inside the stabilization window");
  await waitFor("scaled down to 1", async () => (await replicas()) === 1, { timeoutMs: 30_000, intervalMs: 100 });
  await podsFollow(1);
  const held = Date.now() - dropped;
  assert.ok(held >= WINDOW_S * 1000 - 200, `scaled down after ${held} ms (window ${WINDOW_S} s)`);

  // A brief spike and drop inside the window: scales up at once, and back down only after the window.
  await setItems(8);
  await waitFor("scaled up to 4", async () => (await replicas()) === 4);
  await setItems(0);
  await waitFor("the drop seen", async () => (await autoscalers.get("worker")).status?.currentItems === 0);
  assert.equal(await replicas(), 4, "a drop inside the window does not scale down yet");
  await waitFor("back to the minimum", async () => (await replicas()) === 1, { timeoutMs: 30_000 });

  // Lowering the maximum applies at once, as with a HorizontalPodAutoscaler: no window for bounds.
  await setItems(10);
  await waitFor("scaled up to 5", async () => (await replicas()) === 5);
  const lowered = await autoscalers.patch("worker", { spec: { maxReplicas: 2 } }, { type: "merge" });
  await waitFor("the new bound observed", async () => (await autoscalers.get("worker")).status?.observedGeneration === lowered.metadata?.generation);
  assert.equal(await replicas(), 2, "above the new maximum inside the stabilization window");

  const events = (await client.resource(Event).namespace(ns).list()).items.filter((e) => e.regarding?.name === "worker" && e.regarding.kind === "PodAutoscaler");
  assert.ok(events.some((e) => e.reason === "ScaledUp" && /from 1 to 3/.test(e.note ?? "")), events.map((e) => e.note).join("; "));
  assert.ok(events.some((e) => e.reason === "ScaledDown" && /from 5 to 1/.test(e.note ?? "")));
});
