// The watcher and its store against the real API server: a large list, random churn, and
// faults injected by a TCP proxy in front of the server: cut connections, a hung stream, a
// restarted API server, an expired resourceVersion. In every case the store must converge to
// the server's state and the iterator must not end.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Client, ConfigMap, Namespace, type KubeObject } from "../src/entries/index.js";
import { InformerFactory } from "../src/runtime/informer.js";
import { reflect } from "../src/runtime/reflector.js";
import { createStore, type Store, type StoreWriter } from "../src/runtime/store.js";
import { watch, type WatcherEvent } from "../src/runtime/watcher.js";
import { FaultProxy, startControlPlane, type ControlPlane } from "../src/entries/testing.js";
import { eventually, releaseSharedCluster, sharedCluster, uniqueName } from "./helpers.js";

const scratch = mkdtempSync(join(tmpdir(), "kubeloop-watch-test-"));
// Every watch a test starts stops at the end of the file, even when an assertion failed midway.
const watches: AbortController[] = [];
function stopper(): AbortController {
  const controller = new AbortController();
  watches.push(controller);
  return controller;
}
/** Aborts every watch; before closing a client, whose close() waits for calls in flight. */
function stopWatches(): void {
  for (const controller of watches) controller.abort();
}
after(() => {
  stopWatches();
  rmSync(scratch, { recursive: true, force: true });
});

/**
 * A running watch+reflect loop whose events are recorded; `ended` says if the iterator stopped.
 * `backwards` lists every event that took an object back in time: a resourceVersion not newer
 * than one already seen for its key (a watch resumed from too old a version replays events; the
 * cache then goes back, and deleted objects come back until their delete replays).
 */
function run<T extends KubeObject>(events: AsyncIterable<WatcherEvent<T>>, store: StoreWriter<T>) {
  const seen: WatcherEvent<T>[] = [];
  const backwards: string[] = [];
  const newest = new Map<string, bigint>();
  const state = { ended: false, error: undefined as unknown };
  const done = (async () => {
    try {
      for await (const event of reflect(events, store)) {
        seen.push(event);
        if (event.type !== "apply" && event.type !== "initApply" && !(event.type === "delete" && !event.finalStateUnknown)) continue;
        const key = `${event.object.metadata?.namespace}/${event.object.metadata?.name}`;
        const rv = BigInt(event.object.metadata?.resourceVersion ?? "0");
        const before = newest.get(key);
        if (before !== undefined && rv <= before) backwards.push(`${event.type} ${key}: ${before} → ${rv}`);
        else newest.set(key, rv);
      }
    } catch (error) {
      state.error = error;
    }
    state.ended = true;
  })();
  return { seen, backwards, state, done };
}

/** Whether the store holds exactly the server's objects at their current resourceVersions. */
async function converged(client: Client, namespace: string, store: Store): Promise<true | undefined> {
  const fresh = await client.resource(ConfigMap).namespace(namespace).listAll({ pageSize: 1000 });
  const want = new Map(fresh.items.map((o) => [`${namespace}/${o.metadata!.name}`, o.metadata!.resourceVersion]));
  if (store.size !== want.size) throw new Error(`store has ${store.size} objects, server ${want.size}`);
  for (const [key, rv] of want) {
    const got = store.get(key)?.metadata?.resourceVersion;
    if (got !== rv) throw new Error(`${key}: store at ${got}, server at ${rv}`);
  }
  return true;
}

async function churn(client: Client, namespace: string, operations: number, prefix: string): Promise<void> {
  const cms = client.resource(ConfigMap).namespace(namespace);
  const names = (await cms.list()).items.map((o) => o.metadata!.name!);
  for (let i = 0; i < operations; i += 20) {
    await Promise.all(
      Array.from({ length: Math.min(20, operations - i) }, async (_, j) => {
        const roll = Math.random();
        if (roll < 0.4 || names.length < 10) {
          const name = `${prefix}-${i + j}-${Math.random().toString(36).slice(2, 6)}`;
          names.push(name);
          await cms.create({ metadata: { name }, data: { n: "0" } });
        } else if (roll < 0.8) {
          const name = names[Math.floor(Math.random() * names.length)]!;
          await cms.patch(name, { data: { n: String(Math.random()) } }, { type: "merge" }).catch(() => {});
        } else {
          const name = names.splice(Math.floor(Math.random() * names.length), 1)[0]!;
          await cms.delete(name).catch(() => {});
        }
      }),
    );
  }
}

