// The local control plane serves a real Kubernetes API: discovery, CRDs with schema validation,
// garbage collection, namespace deletion and RBAC. Runs against the run's shared cluster.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  call,
  eventually,
  identityFromKubeconfig,
  releaseSharedCluster,
  sharedCluster,
  uniqueName,
  type Identity,
} from "./helpers.js";

let admin: Identity;

before(async () => {
  const cluster = await sharedCluster();
  admin = identityFromKubeconfig(cluster.kubeconfigPath);
});
after(releaseSharedCluster);

describe("local control plane", () => {
  it("lists namespaces over plain HTTPS with the admin certificate", async () => {
    const answer = await call(admin, "GET", "/api/v1/namespaces");
    assert.equal(answer.status, 200);
    const names = answer.body.items.map((n: { metadata: { name: string } }) => n.metadata.name);
    for (const expected of ["default", "kube-system", "kube-public"]) assert.ok(names.includes(expected), `${expected} in ${names}`);
  });

  it("reports the pinned Kubernetes release at /version", async () => {
    const answer = await call(admin, "GET", "/version");
    assert.equal(answer.status, 200);
    assert.match(answer.body.gitVersion, /^v1\.\d+\.\d+$/);
  });

  it("serves a CRD: Established, objects round-trip, schema violations are 422", { timeout: 60_000 }, async () => {
    const group = `${uniqueName("g")}.test.kubeloop.dev`;
    const crd = {
      apiVersion: "apiextensions.k8s.io/v1",
      kind: "CustomResourceDefinition",
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
            schema: {
              openAPIV3Schema: {
                type: "object",
                properties: {
                  spec: {
                    type: "object",
                    required: ["size"],
                    properties: { size: { type: "integer", minimum: 1 }, color: { type: "string" } },
                  },
                },
              },
            },
          },
        ],
      },
    };
    const created = await call(admin, "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    try {
      await eventually("the CRD to be Established", async () => {
        const got = await call(admin, "GET", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.${group}`);
        return got.body.status?.conditions?.some((c: { type: string; status: string }) => c.type === "Established" && c.status === "True");
      });
      const base = `/apis/${group}/v1/namespaces/default/widgets`;
      const widget = { apiVersion: `${group}/v1`, kind: "Widget", metadata: { name: "w1" }, spec: { size: 3, color: "red" } };
      // Discovery of a new group can lag Established by a moment: retry the first create briefly.
      const made = await eventually("the widget to be created", async () => {
        const answer = await call(admin, "POST", base, widget);
        return answer.status === 201 ? answer : undefined;
      });
      assert.equal(made.body.metadata.name, "w1");
      const read = await call(admin, "GET", `${base}/w1`);
      assert.equal(read.status, 200);
      assert.deepEqual(read.body.spec, { size: 3, color: "red" });

      const bad = await call(admin, "POST", base, { ...widget, metadata: { name: "w2" }, spec: { size: 0 } });
      assert.equal(bad.status, 422, JSON.stringify(bad.body));
      assert.equal(bad.body.reason, "Invalid");
      assert.match(JSON.stringify(bad.body.details.causes), /spec\.size/);
      const missing = await call(admin, "POST", base, { ...widget, metadata: { name: "w3" }, spec: { color: "blue" } });
      assert.equal(missing.status, 422);
    } finally {
      await call(admin, "DELETE", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.${group}`);
    }
  });

  it("garbage-collects a child when its owner is deleted", { timeout: 120_000 }, async () => {
    const base = "/api/v1/namespaces/default/configmaps";
    const owner = await call(admin, "POST", base, { metadata: { name: uniqueName("owner") }, data: { a: "1" } });
    assert.equal(owner.status, 201);
    const childName = uniqueName("child");
    const child = await call(admin, "POST", base, {
      metadata: {
        name: childName,
        ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: owner.body.metadata.name, uid: owner.body.metadata.uid }],
      },
    });
    assert.equal(child.status, 201);
    const deleted = await call(admin, "DELETE", `${base}/${owner.body.metadata.name}`);
    assert.equal(deleted.status, 200);
    // The garbage collector deletes the dependent in the background.
    await eventually("the child to be garbage-collected", async () => (await call(admin, "GET", `${base}/${childName}`)).status === 404, {
      timeoutMs: 100_000,
    });
  });

  it("completes the deletion of a namespace with objects in it", { timeout: 120_000 }, async () => {
    const ns = uniqueName("ns");
    assert.equal((await call(admin, "POST", "/api/v1/namespaces", { metadata: { name: ns } })).status, 201);
    for (const name of ["a", "b"]) {
      assert.equal((await call(admin, "POST", `/api/v1/namespaces/${ns}/configmaps`, { metadata: { name } })).status, 201);
    }
    assert.equal((await call(admin, "DELETE", `/api/v1/namespaces/${ns}`)).status, 200);
    // The namespace controller empties it, then removes the 'kubernetes' finalizer.
    await eventually("the namespace to be gone", async () => (await call(admin, "GET", `/api/v1/namespaces/${ns}`)).status === 404, {
      timeoutMs: 100_000,
    });
  });

  it("enforces RBAC: an identity with no bindings is forbidden", async () => {
    const nobody = { "Impersonate-User": uniqueName("nobody") };
    const answer = await call(admin, "GET", "/api/v1/namespaces/default/configmaps", undefined, nobody);
    assert.equal(answer.status, 403, JSON.stringify(answer.body));
    assert.equal(answer.body.reason, "Forbidden");
    // The admin itself (system:masters) is allowed the same call.
    assert.equal((await call(admin, "GET", "/api/v1/namespaces/default/configmaps")).status, 200);
  });
});
