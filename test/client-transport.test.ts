// The transport under faults. The real API server is used where it can show the behaviour
// (HTTP/2, an HTTP CONNECT proxy in front of it, deadlines on a watch); a local HTTP server
// stands in only for faults the real server cannot be made to produce on demand: 429 and 503
// sequences, and a server that accepts connections and never answers.
import assert from "node:assert/strict";
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { connect, createServer, type AddressInfo, type Server } from "node:net";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import * as YAML from "yaml";
import {
  ApiError,
  Client,
  ConfigMap,
  NetworkError,
  RequestTimeoutError,
  TooManyRequestsError,
  type ClusterConfig,
} from "../src/entries/index.js";
import { releaseSharedCluster, sharedCluster } from "./helpers.js";

let kubeconfigPath: string;
const servers: Server[] = [];

before(async () => {
  kubeconfigPath = (await sharedCluster()).kubeconfigPath;
});
after(async () => {
  for (const s of servers) s.close();
  await releaseSharedCluster();
});

/**
 * An HTTP CONNECT proxy on loopback that tunnels to the requested port on 127.0.0.1, whatever the
 * host name (the test cluster listens there; names need no DNS). Records each tunnel's target.
 */
async function connectProxy(): Promise<{ tunnels: string[]; url: string }> {
  const tunnels: string[] = [];
  const proxy = createHttpServer();
  proxy.on("connect", (req, client, head) => {
    tunnels.push(req.url ?? "");
    const upstream = connect(Number((req.url ?? "").split(":").pop()), "127.0.0.1", () => {
      client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
    upstream.on("error", () => client.destroy());
    client.on("error", () => upstream.destroy());
  });
  return { tunnels, url: `http://127.0.0.1:${await listen(proxy)}` };
}

function listen<T extends Server>(server: T): Promise<number> {
  servers.push(server);
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)));
}

function plainConfig(port: number): ClusterConfig {
  return { server: `http://127.0.0.1:${port}`, source: "test", namespace: "default", tls: { insecureSkipVerify: false }, auth: { type: "none" } };
}

/** A server answering from a script: each request takes the next answer; it records what it got. */
async function scripted(answers: { status: number; headers?: Record<string, string>; body?: unknown }[]) {
  const seen: { method: string; url: string }[] = [];
  const server = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    seen.push({ method: req.method ?? "", url: req.url ?? "" });
    req.resume();
    const answer = answers[Math.min(seen.length - 1, answers.length - 1)]!;
    res.writeHead(answer.status, { "content-type": "application/json", ...answer.headers });
    res.end(JSON.stringify(answer.body ?? { kind: "Status", status: answer.status < 300 ? "Success" : "Failure", code: answer.status }));
  });
  const port = await listen(server);
  return { port, seen };
}

const cm = { apiVersion: "v1" as const, kind: "ConfigMap" as const, metadata: { name: "x", namespace: "default" } };

