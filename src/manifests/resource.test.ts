// Unit tests of defineResource: names, the structural schema, the static type, refusals.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Type } from "@sinclair/typebox";
import { IntOrString, SchemaError, cel, defineResource, structural } from "./resource.js";

describe("defineResource", () => {
  const Policy = defineResource({
    group: "examples.kubeloop.dev",
    version: "v1",
    kind: "Policy",
    shortNames: ["pol"],
    spec: Type.Object({
      max: Type.Integer({ minimum: 1 }),
      mode: Type.Union([Type.Literal("strict"), Type.Literal("lax")]),
      labels: Type.Optional(Type.Record(Type.String(), Type.String())),
      extra: Type.Optional(Type.Unknown()),
      targets: Type.Array(Type.String({ minLength: 1 })),
    }),
    status: Type.Object({ replicas: Type.Optional(Type.Integer()) }),
  });

  it("names the kind and its CRD", () => {
    assert.equal(Policy.apiVersion, "examples.kubeloop.dev/v1");
    assert.equal(Policy.plural, "policies");
    assert.equal(Policy.namespaced, true);
    assert.equal(Policy.crd.metadata?.name, "policies.examples.kubeloop.dev");
    assert.deepEqual(Policy.crd.spec.names.shortNames, ["pol"]);
    assert.deepEqual(Policy.crd.spec.versions[0]?.subresources, { status: {} });
  });

  it("converts TypeBox to a structural schema", () => {
    const spec = (Policy.crd.spec.versions[0]?.schema?.openAPIV3Schema?.properties as Record<string, unknown>).spec;
    assert.deepEqual(spec, {
      type: "object",
      properties: {
        max: { minimum: 1, type: "integer" },
        mode: { type: "string", enum: ["strict", "lax"] },
        labels: { type: "object", additionalProperties: { type: "string" } },
        extra: { "x-kubernetes-preserve-unknown-fields": true },
        targets: { type: "array", items: { minLength: 1, type: "string" } },
      },
      required: ["max", "mode", "targets"],
    });
  });

  it("int-or-string, CEL rules, scale, selectable fields and further versions reach the CRD", () => {
    assert.deepEqual(structural(IntOrString(), "x"), { "x-kubernetes-int-or-string": true });
    assert.deepEqual(structural(Type.Object({ a: Type.Integer() }, cel({ rule: "self.a > 0", message: "positive" })), "x")["x-kubernetes-validations"], [{ rule: "self.a > 0", message: "positive" }]);
    const R = defineResource({ group: "ex.com", version: "v2", kind: "R", spec: Type.Object({}), scale: { specReplicasPath: ".spec.n", statusReplicasPath: ".status.n" }, selectableFields: [".spec.c"], versions: { v1: { spec: Type.Object({}), deprecated: "old" } } });
    const [v2, v1] = R.crd.spec.versions;
    assert.deepEqual(v2?.subresources, { scale: { specReplicasPath: ".spec.n", statusReplicasPath: ".status.n" } });
    assert.deepEqual(v2?.selectableFields, [{ jsonPath: ".spec.c" }]);
    assert.equal(v2?.storage, true);
    assert.deepEqual([v1?.name, v1?.storage, v1?.deprecated, v1?.deprecationWarning], ["v1", false, true, "old"]);
    assert.deepEqual(R.versions, ["v2", "v1"]);
    assert.equal(R.at("v1").apiVersion, "ex.com/v1");
    assert.throws(() => R.at("v3"), /no version "v3"/);
  });

  it("gives objects a static type", () => {
    const p: typeof Policy.__object = { metadata: { name: "p" }, spec: { max: 3, mode: "lax", targets: [] } };
    const max: number | undefined = p?.spec.max;
    assert.equal(max, 3);
  });

  it("refuses schemas the API server cannot serve, naming the path", () => {
    assert.throws(() => structural(Type.Object({ a: Type.Union([Type.String(), Type.Object({ b: Type.String() })]) }), "spec"), (e: unknown) => e instanceof SchemaError && /spec\.a/.test(e.message));
    assert.throws(() => defineResource({ group: "nodot", version: "v1", kind: "X", spec: Type.Object({}) }), /DNS subdomain/);
    assert.throws(() => defineResource({ group: "a.b", version: "v1", kind: "lower", spec: Type.Object({}) }), /CamelCase/);
  });
});
