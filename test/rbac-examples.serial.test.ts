// Every example operator runs its own e2e test as its generated ServiceAccount (RBAC
// authorization on), as deployed: in-cluster config (KUBELOOP_OPERATOR_KUBECONFIG=in-cluster for
// runOperator, KUBERNETES_SERVICE_HOST/PORT, a service account directory with a TokenRequest
// token) and leader election on. The test passes and the operator is refused nothing; and with
// any one generated rule removed, the operator is refused a request or the test fails (each rule
// is needed). The test itself keeps the admin identity to set the scene and check the result.
// Every generated verb must also be one the operators were seen using: the API server's audit
// log (written by the test run's control plane, KUBELOOP_AUDIT_LOG) records each request of a
// ServiceAccount; a verb no example's operator ever asked for is an unused grant. An example whose
// test runs on the cluster with simulated nodes (its test calls sharedClusterWithNodes()) is run
// there: that cluster's admin, CRDs, token and audit log (KUBELOOP_NODES_AUDIT_LOG).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Client, ClusterRole, ClusterRoleBinding, Operator, type KubeObject, type ResourceKind } from "../src/entries/index.js";
import { installCrd } from "../src/entries/testing.js";
import { rbacManifests } from "../src/manifests/rbac.js";
import { findCacheReads } from "../src/cli/cache-reads.js";
import { applyRbac, call, createNamespace, eventually, identityFromKubeconfig, releaseSharedCluster, serviceAccountToken, sharedCluster, sharedClusterWithNodes, type Identity } from "./helpers.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const EXAMPLES = ["01-pod-autoscaler", "04-state-in-crds", "05-children-status", "10-minimal", "11-children", "12-errors", "13-timers-daemons", "14-fields-and-diffs", "15-subhandlers", "16-admission", "17-website"];
let dir: string;
const cleanup: (() => Promise<unknown>)[] = [];
before(() => {
  dir = mkdtempSync(join(tmpdir(), "kubeloop-rbacex-"));
});

/** A shared cluster examples run on: its admin (client and TLS identity) and its audit log. */
interface Cluster {
  kubeconfig: string;
  /** `KUBELOOP_NODES_KUBECONFIG` for the e2e test when this is the cluster with nodes. */
  env: NodeJS.ProcessEnv;
  client: Client;
  id: Identity;
  auditLog: string | undefined;
}
const clusters = new Map<boolean, Promise<Cluster>>();

/** Whether the example's e2e test runs on the cluster with simulated nodes. */
const onNodes = (example: string) => readFileSync(join(root, "examples", example, testFileOf(example)), "utf8").includes("sharedClusterWithNodes(");
const testFileOf = (example: string) => readdirSync(join(root, "examples", example)).find((f) => f.endsWith(".test.ts")) ?? "";

/** The example's cluster, set up once: the admin client, and the CRDs of the examples that run there. */
function clusterOf(example: string): Promise<Cluster> {
  const nodes = onNodes(example);
  let cluster = clusters.get(nodes);
  if (!cluster) {
    cluster = (async () => {
      const kubeconfig = (await (nodes ? sharedClusterWithNodes() : sharedCluster())).kubeconfigPath;
      const client = await Client.load({ path: kubeconfig, rateLimit: false });
      cleanup.push(() => client.close());
      const c: Cluster = {
        kubeconfig,
        env: nodes ? { KUBELOOP_NODES_KUBECONFIG: kubeconfig } : {},
        client,
        id: identityFromKubeconfig(kubeconfig),
        auditLog: process.env[nodes ? "KUBELOOP_NODES_AUDIT_LOG" : "KUBELOOP_AUDIT_LOG"],
      };
      await ownersKnown(c, EXAMPLES.filter((e) => onNodes(e) === nodes));
      return c;
    })();
    clusters.set(nodes, cluster);
  }
  return cluster;
}

/**
 * Installs the examples' CRDs and waits until the API server's admission can map each of their
 * kinds: OwnerReferencesPermissionEnforcement looks an owner's kind up in a discovery cache the
 * API server refreshes every 30 s, and refuses a child whose owner reference blocks deletion
 * ("cannot set blockOwnerDeletion … cannot find RESTMapping") until it knows the kind, for
 * anyone, as on any cluster right after a CRD is installed.
 */
