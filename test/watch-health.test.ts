// Probes that see the watches (issue 36): an operator whose watch keeps failing is not ready,
// and says which cache and why; once the server answers that watch again it is ready, and its
// cache has what changed meanwhile. On the real API server, with the operator's own RBAC:
// - its `watch` permission on its kind revoked while it runs (its open watch cut, as a restarted
//   API server or a proxy would), then restored;
// - the CRD of its kind deleted while it runs, then re-created;
// - a proxy that keeps its watch open and passes nothing on, then heals.
// Requests go through an HTTP proxy that counts them, for the rate while refused.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Client, ConfigMap, CustomResourceDefinition, Operator, Type, defineResource, type RunningOperator } from "../src/entries/index.js";
import { HttpFaultProxy, installCrd } from "../src/entries/testing.js";
import { watch } from "../src/entries/runtime.js";
import { applyRbac, createNamespace, eventually, identityFromKubeconfig, releaseSharedCluster, serviceAccountToken, sharedCluster, uniqueName, type Identity } from "./helpers.js";

const TOLERANCE_MS = 2_000;
const scratch = mkdtempSync(join(tmpdir(), "kubeloop-watch-health-"));
let admin: Client;
let adminId: Identity;
before(async () => {
  const cluster = await sharedCluster();
  adminId = identityFromKubeconfig(cluster.kubeconfigPath);
  admin = await Client.load({ path: cluster.kubeconfigPath, rateLimit: false });
});
after(async () => {
  await admin?.close();
  rmSync(scratch, { recursive: true, force: true });
  await releaseSharedCluster();
});

