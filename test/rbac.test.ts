// The operator as a ServiceAccount with hand-written least-privilege RBAC (until the manifests
// issue generates it): a namespaced Role with only what a ConfigMap operator with create and
// delete handlers, Events and leader election needs. It works, its token never reaches a log
// line, and a missing permission is reported by name instead of waited on silently.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { Client, ConfigMap, Event, ForbiddenError, Lease, Operator, Role, RoleBinding, Secret, ServiceAccount } from "../src/entries/index.js";
import { settleWithin } from "./support.js";
import { createNamespace, eventually, identityFromKubeconfig, releaseSharedCluster, serviceAccountToken, sharedCluster, tokenKubeconfig, type Identity } from "./helpers.js";

let admin: Client;
let id: Identity;
let dir: string;
before(async () => {
  const kubeconfig = (await sharedCluster()).kubeconfigPath;
  admin = await Client.load({ path: kubeconfig, rateLimit: false });
  id = identityFromKubeconfig(kubeconfig);
  dir = mkdtempSync(join(tmpdir(), "kubeloop-rbac-"));
});
after(async () => {
  await admin?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  await releaseSharedCluster();
});

/** What the operator needs, and nothing else: ConfigMaps it handles (patch for progress, finalizer and labels), Events it writes, its Lease. */
type Rules = { apiGroups: string[]; resources: string[]; verbs: string[] }[];
const LEAST: Rules = [
  { apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list", "watch", "patch"] },
  { apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["create", "patch"] },
  { apiGroups: ["coordination.k8s.io"], resources: ["leases"], verbs: ["get", "create", "update"] },
];

/** A namespace with a ServiceAccount bound to `rules`; returns a kubeconfig with its token, and the token. */
async function serviceAccount(rules: Rules): Promise<{ ns: string; kubeconfig: string; token: string }> {
  const ns = await createNamespace(admin, "rbac");
  await admin.resource(ServiceAccount).namespace(ns).create({ metadata: { name: "operator" } });
  await admin.resource(Role).namespace(ns).create({ metadata: { name: "operator" }, rules });
  await admin.resource(RoleBinding).namespace(ns).create({
    metadata: { name: "operator" },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "operator" },
    subjects: [{ kind: "ServiceAccount", name: "operator", namespace: ns }],
  });
  const token = await serviceAccountToken(id, ns, "operator");
  const kubeconfig = tokenKubeconfig(id, ns, token, join(dir, `${ns}.yaml`));
  return { ns, kubeconfig, token };
}

function operator(ns: string, lines: string[], cacheSyncTimeoutMs?: number): Operator {
  const logger = pino({ level: "debug" }, { write: (line: string) => void lines.push(line) });
  const op = new Operator({ name: "rbac", namespaces: [ns], leaderElection: { namespace: ns, leaseDurationMs: 4_000, renewDeadlineMs: 3_000, retryPeriodMs: 500 }, probes: false, logger, ...(cacheSyncTimeoutMs ? { cacheSyncTimeoutMs } : {}) });
  op.on.create(ConfigMap, async ({ patch, logger: log }) => {
    log.info("configured");
    patch.metadata.labels.configured = "yes";
  });
  op.on.delete(ConfigMap, async () => {});
  return op;
}