async function ownersKnown({ client, id }: Cluster, examples: string[]): Promise<void> {
  const kinds = new Map<string, ResourceKind>();
  for (const example of examples) {
    const mod = (await import(pathToFileURL(join(root, "examples", example, "operator.ts")).href)) as Record<string, unknown>;
    for (const value of Object.values(mod)) {
      const crd = (value as { crd?: { metadata?: { name?: string } } } | null)?.crd;
      if (crd?.metadata?.name) kinds.set(crd.metadata.name, value as ResourceKind);
    }
  }
  for (const kind of kinds.values()) await installCrd(client, (kind as unknown as { crd: Parameters<typeof installCrd>[1] }).crd);
  for (const kind of kinds.values()) {
    const child = { metadata: { generateName: "owner-probe-", ownerReferences: [{ apiVersion: kind.apiVersion, kind: kind.kind, name: "probe", uid: "00000000-0000-0000-0000-000000000000", blockOwnerDeletion: true }] } };
    await eventually(`the API server's admission maps ${kind.kind}`, async () => {
      const r = await call(id, "POST", "/api/v1/namespaces/default/configmaps?dryRun=All", child);
      return r.status === 201 || !/cannot find RESTMapping/.test(String(r.body?.message));
    }, { timeoutMs: 90_000, intervalMs: 1_000 });
  }
}
after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
  await releaseSharedCluster();
});

/** The RBAC objects, created anew; cluster-scoped ones are deleted at the end. */
async function create(client: Client, objects: KubeObject[]): Promise<void> {
  await applyRbac(client, objects);
  for (const o of objects) {
    if (o.kind === "ClusterRole") cleanup.push(() => client.resource(ClusterRole).delete(o.metadata?.name ?? ""));
    if (o.kind === "ClusterRoleBinding") cleanup.push(() => client.resource(ClusterRoleBinding).delete(o.metadata?.name ?? ""));
  }
}

type Rule = { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] };

/**
 * Generated verbs that the examples' scenarios cannot show in an audit log, and why each is
 * granted all the same. Every other generated verb must appear there.
 */
const OFF_SCENARIO: [RegExp, string][] = [
  [/ (get|list)$/, "the read triple with watch: list for the paged list when a server refuses a streaming one (informers stream), get for re-reads after a conflict (finalizer and uid-bound patches)"],
  [/^events\.k8s\.io\/events patch$/, "an Event series (the same Event again within 6 minutes)"],
  [/\/finalizers update$/, "checked by OwnerReferencesPermissionEnforcement when a child's owner reference blocks deletion: an authorization, not a request (removing the rule is refused above)"],
  [/^core\/secrets update$/, "renewing the shared webhook certificate (30 days before it expires, or for a new name)"],
];

/** Each generated verb (group/resource verb) and the examples that were granted it. */
const granted = new Map<string, Set<string>>();
/** Each group/resource verb some example's operator asked for (audit log), with the examples. */
const used = new Map<string, Set<string>>();
/** Examples whose cluster keeps no audit log (a cluster this file started itself). */
const unaudited: string[] = [];
const add = (map: Map<string, Set<string>>, key: string, example: string) => map.set(key, (map.get(key) ?? new Set()).add(example));

/**
 * What the ServiceAccount `system:serviceaccount:<ns>:<name>` asked for, from the audit log, as
 * "group/resource[/subresource] verb". A server-side apply that created its object was
 * authorized as create too (the API server checks create for it), so it counts as both.
 */
function audited(path: string, ns: string, name: string): string[] {
  if (!existsSync(path)) return [];
  const user = `system:serviceaccount:${ns}:${name}`;
  const out = new Set<string>();
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (!line.includes(user)) continue;
    const e = JSON.parse(line) as { user?: { username?: string }; verb?: string; objectRef?: { apiGroup?: string; resource?: string; subresource?: string }; responseStatus?: { code?: number } };
    if (e.user?.username !== user || !e.objectRef?.resource) continue;
    const resource = `${e.objectRef.apiGroup || "core"}/${e.objectRef.resource}${e.objectRef.subresource ? `/${e.objectRef.subresource}` : ""}`;
    out.add(`${resource} ${e.verb}`);
    if (e.verb === "patch" && e.responseStatus?.code === 201) out.add(`${resource} create`);
  }
  return [...out];
}
type RoleObject = KubeObject & { rules: Rule[] };

/**
 * Whether the API server's authorizer lets the ServiceAccount do `verb` on the rule's first
 * resource (a SubjectAccessReview): RBAC changes reach the authorizer through its own watch, so a
 * run starts only once it sees the rules the run is meant to have.
 */
