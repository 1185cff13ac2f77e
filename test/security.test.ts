// Secrets stay secret: tokens, keys and certificate bodies never appear in an error message or a
// log line, whatever fails; TLS verification is on by default and turning it off is warned about.
// (Issue 13's security scenario, first part.)
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import * as YAML from "yaml";
import { Client, ConfigMap, Namespace, Operator } from "../src/entries/index.js";
import { loadConfig } from "../src/entries/runtime.js";
import { eventually, releaseSharedCluster, sharedCluster, uniqueName } from "./helpers.js";

let kubeconfig: string;
let client: Client;
const scratch = mkdtempSync(join(tmpdir(), "kubeloop-sec-"));
before(async () => {
  kubeconfig = (await sharedCluster()).kubeconfigPath;
  client = await Client.load({ path: kubeconfig, rateLimit: false });
});
after(async () => {
  await client?.close();
  await releaseSharedCluster();
});

/** Every string an error carries, through its causes. */
function everything(error: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = error, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    parts.push(String(e), (e as Error).stack ?? "", JSON.stringify(e, Object.getOwnPropertyNames(e)));
  }
  return parts.join("\n");
}

/** The distinctive lines of a PEM body (base64 lines long enough not to occur by chance). */
function pemLines(pem: string): string[] {
  return pem.split("\n").filter((l) => l.length >= 40 && !l.startsWith("-----"));
}

describe("secrets never leak", () => {
  it("a wrong bearer token: the 401 names the server and the call, never the token", async () => {
    const token = `sekrit-${uniqueName("tok")}`;
    const base = loadConfig({ path: kubeconfig });
    const bad = new Client({ ...base, tls: { ...base.tls, cert: undefined, key: undefined } as never, auth: { type: "token", token } }, { rateLimit: false, retries: 0 });
    const error = await bad.resource(ConfigMap).namespace("default").list().catch((e: unknown) => e);
    assert.ok(error instanceof Error, String(error));
    assert.ok(!everything(error).includes(token), "the token appears in the error");
    assert.match(String(error), /Unauthorized|401/i);
    await bad.close();
  });

  it("an exec plugin that prints broken JSON holding a token: the error does not echo it", async () => {
    const token = `sekrit-${uniqueName("exec")}`;
    const plugin = join(scratch, "plugin.sh");
    writeFileSync(plugin, `#!/bin/sh\nprintf '{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","status":{"token":"${token}"'\n`);
    chmodSync(plugin, 0o755);
    const config = YAML.parse(readFileSync(kubeconfig, "utf8"));
    const userName = config.contexts[0].context.user;
    config.users = [{ name: userName, user: { exec: { apiVersion: "client.authentication.k8s.io/v1", command: plugin, interactiveMode: "Never" } } }];
    const path = join(scratch, "exec.kubeconfig");
    writeFileSync(path, YAML.stringify(config));
    const c = await Client.load({ path, rateLimit: false, retries: 0 });
    const error = await c.resource(ConfigMap).namespace("default").list().catch((e: unknown) => e);
    assert.ok(error instanceof Error);
    assert.match(String(error), /printed no JSON ExecCredential/);
    assert.ok(!everything(error).includes(token), `the token appears in the error: ${String(error)}`);
    await c.close();
  });

  it("an operator's log lines never carry the client key, the certificate or a token, even when things fail", { timeout: 60_000 }, async () => {
    const identity = YAML.parse(readFileSync(kubeconfig, "utf8")).users[0].user as Record<string, string>;
    const secrets = [...pemLines(Buffer.from(identity["client-key-data"] ?? "", "base64").toString()), ...pemLines(Buffer.from(identity["client-certificate-data"] ?? "", "base64").toString()), (identity["client-key-data"] ?? "").slice(0, 60)];
    assert.ok(secrets.length > 3);
    const lines: string[] = [];
    const logger = pino({ level: "debug" }, { write: (line: string) => void lines.push(line) });
    const ns = uniqueName("sec");
    await client.resource(Namespace).create({ metadata: { name: ns } });
    const op = new Operator({ name: "secrets", namespaces: [ns], leaderElection: false, logger, probes: false });
    op.on.create(ConfigMap, async ({ client: c }) => {
      await c.resource(ConfigMap).namespace("no-such-namespace-here").create({ metadata: { name: "x" } }); // fails: NotFound
    });
    const stop = new AbortController();
    const own = await Client.load({ path: kubeconfig, rateLimit: false });
    const run = op.run({ client: own, signal: stop.signal, handleSignals: false });
    await client.resource(ConfigMap).namespace(ns).create({ metadata: { name: "c" } });
    await eventually("a failure logged", async () => lines.some((l) => l.includes("will retry")));
    stop.abort();
    await run;
    await own.close();
    const leaked = lines.filter((l) => secrets.some((s) => l.includes(s)));
    assert.deepEqual(leaked, [], "log lines with key or certificate material");
  });

  it("TLS verification is on by default; insecure-skip-tls-verify comes with a warning", () => {
    const config = YAML.parse(readFileSync(kubeconfig, "utf8"));
    assert.equal(loadConfig({ path: kubeconfig }).tls.insecureSkipVerify, false);
    config.clusters[0].cluster["insecure-skip-tls-verify"] = true;
    delete config.clusters[0].cluster["certificate-authority-data"];
    const path = join(scratch, "insecure.kubeconfig");
    writeFileSync(path, YAML.stringify(config));
    const loaded = loadConfig({ path });
    assert.equal(loaded.tls.insecureSkipVerify, true);
    assert.ok(loaded.warnings?.some((w) => /insecure-skip-tls-verify/.test(w) && /not verified/.test(w)), `warnings: ${JSON.stringify(loaded.warnings)}`);
  });
});
