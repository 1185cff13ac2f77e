import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubeObject } from "../core/objects.js";
import { BY_NAMESPACE, BY_OWNER, byLabel, createStore } from "./store.js";

const obj = (name: string, rv: string, labels: Record<string, string>, owners: string[] = []): KubeObject => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace: "ns", resourceVersion: rv, labels, ownerReferences: owners.map((uid) => ({ apiVersion: "v1", kind: "X", name: uid, uid })) },
});
const names = (objects: KubeObject[]) => objects.map((o) => o.metadata?.name).sort();

describe("Store indexes", () => {
  it("follow updates: unchanged values keep the object, changed ones move it, deletes remove it", () => {
    const { store, writer: storeWriter } = createStore();
    store.addIndex(byLabel("app"));
    storeWriter.beginInit();
    storeWriter.initApply(obj("a", "1", { app: "web" }, ["o1"]));
    storeWriter.initApply(obj("b", "1", { app: "web" }));
    storeWriter.initDone();
    assert.deepEqual(names(store.byIndex(byLabel("app"), "web")), ["a", "b"]);

    storeWriter.apply(obj("a", "2", { app: "web" }, ["o1"])); // same index values
    assert.deepEqual(names(store.byIndex(byLabel("app"), "web")), ["a", "b"]);
    assert.equal(store.byIndex(byLabel("app"), "web").find((o) => o.metadata?.name === "a")?.metadata?.resourceVersion, "2");
    assert.deepEqual(names(store.byIndex(BY_OWNER, "o1")), ["a"]);

    storeWriter.apply(obj("a", "3", { app: "db" }, ["o2", "o1"])); // label moves, an owner added
    assert.deepEqual(names(store.byIndex(byLabel("app"), "web")), ["b"]);
    assert.deepEqual(names(store.byIndex(byLabel("app"), "db")), ["a"]);
    assert.deepEqual(names(store.byIndex(BY_OWNER, "o1")), ["a"]);
    assert.deepEqual(names(store.byIndex(BY_OWNER, "o2")), ["a"]);

    storeWriter.apply(obj("a", "4", {}, [])); // every value gone
    assert.deepEqual(store.byIndex(byLabel("app"), "db"), []);
    assert.deepEqual(store.byIndex(BY_OWNER, "o1"), []);
    assert.deepEqual(names(store.byIndex(BY_NAMESPACE, "ns")), ["a", "b"]);

    storeWriter.delete("ns/b");
    assert.deepEqual(store.byIndex(byLabel("app"), "web"), []);
    assert.deepEqual(names(store.byIndex(BY_NAMESPACE, "ns")), ["a"]);
  });

  it("an index added later covers the objects stored; one added again under its name replaces it; cluster-scoped objects are in no namespace", () => {
    const { store, writer: storeWriter } = createStore();
    storeWriter.beginInit();
    storeWriter.initApply(obj("a", "1", { tier: "x" }));
    storeWriter.initApply({ apiVersion: "v1", kind: "Namespace", metadata: { name: "ns", resourceVersion: "1" } });
    storeWriter.initDone();
    store.addIndex("tier", (o) => (o.metadata?.labels?.tier ? [o.metadata.labels.tier] : []));
    assert.deepEqual(names(store.byIndex("tier", "x")), ["a"]);
    store.addIndex("tier", (o) => (o.metadata?.labels?.tier ? [`t-${o.metadata.labels.tier}`] : []));
    assert.deepEqual(store.byIndex("tier", "x"), []);
    storeWriter.apply(obj("b", "2", { tier: "x" }));
    assert.deepEqual(names(store.byIndex("tier", "t-x")), ["a", "b"]);
    assert.deepEqual(names(store.byIndex(BY_NAMESPACE, "ns")), ["a", "b"], "the Namespace object itself is cluster-scoped");
    storeWriter.delete("ns/a");
    assert.deepEqual(names(store.byIndex("tier", "t-x")), ["b"]);
  });

  it("keys, size and lookups agree across namespaces, cluster-scoped objects, relists and deletes", () => {
    const { store, writer: storeWriter } = createStore();
    const at = (namespace: string | undefined, name: string, rv = "1"): KubeObject => ({ apiVersion: "v1", kind: "X", metadata: { name, resourceVersion: rv, ...(namespace ? { namespace } : {}) } });
    storeWriter.beginInit();
    storeWriter.initApply(at("a", "x"));
    storeWriter.initApply(at("b", "x"));
    storeWriter.initApply(at(undefined, "x"));
    storeWriter.initApply(at("a", "x", "2")); // the same object twice in a list counts once
    assert.equal(store.size, 0, "a list is not seen before initDone");
    storeWriter.initDone();
    assert.equal(store.size, 3);
    assert.deepEqual(store.keys().sort(), ["a/x", "b/x", "x"]);
    assert.equal(store.get("a/x")?.metadata?.resourceVersion, "2");
    assert.equal(store.get("x")?.metadata?.namespace, undefined);
    assert.equal(store.getByName("x", "b"), store.get("b/x"));
    assert.equal(store.getByName("x"), store.get("x"));
    assert.equal(store.get("c/x"), undefined);
    assert.deepEqual(store.byIndex(BY_NAMESPACE, ""), [], "cluster-scoped objects are in no namespace");

    assert.equal(storeWriter.apply(at("a", "y")), undefined);
    assert.equal(storeWriter.apply(at("a", "y", "3"))?.metadata?.resourceVersion, "1");
    assert.equal(store.size, 4);
    assert.deepEqual(names(store.byIndex(BY_NAMESPACE, "a")), ["x", "y"]);
    assert.equal(storeWriter.delete("b/x")?.metadata?.name, "x");
    assert.equal(storeWriter.delete("b/x"), undefined);
    assert.equal(storeWriter.delete("x")?.metadata?.namespace, undefined);
    assert.equal(store.size, 2);
    assert.deepEqual(store.byIndex(BY_NAMESPACE, "b"), []);
    assert.deepEqual(store.list().map((o) => store.keys().includes(`${o.metadata?.namespace}/${o.metadata?.name}`)), [true, true]);

    // A relist replaces everything; a namespace index of one's own replaces the built-in one.
    storeWriter.beginInit();
    storeWriter.initApply(at("c", "z"));
    storeWriter.initDone();
    assert.equal(store.size, 1);
    assert.deepEqual(store.keys(), ["c/z"]);
    assert.deepEqual(store.byIndex(BY_NAMESPACE, "a"), []);
    store.addIndex(BY_NAMESPACE, (o) => [`ns-${o.metadata?.namespace ?? ""}`]);
    assert.deepEqual(names(store.byIndex(BY_NAMESPACE, "ns-c")), ["z"]);
    assert.throws(() => store.byIndex("nope", "v"), /no index "nope" \(known: .*namespace.*owner-uid/);
  });
});
