// Authentication against the real API server: service-account tokens (inline, from a file, from
// an exec credential plugin), impersonation and RBAC, and the failures each can have.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as YAML from "yaml";
import { Client, ConfigMap, CredentialError, ForbiddenError, UnauthorizedError, kindOf } from "../src/index.js";
import { releaseSharedCluster, sharedCluster, uniqueName } from "./helpers.js";

const scratch = mkdtempSync(join(tmpdir(), "kubeloop-auth-test-"));
let admin: Client;
let adminKubeconfig: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- YAML document
let token: string;
let ns: string;
const serviceAccount = "auth-test";

const ServiceAccount = kindOf("v1", "ServiceAccount", { plural: "serviceaccounts", namespaced: true });

before(async () => {
  const cluster = await sharedCluster();
  adminKubeconfig = YAML.parse(readFileSync(cluster.kubeconfigPath, "utf8"));
  admin = await Client.load({ path: cluster.kubeconfigPath, rateLimit: false });
  ns = uniqueName("auth");
  await admin.resource(kindOf("v1", "Namespace", { plural: "namespaces", namespaced: false })).create({ metadata: { name: ns } });
  await admin.resource(ServiceAccount).namespace(ns).create({ metadata: { name: serviceAccount } });
  const review = await admin.request<{ status: { token: string } }>({
    method: "POST",
    path: `/api/v1/namespaces/${ns}/serviceaccounts/${serviceAccount}/token`,
    body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 3600 } },
  });
  token = review.status.token;
});

after(async () => {
  await admin?.close();
  rmSync(scratch, { recursive: true, force: true });
  await releaseSharedCluster();
});

/** A kubeconfig for the shared cluster with this `user` entry. */
function kubeconfigWith(user: Record<string, unknown>): string {
  const doc = structuredClone(adminKubeconfig);
  doc.users = [{ name: "u", user }];
  doc.contexts[0].context.user = "u";
  const path = join(scratch, `${uniqueName("kc")}.yaml`);
  writeFileSync(path, YAML.stringify(doc));
  return path;
}