/** GET /readyz: status and body. */
async function readyz(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${url}/readyz`);
  return { status: res.status, body: await res.text() };
}

/**
 * A ServiceAccount in `ns` with `rules` (a Role), and an HTTP proxy that forwards as it; the
 * operator's client talks to the proxy.
 */
async function asServiceAccount(ns: string, rules: object[]): Promise<{ proxy: HttpFaultProxy; client: Client; setRules: (r: object[]) => Promise<void> }> {
  const role = (r: object[]) => ({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: { name: "op", namespace: ns }, rules: r });
  await applyRbac(admin, [
    { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: "op", namespace: ns } },
    role(rules),
    { apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", metadata: { name: "op", namespace: ns }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "op" }, subjects: [{ kind: "ServiceAccount", name: "op", namespace: ns }] },
  ] as never);
  const token = await serviceAccountToken(adminId, ns, "op");
  const proxy = await HttpFaultProxy.start({ server: adminId.server, ca: adminId.ca, token });
  const client = await Client.load({ path: proxy.writeKubeconfig(join(scratch, `${ns}.kubeconfig`), ns), rateLimit: false });
  return { proxy, client, setRules: (r) => applyRbac(admin, [role(r)] as never) };
}

/** Runs `op` with probes on a free port; resolves with its probe URL once it serves. */
async function start(op: Operator, client: Client, stop: AbortController): Promise<{ url: string; done: Promise<void> }> {
  let running: RunningOperator | undefined;
  const done = op.run({ client, signal: stop.signal, handleSignals: false, onStarted: (r) => (running = r) });
  const url = await eventually("the probe server", async () => running?.probes?.url);
  return { url, done };
}

/** Requests per second the proxy forwarded between `from` and now. */
function rate(proxy: HttpFaultProxy, from: number): number {
  return proxy.requestsSince(from).length / ((Date.now() - from) / 1000);
}

describe("readiness sees the watches", () => {
  it("watch permission revoked: /readyz 503 naming the cache and the 403 within the tolerance; restored: ready, and the cache has what changed meanwhile", { timeout: 180_000 }, async () => {
    const ns = await createNamespace(admin, "wh-rbac");
    const all = [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list", "watch"] }];
    const { proxy, client, setRules } = await asServiceAccount(ns, all);
    const seen = new Set<string>();
    const op = new Operator({ name: "wh-rbac", leaderElection: false, namespaces: [ns], probes: { port: 0, host: "127.0.0.1" }, watchFailureToleranceMs: TOLERANCE_MS, logLevel: "silent" });
    op.controller(ConfigMap).reconcile(async (ref) => void seen.add(ref.name));
    const stop = new AbortController();
    const { url, done } = await start(op, client, stop);
    try {
      await eventually("ready", async () => (await readyz(url)).status === 200, { timeoutMs: 60_000 });

      await setRules([{ apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list"] }]);
      const revoked = Date.now();
      proxy.cutAll(); // the open watch ends (as on an API server restart); its successor is refused
      const notReady = await eventually("/readyz 503", async () => {
        const r = await readyz(url);
        return r.status === 503 ? r.body : undefined;
      }, { timeoutMs: 60_000, intervalMs: 250 });
      const after = (Date.now() - revoked) / 1000;
      assert.match(notReady, new RegExp(`watch of v1 ConfigMap in ${ns}: failing for \\d+ s: .*forbidden`, "i"));
      const during = uniqueName("during");
      await admin.resource(ConfigMap).namespace(ns).create({ metadata: { name: during }, data: {} });
      await new Promise((r) => setTimeout(r, 5_000)); // a stretch of refusals to measure
      const refusedRate = rate(proxy, revoked);
      const metrics = await (await fetch(`${url}/metrics`)).text();
      assert.match(metrics, new RegExp(`kubeloop_watch_failing_seconds\\{kind="v1 ConfigMap",namespace="${ns}"\\} [1-9]`));
      assert.match(metrics, new RegExp(`kubeloop_watch_failures_total\\{kind="v1 ConfigMap",namespace="${ns}"\\} [1-9]`));

      await setRules(all);
      const restored = Date.now();
      await eventually("ready again", async () => (await readyz(url)).status === 200, { timeoutMs: 90_000, intervalMs: 250 });
      const back = (Date.now() - restored) / 1000;
      await eventually("the object made while refused is reconciled", async () => seen.has(during), { timeoutMs: 30_000 });
      console.log(`watch-health (RBAC): 503 ${after.toFixed(1)} s after the revocation (tolerance ${TOLERANCE_MS / 1000} s), ${refusedRate.toFixed(2)} requests/s while refused, ready ${back.toFixed(1)} s after the restore`);
      assert.ok(refusedRate < 2, `requests while refused are bounded by the backoff (${refusedRate.toFixed(2)}/s)`);
    } finally {
      stop.abort();
      await done.catch(() => undefined);
      await client.close();
      await proxy.close();
    }
  });

  it("a proxy that keeps the watch open and passes nothing: dropped after the inactivity timeout, /readyz 503 naming the silence; healed: ready, and the cache has what changed meanwhile", { timeout: 180_000 }, async () => {
    const ns = await createNamespace(admin, "wh-silent");
    const { proxy, client } = await asServiceAccount(ns, [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list", "watch"] }]);
    const seen = new Set<string>();
    const INACTIVITY_MS = 5_000;
    const op = new Operator({ name: "wh-silent", leaderElection: false, namespaces: [ns], probes: { port: 0, host: "127.0.0.1" }, watchFailureToleranceMs: TOLERANCE_MS, watchInactivityTimeoutMs: INACTIVITY_MS, logLevel: "silent" });
    op.controller(ConfigMap).reconcile(async (ref) => void seen.add(ref.name));
    // A watch that hears something every 300 ms while the path is healthy (the API server's own
    // bookmarks come about once a minute: a quiet watch would pass for a silenced one).
    let ticking = true;
    const ticker = (async () => {
      for (let i = 0; ticking; i++) {
        await admin.resource(ConfigMap).namespace(ns).apply({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "tick" }, data: { i: String(i) } }, { fieldManager: "test", force: true }).catch(() => {});
        await new Promise((r) => setTimeout(r, 300));
      }
    })();
    const stop = new AbortController();
    const { url, done } = await start(op, client, stop);
    try {
      await eventually("ready", async () => (await readyz(url)).status === 200, { timeoutMs: 60_000 });
      proxy.inject({ silent: true, match: (r) => r.watch });
      const silenced = Date.now();
      proxy.cutAll(); // the open watch ends; its successors are answered 200 and then nothing
      // 503 from the cut on (tolerance 2 s; its error first), then naming the silence.
      const silence = new RegExp(`watch of v1 ConfigMap in ${ns}: failing for \\d+ s: .*no event or bookmark for ${INACTIVITY_MS} ms`);
      let last = "";
      await eventually("/readyz 503 naming the silence", async () => {
        const r = await readyz(url);
        last = `${r.status} ${r.body}`;
        return r.status === 503 && silence.test(r.body);
      }, { timeoutMs: 60_000, intervalMs: 250 }).catch(() => {
        throw new Error(`/readyz never 503 naming the silence; last: ${last}`);
      });
      const after = (Date.now() - silenced) / 1000;
      const during = uniqueName("during");
      await admin.resource(ConfigMap).namespace(ns).create({ metadata: { name: during }, data: {} });
      const metrics = await (await fetch(`${url}/metrics`)).text();
      assert.match(metrics, new RegExp(`kubeloop_watch_failures_total\\{kind="v1 ConfigMap",namespace="${ns}"\\} [1-9]`));
      const lastHeard = Number(new RegExp(`kubeloop_watch_last_heard_seconds\\{kind="v1 ConfigMap",namespace="${ns}"\\} (\\S+)`).exec(metrics)?.[1]);
      assert.ok(lastHeard >= INACTIVITY_MS / 1000, `the last word heard is as old as the silence (${lastHeard} s)`);
      const watches = proxy.requestsSince(silenced).filter((r) => r.watch);
      assert.ok(watches.length >= 2 && watches.every((r) => r.silenced), `each silent watch dropped and tried again (${watches.length} watches)`);
      const perSecond = proxy.requestsSince(silenced).length / ((Date.now() - silenced) / 1000);

      proxy.heal();
      const healed = Date.now();
      await eventually("ready again", async () => (await readyz(url)).status === 200, { timeoutMs: 60_000, intervalMs: 250 });
      const back = (Date.now() - healed) / 1000;
      await eventually("the object made while silenced is reconciled", async () => seen.has(during), { timeoutMs: 30_000 });
      console.log(`watch-health (silent stream): 503 ${after.toFixed(1)} s after the silence began (inactivity ${INACTIVITY_MS / 1000} s + tolerance ${TOLERANCE_MS / 1000} s), ${watches.length} watches, ${perSecond.toFixed(2)} requests/s while silenced; ready ${back.toFixed(1)} s after healing`);
      assert.ok(perSecond < 2, `requests while silenced are bounded (${perSecond.toFixed(2)}/s)`);
    } finally {
      ticking = false;
      await ticker;
      stop.abort();
      await done.catch(() => undefined);
      await client.close();
      await proxy.close();
    }
  });

  it("its CRD deleted while it runs: /readyz 503 naming the cache, no crash, bounded requests; re-created: ready, and it acts on new objects", { timeout: 240_000 }, async () => {
    const ns = await createNamespace(admin, "wh-crd");
    const group = `${uniqueName("wh")}.example.com`;
    const Gadget = defineResource({ group, version: "v1", kind: "Gadget", spec: Type.Object({ size: Type.Integer() }), status: Type.Unknown() });
    await installCrd(admin, Gadget.crd);
    const { proxy, client } = await asServiceAccount(ns, [{ apiGroups: [group], resources: ["gadgets", "gadgets/status"], verbs: ["get", "list", "watch", "patch", "update"] }]);
    const seen = new Set<string>();
    const op = new Operator({ name: "wh-crd", leaderElection: false, namespaces: [ns], probes: { port: 0, host: "127.0.0.1" }, watchFailureToleranceMs: TOLERANCE_MS, logLevel: "silent" });
    op.controller(Gadget).reconcile(async (ref) => void seen.add(ref.name));
    const stop = new AbortController();
    const { url, done } = await start(op, client, stop);
    let failed: unknown;
    done.catch((error: unknown) => (failed = error));
    try {
      await eventually("ready", async () => (await readyz(url)).status === 200, { timeoutMs: 60_000 });
      await admin.resource(Gadget).namespace(ns).create({ metadata: { name: "before" }, spec: { size: 1 } });
      await eventually("reconciled before", async () => seen.has("before"), { timeoutMs: 30_000 });

      const crdName = Gadget.crd.metadata!.name!;
      await admin.resource(CustomResourceDefinition).delete(crdName);
      await eventually("the CRD gone", async () => admin.resource(CustomResourceDefinition).get(crdName).then(() => false, () => true), { timeoutMs: 60_000 });
      const deleted = Date.now();
      const notReady = await eventually("/readyz 503", async () => {
        const r = await readyz(url);
        return r.status === 503 ? r.body : undefined;
      }, { timeoutMs: 90_000, intervalMs: 250 });
      assert.match(notReady, new RegExp(`watch of ${group}/v1 Gadget in ${ns}: failing for \\d+ s`));
      await new Promise((r) => setTimeout(r, 10_000)); // a stretch without the CRD, to measure
      const goneRate = rate(proxy, deleted);
      assert.equal(failed, undefined, "the operator did not fail");

      await installCrd(admin, Gadget.crd);
      const recreated = Date.now();
      await admin.resource(Gadget).namespace(ns).create({ metadata: { name: "after" }, spec: { size: 2 } });
      await eventually("ready again", async () => (await readyz(url)).status === 200, { timeoutMs: 120_000, intervalMs: 250 });
      await eventually("reconciled after the re-creation", async () => seen.has("after"), { timeoutMs: 60_000 });
      console.log(`watch-health (CRD): ${goneRate.toFixed(2)} requests/s while the CRD was gone; ready ${((Date.now() - recreated) / 1000).toFixed(1)} s after the re-creation`);
      assert.ok(goneRate < 2, `requests without the CRD are bounded by the backoff (${goneRate.toFixed(2)}/s)`);
      assert.equal(failed, undefined, "the operator did not fail");
    } finally {
      stop.abort();
      await done.catch(() => undefined);
      await client.close();
      await proxy.close();
      await admin.resource(CustomResourceDefinition).delete(Gadget.crd.metadata!.name!).catch(() => undefined);
    }
  });
});

describe("a silent list", () => {
  it("a list the proxy answers and then keeps silent: reported naming the silence, and listed again", { timeout: 60_000 }, async () => {
    const ns = await createNamespace(admin, "wh-silent-list");
    for (const name of ["a", "b", "c"]) await admin.resource(ConfigMap).namespace(ns).create({ metadata: { name } });
    const proxy = await HttpFaultProxy.start({ server: adminId.server, ca: adminId.ca, certificate: adminId.cert, key: adminId.key });
    const client = await Client.load({ path: proxy.writeKubeconfig(join(scratch, `${ns}.kubeconfig`), ns), rateLimit: false });
    // The first list of the namespace's ConfigMaps is answered 200 and then nothing.
    proxy.inject({ silent: true, times: 1, match: (r) => !r.watch && r.method === "GET" && r.path.includes(`/namespaces/${ns}/configmaps`) });
    const stop = new AbortController();
    const errors: string[] = [];
    const listed: string[] = [];
    let synced = false;
    const running = (async () => {
      for await (const e of watch(client.resource(ConfigMap), { namespace: ns, initialList: "list", inactivityTimeoutMs: 2_000, signal: stop.signal })) {
        if (e.type === "error") errors.push(e.error.message);
        if (e.type === "initApply") listed.push(e.object.metadata?.name ?? "");
        if (e.type === "initDone") synced = true;
      }
    })();
    try {
      await eventually("listed after the silent list", async () => synced, { timeoutMs: 30_000 });
      assert.deepEqual(listed.filter((n) => n !== "kube-root-ca.crt").sort(), ["a", "b", "c"]);
      assert.ok(proxy.requestsSince(0).some((r) => r.silenced), "the first list was silenced");
      assert.ok(errors.some((m) => /the list said nothing for 2000 ms/.test(m)), `the silence is named: ${JSON.stringify(errors)}`);
    } finally {
      stop.abort();
      await running;
      await client.close();
      await proxy.close();
    }
  });
});
