// The RBAC proof (issue 16): an example operator runs as its generated ServiceAccount, with
// in-cluster config as a Pod would have it (KUBERNETES_SERVICE_HOST/PORT, a TokenRequest token and
// ca.crt in a service account directory), RBAC authorization on: its scenario passes with zero
// 403s; and with any single generated rule removed, the scenario fails (each rule is needed).
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Client, ClusterRole, ClusterRoleBinding, type KubeObject } from "../src/entries/index.js";
import { rbacManifests } from "../src/manifests/rbac.js";
import { Greeting, op } from "../examples/10-minimal/operator.js";
import { installCrd } from "../src/entries/testing.js";
import { applyRbac, call, createNamespace, eventually, identityFromKubeconfig, releaseSharedCluster, serviceAccountToken, sharedCluster, type Identity } from "./helpers.js";
import { spawnKubeloop } from "./support.js";

let client: Client;
let id: Identity;
let dir: string;
before(async () => {
  const kubeconfig = (await sharedCluster()).kubeconfigPath;
  client = await Client.load({ path: kubeconfig, rateLimit: false });
  id = identityFromKubeconfig(kubeconfig);
  dir = mkdtempSync(join(tmpdir(), "kubeloop-rbacgen-"));
  await installCrd(client, Greeting.crd);
});
after(async () => {
  await client.resource(ClusterRoleBinding).delete(op.name).catch(() => {});
  await client.resource(ClusterRole).delete(op.name).catch(() => {});
  await client?.close();
  rmSync(dir, { recursive: true, force: true });
  await releaseSharedCluster();
});

/** Runs the example as the ServiceAccount, in-cluster style; creates a Greeting; says whether it was handled with zero 403s. */
async function scenario(ns: string, saDir: string, name: string): Promise<{ ok: boolean; why: string }> {
  const server = new URL(id.server);
  const run = spawnKubeloop(["run", "examples/10-minimal/operator.ts", "-n", ns, "--metrics-bind", "0", "--health-bind", "0", "--log-format", "json"], {
    ...process.env,
    KUBECONFIG: "",
    HOME: dir, // no ~/.kube/config to fall back on
    KUBERNETES_SERVICE_HOST: server.hostname,
    KUBERNETES_SERVICE_PORT: server.port,
    KUBELOOP_SERVICE_ACCOUNT_DIR: saDir,
  });
  try {
    await client.resource(Greeting).namespace(ns).create({ metadata: { name }, spec: { name } });
    const handled = await eventually(`${name} handled`, async () => ((await client.resource(Greeting).namespace(ns).get(name)).status as { greet?: unknown })?.greet !== undefined, { timeoutMs: 20_000 }).then(
      () => true,
      () => false,
    );
    // Events are written asynchronously: give the handler's Event a moment to be refused or not.
    if (handled) await eventually("the handler's Event", async () => (await call(id, "GET", `/apis/events.k8s.io/v1/namespaces/${ns}/events`)).body.items?.some((e: { note?: string }) => e.note === `greeting ${name}`), { timeoutMs: 5_000 }).catch(() => {});
    const forbidden = run.out().split("\n").filter((l) => /ForbiddenError|is forbidden/.test(l));
    if (!handled) return { ok: false, why: `not handled${forbidden.length ? `; ${forbidden[0]?.slice(0, 300)}` : ""}` };
    if (forbidden.length) return { ok: false, why: `handled, but ${forbidden.length} refusals: ${forbidden[0]?.slice(0, 300)}` };
    return { ok: true, why: "handled, no 403" };
  } finally {
    run.kill("SIGTERM");
    await run.exited;
  }
}

describe("generated RBAC", () => {
  it("10-minimal runs as its generated ServiceAccount with zero 403s; without any one generated rule it fails", { timeout: 300_000 }, async (t) => {
    const ns = await createNamespace(client, "rbacgen");
    const objects = rbacManifests(op.access(ns), { name: op.name, namespace: ns }) as KubeObject[];
    await applyRbac(client, objects);
    // The service account directory a Pod would have: a token from the TokenRequest API, the CA, the namespace.
    const saDir = join(dir, ns);
    const token = await serviceAccountToken(id, ns, op.name);
    mkdirSync(saDir, { recursive: true });
    writeFileSync(join(saDir, "token"), token);
    writeFileSync(join(saDir, "ca.crt"), id.ca);
    writeFileSync(join(saDir, "namespace"), ns);

    const full = await scenario(ns, saDir, "full");
    assert.ok(full.ok, `with the generated RBAC: ${full.why}`);

    // Each rule alone removed: some part of the scenario fails.
    const roles = objects.filter((o): o is KubeObject & { rules: { apiGroups: string[]; resources: string[]; verbs: string[] }[] } => o.kind === "Role" || o.kind === "ClusterRole");
    let n = 0;
    for (const role of roles) {
      for (const [index, rule] of role.rules.entries()) {
        const without = objects.map((o) => (o === role ? { ...role, rules: role.rules.filter((_, i) => i !== index) } : o));
        await applyRbac(client, without as KubeObject[]);
        const result = await scenario(ns, saDir, `without-${n++}`);
        t.diagnostic(`without ${rule.apiGroups[0] || "core"}/${rule.resources[0]} [${rule.verbs.join(",")}]: ${result.ok ? "PASSED (rule not needed!)" : `failed: ${result.why.slice(0, 160)}`}`);
        assert.ok(!result.ok, `the rule ${JSON.stringify(rule)} is not needed: the scenario passed without it`);
      }
    }
    await applyRbac(client, objects);
    assert.ok(n >= 4, `${n} rules checked`);
  });
});
