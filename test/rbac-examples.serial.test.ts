// Every example operator runs its own e2e test as its generated ServiceAccount (RBAC
// authorization on): the test passes and the operator is refused nothing. The operator under
// test gets the ServiceAccount's token through KUBELOOP_OPERATOR_KUBECONFIG (runOperator); the
// test itself keeps the admin identity to set the scene and check the result.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Client, ClusterRole, ClusterRoleBinding, Operator, type KubeObject } from "../src/index.js";
import { rbacManifests } from "../src/manifests/rbac.js";
import { applyRbac, createNamespace, identityFromKubeconfig, releaseSharedCluster, serviceAccountToken, sharedCluster, tokenKubeconfig, type Identity } from "./helpers.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const EXAMPLES = ["01-pod-autoscaler", "04-state-in-crds", "05-children-status", "10-minimal", "11-children", "12-errors", "13-timers-daemons", "14-fields-and-diffs", "15-subhandlers", "16-admission"];
let client: Client;
let id: Identity;
let kubeconfig: string;
let dir: string;
const cleanup: (() => Promise<unknown>)[] = [];
before(async () => {
  kubeconfig = (await sharedCluster()).kubeconfigPath;
  client = await Client.load({ path: kubeconfig, rateLimit: false });
  id = identityFromKubeconfig(kubeconfig);
  dir = mkdtempSync(join(tmpdir(), "kubeloop-rbacex-"));
});
after(async () => {
  for (const c of cleanup) await c().catch(() => {});
  await client?.close();
  rmSync(dir, { recursive: true, force: true });
  await releaseSharedCluster();
});

/** The RBAC objects, created anew; cluster-scoped ones are deleted at the end. */
async function create(objects: KubeObject[]): Promise<void> {
  await applyRbac(client, objects);
  for (const o of objects) {
    if (o.kind === "ClusterRole") cleanup.push(() => client.resource(ClusterRole).delete(o.metadata?.name ?? ""));
    if (o.kind === "ClusterRoleBinding") cleanup.push(() => client.resource(ClusterRoleBinding).delete(o.metadata?.name ?? ""));
  }
}

describe("every example as its generated ServiceAccount", () => {
  for (const example of EXAMPLES) {
    it(`${example}: its e2e test passes, zero refusals`, { timeout: 180_000 }, async () => {
      const mod = (await import(pathToFileURL(join(root, "examples", example, "operator.ts")).href)) as Record<string, unknown>;
      const op = Object.values(mod).find((v): v is Operator => v instanceof Operator);
      assert.ok(op, `${example} exports an Operator`);
      const ns = await createNamespace(client, "rbacex");
      await create(rbacManifests(op.access(ns), { name: op.name, namespace: ns }) as KubeObject[]);
      const identity = tokenKubeconfig(id, ns, await serviceAccountToken(id, ns, op.name), join(dir, `${example}.kubeconfig`));
      const testFile = readdirSync(join(root, "examples", example)).find((f) => f.endsWith(".test.ts"));
      const env: NodeJS.ProcessEnv = { ...process.env, KUBELOOP_KUBECONFIG: kubeconfig, KUBELOOP_OPERATOR_KUBECONFIG: identity };
      delete env.NODE_TEST_CONTEXT;
      const child = spawn(process.execPath, ["--import", "tsx", "--test", join("examples", example, testFile ?? "")], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"] });
      let output = "";
      child.stdout.on("data", (d: Buffer) => (output += d.toString()));
      child.stderr.on("data", (d: Buffer) => (output += d.toString()));
      const code = await new Promise<number | null>((r) => child.on("exit", r));
      const refusals = output.split("\n").filter((l) => /ForbiddenError|is forbidden/.test(l));
      assert.equal(code, 0, `the e2e test failed as ${op.name}'s ServiceAccount:\n${output.slice(-3000)}`);
      assert.deepEqual(refusals.map((l) => l.slice(0, 300)), [], "refused requests");
    });
  }
});
