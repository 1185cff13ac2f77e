// Authentication against the real API server: service-account tokens (inline, from a file, from
// an exec credential plugin), impersonation and RBAC, and the failures each can have.
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, it, mock } from "node:test";
import * as YAML from "yaml";
import { Client, ConfigMap, CredentialError, ForbiddenError, Namespace, Role, RoleBinding, ServiceAccount, UnauthorizedError, type KubeObject, type WatchEvent } from "../src/entries/index.js";
import { loadCertificateAuthority } from "../src/core/pki.js";
import type { ControlPlane } from "../src/entries/testing.js";
import { releaseSharedCluster, sharedCluster, uniqueName } from "./helpers.js";

const scratch = mkdtempSync(join(tmpdir(), "kubeloop-auth-test-"));
let admin: Client;
let cluster: ControlPlane;
let adminKubeconfig: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- YAML document
let token: string;
let ns: string;
const serviceAccount = "auth-test";

before(async () => {
  cluster = await sharedCluster();
  adminKubeconfig = YAML.parse(readFileSync(cluster.kubeconfigPath, "utf8"));
  admin = await Client.load({ path: cluster.kubeconfigPath, rateLimit: false });
  ns = uniqueName("auth");
  await admin.resource(Namespace).create({ metadata: { name: ns } });
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

/** Lets `subject` watch ConfigMaps in `namespace`: a Role and its RoleBinding, both named `name`. */
async function grantWatchConfigMaps(namespace: string, name: string, subject: { kind: "User" | "ServiceAccount"; name: string }): Promise<void> {
  await admin.resource(Role).namespace(namespace).create({ metadata: { name }, rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["watch"] }] });
  await admin
    .resource(RoleBinding)
    .namespace(namespace)
    .create({
      metadata: { name },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name },
      subjects: [subject.kind === "User" ? { kind: "User", name: subject.name, apiGroup: "rbac.authorization.k8s.io" } : { kind: "ServiceAccount", name: subject.name, namespace }],
    });
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
    await grantWatchConfigMaps(ns, "watch-configmaps", { kind: "ServiceAccount", name: serviceAccount });
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

  it("a rotated client certificate: new streams and calls use the new one, a stream in flight goes on", async (t) => {
    // Streams keep their own agents per client certificate (node:http): a new certificate from the
    // plugin gives new connections, while a stream opened with the old one keeps streaming.
    // RBAC tells the identities apart: A may watch ConfigMaps only in nsA, B only in nsB.
    // The certificates are signed with the local control plane's CA, beside its kubeconfig (the
    // test runner shares that cluster with the files as an existing one, which issues no users).
    const pki = join(dirname(cluster.kubeconfigPath), "pki");
    if (!existsSync(join(pki, "ca.key"))) return t.skip("needs the local control plane's CA (pki/ca.key beside its kubeconfig)");
    const ca = await loadCertificateAuthority({ certificate: readFileSync(join(pki, "ca.crt"), "utf8"), key: readFileSync(join(pki, "ca.key"), "utf8") });
    const a = await ca.sign({ commonName: "rotation-a", usage: "client" });
    const b = await ca.sign({ commonName: "rotation-b", usage: "client" });
    const nsA = uniqueName("rot-a");
    const nsB = uniqueName("rot-b");
    for (const [namespace, user] of [[nsA, "rotation-a"], [nsB, "rotation-b"]] as const) {
      await admin.resource(Namespace).create({ metadata: { name: namespace } });
      await grantWatchConfigMaps(namespace, "watch", { kind: "User", name: user });
    }
    // The plugin hands out A (valid an hour), then B: A is replaced once it is within the client's
    // refresh margin of its expiry, which the test reaches by moving Date (the credential cache
    // reads the wall clock; sockets and timers are not affected).
    const now = Date.now();
    const stateFile = join(scratch, `${uniqueName("cert-plugin")}.json`);
    writeFileSync(stateFile, JSON.stringify({ runs: 0, certs: [{ ...a, expiry: new Date(now + 3_600_000).toISOString() }, { ...b, expiry: new Date(now + 36_000_000).toISOString() }] }));
    const script = join(scratch, "cert-plugin.cjs");
    writeFileSync(
      script,
      `const fs = require("fs");
       const s = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
       s.runs++; fs.writeFileSync(process.argv[2], JSON.stringify(s));
       const c = s.certs[Math.min(s.runs - 1, s.certs.length - 1)];
       process.stdout.write(JSON.stringify({ apiVersion: "client.authentication.k8s.io/v1", kind: "ExecCredential",
         status: { clientCertificateData: c.certificate, clientKeyData: c.key, expirationTimestamp: c.expiry } }));`,
    );
    const runs = () => (JSON.parse(readFileSync(stateFile, "utf8")) as { runs: number }).runs;
    mock.timers.enable({ apis: ["Date"], now });
    const client = await Client.load({ path: kubeconfigWith({ exec: { apiVersion: "client.authentication.k8s.io/v1", command: process.execPath, args: [script, stateFile], interactiveMode: "Never" } }), rateLimit: false });
    const stop = new AbortController();
    /** Names of the ConfigMaps a watch sees added, as they come. */
    const follow = (events: AsyncIterable<WatchEvent<KubeObject>>) => {
      const seen = new Set<string>();
      const wanted: { name: string; resolve: () => void }[] = [];
      const done = (async () => {
        for await (const e of events) {
          if (e.type !== "ADDED" || !e.object.metadata?.name) continue;
          seen.add(e.object.metadata.name);
          for (const w of wanted.filter((w) => w.name === e.object.metadata?.name)) w.resolve();
        }
      })();
      done.catch(() => {}); // reported to whoever waits in sees()
      const sees = (name: string) => new Promise<void>((resolve, reject) => {
        if (seen.has(name)) return resolve();
        wanted.push({ name, resolve });
        void done.then(() => reject(new Error(`the watch ended before ${name} was added`)), reject);
      });
      return { sees, done };
    };
    try {
      assert.equal(await whoAmI(client), "rotation-a");
      const first = follow(client.resource(ConfigMap).namespace(nsA).watch({ signal: stop.signal }));
      // The stream is open (as A) once an object made after it is seen.
      await admin.resource(ConfigMap).namespace(nsA).create({ metadata: { name: "before" } });
      await first.sees("before");
      assert.equal(runs(), 1);

      mock.timers.setTime(now + 3_600_000 - 5_000); // A is now within 10 s of its expiry
      assert.equal(await whoAmI(client), "rotation-b", "a call after the refresh margin runs the plugin and uses B");
      assert.equal(runs(), 2);
      const second = follow(client.resource(ConfigMap).namespace(nsB).watch({ signal: stop.signal }));
      await admin.resource(ConfigMap).namespace(nsB).create({ metadata: { name: "after" } });
      await second.sees("after"); // only B may watch nsB: a stream still on A's connection would get 403

      await admin.resource(ConfigMap).namespace(nsA).create({ metadata: { name: "during" } });
      await first.sees("during"); // the stream opened as A goes on after the rotation
      const denied = await client.resource(ConfigMap).namespace(nsA).watch({ signal: stop.signal })[Symbol.asyncIterator]().next().catch((e: unknown) => e);
      assert.ok(denied instanceof ForbiddenError, `a new stream in nsA runs as B and is refused: ${String(denied)}`);
    } finally {
      mock.timers.reset();
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
