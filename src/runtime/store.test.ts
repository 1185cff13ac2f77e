import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubeObject } from "../core/objects.js";
import { BY_NAMESPACE, BY_OWNER, Store, byLabel } from "./store.js";

const obj = (name: string, rv: string, labels: Record<string, string>, owners: string[] = []): KubeObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace: "ns", resourceVersion: rv, labels, ownerReferences: owners.map((uid) => ({ apiVersion: "v1", kind: "X", name: uid, uid })) },
});
const names = (objects: KubeObject[]) => objects.map((o) => o.metadata?.name).sort();

describe("Store indexes", () => {
  it("follow updates: unchanged values keep the object, changed ones move it, deletes remove it", () => {
    const store = new Store();
    store.addIndex(byLabel("app"));
    store.beginInit();
    store.initApply(obj("a", "1", { app: "web" }, ["o1"]));
    store.initApply(obj("b", "1", { app: "web" }));
    store.initDone();
    assert.deepEqual(names(store.byIndex(byLabel("app"), "web")), ["a", "b"]);

    store.apply(obj("a", "2", { app: "web" }, ["o1"])); // same index values
    assert.deepEqual(names(store.byIndex(byLabel("app"), "web")), ["a", "b"]);
    assert.equal(store.byIndex(byLabel("app"), "web").find((o) => o.metadata?.name === "a")?.metadata?.resourceVersion, "2");
    assert.deepEqual(names(store.byIndex(BY_OWNER, "o1")), ["a"]);

    store.apply(obj("a", "3", { app: "db" }, ["o2", "o1"])); // label moves, an owner added
    assert.deepEqual(names(store.byIndex(byLabel("app"), "web")), ["b"]);
    assert.deepEqual(names(store.byIndex(byLabel("app"), "db")), ["a"]);
    assert.deepEqual(names(store.byIndex(BY_OWNER, "o1")), ["a"]);
    assert.deepEqual(names(store.byIndex(BY_OWNER, "o2")), ["a"]);

    store.apply(obj("a", "4", {}, [])); // every value gone
    assert.deepEqual(store.byIndex(byLabel("app"), "db"), []);
    assert.deepEqual(store.byIndex(BY_OWNER, "o1"), []);
    assert.deepEqual(names(store.byIndex(BY_NAMESPACE, "ns")), ["a", "b"]);

    store.delete("ns/b");
    assert.deepEqual(store.byIndex(byLabel("app"), "web"), []);
    assert.deepEqual(names(store.byIndex(BY_NAMESPACE, "ns")), ["a"]);
  });

  it("an index added later covers the objects stored; one added again under its name replaces it; cluster-scoped objects are in no namespace", () => {
    const store = new Store();
    store.beginInit();
    store.initApply(obj("a", "1", { tier: "x" }));
    store.initApply({ apiVersion: "v1", kind: "Namespace", metadata: { name: "ns", resourceVersion: "1" } });
    store.initDone();
    store.addIndex("tier", (o) => (o.metadata?.labels?.tier ? [o.metadata.labels.tier] : []));
    assert.deepEqual(names(store.byIndex("tier", "x")), ["a"]);
    store.addIndex("tier", (o) => (o.metadata?.labels?.tier ? [`t-${o.metadata.labels.tier}`] : []));
    assert.deepEqual(store.byIndex("tier", "x"), []);
    store.apply(obj("b", "2", { tier: "x" }));
    assert.deepEqual(names(store.byIndex("tier", "t-x")), ["a", "b"]);
    assert.deepEqual(names(store.byIndex(BY_NAMESPACE, "ns")), ["a", "b"], "the Namespace object itself is cluster-scoped");
    store.delete("ns/a");
    assert.deepEqual(names(store.byIndex("tier", "t-x")), ["b"]);
  });
});
