// The webhook server under hostile input and certificate rotation: 5,000 malformed bodies are
// each answered (200 or 400, never a dropped connection), and 1,000 admission requests made
// through the real API server while the serving certificate files are replaced twice all
// succeed.
import assert from "node:assert/strict";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { Agent, request as httpsRequest } from "node:https";
import { connect as tlsConnect } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { Client, ConfigMap, MutatingWebhookConfiguration, Namespace, Operator, ValidatingWebhookConfiguration } from "../src/entries/index.js";
import { createCertificateAuthority } from "../src/core/pki.js";
import { WebhookServer } from "../src/webhook/server.js";
import { validate } from "../src/webhook/admission.js";
import { runOperator, type OperatorUnderTest } from "../src/entries/testing.js";
import { releaseSharedCluster, sharedCluster, uniqueName } from "./helpers.js";

let client: Client;
let dir: string;
const cleanups: (() => Promise<unknown>)[] = [];
before(async () => {
  client = await Client.load({ path: (await sharedCluster()).kubeconfigPath, rateLimit: false });
  dir = mkdtempSync(join(tmpdir(), "kubeloop-wh-"));
});
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
  await client?.close();
  await releaseSharedCluster();
});

/** A valid AdmissionReview, mutated at random into something that is not quite one. */
function malformed(i: number): string {
  const valid = { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: { uid: `u${i}`, kind: { group: "", version: "v1", kind: "ConfigMap" }, resource: { group: "", version: "v1", resource: "configmaps" }, operation: "CREATE", userInfo: { username: "x" }, object: { metadata: { name: "x" } } } };
  const text = JSON.stringify(valid);
  const random = (n: number) => Math.floor(Math.random() * n);
  switch (i % 10) {
    case 0:
      return text.slice(0, random(text.length)); // truncated
    case 1:
      return Buffer.from(Array.from({ length: random(200) }, () => random(256))).toString("latin1"); // bytes
    case 2:
      return JSON.stringify({ ...valid, request: { ...valid.request, uid: [random(9)] } });
    case 3:
      return JSON.stringify({ ...valid, request: { ...valid.request, operation: "EXPLODE" } });
    case 4:
      return JSON.stringify({ ...valid, request: null });
    case 5:
      return "[".repeat(random(5_000)) + "]".repeat(random(5_000)); // deep nesting
    case 6:
      return JSON.stringify({ ...valid, request: { ...valid.request, object: "not an object" } });
    case 7:
      return JSON.stringify([valid]);
    case 8:
      return `${text}${"}".repeat(random(10))}`;
    default:
      return text.replace(/"/g, () => (Math.random() < 0.05 ? "'" : '"'));
  }
}

describe("webhook server readiness", () => {
  it("ready while it listens with a certificate valid now; names an expired one, one not valid yet, and a closed server", async () => {
    const ca = await createCertificateAuthority("ready-ca");
    const cert = await ca.sign({ commonName: "ready", usage: "server", ipAddresses: ["127.0.0.1"], validityDays: 30 });
    const server = await WebhookServer.start({ port: 0, host: "127.0.0.1", tls: cert, logger: pino({ level: "silent" }) });
    try {
      assert.equal(server.problem(), undefined);
      const days = server.certificateSecondsLeft / 86_400;
      assert.ok(days > 29.9 && days <= 30, `about 30 days left (${days})`);
      assert.match(server.problem(Date.now() + 31 * 86_400_000) ?? "", /^its certificate expired at \d{4}-/);
      assert.match(server.problem(Date.now() - 3_600_000) ?? "", /^its certificate is valid only from /);
      const renewed = await ca.sign({ commonName: "ready", usage: "server", ipAddresses: ["127.0.0.1"], validityDays: 90 });
      server.setCertificate(renewed.certificate, renewed.key);
      assert.equal(server.problem(Date.now() + 31 * 86_400_000), undefined, "the renewed certificate counts");
    } finally {
      await server.close();
    }
    assert.equal(server.problem(), "not listening");
  });
});

describe("webhook server close", () => {
  it("ends every connection at once, one with a request still being sent included: close() does not wait for the caller", { timeout: 60_000 }, async () => {
    const ca = await createCertificateAuthority("close-ca");
    const cert = await ca.sign({ commonName: "close", usage: "server", ipAddresses: ["127.0.0.1"], validityDays: 30 });
    const server = await WebhookServer.start({ port: 0, host: "127.0.0.1", tls: cert, logger: pino({ level: "silent" }) });
    // A slow caller: its request's body comes a byte every 250 ms (25 s for all of it), so no
    // timeout of the server's ends the connection meanwhile; only close() can.
    const caller = tlsConnect({ host: "127.0.0.1", port: server.port, ca: ca.certificate });
    let closing: Promise<unknown> | undefined;
    let trickle: NodeJS.Timeout | undefined;
    try {
      await new Promise<void>((resolve, reject) => caller.once("secureConnect", resolve).once("error", reject));
      caller.write("POST /convert/x HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n");
      trickle = setInterval(() => caller.writable && caller.write(" "), 250);
      const hungUp = new Promise<void>((resolve) => caller.once("close", () => resolve()));
      caller.on("error", () => {}).resume(); // reading, so that the end is seen
      let closed = false;
      closing = server.close().then(() => (closed = true));
      // A deadline far above what closing takes; the defect made close() wait until the caller hung up (25 s here; 90 s for the API server's idle connection).
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([closing, new Promise((resolve) => (timer = setTimeout(resolve, 15_000)))]);
      clearTimeout(timer);
      assert.ok(closed, "close() resolved while the caller still held its connection");
      await hungUp;
    } finally {
      clearInterval(trickle);
      caller.destroy();
      await (closing ?? server.close());
    }
  });
});

describe("webhook server robustness", () => {
  it("5,000 malformed bodies: every one answered (200 or 400), none crashes or stalls the server", { timeout: 120_000 }, async (t) => {
    const ca = await createCertificateAuthority("fuzz-ca");
    const cert = await ca.sign({ commonName: "fuzz", usage: "server", ipAddresses: ["127.0.0.1"] });
    const server = await WebhookServer.start({ port: 0, host: "127.0.0.1", tls: cert, logger: pino({ level: "silent" }) });
    cleanups.push(() => server.close());
    server.route("/validate/fuzz", { name: "fuzz", budgetMs: 1_000, failurePolicy: "Fail", run: (request) => validate(request, () => {}, { indexes: new Map(), cache: {} as never }) });
    const agent = new Agent({ keepAlive: true, ca: ca.certificate, maxSockets: 16 });
    cleanups.push(async () => agent.destroy());
    const codes = new Map<number, number>();
    const send = (body: string) =>
      new Promise<number>((resolve, reject) => {
        const req = httpsRequest(`${server.url}/validate/fuzz`, { method: "POST", agent, headers: { "content-type": "application/json" } }, (res) => {
          res.resume();
          res.on("end", () => resolve(res.statusCode ?? 0));
        });
        req.on("error", reject);
        req.end(body);
      });
    const N = 5_000;
    for (let i = 0; i < N; i += 50) {
      const batch = await Promise.all(Array.from({ length: Math.min(50, N - i) }, (_, j) => send(malformed(i + j))));
      for (const code of batch) codes.set(code, (codes.get(code) ?? 0) + 1);
    }
    const answered = [...codes.values()].reduce((a, b) => a + b, 0);
    t.diagnostic(`answers by status: ${JSON.stringify([...codes])}`);
    assert.equal(answered, N, "every request answered");
    assert.deepEqual([...codes.keys()].filter((c) => c !== 200 && c !== 400), [], `only 200 and 400: ${JSON.stringify([...codes])}`);
    assert.ok((codes.get(400) ?? 0) > N / 2, "most are refused as malformed");
    assert.equal(await send(JSON.stringify({ apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", request: { uid: "ok", kind: { group: "", version: "v1", kind: "ConfigMap" }, operation: "CREATE", userInfo: {} } })), 200, "still serving");
  });

  it("1,000 admission requests through the API server while the certificate files are replaced twice: zero failures", { timeout: 180_000 }, async (t) => {
    const ca = await createCertificateAuthority("rotation-ca");
    const files = { certFile: join(dir, "tls.crt"), keyFile: join(dir, "tls.key"), caFile: join(dir, "ca.crt") };
    writeFileSync(files.caFile, ca.certificate);
    // cert-manager writes the new pair, then swaps it in; rename keeps each file whole.
    const install = async (n: number) => {
      const pair = await ca.sign({ commonName: `rotation-${n}`, usage: "server", ipAddresses: ["127.0.0.1"] });
      writeFileSync(`${files.certFile}.new`, pair.certificate);
      writeFileSync(`${files.keyFile}.new`, pair.key);
      renameSync(`${files.keyFile}.new`, files.keyFile);
      renameSync(`${files.certFile}.new`, files.certFile);
    };
    await install(0);
    const ns = uniqueName("rot");
    await client.resource(Namespace).create({ metadata: { name: ns } });
    const name = uniqueName("rot-op");
    const op = new Operator({ name, namespaces: [ns], leaderElection: false });
    let calls = 0;
    op.on.validate(ConfigMap, () => void calls++);
    const running: OperatorUnderTest = await runOperator(op, { client, logger: pino({ level: "silent" }), webhooks: { certificate: files } });
    cleanups.push(async () => {
      await running.stop();
      await client.resource(ValidatingWebhookConfiguration).delete(name).catch(() => {});
      await client.resource(MutatingWebhookConfiguration).delete(name).catch(() => {});
    });
    const cms = client.resource(ConfigMap).namespace(ns);
    let failures = 0;
    let done = 0;
    const N = 1_000;
    // The CN a new TLS connection to the webhook server sees: which certificate it serves now.
    const served = () =>
      new Promise<string>((resolve, reject) => {
        const socket = tlsConnect({ host: "127.0.0.1", port: Number(new URL(running.webhookUrl ?? "").port), ca: ca.certificate }, () => {
          const cn = socket.getPeerCertificate().subject?.CN;
          socket.end();
          resolve(Array.isArray(cn) ? cn.join() : (cn ?? ""));
        });
        socket.on("error", reject);
      });
    assert.equal(await served(), "rotation-0");
    const rotated: { n: number; at: number }[] = [];
    // Rotate at a third and two thirds of the load, each time until the server serves the new certificate.
    const rotator = (async () => {
      for (const [n, at] of [[1, N / 3], [2, (2 * N) / 3]] as const) {
        while (done < at) await new Promise((r) => setTimeout(r, 5));
        await install(n);
        const deadline = Date.now() + 20_000;
        while ((await served()) !== `rotation-${n}`) {
          if (Date.now() > deadline) throw new Error(`rotation ${n} not picked up`);
          await new Promise((r) => setTimeout(r, 50));
        }
        rotated.push({ n, at: done });
      }
    })();
    const workers = Array.from({ length: 10 }, async (_, w) => {
      // Until N requests are done, both rotations were seen, and 100 more went through after the last.
      for (let i = w; i < N || rotated.length < 2 || done < (rotated[1]?.at ?? 0) + 100; i += 10) {
        try {
          await cms.create({ metadata: { name: `c${i}` } });
        } catch {
          failures++;
        }
        done++;
      }
    });
    await Promise.all([...workers, rotator]);
    t.diagnostic(`${done} requests; certificate replaced after ${rotated.map((r) => r.at).join(" and ")} of them; ${failures} failures`);
    assert.ok(rotated.every((r) => r.at + 100 <= done), "requests went on after each rotation");
    assert.ok(done >= N);
    assert.equal(failures, 0, `${failures} admission requests failed during rotation`);
    assert.ok(calls >= done, `every create reached the webhook (${calls} calls for ${done} creates)`);
  });
});