describe("least-privilege RBAC", () => {
  it("as a ServiceAccount with a minimal Role: handles, writes Events, leads, cleans up; its token is in no log line", { timeout: 60_000 }, async () => {
    const { ns, kubeconfig, token } = await serviceAccount(LEAST);
    const lines: string[] = [];
    const stop = new AbortController();
    const client = await Client.load({ path: kubeconfig, rateLimit: false });
    const run = operator(ns, lines).run({ client, signal: stop.signal, handleSignals: false });
    try {
      const cms = admin.resource(ConfigMap).namespace(ns);
      await cms.create({ metadata: { name: "c" } });
      await eventually("handled", async () => (await cms.get("c")).metadata?.labels?.configured === "yes", { timeoutMs: 30_000 });
      assert.ok((await cms.get("c")).metadata?.finalizers?.includes("rbac.kubeloop.dev/finalizer"));
      await eventually("the handler's Event", async () => (await admin.resource(Event).namespace(ns).list()).items.some((e) => e.note === "configured"));
      assert.match((await admin.resource(Lease).namespace(ns).get("rbac-leader")).spec?.holderIdentity ?? "", /.+/);
      await cms.delete("c");
      await eventually("deleted, finalizer removed", async () => !(await cms.list()).items.some((c) => c.metadata?.name === "c"));
    } finally {
      stop.abort();
      await run;
      await client.close();
    }
    assert.deepEqual(lines.filter((l) => l.includes(token) || l.includes(token.slice(20, 80))), [], "no log line holds the token");
    assert.ok(!lines.some((l) => /"level":50/.test(l)), `no error logged: ${lines.filter((l) => /"level":50/.test(l)).join("\n")}`);
  });

  it("without 'watch' on ConfigMaps: run() fails naming the resource and the refusal, instead of waiting for ever", { timeout: 60_000 }, async (t) => {
    const rules = LEAST.map((r) => (r.resources.includes("configmaps") ? { ...r, verbs: ["get", "list", "patch"] } : r));
    const { ns, kubeconfig } = await serviceAccount(rules);
    const lines: string[] = [];
    const client = await Client.load({ path: kubeconfig, rateLimit: false });
    try {
      const outcome = operator(ns, lines, 5_000)
        .run({ client, handleSignals: false })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      // Well within the test's timeout, so a hang says where the operator was.
      const error = await settleWithin("run()", outcome, 40_000).catch((e: Error) => assert.fail(`${e.message}; the operator's last log lines:\n${lines.slice(-15).join("")}`));
      assert.ok(error instanceof Error, "run() rejects");
      const text = `${error.message} ${error.cause instanceof Error ? error.cause.message : ""}`;
      t.diagnostic(text);
      assert.match(text, /configmaps/i, text);
      assert.match(text, /forbidden|watch/i, text);
    } finally {
      await client.close();
    }
  });

  it("a ctx.cache read of a kind it may not watch fails the reconcile with the 403 (logged, a Warning Event, counted) instead of hanging; a stop is not held up", { timeout: 60_000 }, async () => {
    const { ns, kubeconfig } = await serviceAccount(LEAST);
    const lines: string[] = [];
    const client = await Client.load({ path: kubeconfig, rateLimit: false });
    const errors: unknown[] = [];
    const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(line) });
    const op = new Operator({ name: "rbacread", namespaces: [ns], leaderElection: false, probes: false, logger, gracefulShutdownTimeoutMs: 20_000 });
    op.controller(ConfigMap).reconcile(async (ref, ctx) => {
      try {
        await ctx.cache.get(Secret, ref.name, ref.namespace); // no signal passed: the reconcile's is used
      } catch (error) {
        errors.push(error);
        throw error;
      }
    });
    const stop = new AbortController();
    let reconcileErrors: () => Promise<string> = async () => "";
    const running = op.run({ client, handleSignals: false, signal: stop.signal, onStarted: ({ metrics }) => void (reconcileErrors = () => metrics.text()) });
    try {
      await admin.resource(ConfigMap).namespace(ns).create({ metadata: { name: "needs-a-secret" } });
      await eventually("the read fails with the 403", async () => errors.length > 0, { timeoutMs: 30_000 });
      assert.ok(errors[0] instanceof ForbiddenError, String(errors[0]));
      assert.match(String((errors[0] as Error).message), /Secret .*refused to list or watch/);
      assert.ok(lines.some((l) => l.includes("reconcile failed") && l.includes("secrets")), "logged with the refusal");
      await eventually("a Warning Event on the object", async () =>
        (await admin.resource(Event).namespace(ns).list()).items.some((e) => e.type === "Warning" && e.reason === "Forbidden" && e.regarding?.name === "needs-a-secret"),
      );
      assert.match(await reconcileErrors(), /controller_runtime_reconcile_errors_total\{controller="configmap"\} [1-9]/);
      const stoppedAt = Date.now();
      stop.abort();
      await settleWithin("run() after the stop", running, 15_000);
      assert.ok(Date.now() - stoppedAt < 15_000);
      assert.ok(!lines.some((l) => l.includes("abandon")), "nothing abandoned at the stop");
    } finally {
      stop.abort();
      await running.catch(() => {});
      await client.close();
    }
  });
});