describe("watcher on the shared cluster", () => {
  let client: Client;
  before(async () => {
    client = await Client.load({ path: (await sharedCluster()).kubeconfigPath, rateLimit: false });
  });
  after(async () => {
    stopWatches();
    await client?.close();
    await releaseSharedCluster();
  });

  it("lists and watches 10,000 ConfigMaps, then converges after random churn", { timeout: 300_000 }, async () => {
    const ns = uniqueName("big");
    await client.resource(Namespace).create({ metadata: { name: ns } });
    const cms = client.resource(ConfigMap).namespace(ns);
    for (let i = 0; i < 10_000; i += 100) {
      await Promise.all(Array.from({ length: 100 }, (_, j) => cms.create({ metadata: { name: `cm-${i + j}` }, data: { i: String(i + j) } })));
    }
    const { store, writer: storeWriter } = createStore();
    const controller = stopper();
    const loop = run(watch(client.resource(ConfigMap), { namespace: ns, signal: controller.signal }), storeWriter);
    await store.waitUntilReady(AbortSignal.timeout(120_000));
    assert.equal(store.size, 10_000);
    assert.deepEqual(loop.seen.filter((e) => e.type === "init").length, 1);
    assert.equal(loop.seen.filter((e) => e.type === "initApply").length, 10_000);
    assert.equal(store.get(`${ns}/cm-42`)?.metadata?.managedFields, undefined, "managedFields stripped");

    await churn(client, ns, 2_000, "churn");
    await eventually("the store to equal a fresh list", () => converged(client, ns, store), { timeoutMs: 60_000 });
    assert.equal(loop.state.ended, false);
    assert.equal(store.byIndex("namespace", ns).length, store.size);
    controller.abort();
    await loop.done;
    assert.equal(loop.state.error, undefined, "abort ends the iteration quietly");
    await client.resource(Namespace).delete(ns);
  });

  it("gets the initial state by paged list and by streaming list alike", { timeout: 120_000 }, async () => {
    const ns = uniqueName("modes");
    await client.resource(Namespace).create({ metadata: { name: ns } });
    const cms = client.resource(ConfigMap).namespace(ns);
    for (let i = 0; i < 1_050; i += 50) {
      await Promise.all(Array.from({ length: 50 }, (_, j) => cms.create({ metadata: { name: `cm-${i + j}` } })));
    }
    for (const initialList of ["list", "stream"] as const) {
      const { store, writer: storeWriter } = createStore();
      const controller = stopper();
      const loop = run(watch(client.resource(ConfigMap), { namespace: ns, initialList, pageSize: 100, signal: controller.signal }), storeWriter);
      await store.waitUntilReady(AbortSignal.timeout(60_000));
      // A paged list asks for resourceVersion 0, which the watch cache may serve slightly behind
      // the objects just created; the watch then catches up. So: complete as listed, then converged.
      assert.ok(store.size > 1_000, `${initialList}: ${store.size} objects at ready`);
      assert.equal(loop.seen.filter((e) => e.type === "initApply").length, store.size, initialList);
      await eventually(`${initialList}: the store to match the server`, () => converged(client, ns, store), { timeoutMs: 60_000 });
      assert.equal(loop.seen.filter((e) => e.type === "error").length, 0, `${initialList}: no errors`);
      await churn(client, ns, 200, `${initialList}-churn`);
      await eventually(`${initialList}: the store to converge`, () => converged(client, ns, store), { timeoutMs: 60_000 });
      controller.abort();
      await loop.done;
    }
    await client.resource(Namespace).delete(ns);
  });

  it("shares one watch per kind and scope among informers", { timeout: 60_000 }, async () => {
    const watches = async () => {
      const text = await client.request<string>({ method: "GET", path: "/metrics", accept: "text/plain", responseType: "text" });
      // The gauge has one series per scope (namespace, cluster); add them up.
      return text
        .split("\n")
        .filter((l) => l.startsWith("apiserver_longrunning_requests{") && l.includes('resource="configmaps"') && l.includes('verb="WATCH"'))
        .reduce((sum, l) => sum + Number(l.split(" ").pop()), 0);
    };
    const ns = uniqueName("shared");
    await client.resource(Namespace).create({ metadata: { name: ns } });
    const factory = new InformerFactory(client);
    try {
    const a = factory.informer(ConfigMap, { namespace: ns });
    const b = factory.informer(ConfigMap, { namespace: ns });
    assert.equal(a, b, "the same informer");
    assert.notEqual(factory.informer(ConfigMap, { namespace: ns, labelSelector: "x=y" }), a, "another scope, another informer");
    const before = await watches();
    const first: string[] = [];
    const second: string[] = [];
    a.subscribe((e) => e.type === "apply" && first.push(e.object.metadata!.name!));
    b.subscribe((e) => e.type === "apply" && second.push(e.object.metadata!.name!));
    a.start();
    b.start();
    await a.waitUntilReady(AbortSignal.timeout(30_000));
    await client.resource(ConfigMap).namespace(ns).create({ metadata: { name: "seen-by-both" } });
    await eventually("both subscribers to see the event", async () => first.includes("seen-by-both") && second.includes("seen-by-both"));
    assert.equal(a.store.getByName("seen-by-both", ns)?.metadata?.name, "seen-by-both");
    assert.equal((await watches()) - before, 1, "one watch on the server for two subscribers");
    } finally {
      await factory.stop();
    }
    await client.resource(Namespace).delete(ns);
  });

  it("watches metadata only (PartialObjectMetadata) when asked", { timeout: 60_000 }, async () => {
    const ns = uniqueName("meta");
    await client.resource(Namespace).create({ metadata: { name: ns } });
    const cms = client.resource(ConfigMap).namespace(ns);
    await cms.create({ metadata: { name: "big", labels: { a: "b" } }, data: { payload: "x".repeat(10_000) } });
    const { store, writer: storeWriter } = createStore();
    const controller = stopper();
    const loop = run(watch(client.resource(ConfigMap), { namespace: ns, metadataOnly: true, signal: controller.signal }), storeWriter);
    await store.waitUntilReady(AbortSignal.timeout(30_000));
    const listed = store.getByName("big", ns) as KubeObject & { data?: unknown };
    assert.equal(listed.kind, "PartialObjectMetadata");
    assert.equal(listed.data, undefined, "no data, only metadata");
    assert.equal(listed.metadata?.labels?.a, "b");
    await cms.patch("big", { metadata: { labels: { a: "c" } } }, { type: "merge" });
    await eventually("the metadata change to arrive", async () => store.getByName("big", ns)?.metadata?.labels?.a === "c");
    const watched = store.getByName("big", ns) as KubeObject & { data?: unknown };
    assert.equal(watched.kind, "PartialObjectMetadata");
    assert.equal(watched.data, undefined);
    controller.abort();
    await loop.done;
    await client.resource(Namespace).delete(ns);
  });

  it("keeps label and owner indexes current", { timeout: 60_000 }, async () => {
    const ns = uniqueName("idx");
    await client.resource(Namespace).create({ metadata: { name: ns } });
    const cms = client.resource(ConfigMap).namespace(ns);
    const owner = await cms.create({ metadata: { name: "owner" } });
    const ownerRef = { apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: owner.metadata!.uid! };
    await cms.create({ metadata: { name: "a", labels: { app: "web" }, ownerReferences: [ownerRef] } });
    const { store, writer: storeWriter } = createStore();
    store.addIndex("label:app");
    const controller = stopper();
    const loop = run(watch(client.resource(ConfigMap), { namespace: ns, signal: controller.signal }), storeWriter);
    await store.waitUntilReady(AbortSignal.timeout(30_000));
    assert.deepEqual(store.byIndex("label:app", "web").map((o) => o.metadata?.name), ["a"]);
    assert.deepEqual(store.byIndex("owner-uid", owner.metadata!.uid!).map((o) => o.metadata?.name), ["a"]);
    await cms.patch("a", { metadata: { labels: { app: "db" } } }, { type: "merge" });
    await cms.create({ metadata: { name: "b", labels: { app: "web" } } });
    await eventually("the label index to follow", async () => store.byIndex("label:app", "web").map((o) => o.metadata?.name).join() === "b");
    assert.deepEqual(store.byIndex("label:app", "db").map((o) => o.metadata?.name), ["a"]);
    controller.abort();
    await loop.done;
  });
});

