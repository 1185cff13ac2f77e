// Unit tests of the pure helpers: conditions, owner references, predicates.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { setCondition, getCondition, isConditionTrue, type WithConditions } from "./conditions.js";
import { AlreadyOwnedError, setControllerReference } from "./ownership.js";
import { predicates } from "./predicates.js";
import type { KubeObject } from "../core/objects.js";

describe("setCondition", () => {
  it("stamps observedGeneration and moves lastTransitionTime only when the status changes", () => {
    const o: WithConditions = { metadata: { name: "x", generation: 4 } };
    assert.equal(setCondition(o, { type: "Ready", status: "False", reason: "Starting" }, new Date("2026-01-01T00:00:00Z")), true);
    assert.deepEqual(getCondition(o, "Ready"), {
      type: "Ready",
      status: "False",
      reason: "Starting",
      message: "",
      observedGeneration: 4,
      lastTransitionTime: "2026-01-01T00:00:00Z",
    });
    assert.equal(setCondition(o, { type: "Ready", status: "False", reason: "Starting" }, new Date("2026-01-02T00:00:00Z")), false, "no change, no write");
    assert.equal(setCondition(o, { type: "Ready", status: "False", reason: "Waiting", message: "m" }, new Date("2026-01-03T00:00:00Z")), true);
    assert.equal(getCondition(o, "Ready")?.lastTransitionTime, "2026-01-01T00:00:00Z", "same status keeps the transition time");
    setCondition(o, { type: "Ready", status: "True", reason: "Done" }, new Date("2026-01-04T00:00:00Z"));
    assert.equal(getCondition(o, "Ready")?.lastTransitionTime, "2026-01-04T00:00:00Z");
    assert.equal(isConditionTrue(o, "Ready"), true);
    o.metadata = { ...o.metadata, generation: 5 };
    assert.equal(isConditionTrue(o, "Ready"), false, "a condition about an older generation is not current");
    setCondition(o, { type: "Synced", status: "True", reason: "Ok" });
    assert.equal(o.status?.conditions?.length, 2);
  });
});

describe("setCondition on cached (deeply frozen) objects", () => {
  it("works on a shallow copy (status and conditions are replaced, never changed in place); a frozen object is refused naming the idiom", async () => {
    const { deepFreeze } = await import("../core/objects.js");
    const cached = deepFreeze({ metadata: { name: "x", generation: 2 }, status: { phase: "Up", conditions: [{ type: "Ready", status: "False", reason: "Starting", message: "" }] } }) as WithConditions;
    const next = { ...cached };
    assert.equal(setCondition(next, { type: "Ready", status: "True", reason: "Done" }), true);
    assert.equal(getCondition(next, "Ready")?.status, "True");
    assert.equal(next.status?.phase, "Up", "the rest of the status is kept");
    assert.equal(getCondition(cached, "Ready")?.status, "False", "the cached object is untouched");
    assert.throws(() => setCondition(cached, { type: "Ready", status: "True", reason: "Done" }), /x is frozen \(cached objects are read-only\): pass a copy/);
  });
});

describe("setControllerReference", () => {
  const owner = { apiVersion: "examples.kubeloop.dev/v1", kind: "Set", metadata: { name: "s", namespace: "n", uid: "u1" } };
  it("adds one controller reference, idempotently", () => {
    const child: KubeObject = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c", namespace: "n" } };
    setControllerReference(owner, child);
    setControllerReference(owner, child);
    assert.deepEqual(child.metadata?.ownerReferences, [{ apiVersion: "examples.kubeloop.dev/v1", kind: "Set", name: "s", uid: "u1", controller: true, blockOwnerDeletion: true }]);
  });
  it("refuses a second controller and a cross-namespace owner", () => {
    const child = { kind: "ConfigMap", metadata: { name: "c", namespace: "n", ownerReferences: [{ apiVersion: "v1", kind: "Other", name: "o", uid: "u2", controller: true }] } };
    assert.throws(() => setControllerReference(owner, child), AlreadyOwnedError);
    assert.throws(() => setControllerReference(owner, { metadata: { name: "c", namespace: "elsewhere" } }), /own only objects in that namespace/);
    assert.throws(() => setControllerReference({ metadata: { name: "no-uid" } }, { metadata: { name: "c" } }), /uid/);
  });
});

describe("predicates", () => {
  const obj = (generation: number, labels: Record<string, string>, rv: string) => ({ metadata: { name: "x", generation, labels, resourceVersion: rv } });
  it("pass creates and deletes, filter updates by what changed", () => {
    assert.equal(predicates.generationChanged({ type: "apply", object: obj(2, {}, "2"), old: obj(1, {}, "1") }), true);
    assert.equal(predicates.generationChanged({ type: "apply", object: obj(1, { a: "b" }, "2"), old: obj(1, {}, "1") }), false);
    assert.equal(predicates.labelsChanged({ type: "apply", object: obj(1, { a: "b" }, "2"), old: obj(1, {}, "1") }), true);
    assert.equal(predicates.resourceVersionChanged({ type: "apply", object: obj(1, {}, "1"), old: obj(1, {}, "1") }), false);
    assert.equal(predicates.generationChanged({ type: "apply", object: obj(1, {}, "1") }), true, "no old object: a create");
    assert.equal(predicates.labelsChanged({ type: "delete", object: obj(1, {}, "1") }), true);
  });
});
