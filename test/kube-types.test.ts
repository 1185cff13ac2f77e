// The built-in kinds' types (src/core/kube/) are what `npm run kube-types` makes from the OpenAPI
// v3 of the kube-apiserver the project ships: regenerated from the shared cluster's documents,
// they equal the committed files. The declarations below are checked by tsc (`npm run typecheck`):
// fields new since kubernetes-types 1.30 are typed, apiVersion and kind are literals.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { after, describe, it } from "node:test";
import { fetchSchemas, render } from "../scripts/kube-types.js";
import { Client } from "../src/entries/index.js";
import type { Deployment, DeploymentStatus } from "../src/core/kube/apps/v1.js";
import type { PodSpec } from "../src/core/kube/core/v1.js";
import type { ListMeta } from "../src/core/kube/meta/v1.js";
import { pinnedKubernetesVersion } from "../src/testing/control-plane/binaries.js";
import { releaseSharedCluster, sharedCluster } from "./helpers.js";

const dir = join(import.meta.dirname, "..", "src", "core", "kube");
after(releaseSharedCluster);

// New since 1.30: ListMeta.shardInfo (1.37, KEP-5866), PodSpec.hostnameOverride (1.34),
// Container.restartPolicyRules (1.34), DeploymentStatus.terminatingReplicas (1.33).
export const sharded: ListMeta = { resourceVersion: "1", shardInfo: { selector: "shardRange(object.metadata.uid, '0x0', '0x8000000000000000')" } };
export const pod: PodSpec = { hostnameOverride: "web-0", containers: [{ name: "web", restartPolicy: "Always", restartPolicyRules: [{ action: "Restart", exitCodes: { operator: "In", values: [42] } }] }] };
export const status: DeploymentStatus = { terminatingReplicas: 1 };
export const deployment: Deployment = { apiVersion: "apps/v1", kind: "Deployment", spec: { selector: {}, template: {} } };
// @ts-expect-error a field no version of Kubernetes has
export const wrong: PodSpec = { containers: [], notAField: true };
// @ts-expect-error a Deployment's apiVersion is apps/v1
export const core: Deployment = { apiVersion: "v1", spec: { selector: {}, template: {} } };

function files(at: string): string[] {
  return readdirSync(at, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(at, e.name)) : [join(at, e.name)]));
}

describe("the built-in kinds' types", () => {
  it("are what the API server's OpenAPI v3 gives (npm run kube-types)", { timeout: 120_000 }, async (t) => {
    const cluster = await sharedCluster();
    const client = await Client.load({ path: cluster.kubeconfigPath, rateLimit: false });
    try {
      const { gitVersion } = await client.request<{ gitVersion: string }>({ method: "GET", path: "/version" });
      // The types are those of the Kubernetes the local control plane pins; another cluster's differ.
      const pinned = await pinnedKubernetesVersion();
      if (gitVersion !== pinned) return t.skip(`the cluster runs ${gitVersion}, not the local control plane's ${pinned}`);
      const modules = render(await fetchSchemas(client), `kube-apiserver ${gitVersion}`);
      assert.ok(modules.has("core/v1") && modules.has("apps/v1") && modules.has("meta/v1"), "the core, apps and meta modules are made");
      const committed = new Map(files(dir).map((f) => [relative(dir, f).replace(/\.ts$/, ""), readFileSync(f, "utf8")]));
      assert.deepEqual([...committed.keys()].sort(), [...modules.keys()].sort(), "the same modules: run `npm run kube-types`");
      for (const [module, source] of modules) assert.equal(committed.get(module), source, `src/core/kube/${module}.ts is stale: run \`npm run kube-types\``);
    } finally {
      await client.close();
    }
  });
});
