// A local control plane where workloads run (issue 34): with `nodes`, kube-scheduler, the workload
// controllers and KWOK's simulated nodes turn Deployments, Jobs and Services into Pods scheduled
// on Nodes, Running and Ready, and their EndpointSlices; the ServiceAccount token controller fills
// a token Secret. Bad node counts are refused, naming the option.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Client, Deployment, Job, Namespace, Node, Pod, Secret, Service, ServiceAccount, kindOf } from "../src/entries/index.js";
import { ControlPlaneError, cordon, failPod, startControlPlane, waitFor, waitForRollout, type ControlPlane } from "../src/entries/testing.js";
import { uniqueName } from "./helpers.js";
import { spawnKubeloop } from "./support.js";

const EndpointSlice = kindOf<{ metadata?: { name?: string; labels?: Record<string, string> }; endpoints?: { addresses: string[]; targetRef?: { name?: string } }[] }>("discovery.k8s.io/v1", "EndpointSlice", { plural: "endpointslices", namespaced: true });

let cp: ControlPlane;
let client: Client;
before(async () => {
  cp = await startControlPlane({ kubeconfig: false, nodes: 3 });
  client = await Client.load({ path: cp.kubeconfigPath, rateLimit: false });
});
after(async () => {
  await client?.close();
  await cp?.stop();
});

async function namespace(): Promise<string> {
  const ns = uniqueName("nodes");
  await client.resource(Namespace).create({ metadata: { name: ns } });
  return ns;
}

const ready = (pod: { status?: { phase?: string; conditions?: { type: string; status: string }[] } }) => pod.status?.phase === "Running" && pod.status.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;