async function allowed(id: Identity, ns: string, name: string, rule: Rule, namespace: string | undefined): Promise<boolean> {
  const [resource, subresource] = (rule.resources[0] ?? "").split("/");
  const r = await call(id, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
    apiVersion: "authorization.k8s.io/v1",
    kind: "SubjectAccessReview",
    spec: {
      user: `system:serviceaccount:${ns}:${name}`,
      groups: ["system:serviceaccounts", `system:serviceaccounts:${ns}`, "system:authenticated"],
      resourceAttributes: { group: rule.apiGroups[0], resource, ...(subresource ? { subresource } : {}), verb: rule.verbs[0], ...(namespace ? { namespace } : {}), ...(rule.resourceNames ? { name: rule.resourceNames[0] } : {}) },
    },
  });
  return r.body.status?.allowed === true;
}

/**
 * The example's e2e test as the ServiceAccount. `stopAtRefusal`: kill it (its process group: the
 * test runner and the operator inside it) at the first refused request.
 */
async function e2e({ id, env: clusterEnv }: Cluster, example: string, saDir: string, stopAtRefusal: boolean): Promise<{ code: number | null; refusals: string[]; output: string }> {
  const server = new URL(id.server);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    KUBELOOP_KUBECONFIG: (await sharedCluster()).kubeconfigPath, // the test itself: the admin
    ...clusterEnv, // of the cluster with nodes, when the test runs there
    KUBELOOP_OPERATOR_KUBECONFIG: "in-cluster", // the operator under test: its ServiceAccount, in-cluster
    KUBERNETES_SERVICE_HOST: server.hostname,
    KUBERNETES_SERVICE_PORT: server.port,
    KUBELOOP_SERVICE_ACCOUNT_DIR: saDir,
  };
  delete env.NODE_TEST_CONTEXT;
  const child = spawn(process.execPath, ["--import", "tsx", "--test", join("examples", example, testFileOf(example))], { cwd: root, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let output = "";
  const refusals = () => output.split("\n").filter((l) => /ForbiddenError|is forbidden/.test(l));
  const kill = () => {
    try {
      process.kill(-(child.pid as number), "SIGKILL");
    } catch {
      // already gone
    }
  };
  const take = (d: Buffer) => {
    output += d.toString();
    if (stopAtRefusal && refusals().length) kill();
  };
  child.stdout.on("data", take);
  child.stderr.on("data", take);
  const code = await new Promise<number | null>((r) => child.on("exit", r));
  kill(); // anything the runner left behind in its group
  return { code, refusals: refusals(), output };
}

/** After a run that may have been killed: the Lease free for the next run, a managed webhook registration and its certificate gone. */
async function tidy({ id }: Cluster, ns: string, op: Operator): Promise<void> {
  const leases = await call(id, "GET", `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`);
  for (const lease of (leases.body.items ?? []) as KubeObject[]) await call(id, "DELETE", `/apis/coordination.k8s.io/v1/namespaces/${ns}/leases/${lease.metadata?.name ?? ""}`);
  if (op.hasWebhooks) {
    for (const kind of ["validatingwebhookconfigurations", "mutatingwebhookconfigurations"]) await call(id, "DELETE", `/apis/admissionregistration.k8s.io/v1/${kind}/${op.name}`);
    // The shared self-signed certificate too: each run starts as a first deployment would.
    await call(id, "DELETE", `/api/v1/namespaces/${ns}/secrets/${op.name}-webhook-selfsigned`);
    for (const crd of op.webhooks.conversions) await call(id, "PATCH", `/apis/apiextensions.k8s.io/v1/customresourcedefinitions/${crd}`, { spec: { conversion: { strategy: "None", webhook: null } } }, { "content-type": "application/merge-patch+json" });
  }
}

describe("every example as its generated ServiceAccount", () => {
  for (const example of EXAMPLES) {
    it(`${example}: its e2e test passes with zero refusals; without any one generated rule, a request is refused or the test fails`, { timeout: 900_000 }, async (t) => {
      const mod = (await import(pathToFileURL(join(root, "examples", example, "operator.ts")).href)) as Record<string, unknown>;
      const op = Object.values(mod).find((v): v is Operator => v instanceof Operator);
      assert.ok(op, `${example} exports an Operator`);
      const cluster = await clusterOf(example);
      const { client, id } = cluster;
      const ns = await createNamespace(client, "rbacex");
      // As `kubeloop generate rbac` makes it: with what the source says (ctx.cache reads, ctx.finalizer).
      const scanned = await findCacheReads(join(root, "examples", example, "operator.ts"));
      const objects = rbacManifests(op.access(ns, { reads: scanned.kinds.map((k) => k.kind), finalizers: scanned.finalizers }), { name: op.name, namespace: ns }) as KubeObject[];
      await create(client, objects);
      // In-cluster config, as the operator's Pod would have it: a TokenRequest token, the CA and the namespace.
      const saDir = join(dir, example);
      mkdirSync(saDir, { recursive: true });
      writeFileSync(join(saDir, "token"), await serviceAccountToken(id, ns, op.name));
      writeFileSync(join(saDir, "ca.crt"), id.ca);
      writeFileSync(join(saDir, "namespace"), ns);
      const roles = objects.filter((o): o is RoleObject => o.kind === "Role" || o.kind === "ClusterRole");
      const all = roles.flatMap((role) => role.rules.map((rule) => ({ role, rule })));
      const settled = async (without?: Rule) =>
        eventually("the authorizer sees the rules", async () => {
          for (const { role, rule } of all) if ((await allowed(id, ns, op.name, rule, role.metadata?.namespace)) === (rule === without)) return false;
          return true;
        });

      await settled();
      const full = await e2e(cluster, example, saDir, false);
      await tidy(cluster, ns, op);
      assert.equal(full.code, 0, `the e2e test failed as ${op.name}'s ServiceAccount:\n${full.output.slice(-20000)}`);
      assert.deepEqual(full.refusals.map((l) => l.slice(0, 300)), [], "refused requests");

      // Each rule alone removed: the run is refused something, or its test fails.
      const unneeded: string[] = [];
      for (const { role, rule } of all) {
        const label = `${rule.apiGroups[0] || "core"}/${rule.resources[0]}${rule.resourceNames ? `@${rule.resourceNames.join(",")}` : ""} [${rule.verbs.join(",")}]`;
        await applyRbac(client, objects.map((o) => (o === role ? { ...role, rules: role.rules.filter((r) => r !== rule) } : o)) as KubeObject[]);
        await settled(rule);
        const run = await e2e(cluster, example, saDir, true);
        await tidy(cluster, ns, op);
        const outcome = run.refusals.length ? `refused: ${run.refusals[0]?.slice(0, 160)}` : run.code !== 0 ? "the test failed, nothing refused" : "PASSED (not needed)";
        t.diagnostic(`without ${label}: ${outcome}`);
        if (!run.refusals.length && run.code === 0) unneeded.push(label);
      }
      await applyRbac(client, objects);
      assert.deepEqual(unneeded, [], "rules the scenario did not need");
      if (!cluster.auditLog) return void unaudited.push(example); // its grants are not checked below
      for (const { rule } of all) for (const verb of rule.verbs) add(granted, `${rule.apiGroups[0] || "core"}/${rule.resources[0]} ${verb}`, example);
      for (const key of audited(cluster.auditLog, ns, op.name)) add(used, key, example);
    });
  }

  it("every generated verb was used by some example's operator (the API server's audit log)", { skip: !process.env.KUBELOOP_AUDIT_LOG && "no audit log: the cluster was not started by this test run" }, (t) => {
    assert.ok(used.size > 0, "the audit log recorded the operators' requests");
    const unseen = [...granted.keys()].filter((key) => !used.has(key));
    const unused = unseen.filter((key) => !OFF_SCENARIO.some(([pattern]) => pattern.test(key))).map((key) => `${key} (granted to ${[...(granted.get(key) ?? [])].join(", ")})`);
    for (const [pattern, why] of OFF_SCENARIO) {
      const these = unseen.filter((key) => pattern.test(key));
      if (these.length) t.diagnostic(`not seen, granted because ${why}: ${these.length} (${these.slice(0, 4).join("; ")}${these.length > 4 ? "; …" : ""})`);
    }
    t.diagnostic(`${granted.size} generated verbs; ${granted.size - unseen.length} seen in the audit log`);
    if (unaudited.length) t.diagnostic(`not checked (their cluster keeps no audit log): ${unaudited.join(", ")}`);
    assert.deepEqual(unused, [], "generated verbs no operator asked for");
  });
});
