// Every verb and patch type against the real API server, on a ConfigMap, a Deployment and a
// custom resource; optimistic concurrency; server-side apply conflicts; pagination; discovery.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  ApiError,
  Client,
  ConfigMap,
  ConflictError,
  CustomResourceDefinition,
  Deployment,
  InvalidError,
  NotFoundError,
  AlreadyExistsError,
  kindOf,
  type KubeObject,
  type WatchEvent,
} from "../src/entries/index.js";
import { eventually, releaseSharedCluster, sharedCluster, uniqueName } from "./helpers.js";

let client: Client;
let ns: string;

interface Widget extends KubeObject {
  spec: { size: number; color?: string; replicas?: number };
  status?: { phase?: string; replicas?: number; selector?: string };
}
const group = `${uniqueName("verbs")}.test.kubeloop.dev`;
const Widget = kindOf<Widget>(`${group}/v1`, "Widget"); // no mapping: exercises discovery

before(async () => {
  const cluster = await sharedCluster();
  client = await Client.load({ path: cluster.kubeconfigPath, rateLimit: false });
  ns = uniqueName("verbs");
  await client.resource(kindOf("v1", "Namespace", { plural: "namespaces", namespaced: false })).create({ metadata: { name: ns } });
  await client.resource(CustomResourceDefinition).create({
    metadata: { name: `widgets.${group}` },
    spec: {
      group,
      scope: "Namespaced",
      names: { plural: "widgets", singular: "widget", kind: "Widget", listKind: "WidgetList" },
      versions: [
        {
          name: "v1",
          served: true,
          storage: true,
          subresources: { status: {}, scale: { specReplicasPath: ".spec.replicas", statusReplicasPath: ".status.replicas", labelSelectorPath: ".status.selector" } },
          schema: {
            openAPIV3Schema: {
              type: "object",
              properties: {
                spec: {
                  type: "object",
                  required: ["size"],
                  properties: { size: { type: "integer", minimum: 1 }, color: { type: "string" }, replicas: { type: "integer" } },
                },
                status: { type: "object", properties: { phase: { type: "string" }, replicas: { type: "integer" }, selector: { type: "string" } } },
              },
            },
          },
        },
      ],
    },
  });
  await eventually("the Widget CRD to be served", async () => (await client.resource(Widget).namespace(ns).list()).items);
});

after(async () => {
  await client?.resource(CustomResourceDefinition).delete(`widgets.${group}`).catch(() => {});
  await client?.close();
  await releaseSharedCluster();
});

function deployment(name: string) {
  return {
    metadata: { name, labels: { app: name } },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "main", image: "busybox:1", env: [{ name: "A", value: "1" }] }] } },
    },
  };
}

