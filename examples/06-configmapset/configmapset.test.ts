// End-to-end test of the ConfigMapSet example against the local control plane: children kept,
// restored and scaled, status and events written, metrics moving, finalizer cleanup, then GC.
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { pino } from "pino";
import { Client, ConfigMap, Event, Namespace, NotFoundError, type RunningOperator } from "kubeloop";
import { eventually, releaseSharedCluster, sharedCluster, uniqueName } from "../../test/helpers.js";
import { installCrd } from "kubeloop/testing";
import { FINALIZER, REGISTRY, op } from "./operator.js";
import { ConfigMapSet } from "./resource.js";

async function metric(url: string, name: string, labels: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && labels.split(",").every((p) => l.includes(p)));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}

describe("06-configmapset", () => {
  let client: Client;
  let running: RunningOperator;
  let done: Promise<void>;
  const stop = new AbortController();
  const ns = uniqueName("cms");

  before(async () => {
    const cluster = await sharedCluster();
    client = await Client.load({ path: cluster.kubeconfigPath, rateLimit: false });
    await installCrd(client, ConfigMapSet.crd);
    await client.resource(Namespace).create({ metadata: { name: ns } });
    const started = new Promise<RunningOperator>((resolve) => {
      done = op.run({ client, signal: stop.signal, handleSignals: false, probes: { port: 0, host: "127.0.0.1" }, logger: pino({ level: "warn" }), onStarted: resolve });
    });
    running = await Promise.race([started, done!.then(() => Promise.reject(new Error("operator stopped before starting")))]);
  });

  after(async () => {
    stop.abort();
    await done;
    await client?.resource(Namespace).delete(ns).catch(() => {});
    await client?.close();
    await releaseSharedCluster();
  });

  const configMaps = () => client.resource(ConfigMap).namespace(ns);
  const sets = () => client.resource(ConfigMapSet).namespace(ns);
  const children = async (set: string) =>
    (await configMaps().list({ labelSelector: `examples.kubeloop.dev/set=${set}` })).items.filter((c) => !c.metadata?.deletionTimestamp).map((c) => c.metadata?.name).sort();

  it("keeps N owned ConfigMaps, restores a deleted one, scales, reports status, events and metrics", async () => {
    const url = running.probes!.url;
    assert.equal((await fetch(`${url}/readyz`)).status, 200);
    const reconcilesBefore = await metric(url, "controller_runtime_reconcile_total", 'controller="configmapset",result="success"');

    const set = await sets().create({ metadata: { name: "web", namespace: ns }, spec: { replicas: 3, data: { color: "blue" } } });
    await eventually("3 ConfigMaps", async () => JSON.stringify(await children("web")) === JSON.stringify(["web-0", "web-1", "web-2"]));
    const cm1 = await configMaps().get("web-1");
    assert.deepEqual(cm1.data, { color: "blue" });
    const ref = cm1.metadata?.ownerReferences?.[0];
    assert.equal(ref?.uid, set.metadata?.uid);
    assert.equal(ref?.controller, true);
    assert.ok(cm1.metadata?.managedFields?.some((m) => m.manager === "configmapsets"), "children are applied with the operator's field manager");

    const withStatus = await eventually("status and finalizer", async () => {
      const s = await sets().get("web");
      return s.status?.replicas === 3 && s.metadata?.finalizers?.includes(FINALIZER) ? s : undefined;
    });
    const ready = withStatus.status?.conditions?.find((c) => c.type === "Ready");
    assert.equal(ready?.status, "True");
    assert.equal(ready?.observedGeneration, withStatus.metadata?.generation);
    assert.equal((await configMaps().get(REGISTRY)).data?.web, set.metadata?.uid);

    // Deleting a child brings it back (a new object).
    await configMaps().delete("web-1");
    await eventually("web-1 restored", async () => {
      const again = await configMaps().get("web-1").catch(() => undefined);
      return again && again.metadata?.uid !== cm1.metadata?.uid;
    });

    // Scaling up and down.
    await sets().patch("web", { spec: { replicas: 5 } }, { type: "merge" });
    await eventually("5 ConfigMaps", async () => (await children("web")).length === 5);
    await sets().patch("web", { spec: { replicas: 2, data: { color: "green" } } }, { type: "merge" });
    await eventually("2 green ConfigMaps", async () => {
      const names = await children("web");
      if (JSON.stringify(names) !== JSON.stringify(["web-0", "web-1"])) return false;
      return (await configMaps().get("web-0")).data?.color === "green";
    });
    await eventually("status of generation 3", async () => {
      const s = await sets().get("web");
      return s.status?.replicas === 2 && s.status.observedGeneration === s.metadata?.generation && s.metadata?.generation === 3;
    });

    // Events about the set, and the metrics moved.
    await eventually("a Scaled event", async () =>
      (await client.resource(Event).namespace(ns).list()).items.some((e) => e.regarding?.name === "web" && e.reason === "Scaled" && e.reportingController === "kubeloop.dev/configmapsets"),
    );
    assert.ok((await metric(url, "controller_runtime_reconcile_total", 'controller="configmapset",result="success"')) > reconcilesBefore);
    assert.ok((await metric(url, "workqueue_adds_total", 'name="configmapset"')) > 0);
    assert.ok((await fetch(`${url}/metrics`).then((r) => r.text())).includes("controller_runtime_reconcile_time_seconds_bucket"));
  });

  it("cleans up through the finalizer, then the garbage collector removes the children", async () => {
    await sets().create({ metadata: { name: "gone", namespace: ns }, spec: { replicas: 2 } });
    await eventually("2 ConfigMaps", async () => (await children("gone")).length === 2);
    await eventually("registered", async () => (await configMaps().get(REGISTRY)).data?.gone !== undefined);

    await sets().delete("gone");
    await eventually("set deleted after its finalizer ran", async () => {
      try {
        await sets().get("gone");
        return false;
      } catch (error) {
        return error instanceof NotFoundError;
      }
    });
    assert.equal((await configMaps().get(REGISTRY)).data?.gone, undefined, "the finalizer removed the registry entry before the set went away");
    // The garbage collector's discovery of new CRDs lags up to 30 s.
    await eventually("children garbage-collected", async () => (await children("gone")).length === 0, { timeoutMs: 90_000, intervalMs: 500 });
  });
});
