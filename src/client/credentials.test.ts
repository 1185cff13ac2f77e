import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import type { ClusterConfig } from "./config.js";
import { credentialsFor } from "./credentials.js";

const dir = mkdtempSync(join(tmpdir(), "kubeloop-cred-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const cluster = (auth: ClusterConfig["auth"]): ClusterConfig => ({ server: "https://x", source: "t", namespace: "default", tls: { insecureSkipVerify: false }, auth });

describe("credentials", () => {
  it("re-reads a rotating token file after a minute, and at once after a 401", async () => {
    const path = join(dir, "token");
    writeFileSync(path, "first\n");
    let now = 0;
    const creds = credentialsFor(cluster({ type: "tokenFile", path }), () => now);
    assert.equal((await creds.get()).authorization, "Bearer first");
    writeFileSync(path, "second\n");
    now = 30_000;
    assert.equal((await creds.get()).authorization, "Bearer first", "cached within a minute");
    now = 61_000;
    assert.equal((await creds.get()).authorization, "Bearer second", "re-read after a minute");
    writeFileSync(path, "third\n");
    assert.equal(creds.invalidate(), true);
    assert.equal((await creds.get()).authorization, "Bearer third", "re-read after a 401");
    rmSync(path);
    now = 200_000;
    assert.equal((await creds.get()).authorization, "Bearer third", "a vanished file keeps the last token");
  });

  describe("exec plugins that hang", () => {
    const credential = JSON.stringify({ apiVersion: "client.authentication.k8s.io/v1", kind: "ExecCredential", status: { token: "from-plugin" } });
    const plugin = (script: string, timeoutMs?: number) =>
      credentialsFor(
        cluster({
          type: "exec",
          exec: { command: "/bin/sh", args: ["-c", script], env: [], apiVersion: "client.authentication.k8s.io/v1", provideClusterInfo: false, origin: "test", ...(timeoutMs ? { timeoutMs } : {}) },
        }),
      );

    it("one that ignores SIGTERM is killed at its timeout, with an error naming the plugin and the time", { timeout: 15_000 }, async () => {
      const started = Date.now();
      await assert.rejects(plugin(`trap "" TERM; sleep 30`, 300).get(), /exec credential plugin '\/bin\/sh' \(test\) .*did not finish within 300 ms/);
      assert.ok(Date.now() - started < 5_000, `gave up after ${Date.now() - started} ms`);
    });

    it("one that leaves a process holding its output open still delivers its credential", { timeout: 15_000 }, async () => {
      const started = Date.now();
      const got = await plugin(`printf '%s' '${credential}'; sleep 30 &`).get();
      assert.equal(got.authorization, "Bearer from-plugin");
      assert.ok(Date.now() - started < 5_000, `answered after ${Date.now() - started} ms`);
    });
  });

  it("fails clearly when the token file never existed", async () => {
    const creds = credentialsFor(cluster({ type: "tokenFile", path: join(dir, "none") }));
    await assert.rejects(creds.get(), /cannot read the token file .*none/);
  });

  it("encodes basic auth and static tokens; neither can be refreshed", async () => {
    const basic = credentialsFor(cluster({ type: "basic", username: "u", password: "p:w" }));
    assert.equal((await basic.get()).authorization, `Basic ${Buffer.from("u:p:w").toString("base64")}`);
    assert.equal(basic.invalidate(), false);
    const token = credentialsFor(cluster({ type: "token", token: "t" }));
    assert.equal((await token.get()).authorization, "Bearer t");
    assert.equal(token.invalidate(), false);
  });
});