describe("watcher under faults", () => {
  let cp: ControlPlane;
  let admin: Client;
  let proxy: FaultProxy;
  let proxied: Client;
  const ns = "faults";

  before(async () => {
    cp = await startFaultCluster();
    admin = await Client.load({ path: cp.kubeconfigPath, rateLimit: false });
    await admin.resource(Namespace).create({ metadata: { name: ns } });
    const cms = admin.resource(ConfigMap).namespace(ns);
    await Promise.all(Array.from({ length: 200 }, (_, i) => cms.create({ metadata: { name: `seed-${i}` } })));
    proxy = await FaultProxy.start(cp.server);
    proxied = await Client.load({ path: proxy.rewriteKubeconfig(cp.kubeconfigPath, join(scratch, "proxied.kubeconfig")), rateLimit: false, retries: 0, timeoutMs: 5_000 });
  });
  after(async () => {
    stopWatches();
    await proxied?.close();
    await admin?.close();
    await proxy?.close();
    await cp?.stop();
  });

  const fastBackoff = { initialMs: 50, maxMs: 500 };

  /** Restartable (a data dir), no watch cache and quick compaction, so an old resourceVersion really expires. */
  function startFaultCluster(): Promise<ControlPlane> {
    return startControlPlane({
      kubeconfig: false,
      dataDir: join(scratch, "cp"),
      controllers: [],
      apiServerFlags: ["--watch-cache=false", "--etcd-compaction-interval=2s"],
    });
  }

  it("converges while its connections are cut again and again", { timeout: 120_000 }, async () => {
    const { store, writer: storeWriter } = createStore();
    const controller = stopper();
    const loop = run(watch(proxied.resource(ConfigMap), { namespace: ns, signal: controller.signal, backoff: fastBackoff }), storeWriter);
    await store.waitUntilReady(AbortSignal.timeout(30_000));
    for (let round = 0; round < 6; round++) {
      const accepted = proxy.accepted;
      proxy.cutAll();
      await churn(admin, ns, 40, `cut${round}`); // changes made while the watch is down
      await eventually(`reconnection after cut ${round + 1}`, async () => proxy.accepted > accepted && proxy.connections > 0);
    }
    await eventually("the store to converge after the cuts", () => converged(admin, ns, store), { timeoutMs: 60_000 });
    assert.ok(loop.seen.some((e) => e.type === "error"), "the cuts were reported as error events");
    assert.deepEqual(loop.backwards, [], "every resumed watch starts after the last event seen: nothing replayed, nothing goes back in time");
    assert.equal(loop.state.ended, false);
    controller.abort();
    await loop.done;
  });

  it("detects a hung stream by inactivity and resumes", { timeout: 120_000 }, async () => {
    const { store, writer: storeWriter } = createStore();
    const controller = stopper();
    const loop = run(
      watch(proxied.resource(ConfigMap), { namespace: ns, signal: controller.signal, backoff: fastBackoff, inactivityTimeoutMs: 1_500 }),
      storeWriter,
    );
    await store.waitUntilReady(AbortSignal.timeout(30_000));
    proxy.hang();
    await churn(admin, ns, 40, "hang");
    await eventually("the inactivity to be reported", async () =>
      loop.seen.some((e) => e.type === "error" && /no event or bookmark for 1500 ms/.test(e.error.message)),
    );
    proxy.heal();
    await eventually("the store to converge after the hang", () => converged(admin, ns, store), { timeoutMs: 60_000 });
    assert.deepEqual(loop.backwards, [], "nothing replayed: the cache never goes back in time");
    assert.equal(loop.state.ended, false);
    controller.abort();
    await loop.done;
  });

  it("relists after its resourceVersion expired (410), yielding only the differences", { timeout: 120_000 }, async () => {
    const { store, writer: storeWriter } = createStore();
    const controller = stopper();
    const loop = run(watch(proxied.resource(ConfigMap), { namespace: ns, signal: controller.signal, backoff: fastBackoff, inactivityTimeoutMs: 600_000 }), storeWriter);
    await store.waitUntilReady(AbortSignal.timeout(30_000));
    const before = loop.seen.length;
    const stale = (await admin.resource(ConfigMap).namespace(ns).list()).metadata.resourceVersion!;
    proxy.hang();
    const cms = admin.resource(ConfigMap).namespace(ns);
    const victim = (await cms.list()).items[0]!.metadata!.name!;
    await cms.delete(victim);
    await cms.create({ metadata: { name: uniqueName("fresh") } });
    // Wait until etcd has compacted past the watcher's resourceVersion: a watch from it is now 410.
    await eventually(
      "etcd to compact past the stale resourceVersion",
      async () => {
        for await (const event of admin.resource(ConfigMap).namespace(ns).watch({ resourceVersion: stale, timeoutSeconds: 1 })) {
          return event.type === "ERROR" && (event.object as { code?: number }).code === 410;
        }
        return false;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    proxy.cutAll();
    proxy.heal();
    await eventually("the store to converge after the relist", () => converged(admin, ns, store), { timeoutMs: 60_000 });
    const after = loop.seen.slice(before);
    assert.ok(after.some((e) => e.type === "error" && (e.error as { code?: number }).code === 410), "the 410 was reported");
    const deleted = after.filter((e) => e.type === "delete");
    assert.ok(deleted.some((e) => e.object.metadata?.name === victim && e.type === "delete" && e.finalStateUnknown), "the vanished object came as delete");
    assert.ok(after.filter((e) => e.type === "apply").length < 10, "a relist yields differences, not every object again");
    assert.equal(after.filter((e) => e.type === "init").length, 0);
    await eventually("the relist's end marked", async () => loop.seen.slice(before).some((e) => e.type === "relisted"));
    const marked = loop.seen.slice(before).findIndex((e) => e.type === "relisted");
    assert.ok(loop.seen.slice(before).findIndex((e) => e.type === "delete" && e.finalStateUnknown) < marked, "relisted comes after the relist's differences");
    assert.deepEqual(loop.backwards, [], "nothing replayed: the cache never goes back in time");
    assert.equal(loop.state.ended, false);
    controller.abort();
    await loop.done;
  });

  it("rides out an API server restart on the same data dir", { timeout: 180_000 }, async () => {
    const { store, writer: storeWriter } = createStore();
    const controller = stopper();
    const loop = run(watch(proxied.resource(ConfigMap), { namespace: ns, signal: controller.signal, backoff: fastBackoff }), storeWriter);
    await store.waitUntilReady(AbortSignal.timeout(30_000));
    await admin.close();
    await cp.stop();
    const errorsBefore = loop.seen.filter((e) => e.type === "error").length;
    cp = await startFaultCluster(); // same data dir: same objects, same address
    admin = await Client.load({ path: cp.kubeconfigPath, rateLimit: false });
    await churn(admin, ns, 60, "restart");
    await eventually("the store to converge after the restart", () => converged(admin, ns, store), { timeoutMs: 90_000 });
    assert.ok(loop.seen.filter((e) => e.type === "error").length > errorsBefore, "the outage was reported");
    assert.deepEqual(loop.backwards, [], "nothing replayed: the cache never goes back in time");
    assert.equal(loop.state.ended, false);
    controller.abort();
    await loop.done;
  });
});
