// Every example operator runs its own e2e test as its generated ServiceAccount (RBAC
// authorization on): the test passes and the operator is refused nothing. The operator under
// test gets the ServiceAccount's token through KUBELOOP_OPERATOR_KUBECONFIG (runOperator); the
// test itself keeps the admin identity to set the scene and check the result.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as YAML from "yaml";
import { Client, ClusterRole, ClusterRoleBinding, Namespace, Operator, Role, RoleBinding, ServiceAccount, type KubeObject } from "../src/index.js";
import { rbacManifests } from "../src/manifests/rbac.js";
import { call, identityFromKubeconfig, releaseSharedCluster, sharedCluster, uniqueName, type Identity } from "./helpers.js";

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

async function create(o: KubeObject): Promise<void> {
  const kind = { ServiceAccount, ClusterRole, ClusterRoleBinding, Role, RoleBinding }[o.kind as "Role"];
  const resource = o.metadata?.namespace ? client.resource(kind).namespace(o.metadata.namespace) : client.resource(kind);
  await resource.delete(o.metadata?.name ?? "").catch(() => {});
  await resource.create(o as never);
  if (!o.metadata?.namespace) cleanup.push(() => client.resource(kind).delete(o.metadata?.name ?? ""));
}

describe("every example as its generated ServiceAccount", () => {
  for (const example of EXAMPLES) {
    it(`${example}: its e2e test passes, zero refusals`, { timeout: 180_000 }, async () => {
      const mod = (await import(pathToFileURL(join(root, "examples", example, "operator.ts")).href)) as Record<string, unknown>;
      const op = Object.values(mod).find((v): v is Operator => v instanceof Operator);
      assert.ok(op, `${example} exports an Operator`);
      const ns = uniqueName("rbacex");
      await client.resource(Namespace).create({ metadata: { name: ns } });
      for (const o of rbacManifests(op.access(ns), { name: op.name, namespace: ns })) await create(o as KubeObject);
      const token = await call(id, "POST", `/api/v1/namespaces/${ns}/serviceaccounts/${op.name}/token`, { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 3600 } });
      assert.equal(token.status, 201, JSON.stringify(token.body));
      const identity = join(dir, `${example}.kubeconfig`);
      writeFileSync(
        identity,
        YAML.stringify({
          apiVersion: "v1",
          kind: "Config",
          clusters: [{ name: "c", cluster: { server: id.server, "certificate-authority-data": Buffer.from(id.ca).toString("base64") } }],
          users: [{ name: "sa", user: { token: token.body.status.token } }],
          contexts: [{ name: "sa", context: { cluster: "c", user: "sa", namespace: ns } }],
          "current-context": "sa",
        }),
      );
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
