// Unit tests of the handler layer's pure parts: namespace scope, diffs and paths, filters, indexes.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { diff, getPath } from "./diff.js";
import { HandlerRetriesError, HandlerTimeoutError, PermanentError } from "./errors.js";
import { TerminalError } from "../core/errors.js";
import { ABSENT, PRESENT, matches } from "./filters.js";
import { IndexSet } from "./indexes.js";
import { namespaceMatcher, singleNamespace, watchScope } from "./scope.js";
import { baseValue, encodeDiffBase, essence, isCompact, progressKeys, sameEssence } from "./progress.js";

describe("namespace scope", () => {
  it("matches names, globs and negations", () => {
    const m = namespaceMatcher(["team-*", "ops", "!team-secret"]);
    assert.equal(m("team-a"), true);
    assert.equal(m("ops"), true);
    assert.equal(m("team-secret"), false);
    assert.equal(m("default"), false);
    assert.equal(m(undefined), true, "cluster-scoped objects");
    assert.equal(namespaceMatcher(["!kube-*"])("default"), true);
    assert.equal(namespaceMatcher(["!kube-*"])("kube-system"), false);
    assert.equal(namespaceMatcher(undefined)("anything"), true);
    assert.equal(singleNamespace(["ops"]), "ops");
    assert.equal(singleNamespace(["team-*"]), undefined);
    assert.equal(singleNamespace(["a", "b"]), undefined);
  });
});

describe("diff", () => {
  it("lists adds, changes and removes by path; arrays as wholes", () => {
    assert.deepEqual(diff({ spec: { a: 1, b: [1], c: "x" } }, { spec: { a: 2, b: [1, 2], d: true } }), [
      { op: "change", path: ["spec", "a"], old: 1, new: 2 },
      { op: "change", path: ["spec", "b"], old: [1], new: [1, 2] },
      { op: "remove", path: ["spec", "c"], old: "x", new: undefined },
      { op: "add", path: ["spec", "d"], old: undefined, new: true },
    ]);
    assert.deepEqual(diff({ a: { b: 1 } }, { a: { b: 1 } }), []);
    assert.equal(getPath({ spec: { x: [{ y: 3 }] } }, "spec.x.0.y"), 3);
    assert.equal(getPath({ spec: {} }, "spec.x.y"), undefined);
  });
  it("leaves our own annotations and status out of the essence", () => {
    const keys = progressKeys("op.kubeloop.dev");
    const e = essence(
      { apiVersion: "v1", kind: "X", metadata: { name: "n", resourceVersion: "5", labels: { a: "b" }, annotations: { "op.kubeloop.dev/progress": "{}", note: "keep" } }, spec: { s: 1 }, status: { t: 2 } } as never,
      keys,
    );
    assert.deepEqual(e, { metadata: { labels: { a: "b" }, annotations: { note: "keep" } }, spec: { s: 1 } });
  });
});

describe("filters", () => {
  it("match labels and annotations by value, presence, absence, predicate; then when()", () => {
    const o = { metadata: { name: "n", labels: { tier: "web", env: "prod" }, annotations: { owner: "alice" } } };
    assert.equal(matches(o, { labels: { tier: "web", env: PRESENT, canary: ABSENT } }), true);
    assert.equal(matches(o, { labels: { tier: "db" } }), false);
    assert.equal(matches(o, { annotations: { owner: (v) => v?.startsWith("a") ?? false } }), true);
    assert.equal(matches(o, { annotations: { owner: ABSENT } }), false);
    assert.equal(matches(o, { when: (x) => x.metadata.name === "m" }), false);
  });
});

describe("indexes", () => {
  it("follow applies and deletes", () => {
    const set = new IndexSet();
    set.declare("by-app");
    const fn = (o: { metadata?: { labels?: Record<string, string>; name?: string } }) => (o.metadata?.labels?.app ? { [o.metadata.labels.app]: o.metadata.name } : undefined);
    set.apply("by-app", fn as never, { type: "initApply", object: { metadata: { name: "a", namespace: "n", labels: { app: "x" } } } });
    set.apply("by-app", fn as never, { type: "apply", object: { metadata: { name: "b", namespace: "n", labels: { app: "x" } } } });
    assert.deepEqual(set.view.get("by-app")?.get("x"), ["a", "b"]);
    set.apply("by-app", fn as never, { type: "apply", object: { metadata: { name: "a", namespace: "n", labels: { app: "y" } } } });
    assert.deepEqual(set.view.get("by-app")?.get("x"), ["b"]);
    set.apply("by-app", fn as never, { type: "delete", object: { metadata: { name: "b", namespace: "n" } } });
    assert.equal(set.view.get("by-app")?.has("x"), false);
    assert.deepEqual(set.view.get("by-app")?.get("y"), ["a"]);
  });
});

