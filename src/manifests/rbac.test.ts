// RBAC from access needs (no server): merging, Roles per served namespace, the Lease's Role.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { rbacManifests, rules, type AccessNeed } from "./rbac.js";

const need = (n: Partial<AccessNeed> & Pick<AccessNeed, "resource" | "verbs">): AccessNeed => ({ group: "", namespaced: true, why: "test", ...n });

describe("RBAC from access needs", () => {
  it("merges verbs per resource, keeps resourceNames apart, sorts", () => {
    assert.deepEqual(rules([need({ resource: "configmaps", verbs: ["watch", "get"] }), need({ resource: "configmaps", verbs: ["patch", "get"] }), need({ group: "x.io", resource: "things", verbs: ["get"], resourceNames: ["mine"] }), need({ group: "x.io", resource: "things", verbs: ["create"] })]), [
      { apiGroups: [""], resources: ["configmaps"], verbs: ["get", "patch", "watch"] },
      { apiGroups: ["x.io"], resources: ["things"], verbs: ["get"], resourceNames: ["mine"] },
      { apiGroups: ["x.io"], resources: ["things"], verbs: ["create"] },
    ]);
  });

  it("an operator of exact namespaces gets one Role per namespace; cluster-scoped needs a ClusterRole; the Lease its own namespace", () => {
    const objects = rbacManifests(
      [need({ resource: "configmaps", verbs: ["get"] }), need({ group: "x.io", resource: "clusterthings", namespaced: false, verbs: ["list"] }), need({ group: "coordination.k8s.io", resource: "leases", namespace: "ops", verbs: ["get"] })],
      { name: "op", namespace: "ops", namespaces: ["a", "b"] },
    );
    assert.deepEqual(
      objects.map((o) => `${o.kind} ${o.metadata?.namespace ?? ""}`.trim()),
      ["ServiceAccount ops", "ClusterRole", "ClusterRoleBinding", "Role a", "RoleBinding a", "Role b", "RoleBinding b", "Role ops", "RoleBinding ops"],
    );
    const roleA = objects.find((o) => o.kind === "Role" && o.metadata?.namespace === "a") as { rules: unknown[] };
    assert.deepEqual(roleA.rules, [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get"] }]);
  });
});
