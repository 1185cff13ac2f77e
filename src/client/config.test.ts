import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { ConfigError, inClusterConfig, loadConfig, loadConfigAsync, loadKubeconfig } from "./config.js";

const dir = mkdtempSync(join(tmpdir(), "kubeloop-config-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const b64 = (s: string) => Buffer.from(s).toString("base64");

function file(name: string, text: string): string {
  const path = join(dir, name);
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, text);
  return path;
}

function rejectsWith(fn: () => unknown, pattern: RegExp, check?: (e: ConfigError) => void) {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof ConfigError, `a ConfigError, got ${String(error)}`);
    assert.match(error.message, pattern);
    check?.(error);
    return true;
  });
}

describe("kubeconfig", () => {
  const a = file(
    "a.yaml",
    `current-context: one
clusters:
- name: c1
  cluster: {server: "https://one.example:6443/", certificate-authority-data: ${b64(PEM)}}
- name: shared
  cluster: {server: "https://from-a"}
users:
- name: u1
  user: {token: tok1, as: bob, as-groups: [devs]}
contexts:
- name: one
  context: {cluster: c1, user: u1, namespace: team-a}
`,
  );
  const b = file(
    "sub/b.yaml",
    `current-context: two
clusters:
- name: shared
  cluster: {server: "https://from-b", tls-server-name: api.internal, insecure-skip-tls-verify: true}
- name: c2
  cluster: {server: "https://two.example", certificate-authority: certs/ca.pem, proxy-url: "http://proxy:3128"}
users:
- name: u2
  user: {client-certificate: certs/client.pem, client-key: certs/client.key}
contexts:
- name: two
  context: {cluster: c2, user: u2}
- name: s
  context: {cluster: shared}
`,
  );
  file("sub/certs/ca.pem", PEM);
  file("sub/certs/client.pem", PEM);
  file("sub/certs/client.key", "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n");

  it("merges KUBECONFIG files as kubectl does: first definition and first current-context win", () => {
    const config = loadKubeconfig({ env: { KUBECONFIG: `${a}:${join(dir, "missing.yaml")}:${b}` } });
    assert.equal(config.server, "https://one.example:6443");
    assert.equal(config.namespace, "team-a");
    assert.equal(config.tls.ca, PEM);
    assert.deepEqual(config.auth, { type: "token", token: "tok1" });
    assert.deepEqual(config.impersonate, { user: "bob", groups: ["devs"] });
    // "shared" is defined in both; a's definition wins.
    assert.equal(loadKubeconfig({ env: { KUBECONFIG: `${a}:${b}` }, context: "s" }).server, "https://from-a");
    assert.equal(loadKubeconfig({ env: { KUBECONFIG: `${b}:${a}` }, context: "s" }).server, "https://from-b");
  });

  it("resolves relative paths against the file that names them, and reads TLS and proxy settings", () => {
    const config = loadKubeconfig({ path: b, context: "two", namespace: "override" });
    assert.equal(config.tls.ca, PEM);
    assert.equal(config.tls.cert, PEM);
    assert.match(config.tls.key ?? "", /PRIVATE KEY/);
    assert.equal(config.proxyUrl, "http://proxy:3128");
    assert.equal(config.namespace, "override");
    assert.equal(config.auth.type, "none");
    const shared = loadKubeconfig({ path: b, context: "s" });
    assert.equal(shared.tls.serverName, "api.internal");
    assert.equal(shared.tls.insecureSkipVerify, true);
    assert.equal(shared.namespace, "default");
  });

  it("reads an exec plugin, resolving a relative command against the kubeconfig", () => {
    const path = file(
      "exec.yaml",
      `current-context: x
clusters: [{name: c, cluster: {server: "https://x"}}]
users: [{name: u, user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: ./bin/plugin, args: [get-token], env: [{name: A, value: "1"}], provideClusterInfo: true, installHint: "install it"}}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
`,
    );
    const config = loadKubeconfig({ path });
    assert.equal(config.auth.type, "exec");
    if (config.auth.type !== "exec") return;
    assert.equal(config.auth.exec.command, join(dir, "bin/plugin"));
    assert.deepEqual(config.auth.exec.args, ["get-token"]);
    assert.deepEqual(config.auth.exec.env, [{ name: "A", value: "1" }]);
    assert.equal(config.auth.exec.provideClusterInfo, true);
  });

  it("names the file and field of every problem", () => {
    const base = (user: string, extra = "") =>
      `current-context: x\nclusters: [{name: c, cluster: {server: "https://x"${extra}}}]\nusers: [{name: u, user: ${user}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\n`;
    rejectsWith(() => loadKubeconfig({ path: join(dir, "nope.yaml") }), /nope\.yaml: kubeconfig file does not exist/);
    rejectsWith(() => loadKubeconfig({ path: file("bad.yaml", "clusters: [\n  - {name: c\n") }), /bad\.yaml: is not valid YAML/);
    rejectsWith(() => loadKubeconfig({ path: file("list.yaml", "- a\n- b\n") }), /list\.yaml: is not a kubeconfig/);
    rejectsWith(() => loadKubeconfig({ path: a, context: "zzz" }), /context "zzz" not found in .*a\.yaml \(available: one\)/);
    rejectsWith(() => loadKubeconfig({ path: file("noctx.yaml", "clusters: []\n") }), /no current-context is set/);
    rejectsWith(
      () => loadKubeconfig({ path: file("nocluster.yaml", "current-context: x\ncontexts: [{name: x, context: {cluster: gone}}]\n") }),
      /nocluster\.yaml: contexts\["x"\]\.context\.cluster: names cluster "gone", which is not defined/,
    );
    rejectsWith(
      () => loadKubeconfig({ path: file("noserver.yaml", "current-context: x\nclusters: [{name: c, cluster: {}}]\ncontexts: [{name: x, context: {cluster: c}}]\n") }),
      /clusters\["c"\]\.cluster\.server: is missing/,
    );
    rejectsWith(() => loadKubeconfig({ path: file("cert.yaml", base("{client-certificate: /no/such.crt, client-key: /no/such.key}")) }), /users\["u"\]\.user\.client-certificate: cannot read \/no\/such\.crt \(ENOENT\)/, (e) => {
      assert.equal(e.field, 'users["u"].user.client-certificate');
      assert.match(e.file ?? "", /cert\.yaml$/);
    });
    rejectsWith(() => loadKubeconfig({ path: file("data.yaml", base(`{client-certificate-data: ${b64("junk")}, client-key-data: ${b64("junk")}}`)) }), /client-certificate-data: is not base64-encoded PEM/);
    rejectsWith(() => loadKubeconfig({ path: file("half.yaml", base(`{client-certificate-data: ${b64(PEM)}}`)) }), /client-certificate and client-key must be given together/);
    rejectsWith(() => loadKubeconfig({ path: file("both.yaml", base("{token: t, username: u, password: p}")) }), /a token and a username\/password cannot both be set/);
    rejectsWith(() => loadKubeconfig({ path: file("ap.yaml", base("{auth-provider: {name: gcp}}")) }), /auth-provider "gcp" is not supported/);
    rejectsWith(() => loadKubeconfig({ path: file("ex.yaml", base("{exec: {command: x, apiVersion: client.authentication.k8s.io/v1alpha1}}")) }), /exec\.apiVersion: must be client\.authentication\.k8s\.io\/v1 or v1beta1/);
    rejectsWith(() => loadKubeconfig({ path: file("tf.yaml", base("{tokenFile: /no/token}")) }), /users\["u"\]\.user\.tokenFile: cannot read \/no\/token/);
    rejectsWith(() => loadKubeconfig({ path: file("socks.yaml", base("{token: t}", ', proxy-url: "socks5://p:1080"')) }), /proxy-url: only http:\/\/ and https:\/\/ proxies/);
    rejectsWith(() => loadKubeconfig({ path: file("url.yaml", base("{token: t}").replace("https://x", "not a url")) }), /server: is not a valid http\(s\) URL/);
    rejectsWith(() => loadKubeconfig({ path: file("num.yaml", base("{token: 42}")) }), /token: must be a string \(got number\)/);
    rejectsWith(() => loadKubeconfig({ path: file("imp.yaml", base("{token: t, as-groups: [a]}")) }), /impersonating groups or extra requires a user/);
  });

  it("says where it looked when there is no kubeconfig at all", () => {
    rejectsWith(() => loadConfig({ env: { HOME: join(dir, "empty-home") } }), /no kubeconfig: KUBECONFIG is not set, .*empty-home\/\.kube\/config does not exist/);
    rejectsWith(() => loadConfig({ env: { KUBECONFIG: "/no/a:/no/b" } }), /none of the files in KUBECONFIG exist: \/no\/a, \/no\/b/);
  });
});

