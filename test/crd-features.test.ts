// The CRD features a generated CRD carries, checked by the real API server: wrong types, missing
// required fields and failing CEL rules refused naming the field; defaults; int-or-string; enums;
// the scale subresource; selectable fields; printer columns (what `kubectl get <shortname>`
// shows) and descriptions (what `kubectl explain` shows).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Client, CustomResourceDefinition, IntOrString, Namespace, Type, cel, defineResource } from "../src/entries/index.js";
import { installCrd } from "../src/entries/testing.js";
import { call, identityFromKubeconfig, releaseSharedCluster, sharedCluster, uniqueName, type Identity } from "./helpers.js";

const group = `${uniqueName("feat")}.kubeloop.dev`;
const Pool = defineResource({
  group,
  version: "v1",
  kind: "Pool",
  shortNames: [`pl${Date.now().toString(36).slice(-4)}`],
  spec: Type.Object(
    {
      min: Type.Integer({ minimum: 0, description: "The fewest workers the pool keeps." }),
      max: Type.Integer({ description: "The most workers the pool may have." }),
      replicas: Type.Integer({ default: 1 }),
      color: Type.Union([Type.Literal("red"), Type.Literal("blue")], { default: "blue" }),
      surge: Type.Optional(IntOrString({ description: "Extra workers during a change: a number or a percentage." })),
    },
    { ...cel({ rule: "self.min <= self.max", message: "min must not exceed max", fieldPath: ".min" }), description: "How the pool is sized." },
  ),
  status: Type.Object({ replicas: Type.Optional(Type.Integer()), selector: Type.Optional(Type.String()) }),
  scale: { specReplicasPath: ".spec.replicas", statusReplicasPath: ".status.replicas", labelSelectorPath: ".status.selector" },
  selectableFields: [".spec.color"],
  printerColumns: [
    { name: "Min", type: "integer", jsonPath: ".spec.min" },
    { name: "Max", type: "integer", jsonPath: ".spec.max" },
    { name: "Color", type: "string", jsonPath: ".spec.color" },
  ],
});
let client: Client;
let id: Identity;
let ns: string;
before(async () => {
  const kubeconfig = (await sharedCluster()).kubeconfigPath;
  client = await Client.load({ path: kubeconfig, rateLimit: false });
  id = identityFromKubeconfig(kubeconfig);
  await installCrd(client, Pool.crd);
  ns = uniqueName("feat");
  await client.resource(Namespace).create({ metadata: { name: ns } });
});
after(async () => {
  await client?.resource(CustomResourceDefinition).delete(Pool.crd.metadata!.name!).catch(() => {});
  await client?.close();
  await releaseSharedCluster();
});

const path = (name = "", sub = "") => `/apis/${group}/v1/namespaces/${ns}/pools${name ? `/${name}` : ""}${sub ? `/${sub}` : ""}`;
const pool = (name: string, spec: Record<string, unknown>) => ({ apiVersion: `${group}/v1`, kind: "Pool", metadata: { name }, spec });

describe("generated CRD features", () => {
  it("refuses wrong types, missing required fields and failing CEL rules, naming the field", async () => {
    const wrongType = await call(id, "POST", path(), pool("t", { min: "one", max: 3 }));
    assert.equal(wrongType.status, 422);
    assert.match(wrongType.body.message, /spec\.min/);
    const missing = await call(id, "POST", path(), pool("m", { min: 1 }));
    assert.equal(missing.status, 422);
    assert.match(missing.body.message, /spec\.max: Required value/);
    const rule = await call(id, "POST", path(), pool("c", { min: 5, max: 3 }));
    assert.equal(rule.status, 422);
    assert.match(rule.body.message, /spec\.min: .*min must not exceed max/);
    const badEnum = await call(id, "POST", path(), pool("e", { min: 1, max: 3, color: "green" }));
    assert.equal(badEnum.status, 422);
    assert.match(badEnum.body.message, /spec\.color: Unsupported value: "green"/);
  });

  it("applies defaults; int-or-string takes both; scale and selectable fields work; columns and descriptions are served", async () => {
    const created = await call(id, "POST", path(), pool("ok", { min: 1, max: 5, surge: "50%" }));
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.spec.replicas, 1, "default");
    assert.equal(created.body.spec.color, "blue", "default");
    assert.equal((await call(id, "POST", path(), pool("num", { min: 1, max: 5, surge: 2, color: "red" }))).status, 201, "int-or-string takes a number");

    const scale = await call(id, "GET", path("ok", "scale"));
    assert.equal(scale.status, 200, JSON.stringify(scale.body));
    assert.equal(scale.body.spec.replicas, 1);
    const scaled = await call(id, "PATCH", path("ok", "scale"), { spec: { replicas: 4 } }, { "content-type": "application/merge-patch+json" });
    assert.equal(scaled.status, 200, JSON.stringify(scaled.body));
    assert.equal((await call(id, "GET", path("ok"))).body.spec.replicas, 4, "kubectl scale changes spec.replicas");

    const red = await call(id, "GET", `${path()}?fieldSelector=spec.color%3Dred`);
    assert.equal(red.status, 200, JSON.stringify(red.body));
    assert.deepEqual(red.body.items.map((i: { metadata: { name: string } }) => i.metadata.name), ["num"]);

    const table = await call(id, "GET", path(), undefined, { accept: "application/json;as=Table;v=v1;g=meta.k8s.io" });
    assert.deepEqual(table.body.columnDefinitions.map((c: { name: string }) => c.name), ["Name", "Min", "Max", "Color"], "kubectl get shows the printer columns");
    const byShortName = await call(id, "GET", `/apis/${group}/v1`);
    assert.ok(byShortName.body.resources.some((r: { shortNames?: string[] }) => r.shortNames?.includes(Pool.crd.spec.names.shortNames![0]!)), "the short name is served (kubectl get <shortname>)");

    const openapi = await call(id, "GET", `/openapi/v3/apis/${group}/v1`);
    assert.equal(openapi.status, 200);
    const text = JSON.stringify(openapi.body);
    for (const description of ["The fewest workers the pool keeps.", "Extra workers during a change: a number or a percentage.", "How the pool is sized."]) assert.ok(text.includes(description), `kubectl explain shows "${description}"`);
  });
});
