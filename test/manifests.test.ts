// `kubeloop generate all`: every generated manifest (CRDs, RBAC, Deployment, Service, PDB) and the
// Helm chart's templates, rendered with values, are accepted by the real API server (server-side
// apply, dry run: validated and defaulted by the server, nothing stored).
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as YAML from "yaml";
import { Client, Namespace } from "../src/entries/index.js";
import { call, identityFromKubeconfig, releaseSharedCluster, sharedCluster, uniqueName, type Identity } from "./helpers.js";
import { spawnKubeloop } from "./support.js";

let client: Client;
let id: Identity;
let dir: string;
before(async () => {
  const kubeconfig = (await sharedCluster()).kubeconfigPath;
  client = await Client.load({ path: kubeconfig, rateLimit: false });
  id = identityFromKubeconfig(kubeconfig);
  dir = mkdtempSync(join(tmpdir(), "kubeloop-gen-"));
});
after(async () => {
  await client?.close();
  rmSync(dir, { recursive: true, force: true });
  await releaseSharedCluster();
});

const PLURALS: Record<string, { path: string; namespaced: boolean }> = {
  CustomResourceDefinition: { path: "/apis/apiextensions.k8s.io/v1", namespaced: false },
  ServiceAccount: { path: "/api/v1", namespaced: true },
  Service: { path: "/api/v1", namespaced: true },
  Deployment: { path: "/apis/apps/v1", namespaced: true },
  PodDisruptionBudget: { path: "/apis/policy/v1", namespaced: true },
  Role: { path: "/apis/rbac.authorization.k8s.io/v1", namespaced: true },
  RoleBinding: { path: "/apis/rbac.authorization.k8s.io/v1", namespaced: true },
  ClusterRole: { path: "/apis/rbac.authorization.k8s.io/v1", namespaced: false },
  ClusterRoleBinding: { path: "/apis/rbac.authorization.k8s.io/v1", namespaced: false },
};
const plural = (kind: string) => ({ PodDisruptionBudget: "poddisruptionbudgets", CustomResourceDefinition: "customresourcedefinitions" })[kind] ?? `${kind.toLowerCase()}s`;

type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; spec?: { replicas?: number; template?: { spec?: { containers?: { image?: string }[] } } } };

/** Server-side apply with dryRun=All: the API server validates the object as it would store it. */
async function dryApply(o: Manifest): Promise<{ status: number; body: { message?: string } }> {
  const where = PLURALS[o.kind];
  assert.ok(where, `a kind this test knows: ${o.kind}`);
  const path = `${where.path}${where.namespaced ? `/namespaces/${o.metadata.namespace}` : ""}/${plural(o.kind)}/${o.metadata.name}?dryRun=All&fieldManager=kubeloop-test&force=true`;
  return call(id, "PATCH", path, o, { "content-type": "application/apply-patch+yaml" });
}

const parseAll = (text: string) => YAML.parseAllDocuments(text).map((d) => d.toJS() as Manifest).filter(Boolean);

describe("kubeloop generate all", () => {
  it("the CRDs, RBAC, Deployment, Service and PDB of 16-admission, and its Helm chart rendered, are accepted by the API server", { timeout: 90_000 }, async () => {
    const ns = uniqueName("gen");
    await client.resource(Namespace).create({ metadata: { name: ns } });
    const out = join(dir, "all");
    const gen = spawnKubeloop(["generate", "all", "examples/16-admission/operator.ts", "-o", out, "--namespace", ns, "--image", "registry.example/budgets:1.2.3"]);
    assert.equal(await gen.exited, 0, gen.out());
    for (const f of ["crds.yaml", "rbac.yaml", "deploy.yaml", "kustomization.yaml", "chart/Chart.yaml", "chart/values.yaml", "chart/templates/deploy.yaml"]) assert.ok(existsSync(join(out, f)), `${f} written`);
    assert.deepEqual((YAML.parse(readFileSync(join(out, "kustomization.yaml"), "utf8")) as { resources: string[] }).resources, ["rbac.yaml", "crds.yaml", "deploy.yaml"]);

    const objects = ["crds.yaml", "rbac.yaml", "deploy.yaml"].flatMap((f) => parseAll(readFileSync(join(out, f), "utf8")));
    assert.deepEqual([...new Set(objects.map((o) => o.kind))].sort(), ["ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "Deployment", "PodDisruptionBudget", "Role", "RoleBinding", "Service", "ServiceAccount"]);
    for (const o of objects) {
      const r = await dryApply(o);
      assert.ok(r.status === 200 || r.status === 201, `${o.kind} ${o.metadata.name}: ${r.status} ${r.body.message ?? ""}`);
    }
    const deployment = objects.find((o) => o.kind === "Deployment");
    assert.equal(deployment?.spec?.template?.spec?.containers?.[0]?.image, "registry.example/budgets:1.2.3");

    // The chart, rendered as helm would with values (image, replicas) and a release namespace.
    const render = (text: string) => text.replaceAll("{{ .Values.image | quote }}", '"registry.example/budgets:9.9.9"').replaceAll("{{ .Values.replicas }}", "3").replaceAll("{{ .Release.Namespace }}", ns);
    // Its CRDs are in crds/, where Helm installs them before the templates, unrendered.
    assert.ok(existsSync(join(out, "chart", "crds", "crds.yaml")) && !existsSync(join(out, "chart", "templates", "crds.yaml")), "the CRDs in chart/crds/");
    assert.ok(!readFileSync(join(out, "chart", "crds", "crds.yaml"), "utf8").includes("{{"), "nothing to render in crds/");
    const templates = [join("crds", "crds.yaml"), join("templates", "rbac.yaml"), join("templates", "deploy.yaml")].flatMap((f) => parseAll(render(readFileSync(join(out, "chart", f), "utf8"))));
    assert.ok(!templates.some((o) => JSON.stringify(o).includes("{{")), "every template expression is one of the values");
    for (const o of templates) {
      const r = await dryApply(o);
      assert.ok(r.status === 200 || r.status === 201, `chart ${o.kind} ${o.metadata.name}: ${r.status} ${r.body.message ?? ""}`);
    }
    const rendered = templates.find((o) => o.kind === "Deployment");
    assert.equal(rendered?.spec?.replicas, 3);
    assert.equal(rendered?.spec?.template?.spec?.containers?.[0]?.image, "registry.example/budgets:9.9.9");
    assert.equal(rendered?.metadata.namespace, ns);
  });
});