describe("a control plane with simulated nodes", () => {
  it("has its nodes Ready, with the allocatable the scheduler fits Pods into", async () => {
    const nodes = (await client.resource(Node).list()).items;
    assert.deepEqual(nodes.map((n) => n.metadata?.name).sort(), ["kubeloop-node-0", "kubeloop-node-1", "kubeloop-node-2"]);
    for (const node of nodes) {
      assert.ok(node.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"), `${node.metadata?.name} Ready`);
      assert.equal(node.status?.allocatable?.cpu, "4");
    }
  });

  it("runs a Deployment of 10 as 10 Ready Pods spread over the nodes; scaled to 2, the other 8 go", { timeout: 120_000 }, async () => {
    const ns = await namespace();
    const labels = { app: "web" };
    const deployments = client.resource(Deployment).namespace(ns);
    await deployments.create({ metadata: { name: "web" }, spec: { replicas: 10, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: "web", image: "nginx", resources: { requests: { cpu: "100m" } } }] } } } });
    const pods = client.resource(Pod).namespace(ns);
    const running = await waitFor("10 Ready Pods", async () => {
      const items = (await pods.list({ labelSelector: "app=web" })).items.filter(ready);
      return items.length === 10 ? items : undefined;
    }, { timeoutMs: 60_000 });
    const spread = new Set(running.map((p) => p.spec?.nodeName));
    assert.equal(spread.size, 3, `spread over every node: ${[...spread].join(", ")}`);
    assert.ok(running.every((p) => p.status?.podIP), "each has a pod IP");
    await waitFor("the Deployment reports 10 ready replicas", async () => (await deployments.get("web")).status?.readyReplicas === 10, { timeoutMs: 30_000 });
    await deployments.patch("web", { spec: { replicas: 2 } }, { type: "merge" });
    await waitFor("2 Pods left", async () => (await pods.list({ labelSelector: "app=web" })).items.length === 2, { timeoutMs: 60_000 });
    await waitFor("the Deployment reports 2 ready replicas", async () => (await deployments.get("web")).status?.readyReplicas === 2, { timeoutMs: 30_000 });
  });

  it("completes a Job; a Service's EndpointSlice lists its Ready Pods", { timeout: 120_000 }, async () => {
    const ns = await namespace();
    const jobs = client.resource(Job).namespace(ns);
    await jobs.create({ metadata: { name: "once" }, spec: { template: { spec: { restartPolicy: "Never", containers: [{ name: "once", image: "busybox" }] } } } });
    await waitFor("the Job complete", async () => (await jobs.get("once")).status?.conditions?.some((c) => c.type === "Complete" && c.status === "True"), { timeoutMs: 60_000 });
    const labels = { app: "api" };
    await client.resource(Deployment).namespace(ns).create({ metadata: { name: "api" }, spec: { replicas: 3, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: "api", image: "nginx" }] } } } });
    await client.resource(Service).namespace(ns).create({ metadata: { name: "api" }, spec: { selector: labels, ports: [{ port: 80 }] } });
    const slices = client.resource(EndpointSlice).namespace(ns);
    const names = await waitFor("an EndpointSlice with 3 endpoints", async () => {
      const endpoints = (await slices.list({ labelSelector: "kubernetes.io/service-name=api" })).items.flatMap((s) => s.endpoints ?? []);
      return endpoints.length === 3 ? endpoints.map((e) => e.targetRef?.name ?? "").sort() : undefined;
    }, { timeoutMs: 60_000 });
    const pods = (await client.resource(Pod).namespace(ns).list({ labelSelector: "app=api" })).items.map((p) => p.metadata?.name ?? "").sort();
    assert.deepEqual(names, pods);
  });

  it("fills a ServiceAccount token Secret on request", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    await client.resource(ServiceAccount).namespace(ns).create({ metadata: { name: "bot" } });
    const secrets = client.resource(Secret).namespace(ns);
    await secrets.create({ metadata: { name: "bot-token", annotations: { "kubernetes.io/service-account.name": "bot" } }, type: "kubernetes.io/service-account-token" });
    const data = await waitFor("the token filled in", async () => {
      const secret = await secrets.get("bot-token");
      return secret.data?.token ? secret.data : undefined;
    }, { timeoutMs: 30_000 });
    assert.deepEqual(Object.keys(data).sort(), ["ca.crt", "namespace", "token"]);
    assert.equal(Buffer.from(data.namespace as string, "base64").toString(), ns);
  });

  it("failPod fails a Running Pod as a crashed container (the ReplicaSet replaces it); waitForRollout waits for a changed image on every replica; a cordoned node gets no new Pod", { timeout: 120_000 }, async () => {
    const ns = await namespace();
    const labels = { app: "site" };
    const deployments = client.resource(Deployment).namespace(ns);
    await deployments.create({ metadata: { name: "site" }, spec: { replicas: 3, selector: { matchLabels: labels }, template: { metadata: { labels }, spec: { containers: [{ name: "site", image: "nginx:1" }] } } } });
    await waitForRollout(client, { namespace: ns, name: "site" });
    const pods = client.resource(Pod).namespace(ns);
    const victim = (await pods.list({ labelSelector: "app=site" })).items[0]?.metadata?.name as string;
    const failed = await failPod(client, { namespace: ns, name: victim }, { exitCode: 137, reason: "OOMKilled" });
    assert.equal(failed.status?.phase, "Failed");
    assert.equal(failed.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 137);
    assert.equal(failed.status?.containerStatuses?.[0]?.state?.terminated?.reason, "OOMKilled");
    assert.ok(failed.status?.conditions?.some((c) => c.type === "Ready" && c.status === "False"), "not Ready");
    await waitFor("a replacement: 3 Ready Pods besides the failed one", async () => (await pods.list({ labelSelector: "app=site" })).items.filter((p) => p.metadata?.name !== victim && ready(p)).length === 3, { timeoutMs: 30_000 });
    // A rollout of a new image, waited for.
    await deployments.patch("site", { spec: { template: { spec: { containers: [{ name: "site", image: "nginx:2" }] } } } }, { type: "strategic" });
    await waitForRollout(client, { namespace: ns, name: "site" });
    const after = (await pods.list({ labelSelector: "app=site" })).items.filter((p) => p.status?.phase !== "Failed" && !p.metadata?.deletionTimestamp);
    assert.deepEqual(after.map((p) => p.spec?.containers[0]?.image), ["nginx:2", "nginx:2", "nginx:2"]);
    // Cordoned: scaled up, no new Pod lands on kubeloop-node-0.
    await cordon(client, "kubeloop-node-0");
    try {
      const before = new Set(after.map((p) => p.metadata?.name));
      await deployments.patch("site", { spec: { replicas: 9 } }, { type: "merge" });
      await waitForRollout(client, { namespace: ns, name: "site" });
      const fresh = (await pods.list({ labelSelector: "app=site" })).items.filter((p) => !before.has(p.metadata?.name) && p.metadata?.name !== victim);
      assert.equal(fresh.length, 6);
      assert.ok(fresh.every((p) => p.spec?.nodeName !== "kubeloop-node-0"), `none on the cordoned node: ${fresh.map((p) => p.spec?.nodeName).join(", ")}`);
    } finally {
      await cordon(client, "kubeloop-node-0", false);
    }
  });

  it("failPod resolves with the Failed Pod also when something deletes it the moment it fails (an operator cleaning up)", { timeout: 60_000 }, async () => {
    const ns = await namespace();
    const pods = client.resource(Pod).namespace(ns);
    await pods.create({ metadata: { name: "short-lived" }, spec: { containers: [{ name: "c", image: "x" }] } });
    await waitFor("Running and Ready", async () => ready(await pods.get("short-lived")));
    // The cleaner: deletes the Pod (as an operator would, with its grace period) as soon as a
    // watch shows it Failed; KWOK then removes it at once.
    const stop = new AbortController();
    let watching = false;
    const cleaner = (async () => {
      for await (const e of pods.watch({ fieldSelector: "metadata.name=short-lived", signal: stop.signal })) {
        watching = true; // the Pod as it is now, ADDED: the watch is open
        if (e.object.status?.phase === "Failed") return void (await pods.delete("short-lived"));
      }
    })();
    try {
      await waitFor("the cleaner watching", () => watching);
      const failed = await failPod(client, { namespace: ns, name: "short-lived" });
      assert.equal(failed.status?.phase, "Failed");
      await cleaner;
      await waitFor("the Pod gone", async () => !(await pods.list()).items.length);
    } finally {
      stop.abort();
    }
  });

  it("failPod on a Pod nothing plays (not Running on a simulated node) rejects, naming it", { timeout: 30_000 }, async () => {
    const ns = await namespace();
    await client.resource(Pod).namespace(ns).create({ metadata: { name: "nowhere" }, spec: { nodeName: "no-such-node", containers: [{ name: "c", image: "x" }] } });
    await assert.rejects(failPod(client, { namespace: ns, name: "nowhere" }, { timeoutMs: 2_000 }), /Pod .*\/nowhere Failed/);
  });

  it("refuses a node count that is not an integer from 0 to 1000, naming it", async () => {
    for (const nodes of [-1, 1.5, 1001]) {
      await assert.rejects(startControlPlane({ kubeconfig: false, nodes }), (error: unknown) => {
        assert.ok(error instanceof ControlPlaneError);
        assert.equal(error.reason, "BadOptions");
        assert.match(error.message, new RegExp(`nodes must be an integer from 0 to 1000, not ${nodes}`));
        return true;
      });
    }
  });

  it("on a kept data dir, a start with fewer nodes (or none) leaves no Node that nothing keeps Ready", { timeout: 180_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), "kubeloop-nodes-"));
    try {
      for (const [nodes, expected] of [[2, ["kubeloop-node-0", "kubeloop-node-1"]], [1, ["kubeloop-node-0"]], [0, []]] as const) {
        const plane = await startControlPlane({ kubeconfig: false, dataDir, nodes });
        try {
          const c = await Client.load({ path: plane.kubeconfigPath, rateLimit: false });
          try {
            assert.deepEqual((await c.resource(Node).list()).items.map((n) => n.metadata?.name).sort(), [...expected], `started with ${nodes} node(s)`);
          } finally {
            await c.close();
          }
        } finally {
          await plane.stop();
        }
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it("kubeloop control-plane start --nodes refuses the same, before starting anything", { timeout: 60_000 }, async () => {
    for (const value of ["-1", "1001", "three"]) {
      const run = spawnKubeloop(["control-plane", "start", `--nodes=${value}`]);
      assert.equal(await run.exited, 2, run.out());
      assert.match(run.out(), new RegExp(`--nodes must be an integer from 0 to 1000, not "${value}"`));
    }
  });

  // Last: it ends this file's control plane.
  it("a node simulator that dies ends the control plane with its error, never a cluster whose Pods stay Pending", { timeout: 60_000 }, async () => {
    process.kill(cp.pids.kwok as number, "SIGKILL");
    const error = await cp.ended;
    assert.ok(error instanceof ControlPlaneError, `ended with ${String(error)}`);
    assert.equal(error.reason, "ComponentExited");
    assert.equal(error.component, "kwok");
    for (const [name, pid] of Object.entries(cp.pids)) {
      if (name === "reaper") continue;
      await waitFor(`${name} (${pid}) gone`, () => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      }, { timeoutMs: 30_000 });
    }
  });
});