describe("essence and co-tenancy", () => {
  const keys = progressKeys("alpha.kubeloop.dev");
  const object = (annotations: Record<string, string>) => ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x", annotations }, data: { a: "1" } });

  it("leaves out every kubeloop operator's annotations, not only its own", () => {
    const table: [Record<string, string>, Record<string, string> | undefined][] = [
      [{ "alpha.kubeloop.dev/last-handled": "{}", "alpha.kubeloop.dev/progress": "{}" }, undefined],
      [{ "beta.kubeloop.dev/last-handled": '{"data":{"a":"1"}}', "beta.kubeloop.dev/progress": "{}" }, undefined],
      [{ "kubeloop.dev/anything": "x", "team.example.com/owner": "me" }, { "team.example.com/owner": "me" }],
      [{ "kubectl.kubernetes.io/last-applied-configuration": "{}" }, undefined],
      [{ "notkubeloop.dev/x": "kept" }, { "notkubeloop.dev/x": "kept" }],
      [{ "kopf.zalando.org/last-handled-configuration": "{}", "kopf.zalando.org/create_fn": "{}" }, undefined],
      [{ "my-op.example.com/last-handled-configuration": "{}" }, undefined],
    ];
    for (const [annotations, kept] of table) {
      const e = essence(object(annotations), keys) as { metadata?: { annotations?: Record<string, string> } };
      assert.deepEqual(e.metadata?.annotations, kept, JSON.stringify(annotations));
    }
  });

  it("two operators writing their diff bases do not change each other's essence (no ping-pong, no growth)", () => {
    const beta = progressKeys("beta.kubeloop.dev");
    let obj = object({});
    const sizes: number[] = [];
    for (let round = 0; round < 8; round++) {
      const a = JSON.stringify(essence(obj, keys));
      obj = object({ ...obj.metadata.annotations, [keys.lastHandled]: a });
      const b = JSON.stringify(essence(obj, beta));
      obj = object({ ...obj.metadata.annotations, [beta.lastHandled]: b });
      sizes.push(JSON.stringify(obj.metadata.annotations).length);
    }
    assert.equal(new Set(sizes).size, 1, `annotations grew: ${sizes.join(" → ")}`);
    assert.deepEqual(essence(obj, keys), essence(obj, beta));
  });

  it("an operator with its own prefix outside kubeloop.dev still leaves out its own annotations", () => {
    const custom = progressKeys("ops.example.com");
    const e = essence(object({ "ops.example.com/last-handled": "{}", "ops.example.com/progress": "{}" }), custom);
    assert.equal(e.metadata, undefined);
  });
});

describe("watch scope", () => {
  it("exact names watch per namespace; globs and negations watch cluster-wide; cluster-scoped kinds are never narrowed", () => {
    assert.deepEqual(watchScope(["a"]).forKind({ namespaced: true }), { namespace: "a" });
    assert.deepEqual(watchScope(["a", "b", "a"]).forKind({}), { namespaces: ["a", "b"] });
    assert.deepEqual(watchScope(["team-*"]).forKind({ namespaced: true }), {});
    assert.deepEqual(watchScope(["a", "!b"]).forKind({ namespaced: true }), {});
    assert.deepEqual(watchScope(["a", "b"]).forKind({ namespaced: false }), {});
    assert.deepEqual(watchScope(undefined).forKind({}), {});
    assert.equal(watchScope(["a", "b"]).matches("c"), false);
  });
});

describe("diff base encoding", () => {
  it("keeps a small essence whole, and a large one as a digest plus the watched fields", () => {
    const small = { data: { a: "1" } };
    assert.deepEqual(encodeDiffBase(small, []), { text: JSON.stringify(small), compact: false });
    const large = { data: { blob: "x".repeat(200), mode: "a" } };
    const { text, compact } = encodeDiffBase(large, [["data", "mode"]], 100);
    assert.equal(compact, true);
    const base = JSON.parse(text) as Record<string, unknown>;
    assert.equal(isCompact(base), true);
    assert.equal(sameEssence(base, { data: { mode: "a", blob: "x".repeat(200) } }), true, "key order does not matter");
    assert.equal(sameEssence(base, { data: { blob: "y".repeat(200), mode: "a" } }), false);
    assert.equal(baseValue(base, ["data", "mode"]), "a");
    assert.equal(baseValue(base, ["data", "blob"]), undefined, "only watched fields are kept");
  });
});

describe("one error policy for both levels", () => {
  it("PermanentError and its kin are TerminalErrors", () => {
    assert.ok(new PermanentError("x") instanceof TerminalError);
    assert.ok(new HandlerTimeoutError("x") instanceof TerminalError);
    assert.ok(new HandlerRetriesError("x") instanceof PermanentError);
    assert.equal(new PermanentError("x").reason, "Permanent");
    assert.equal(new TerminalError("x").reason, "Terminal");
  });
});

describe("retryDelay: the handler level's one retry policy", () => {
  it("a TemporaryError's own delay; else doubling from the backoff up to 60 s, or the same each time", async () => {
    const { retryDelay, TemporaryError } = await import("./errors.js");
    assert.equal(retryDelay(new TemporaryError("later", { delayMs: 1234 }), 5, { ms: 1_000, doubling: true }), 1234);
    assert.deepEqual([0, 1, 2, 3, 10].map((r) => retryDelay(new Error("x"), r, { ms: 1_000, doubling: true })), [1_000, 2_000, 4_000, 8_000, 60_000]);
    assert.deepEqual([0, 7].map((r) => retryDelay(new Error("x"), r, { ms: 10_000, doubling: false })), [10_000, 10_000]);
  });
});
