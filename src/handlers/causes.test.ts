// Cause detection on tables of objects: no server, no clock (kopf's tests/causation).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { KubeObject } from "../core/objects.js";
import { detectCause, planSteps } from "./causes.js";
import { mergePatch } from "./diff.js";
import { essence, progressKeys } from "./progress.js";
import type { ObjectHandler } from "./registry.js";

const keys = progressKeys("op.kubeloop.dev");
const finalizer = "op.kubeloop.dev/finalizer";
const handled = (o: KubeObject): KubeObject => ({ ...o, metadata: { ...o.metadata, annotations: { ...o.metadata?.annotations, [keys.lastHandled]: JSON.stringify(essence(o, keys)) } } });
const obj = (spec: unknown, meta: Record<string, unknown> = {}, status?: unknown): KubeObject =>
  ({ apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w", namespace: "ns", uid: "u1", ...meta }, spec, ...(status ? { status } : {}) }) as KubeObject;
const with_ = (o: KubeObject, patch: Record<string, unknown>): KubeObject => mergePatch(o, patch) as KubeObject;
const h = (id: string, cause: ObjectHandler["cause"], extra: Partial<ObjectHandler> = {}): ObjectHandler => ({ id, cause, fn: async () => {}, options: {}, ...extra });

describe("detectCause", () => {
  const before = handled(obj({ size: 1 }));
  const table: [string, KubeObject, boolean, ReturnType<typeof detectCause>["cause"], boolean?][] = [
    ["never handled → create", obj({ size: 1 }), false, "create"],
    ["handled, unchanged → nothing", before, false, undefined],
    ["spec changed → update", with_(before, { spec: { size: 2 } }), false, "update"],
    ["label added → update (labels count)", with_(before, { metadata: { labels: { tier: "a" } } }), false, "update"],
    ["status only → nothing", with_(before, { status: { ready: true } }), false, undefined],
    ["resourceVersion / managedFields / generation only → nothing", with_(before, { metadata: { resourceVersion: "99", generation: 7, managedFields: [{ manager: "x" }] } }), false, undefined],
    ["another kubeloop operator's bookkeeping → nothing", with_(before, { metadata: { annotations: { "other.kubeloop.dev/last-handled": "{}", "other.kubeloop.dev/progress": "{}" } } }), false, undefined],
    ["our own progress annotation → nothing", with_(before, { metadata: { annotations: { [keys.progress]: '{"a":{}}' } } }), false, undefined],
    ["kubectl's last-applied copy → nothing", with_(before, { metadata: { annotations: { "kubectl.kubernetes.io/last-applied-configuration": "{}" } } }), false, undefined],
    ["being deleted with our finalizer → delete", with_(before, { metadata: { deletionTimestamp: "2026-01-01T00:00:00Z", finalizers: [finalizer] } }), false, "delete"],
    ["being deleted without our finalizer → nothing", with_(before, { metadata: { deletionTimestamp: "2026-01-01T00:00:00Z", finalizers: ["someone.else/x"] } }), false, undefined],
    ["first sight of a handled object → resume", before, true, undefined, true],
    ["first sight of a new object → create, no resume", obj({ size: 1 }), true, "create", false],
  ];
  for (const [name, object, firstSight, cause, resume] of table) {
    it(name, () => {
      const d = detectCause(object, { keys, finalizer, firstSight });
      assert.equal(d.cause, cause);
      if (resume !== undefined) assert.equal(d.resume, resume);
    });
  }

  it("a handler's own label patch, once in the diff base, is not an update", () => {
    const created = obj({ size: 1 });
    const patch = { metadata: { labels: { handled: "yes" } } };
    const after = mergePatch(created, patch) as KubeObject;
    const base = JSON.stringify(essence(after, keys)); // what the processor stores with the last handler's write
    const next = with_(after, { metadata: { annotations: { [keys.lastHandled]: base } } });
    assert.equal(detectCause(next, { keys, finalizer, firstSight: false }).cause, undefined);
  });
});

describe("planSteps", () => {
  const handlers = [
    h("c", "create"),
    h("u", "update"),
    h("d", "delete"),
    h("r", "resume"),
    h("size", "field", { field: ["spec", "size"] }),
    h("color", "field", { field: ["spec", "color"] }),
    h("only-big", "update", { options: { when: (o: KubeObject) => ((o as { spec?: { size?: number } }).spec?.size ?? 0) > 5 } }),
  ];
  const ids = (s: { handler: ObjectHandler }[]) => s.map((x) => x.handler.id);

  it("create: create handlers and field handlers whose field is set, in registration order", () => {
    const o = obj({ size: 1 });
    const { steps, resume } = planSteps(o, handlers, detectCause(o, { keys, finalizer, firstSight: true }));
    assert.deepEqual(ids(steps), ["c", "size"]);
    assert.deepEqual(resume, []);
    assert.deepEqual(steps[1]?.new, 1);
  });

  it("update: update handlers with a diff; field handlers with old and new; filters apply", () => {
    const o = with_(handled(obj({ size: 1, color: "red" })), { spec: { size: 9 } });
    const { steps } = planSteps(o, handlers, detectCause(o, { keys, finalizer, firstSight: false }));
    assert.deepEqual(ids(steps), ["u", "size", "only-big"]);
    assert.deepEqual(steps[0]?.diff, [{ op: "change", path: ["spec", "size"], old: 1, new: 9 }]);
    assert.deepEqual([steps[1]?.old, steps[1]?.new], [1, 9]);
  });

  it("delete: delete handlers only; resume: resume handlers on first sight", () => {
    const deleting = with_(handled(obj({ size: 1 })), { metadata: { deletionTimestamp: "2026-01-01T00:00:00Z", finalizers: [finalizer] } });
    assert.deepEqual(ids(planSteps(deleting, handlers, detectCause(deleting, { keys, finalizer, firstSight: true })).steps), ["d"]);
    const seenBefore = handled(obj({ size: 1 }));
    const plan = planSteps(seenBefore, handlers, detectCause(seenBefore, { keys, finalizer, firstSight: true }));
    assert.deepEqual([ids(plan.resume), ids(plan.steps)], [["r"], []]);
  });
});