async function whoAmI(client: Client): Promise<string> {
  const review = await client.request<{ status: { userInfo: { username: string } } }>({
    method: "POST",
    path: "/apis/authentication.k8s.io/v1/selfsubjectreviews",
    body: { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" },
  });
  return review.status.userInfo.username;
}

const expected = () => `system:serviceaccount:${ns}:${serviceAccount}`;

/** An exec plugin that records its runs and prints the token for that run from a state file. */
function execPlugin(state: { tokens: string[]; expiry?: string; fail?: boolean }) {
  const stateFile = join(scratch, `${uniqueName("plugin")}.json`);
  writeFileSync(stateFile, JSON.stringify({ ...state, runs: 0 }));
  const script = join(scratch, "plugin.cjs");
  writeFileSync(
    script,
    `const fs = require("fs");
     const file = process.argv[2];
     const s = JSON.parse(fs.readFileSync(file, "utf8"));
     s.runs++; s.sawEnv = process.env.PLUGIN_GREETING; s.info = JSON.parse(process.env.KUBERNETES_EXEC_INFO);
     fs.writeFileSync(file, JSON.stringify(s));
     if (s.fail) { process.stderr.write("login failed: no session for this cluster"); process.exit(3); }
     const token = s.tokens[Math.min(s.runs - 1, s.tokens.length - 1)];
     process.stdout.write(JSON.stringify({ apiVersion: s.info.apiVersion, kind: "ExecCredential",
       status: { token, ...(s.expiry ? { expirationTimestamp: s.expiry } : {}) } }));`,
  );
  return {
    exec: (apiVersion = "client.authentication.k8s.io/v1") => ({
      apiVersion,
      command: process.execPath,
      args: [script, stateFile],
      env: [{ name: "PLUGIN_GREETING", value: "hello" }],
      provideClusterInfo: true,
      interactiveMode: "Never",
    }),
    state: () => JSON.parse(readFileSync(stateFile, "utf8")),
  };
}

describe("client authentication", () => {
  it("uses an inline token and a token file", async () => {
    const inline = await Client.load({ path: kubeconfigWith({ token }) });
    assert.equal(await whoAmI(inline), expected());
    const file = join(scratch, "token");
    writeFileSync(file, `${token}\n`);
    const fromFile = await Client.load({ path: kubeconfigWith({ tokenFile: file }) });
    assert.equal(await whoAmI(fromFile), expected());
    await Promise.all([inline.close(), fromFile.close()]);
  });

  it("runs an exec plugin once and caches its credential (v1 and v1beta1)", async () => {
    for (const apiVersion of ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"]) {
      const plugin = execPlugin({ tokens: [token], expiry: new Date(Date.now() + 3_600_000).toISOString() });
      const client = await Client.load({ path: kubeconfigWith({ exec: plugin.exec(apiVersion) }) });
      for (let i = 0; i < 3; i++) assert.equal(await whoAmI(client), expected());
      const state = plugin.state();
      assert.equal(state.runs, 1, `${apiVersion}: one run for three calls`);
      assert.equal(state.sawEnv, "hello", "the plugin gets its configured env");
      assert.equal(state.info.kind, "ExecCredential");
      assert.equal(state.info.spec.interactive, false);
      assert.equal(state.info.spec.cluster.server, adminKubeconfig.clusters[0].cluster.server, "provideClusterInfo");
      await client.close();
    }
  });

  it("runs the plugin again when its credential expires, and when the server answers 401", async () => {
    const expiring = execPlugin({ tokens: [token], expiry: new Date(Date.now() + 5_000).toISOString() });
    const client = await Client.load({ path: kubeconfigWith({ exec: expiring.exec() }) });
    await whoAmI(client);
    await whoAmI(client);
    assert.equal(expiring.state().runs, 2, "a credential within 10 s of expiry is refreshed before use");
    await client.close();

    const rotated = execPlugin({ tokens: ["not-a-valid-token", token], expiry: new Date(Date.now() + 3_600_000).toISOString() });
    const other = await Client.load({ path: kubeconfigWith({ exec: rotated.exec() }) });
    assert.equal(await whoAmI(other), expected());
    assert.equal(rotated.state().runs, 2, "401 → credential dropped → plugin run again → success");
    await other.close();
  });

  it("a watch stream the server answers 401 runs the plugin again and streams with the new credential", async () => {
    // Watch streams have their own HTTP path (node:http on a direct connection): the 401 → run the
    // plugin again → retry must hold there too.
    const rbac = (kind: string, plural: string) => kindOf("rbac.authorization.k8s.io/v1", kind, { plural, namespaced: true });
    await admin.resource(rbac("Role", "roles")).namespace(ns).create({ metadata: { name: "watch-configmaps" }, rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["watch"] }] } as never);
    await admin
      .resource(rbac("RoleBinding", "rolebindings"))
      .namespace(ns)
      .create({
        metadata: { name: "watch-configmaps" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "watch-configmaps" },
        subjects: [{ kind: "ServiceAccount", name: serviceAccount, namespace: ns }],
      } as never);
    const rotated = execPlugin({ tokens: ["not-a-valid-token", token], expiry: new Date(Date.now() + 3_600_000).toISOString() });
    const client = await Client.load({ path: kubeconfigWith({ exec: rotated.exec() }), rateLimit: false });
    const stop = new AbortController();
    const name = uniqueName("watched");
    try {
      const events = client.resource(ConfigMap).namespace(ns).watch({ signal: stop.signal });
      const seen = (async () => {
        for await (const e of events) if (e.type === "ADDED" && e.object.metadata?.name === name) return true;
        return false;
      })();
      // The watch is open (with the second token) before the object is made, or lists it as ADDED.
      await admin.resource(ConfigMap).namespace(ns).create({ metadata: { name } });
      assert.equal(await seen, true);
      assert.equal(rotated.state().runs, 2, "401 on the stream → credential dropped → plugin run again → stream open");
    } finally {
      stop.abort();
      await client.close();
    }
  });

  it("reports a failing plugin with its stderr, and a rejected credential as Unauthorized", async () => {
    const failing = execPlugin({ tokens: [], fail: true });
    const client = await Client.load({ path: kubeconfigWith({ exec: failing.exec() }) });
    const error = await whoAmI(client).catch((e: unknown) => e);
    assert.ok(error instanceof CredentialError, String(error));
    assert.equal(error.reason, "ExecFailed");
    assert.match(error.message, /exited with 3: login failed: no session for this cluster/);
    await client.close();

    const bad = await Client.load({ path: kubeconfigWith({ token: "definitely-not-valid" }) });
    const unauthorized = await bad.resource(ConfigMap).namespace(ns).list().catch((e: unknown) => e);
    assert.ok(unauthorized instanceof UnauthorizedError, String(unauthorized));
    assert.equal(unauthorized.code, 401);
    // Basic auth was removed from kube-apiserver: the header is ignored, the call is anonymous.
    const basic = await Client.load({ path: kubeconfigWith({ username: "u", password: "p" }) });
    const anonymous = await basic.resource(ConfigMap).namespace(ns).list().catch((e: unknown) => e);
    assert.ok(anonymous instanceof ForbiddenError, String(anonymous));
    assert.match(anonymous.message, /User "system:anonymous"/);
    await Promise.all([bad.close(), basic.close()]);
  });

  it("impersonates a user (typed Forbidden without rights) and groups", async () => {
    const cert = adminKubeconfig.users[0].user;
    const nobody = await Client.load({ path: kubeconfigWith({ ...cert, as: "nobody-in-particular" }) });
    const denied = await nobody.resource(ConfigMap).namespace(ns).list().catch((e: unknown) => e);
    assert.ok(denied instanceof ForbiddenError, String(denied));
    assert.match(denied.message, /User "nobody-in-particular" cannot list resource "configmaps"/);
    assert.equal(await whoAmI(nobody), "nobody-in-particular");

    const masters = await Client.load({
      path: kubeconfigWith({ ...cert, as: "someone", "as-groups": ["system:masters"], "as-user-extra": { team: ["a b"] } }),
    });
    const listed = await masters.resource(ConfigMap).namespace(ns).list();
    assert.ok(Array.isArray(listed.items));
    const review = await masters.request<{ status: { userInfo: { username: string; groups: string[]; extra?: Record<string, string[]> } } }>({
      method: "POST",
      path: "/apis/authentication.k8s.io/v1/selfsubjectreviews",
      body: { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" },
    });
    assert.ok(review.status.userInfo.groups.includes("system:masters"));
    assert.deepEqual(review.status.userInfo.extra?.team, ["a b"]);
    await Promise.all([nobody.close(), masters.close()]);
  });
});