describe("client verbs", () => {
  it("round-trips get, list, create, replace, delete and dryRun on a ConfigMap", async () => {
    const cms = client.resource(ConfigMap).namespace(ns);
    const name = uniqueName("cm");
    const dry = await cms.create({ metadata: { name }, data: { a: "1" } }, { dryRun: true });
    assert.equal(dry.metadata?.name, name);
    await assert.rejects(cms.get(name), NotFoundError, "dryRun persisted nothing");

    const created = await cms.create({ metadata: { name, labels: { kind: "verbs" } }, data: { a: "1" } });
    assert.ok(created.metadata?.uid);
    await assert.rejects(cms.create({ metadata: { name } }), AlreadyExistsError);
    assert.deepEqual((await cms.get(name)).data, { a: "1" });
    const listed = await cms.list({ labelSelector: "kind=verbs" });
    assert.deepEqual(listed.items.map((i) => i.metadata?.name), [name]);
    assert.ok(listed.metadata.resourceVersion);
    // Across namespaces when the handle has none; field selectors work.
    const everywhere = await client.resource(ConfigMap).list({ fieldSelector: `metadata.name=${name}` });
    assert.deepEqual(everywhere.items.map((i) => i.metadata?.namespace), [ns]);

    const replaced = await cms.replace({ ...created, data: { a: "2" } });
    assert.equal(replaced.data?.a, "2");
    // Optimistic concurrency: the first version is stale now.
    const stale = await cms.replace({ ...created, data: { a: "3" } }).catch((e: unknown) => e);
    assert.ok(stale instanceof ConflictError, String(stale));
    assert.equal(stale.code, 409);
    assert.equal(stale.status?.reason, "Conflict");

    // A precondition that does not hold: Conflict, nothing deleted.
    await assert.rejects(cms.delete(name, { preconditions: { uid: "00000000-0000-0000-0000-000000000000" } }), ConflictError);
    await cms.delete(name, { propagationPolicy: "Foreground" });
    await eventually("the ConfigMap to be gone", async () => (await cms.get(name).catch((e: unknown) => e)) instanceof NotFoundError);
  });

  it("applies JSON merge, JSON patch and strategic merge patches to a Deployment", async () => {
    const deployments = client.resource(Deployment).namespace(ns);
    const name = uniqueName("dep");
    await deployments.create(deployment(name));

    const merged = await deployments.patch(name, { metadata: { labels: { tier: "web" } } }, { type: "merge" });
    assert.equal(merged.metadata?.labels?.tier, "web");

    const jsonPatched = await deployments.patch(
      name,
      [
        { op: "test", path: "/spec/replicas", value: 1 },
        { op: "replace", path: "/spec/replicas", value: 2 },
      ],
      { type: "json" },
    );
    assert.equal(jsonPatched.spec?.replicas, 2);
    const failedTest = await deployments.patch(name, [{ op: "test", path: "/spec/replicas", value: 9 }], { type: "json" }).catch((e: unknown) => e);
    assert.ok(failedTest instanceof ApiError && failedTest.code === 422, String(failedTest));

    // Strategic merge: the env list is merged by name, not replaced.
    const strategic = await deployments.patch(
      name,
      { spec: { template: { spec: { containers: [{ name: "main", env: [{ name: "B", value: "2" }] }] } } } },
      { type: "strategic" },
    );
    const env = strategic.spec?.template.spec?.containers[0]?.env?.map((e) => e.name).sort();
    assert.deepEqual(env, ["A", "B"]);

    // Scale subresource.
    const scale = await deployments.getScale(name);
    assert.equal(scale.spec?.replicas, 2);
    await deployments.replaceScale(name, { ...scale, spec: { replicas: 4 } });
    assert.equal((await deployments.get(name)).spec?.replicas, 4);
    const patchedScale = await deployments.patchScale(name, { spec: { replicas: 5 } }, { type: "merge" });
    assert.equal(patchedScale.spec?.replicas, 5);

    // Status subresource: spec changes through it are ignored, status sticks.
    const current = await deployments.get(name);
    const withStatus = await deployments.replaceStatus({ ...current, spec: { ...current.spec!, replicas: 9 }, status: { observedGeneration: 1, replicas: 3 } });
    assert.equal(withStatus.status?.replicas, 3);
    assert.equal(withStatus.spec?.replicas, 5);
    const statusPatched = await deployments.patchStatus(name, { status: { readyReplicas: 1 } }, { type: "merge" });
    assert.equal(statusPatched.status?.readyReplicas, 1);
    assert.equal((await deployments.getStatus(name)).status?.readyReplicas, 1);

    await deployments.delete(name);
  });

  it("server-side apply: creates, updates, reports a field conflict as ConflictError, and wins with force", async () => {
    const cms = client.resource(ConfigMap).namespace(ns);
    const name = uniqueName("ssa");
    const first = await cms.apply({ metadata: { name }, data: { owner: "alpha", shared: "x" } }, { fieldManager: "alpha" });
    assert.equal(first.data?.owner, "alpha");
    assert.ok(first.metadata?.managedFields?.some((f) => f.manager === "alpha"));

    const conflict = await cms.apply({ metadata: { name }, data: { shared: "y" } }, { fieldManager: "beta" }).catch((e: unknown) => e);
    assert.ok(conflict instanceof ConflictError, String(conflict));
    assert.ok(conflict.causes.some((c) => c.field === ".data.shared"), JSON.stringify(conflict.causes));
    assert.equal((await cms.get(name)).data?.shared, "x", "nothing changed");

    const forced = await cms.apply({ metadata: { name }, data: { shared: "y" } }, { fieldManager: "beta", force: true });
    assert.equal(forced.data?.shared, "y");
    assert.equal(forced.data?.owner, "alpha");

    assert.throws(() => cms.patch(name, {}, { type: "apply" }), /needs a fieldManager/);
    await cms.delete(name);
  });

  it("round-trips a custom resource, with status and scale subresources, found by discovery", async () => {
    const widgets = client.resource(Widget).namespace(ns);
    const mapping = await widgets.mapping();
    assert.deepEqual([mapping.plural, mapping.namespaced], ["widgets", true]);
    assert.deepEqual(mapping.subresources.sort(), ["scale", "status"]);

    const name = uniqueName("w");
    const created = await widgets.create({ apiVersion: Widget.apiVersion, kind: "Widget", metadata: { name }, spec: { size: 2, replicas: 1 } });
    assert.equal(created.spec.size, 2);
    const invalid = await widgets.create({ apiVersion: Widget.apiVersion, kind: "Widget", metadata: { name: `${name}-bad` }, spec: { size: 0 } }).catch((e: unknown) => e);
    assert.ok(invalid instanceof InvalidError, String(invalid));
    assert.ok(invalid.causes.some((c) => c.field === "spec.size"), JSON.stringify(invalid.causes));

    assert.equal((await widgets.patch(name, { spec: { color: "red" } }, { type: "merge" })).spec.color, "red");
    assert.equal((await widgets.patch(name, [{ op: "replace", path: "/spec/size", value: 3 }], { type: "json" })).spec.size, 3);
    // Strategic merge is for built-in kinds only: the server says 415.
    const strategic = await widgets.patch(name, { spec: { size: 4 } }, { type: "strategic" }).catch((e: unknown) => e);
    assert.ok(strategic instanceof ApiError && strategic.reason === "UnsupportedMediaType", String(strategic));
    const applied = await widgets.apply({ metadata: { name }, spec: { size: 5 } }, { fieldManager: "test", force: true });
    assert.equal(applied.spec.size, 5);

    const got = await widgets.get(name);
    await widgets.replaceStatus({ ...got, status: { phase: "Ready", replicas: 1, selector: "app=w" } });
    assert.equal((await widgets.getStatus(name)).status?.phase, "Ready");
    await widgets.patchStatus(name, { status: { phase: "Busy" } }, { type: "merge" });
    await widgets.applyStatus({ metadata: { name }, status: { phase: "Applied" } }, { fieldManager: "test", force: true });
    assert.equal((await widgets.get(name)).status?.phase, "Applied");
    await widgets.patchScale(name, { spec: { replicas: 3 } }, { type: "merge" });
    assert.equal((await widgets.get(name)).spec.replicas, 3);
    assert.equal((await widgets.getScale(name)).status?.replicas, 1);

    await widgets.deleteCollection({ labelSelector: "" });
    await eventually("the widgets to be gone", async () => (await widgets.list()).items.length === 0);
  });

  it("runs every verb and patch type on each of ConfigMap, Deployment and a custom resource", { timeout: 60_000 }, async () => {
    const kinds = [
      { kind: ConfigMap, make: (name: string) => ({ metadata: { name, labels: { set: "all" } }, data: { a: "1" } }), strategicWorks: true },
      { kind: Deployment, make: (name: string) => ({ ...deployment(name), metadata: { name, labels: { set: "all" } } }), strategicWorks: true },
      {
        kind: Widget,
        make: (name: string) => ({ apiVersion: Widget.apiVersion, kind: "Widget", metadata: { name, labels: { set: "all" } }, spec: { size: 1 } }),
        strategicWorks: false,
      },
    ];
    for (const { kind, make, strategicWorks } of kinds) {
      const handle = client.resource(kind as typeof ConfigMap).namespace(ns);
      const name = uniqueName(kind.kind.toLowerCase());
      const label = (o: KubeObject) => o.metadata?.labels?.step;
      const controller = new AbortController();
      const events: string[] = [];
      const since = (await handle.list()).metadata.resourceVersion!;
      const watching = (async () => {
        for await (const e of handle.watch({ resourceVersion: since, fieldSelector: `metadata.name=${name}`, signal: controller.signal })) {
          events.push(e.type);
          if (e.type === "DELETED") controller.abort();
        }
      })();
      await handle.create(make(name) as never, { dryRun: true });
      const created = await handle.create(make(name) as never);
      assert.equal((await handle.get(name)).metadata?.uid, created.metadata?.uid, `${kind.kind} get`);
      assert.equal((await handle.list({ labelSelector: "set=all", fieldSelector: `metadata.name=${name}` })).items.length, 1, `${kind.kind} list`);
      const replaced = await handle.replace({ ...created, metadata: { ...created.metadata, labels: { set: "all", step: "replace" } } });
      assert.equal(label(replaced), "replace", `${kind.kind} replace`);
      assert.equal(label(await handle.patch(name, { metadata: { labels: { step: "merge" } } }, { type: "merge" })), "merge");
      assert.equal(label(await handle.patch(name, [{ op: "replace", path: "/metadata/labels/step", value: "json" }], { type: "json" })), "json");
      const strategic = handle.patch(name, { metadata: { labels: { step: "strategic" } } }, { type: "strategic" });
      if (strategicWorks) assert.equal(label(await strategic), "strategic", `${kind.kind} strategic`);
      else await assert.rejects(strategic, (e: unknown) => e instanceof ApiError && e.reason === "UnsupportedMediaType");
      const applied = await handle.apply({ metadata: { name, labels: { step: "apply" } } } as never, { fieldManager: "every-verb", force: true });
      assert.equal(label(applied), "apply", `${kind.kind} apply`);
      await handle.delete(name);
      await eventually(`${kind.kind} DELETED event`, async () => controller.signal.aborted, { timeoutMs: 30_000 });
      await watching;
      assert.deepEqual(events, ["ADDED", ...Array(4 + (strategicWorks ? 1 : 0)).fill("MODIFIED"), "DELETED"], `${kind.kind} watch`);
      await handle.create(make(`${name}-c`) as never);
      await handle.deleteCollection({ labelSelector: "set=all" });
      await eventually(`${kind.kind} deleteCollection`, async () => (await handle.list({ labelSelector: "set=all" })).items.length === 0);
    }
  });

  it("watches raw events: ADDED, MODIFIED, DELETED, ending quietly on abort", { timeout: 60_000 }, async () => {
    const cms = client.resource(ConfigMap).namespace(ns);
    const start = await cms.list();
    const controller = new AbortController();
    const seen: WatchEvent[] = [];
    const name = uniqueName("watched");
    const watching = (async () => {
      for await (const event of cms.watch({ resourceVersion: start.metadata.resourceVersion!, allowWatchBookmarks: true, signal: controller.signal })) {
        seen.push(event);
        if (event.type === "DELETED" && event.object.metadata?.name === name) controller.abort();
      }
    })();
    await cms.create({ metadata: { name }, data: { v: "1" } });
    await cms.patch(name, { data: { v: "2" } }, { type: "merge" });
    await cms.delete(name);
    await eventually("the watch to see the deletion", async () => controller.signal.aborted, { timeoutMs: 30_000 });
    await watching; // ends quietly on abort
    const mine = seen.filter((e) => e.object.metadata?.name === name).map((e) => e.type);
    assert.deepEqual(mine, ["ADDED", "MODIFIED", "DELETED"]);
  });

  it("ends a raw watch cleanly when the server's timeoutSeconds passes", { timeout: 30_000 }, async () => {
    const started = Date.now();
    for await (const event of client.resource(ConfigMap).namespace(ns).watch({ timeoutSeconds: 1 })) assert.ok(event.type);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 900 && elapsed < 20_000, `ended by the server after ${elapsed} ms`);
  });

  it("lists 1,200 objects with limit 100: every object exactly once", { timeout: 180_000 }, async () => {
    const space = uniqueName("page");
    await client.resource(kindOf("v1", "Namespace", { plural: "namespaces", namespaced: false })).create({ metadata: { name: space } });
    const cms = client.resource(ConfigMap).namespace(space);
    const names = Array.from({ length: 1200 }, (_, i) => `cm-${String(i).padStart(4, "0")}`);
    for (let i = 0; i < names.length; i += 50) {
      await Promise.all(names.slice(i, i + 50).map((name) => cms.create({ metadata: { name } })));
    }
    let pages = 0;
    const seen: string[] = [];
    for await (const page of cms.pages({ limit: 100 })) {
      pages++;
      assert.ok(page.items.length <= 100);
      for (const item of page.items) seen.push(item.metadata!.name!);
    }
    assert.equal(pages, 12);
    assert.equal(seen.length, 1200);
    assert.deepEqual([...new Set(seen)].sort(), names);
    const all = await cms.listAll({ pageSize: 100 });
    assert.equal(all.items.length, 1200);
    await client.resource(kindOf("v1", "Namespace", { plural: "namespaces", namespaced: false })).delete(space);
  });

  it("discovers a CRD installed after the client started, and names a kind the server lacks", async () => {
    const missing = kindOf(`${group}/v1`, "Gadget");
    const error = await client.resource(missing).namespace(ns).list().catch((e: unknown) => e);
    assert.ok(error instanceof NotFoundError, String(error));
    assert.match(error.message, /no kind Gadget in .*\/v1 \(it serves Widget there\); is its CustomResourceDefinition installed\?/);
    const unknownGroup = await client.resource(kindOf("nowhere.example/v1", "Thing")).list().catch((e: unknown) => e);
    assert.match(String(unknownGroup), /nowhere\.example\/v1 is not served/);
  });

  it("refuses calls it cannot address before sending them", async () => {
    await assert.rejects(client.resource(ConfigMap).get("x"), /namespaced: give a namespace/);
    await assert.rejects(client.resource(CustomResourceDefinition).namespace("x").list(), /cluster-scoped/);
    // The server's own validation: a name is required.
    await assert.rejects(client.resource(ConfigMap).namespace(ns).create({ metadata: {} }), InvalidError);
  });
});