describe("in-cluster config", () => {
  const sa = join(dir, "sa");
  mkdirSync(sa, { recursive: true });
  writeFileSync(join(sa, "token"), "t0k\n");
  writeFileSync(join(sa, "ca.crt"), PEM);
  writeFileSync(join(sa, "namespace"), "operators\n");

  it("uses the service account files and the service host", () => {
    const env = { KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443" };
    const config = loadConfig({ env, serviceAccountDir: sa });
    assert.equal(config.server, "https://10.0.0.1:443");
    assert.equal(config.source, "in-cluster");
    assert.equal(config.namespace, "operators");
    assert.equal(config.tls.ca, PEM);
    assert.deepEqual(config.auth, { type: "tokenFile", path: join(sa, "token") });
    assert.equal(inClusterConfig({ env: { KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" }, serviceAccountDir: sa }).server, "https://[fd00::1]:443");
  });

  it("loadConfigAsync() resolves what loadConfig() does, from a kubeconfig and in a Pod", async () => {
    const kubeconfig = file("async.yaml", `current-context: x\nclusters: [{name: c, cluster: {server: "https://async"}}]\ncontexts: [{name: x, context: {cluster: c, namespace: ns1}}]\n`);
    assert.deepEqual(await loadConfigAsync({ path: kubeconfig }), loadConfig({ path: kubeconfig }));
    const env = { KUBERNETES_SERVICE_HOST: "10.0.0.1", KUBERNETES_SERVICE_PORT: "443" };
    assert.deepEqual(await loadConfigAsync({ env, serviceAccountDir: sa }), loadConfig({ env, serviceAccountDir: sa }));
    await assert.rejects(loadConfigAsync({ path: join(dir, "missing.yaml") }), ConfigError);
  });

  it("prefers KUBECONFIG over in-cluster, and explains what is missing", () => {
    const kubeconfig = file("ic.yaml", `current-context: x\nclusters: [{name: c, cluster: {server: "https://kc"}}]\ncontexts: [{name: x, context: {cluster: c}}]\n`);
    assert.equal(loadConfig({ env: { KUBECONFIG: kubeconfig, KUBERNETES_SERVICE_HOST: "h", KUBERNETES_SERVICE_PORT: "1" }, serviceAccountDir: sa }).server, "https://kc");
    rejectsWith(() => inClusterConfig({ env: {} }), /KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not both set/);
    rejectsWith(() => inClusterConfig({ env: { KUBERNETES_SERVICE_HOST: "h", KUBERNETES_SERVICE_PORT: "1" }, serviceAccountDir: join(dir, "none") }), /no service account token/);
  });
});