describe("transport", () => {
  it("retries 429 for any call, honouring Retry-After, and reports persistent throttling with it", async () => {
    const flaky = await scripted([
      { status: 429, headers: { "retry-after": "0" }, body: { kind: "Status", reason: "TooManyRequests", message: "slow down", code: 429 } },
      { status: 201, body: cm },
    ]);
    const client = new Client(plainConfig(flaky.port), { rateLimit: false, retryDelayMs: 1 });
    const created = await client.resource(ConfigMap).create(cm);
    assert.equal(created.metadata?.name, "x");
    assert.deepEqual(flaky.seen.map((s) => s.method), ["POST", "POST"], "a 429 means the server did not run the create");

    const always = await scripted([{ status: 429, headers: { "retry-after": "1" }, body: { kind: "Status", reason: "TooManyRequests", message: "slow down", code: 429 } }]);
    const throttled = new Client(plainConfig(always.port), { rateLimit: false, retries: 2, maxRetryDelayMs: 5 });
    const error = await throttled.resource(ConfigMap).namespace("default").get("x").catch((e: unknown) => e);
    assert.ok(error instanceof TooManyRequestsError, String(error));
    assert.equal(error.retryAfterMs, 1000);
    assert.equal(always.seen.length, 3, "first try + 2 retries");
    await Promise.all([client.close(), throttled.close()]);
  });

  it("retries 503 for idempotent calls only: never repeats a create", async () => {
    const unavailable = { status: 503, body: { kind: "Status", reason: "ServiceUnavailable", message: "etcd is down", code: 503 } };
    const get = await scripted([unavailable, unavailable, { status: 200, body: cm }]);
    const client = new Client(plainConfig(get.port), { rateLimit: false, retryDelayMs: 1 });
    assert.equal((await client.resource(ConfigMap).namespace("default").get("x")).metadata?.name, "x");
    assert.equal(get.seen.length, 3);

    const post = await scripted([unavailable, { status: 201, body: cm }]);
    const writer = new Client(plainConfig(post.port), { rateLimit: false, retryDelayMs: 1 });
    const error = await writer.resource(ConfigMap).create(cm).catch((e: unknown) => e);
    assert.ok(error instanceof ApiError && error.reason === "ServiceUnavailable", String(error));
    assert.match(error.message, /POST \/api\/v1\/namespaces\/default\/configmaps: etcd is down/);
    assert.equal(post.seen.length, 1, "the create was sent once");

    // Writes are not retried after a 5xx the server did not ask to be retried (client-go): the
    // write may have been carried out, and its repeat would surface as a Conflict or NotFound.
    const patch = await scripted([unavailable, unavailable, { status: 200, body: cm }]);
    const patcher = new Client(plainConfig(patch.port), { rateLimit: false, retryDelayMs: 1 });
    await assert.rejects(patcher.resource(ConfigMap).namespace("default").patch("x", [{ op: "remove", path: "/data/a" }], { type: "json" }));
    assert.equal(patch.seen.length, 1);
    await assert.rejects(patcher.resource(ConfigMap).namespace("default").patch("x", { data: { a: null } }, { type: "merge" }));
    assert.equal(patch.seen.length, 2, "a merge patch is not retried after a plain 503");
    const put = await scripted([unavailable]);
    const putter = new Client(plainConfig(put.port), { rateLimit: false, retryDelayMs: 1 });
    await assert.rejects(putter.resource(ConfigMap).namespace("default").replace(cm));
    await assert.rejects(putter.resource(ConfigMap).namespace("default").delete("x"));
    assert.deepEqual(put.seen.map((s) => s.method), ["PUT", "DELETE"], "PUT and DELETE are sent once each");
    // … unless the server asks for it (Retry-After): then any write is retried.
    const asked = await scripted([{ ...unavailable, headers: { "retry-after": "0" } }, { status: 200, body: cm }]);
    const polite = new Client(plainConfig(asked.port), { rateLimit: false, retryDelayMs: 1 });
    await polite.resource(ConfigMap).namespace("default").patch("x", { data: { a: null } }, { type: "merge" });
    assert.equal(asked.seen.length, 2, "retried after a 503 with Retry-After");
    await Promise.all([client.close(), writer.close(), patcher.close(), putter.close(), polite.close()]);
  });

  it("does not repeat a write after a connection reset (it may have been carried out)", async () => {
    let requests = 0;
    const reset = createHttpServer((req) => {
      requests++;
      req.socket.destroy();
    });
    const port = await listen(reset);
    const client = new Client(plainConfig(port), { rateLimit: false, retryDelayMs: 1 });
    await assert.rejects(client.resource(ConfigMap).namespace("default").delete("x"));
    assert.equal(requests, 1, "the DELETE was sent once");
    await assert.rejects(client.resource(ConfigMap).namespace("default").get("x"));
    assert.equal(requests, 5, "a GET is retried (3 retries)");
    await client.close();
  });

  it("discovery: one caller aborting does not fail the others waiting on the same request", async () => {
    const server = createHttpServer((req, res) => {
      req.resume();
      setTimeout(() => {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ kind: "APIResourceList", groupVersion: "v1", resources: [{ name: "widgets", kind: "Widget", namespaced: true, verbs: ["get"] }] }));
      }, 100);
    });
    const port = await listen(server);
    const client = new Client(plainConfig(port), { rateLimit: false, retryDelayMs: 1 });
    const impatient = new AbortController();
    const widget = { apiVersion: "v1", kind: "Widget" };
    const first = client.mapper.mapping(widget, impatient.signal);
    const second = client.mapper.mapping(widget);
    setTimeout(() => impatient.abort(new Error("impatient caller gave up")), 10);
    await assert.rejects(first, /impatient/);
    assert.equal((await second).plural, "widgets", "the second caller got its answer");
    await client.close();
  });

  it("fails fast with a NetworkError naming the server when nothing listens", async () => {
    const probe = createServer();
    const port = await listen(probe);
    probe.close();
    const client = new Client(plainConfig(port), { rateLimit: false, retryDelayMs: 1 });
    const error = await client.resource(ConfigMap).namespace("default").list().catch((e: unknown) => e);
    assert.ok(error instanceof NetworkError, String(error));
    assert.match(error.message, new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED`));
    // A watch (its own HTTP path: node:http) fails the same way.
    const watchError = await client.resource(ConfigMap).namespace("default").watch().next().catch((e: unknown) => e);
    assert.ok(watchError instanceof NetworkError, String(watchError));
    assert.match(watchError.message, new RegExp(`cannot reach http://127\\.0\\.0\\.1:${port} \\(ECONNREFUSED`));
    await client.close();
  });

  it("a watch whose server accepts and never completes the TLS handshake fails at the connect deadline, naming it", async () => {
    const silent = createServer((socket) => socket.on("error", () => {})); // accepts, says nothing
    const port = await listen(silent);
    const client = new Client({ ...plainConfig(port), server: `https://127.0.0.1:${port}` }, { rateLimit: false, retries: 0, timeoutMs: 300 });
    const error = await client.resource(ConfigMap).namespace("default").watch().next().catch((e: unknown) => e);
    assert.ok(error instanceof NetworkError, String(error));
    assert.match(error.message, /connecting took more than 300 ms/);
    await client.close();
  });

  it("gives up at the deadline on a server that accepts and never answers", async () => {
    const silent = createServer((socket) => socket.on("error", () => {})); // accepts, says nothing
    const port = await listen(silent);
    const client = new Client(plainConfig(port), { rateLimit: false, retries: 0, timeoutMs: 300 });
    const error = await client.resource(ConfigMap).namespace("default").get("x").catch((e: unknown) => e);
    assert.ok(error instanceof RequestTimeoutError, String(error));
    assert.match(error.message, /no answer within 300 ms/);
    // A caller's AbortSignal ends a call too, reported as Aborted.
    const controller = new AbortController();
    const pending = client.resource(ConfigMap).namespace("default").get("x", { signal: controller.signal, timeoutMs: 0 });
    controller.abort();
    const aborted = await pending.catch((e: unknown) => e);
    assert.ok(aborted instanceof ApiError && aborted.reason === "Aborted", String(aborted));
    await client.close();
  });

  it("works against the real API server with HTTP/2 negotiation enabled (allowH2)", async () => {
    const client = await Client.load({ path: kubeconfigPath, http2: true, rateLimit: false });
    const results = await Promise.all(Array.from({ length: 20 }, () => client.resource(ConfigMap).namespace("default").list({ limit: 1 })));
    assert.equal(results.length, 20);
    const version = await client.request<{ gitVersion: string }>({ method: "GET", path: "/version" });
    assert.match(version.gitVersion, /^v1\./);
    await client.close();
  });

  it("goes through an HTTP CONNECT proxy (proxy-url) to the real API server", async () => {
    const { tunnels, url } = await connectProxy();
    const base = await Client.load({ path: kubeconfigPath });
    const client = new Client({ ...base.config, proxyUrl: url }, { rateLimit: false });
    const listed = await client.resource(ConfigMap).namespace("default").list();
    assert.ok(Array.isArray(listed.items));
    assert.deepEqual(tunnels, [new URL(base.config.server).host]);
    // A watch goes through the proxy too, on a connection of its own (a new client: none to reuse).
    const watcher = new Client({ ...base.config, proxyUrl: url }, { rateLimit: false });
    const events = watcher.resource(ConfigMap).namespace("default").watch({ resourceVersion: listed.metadata.resourceVersion, timeoutSeconds: 1 });
    for await (const event of events) assert.ok(event.type);
    assert.deepEqual(tunnels, [new URL(base.config.server).host, new URL(base.config.server).host]);
    await Promise.all([client.close(), base.close(), watcher.close()]);
  });

  it("HTTPS_PROXY and NO_PROXY as kubectl reads them: the kubeconfig's proxy-url wins, loopback servers are never proxied", async () => {
    const [a, b] = [await connectProxy(), await connectProxy()];
    // The cluster under a name its certificate carries and no DNS resolves here.
    const dir = mkdtempSync(join(tmpdir(), "kubeloop-proxyenv-"));
    const port = new URL((await Client.load({ path: kubeconfigPath })).config.server).port;
    const named = (proxyUrl?: string) => {
      const config = YAML.parse(readFileSync(kubeconfigPath, "utf8"));
      for (const c of config.clusters) Object.assign(c.cluster, { server: `https://kubernetes.default.svc:${port}` }, proxyUrl ? { "proxy-url": proxyUrl } : {});
      const path = join(dir, proxyUrl ? "with-proxy-url" : "named");
      writeFileSync(path, YAML.stringify(config));
      return path;
    };
    const list = async (path: string, env: NodeJS.ProcessEnv) => {
      const client = await Client.load({ path, env, rateLimit: false, retries: 0 });
      try {
        return (await client.resource(ConfigMap).namespace("default").list({ limit: 1 })).items;
      } finally {
        await client.close();
      }
    };
    try {
      const tunnel = `kubernetes.default.svc:${port}`;
      // HTTPS_PROXY: through a.
      assert.ok(Array.isArray(await list(named(), { HTTPS_PROXY: a.url })));
      assert.deepEqual(a.tunnels, [tunnel]);
      // NO_PROXY names the host (as a domain suffix): direct, and no DNS knows the name.
      await assert.rejects(list(named(), { HTTPS_PROXY: a.url, NO_PROXY: "localhost,.svc" }), (e: unknown) => e instanceof NetworkError && /kubernetes\.default\.svc/.test(e.message));
      assert.deepEqual(a.tunnels, [tunnel], "no tunnel for a NO_PROXY host");
      // The kubeconfig's proxy-url wins over HTTPS_PROXY.
      assert.ok(Array.isArray(await list(named(b.url), { HTTPS_PROXY: a.url })));
      assert.deepEqual([a.tunnels.length, b.tunnels], [1, [tunnel]]);
      // A loopback server is never proxied, as in kubectl.
      assert.ok(Array.isArray(await list(kubeconfigPath, { HTTPS_PROXY: a.url })));
      assert.equal(a.tunnels.length, 1);
      // A proxy that is not http(s): the load fails, naming the variable.
      await assert.rejects(Client.load({ path: named(), env: { HTTPS_PROXY: "socks5://127.0.0.1:1080" } }), /HTTPS_PROXY: HTTPS_PROXY=socks5:\/\/127\.0\.0\.1:1080: only http:\/\/ and https:\/\/ proxies are supported/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("watch batches: a read's events together, in order; a malformed line fails after the events before it", async () => {
    const line = (name: string) => `${JSON.stringify({ type: "ADDED", object: { ...cm, metadata: { name, namespace: "default", resourceVersion: "1" } } })}\n`;
    let next: () => void = () => {};
    const second = new Promise<void>((resolve) => (next = resolve));
    const server = createHttpServer((req, res) => {
      req.resume();
      res.writeHead(200, { "content-type": "application/json" });
      res.write(line("a") + line("b"));
      // The rest only once the first read was handed out: two reads, not one.
      void second.then(() => res.end(`${line("c")}{"type":"ADDED","object":`));
    });
    const port = await listen(server);
    const client = new Client(plainConfig(port), { rateLimit: false });
    const cms = client.resource(ConfigMap).namespace("default");
    const seen: string[][] = [];
    await assert.rejects(
      (async () => {
        for await (const batch of cms.watchBatches()) {
          seen.push(batch.map((e) => e.object.metadata?.name ?? "?"));
          next();
        }
      })(),
      (error: unknown) => error instanceof ApiError && error.reason === "Unknown" && /malformed watch event/.test(error.message),
    );
    assert.deepEqual(seen, [["a", "b"], ["c"]]);
    // watch(): the same events one by one, then the same failure.
    const one: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const event of cms.watch()) one.push(event.object.metadata?.name ?? "?");
      })(),
      /malformed watch event/,
    );
    assert.deepEqual(one, ["a", "b", "c"]);
    await client.close();
  });
});
