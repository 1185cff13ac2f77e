// An object that vanishes while it carries the operator's finalizer, without a deletion the
// operator could see. The API server lets this happen: a DELETE racing the PATCH that adds a
// finalizer can remove the object although the PATCH succeeded (kubernetes/kubernetes#77988,
// #110521; the short chaos test met it about once in ten runs, on v1.37.1). The outcome is
// made here deterministically, by removing the object in etcd itself (its own control plane:
// the test needs etcd's address). The delete handlers must still run, once, with the object's
// last state: they are where external resources get cleaned up.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { Client, ConfigMap, Namespace, Operator } from "../src/entries/index.js";
import { runOperator, startControlPlane, type ControlPlane } from "../src/entries/testing.js";
import { eventually } from "./helpers.js";

let cp: ControlPlane;
let client: Client;
before(async () => {
  cp = await startControlPlane({ kubeconfig: false, controllers: [] });
  client = await Client.load({ path: cp.kubeconfigPath, rateLimit: false });
});
after(async () => {
  await client?.close();
  await cp?.stop();
});

/** Removes a namespaced core object from etcd directly (no deletion the API server could refuse or announce). */
async function removeInEtcd(resource: string, namespace: string, name: string): Promise<void> {
  const key = Buffer.from(`/registry/${resource}/${namespace}/${name}`).toString("base64");
  const response = await fetch(`${cp.etcdUrl}/v3/kv/deleterange`, { method: "POST", body: JSON.stringify({ key }) });
  const body = (await response.json()) as { deleted?: string };
  assert.equal(body.deleted, "1", `etcd removed ${resource} ${namespace}/${name}`);
}

describe("an object that vanishes carrying our finalizer", () => {
  it("runs its delete handlers once (on the leader only), with its last state; an ordinary deletion still runs them once", { timeout: 60_000 }, async () => {
    const ns = "vanish";
    await client.resource(Namespace).create({ metadata: { name: ns } });
    const created: string[] = [];
    const deleted: string[] = [];
    // Two replicas: only the one that leads runs handlers, the vanished object's delete handler too.
    const replica = () => {
      const op = new Operator({ name: "vanish", namespaces: [ns], leaderElection: { namespace: ns, leaseDurationMs: 3_000, renewDeadlineMs: 2_000, retryPeriodMs: 500 }, probes: false });
      op.on.create(ConfigMap, async ({ object }) => void created.push(object.metadata!.name!));
      op.on.delete(ConfigMap, async ({ object }) => void deleted.push(`${object.metadata!.name} ${object.metadata!.uid} ${object.data?.["last"] ?? ""}`));
      return op;
    };
    const ops = [replica(), replica()];
    const tracked = () => ops.reduce((n, o) => n + o.trackedObjects(), 0);
    const r = await runOperator(ops[0]!, { client, leaderElection: true, logger: pino({ level: "silent" }) });
    const follower = await runOperator(ops[1]!, { client, leaderElection: true, logger: pino({ level: "silent" }) });
    try {
      const cms = client.resource(ConfigMap).namespace(ns);
      const v = await cms.create({ metadata: { name: "v" }, data: { last: "first" } });
      const w = await cms.create({ metadata: { name: "w" } });
      const finalized = async (name: string) => (await cms.get(name)).metadata?.finalizers?.includes("vanish.kubeloop.dev/finalizer") ?? false;
      await eventually("both handled (once: by the leader) and finalized", async () => created.length === 2 && (await finalized("v")) && (await finalized("w")));
      await cms.patch("v", { data: { last: "second" } }, { type: "merge" });
      await eventually("the change seen", async () => tracked() >= 2 && (await cms.get("v")).data?.["last"] === "second");

      // An ordinary deletion: the handler runs once, then the finalizer goes and the object with it.
      await cms.delete("w");
      await eventually("w's delete handler ran and w is gone", async () => deleted.length === 1 && !(await cms.get("w").catch(() => undefined)));
      assert.deepEqual(deleted, [`w ${w.metadata!.uid} `]);

      // The object vanishes in etcd with our finalizer on it: the watch reports a DELETED event
      // whose object still carries the finalizer and no deletionTimestamp.
      await removeInEtcd("configmaps", ns, "v");
      await eventually("v's delete handler ran", async () => deleted.length === 2, { timeoutMs: 20_000 });
      assert.deepEqual(deleted, [`w ${w.metadata!.uid} `, `v ${v.metadata!.uid} second`], "once each, v with its last state");
      await eventually("no per-object state left for v", async () => tracked() === 0);
    } finally {
      await follower.stop();
      await r.stop();
    }
  });
});
