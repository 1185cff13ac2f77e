// The replay ceiling (issue 17): a watch stream captured from the real API server, replayed from
// a local HTTP server as fast as each contender reads it. The API server's write rate bounds every
// contender in the live benchmark; here only the framework's own work does, so the events/s each
// contender sustains is its ceiling, comparable across languages.
//
// The server answers what the contenders ask of an API server for one namespace's ConfigMaps:
// discovery (/api, /apis, /api/v1, /version, as captured), the namespace list (kopf asks), the list (as captured; `limit` ignored,
// one page), and the watch: the captured events repeated until `events` were sent, after the
// initial ADDED events and the initial-events-end bookmark when the watch asks for them
// (streaming list, `sendInitialEvents=true`); each pass with resourceVersions of its own. Then
// the stream stays open.
//
// Handler contenders write (their progress and diff base): a PATCH of a replayed object is
// answered 200 with the patch merged into a bare object at resourceVersion "1", a POST (an Event)
// 201 with its body. The recorded objects carry no diff base, so every replayed event is a create
// for both kubeloop's and kopf's handlers; neither waits for its own write to come back (kubeloop
// reads "1" as older than every event; kopf runs with its consistency timeout at 0), since a
// replay never echoes a write.
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { request } from "node:https";
import { writeFileSync } from "node:fs";
import * as YAML from "yaml";
import type { Client } from "../src/entries/index.js";
import { churn } from "./peers.js";

export interface Recording {
  namespace: string;
  discovery: Record<string, string>;
  /** The list response body. */
  list: string;
  /** One JSON watch line per captured event (each ends with "\n"). */
  events: string[];
}

type Tls = { server: string; ca?: string; cert?: string; key?: string; token?: string };

function tlsOf(kubeconfig: string): Tls {
  const doc = YAML.parse(readFileSync(kubeconfig, "utf8"));
  const b64 = (s?: string) => (s ? Buffer.from(s, "base64").toString() : undefined);
  const cluster = doc.clusters[0].cluster;
  const user = doc.users[0].user ?? {};
  return { server: cluster.server, ca: b64(cluster["certificate-authority-data"]), cert: b64(user["client-certificate-data"]), key: b64(user["client-key-data"]), token: user.token };
}

function get(tls: Tls, path: string, onData?: (chunk: Buffer) => boolean | void, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const req = request(`${tls.server}${path}`, { ca: tls.ca, cert: tls.cert, key: tls.key, headers: { accept: "application/json", ...(tls.token ? { authorization: `Bearer ${tls.token}` } : {}) }, ...(signal ? { signal } : {}) }, (res) => {
      res.on("data", (c: Buffer) => (onData ? onData(c) : chunks.push(c)));
      res.on("end", () => resolve(Buffer.concat(chunks).toString()));
      res.on("error", reject);
    });
    req.on("error", (e) => (signal?.aborted ? resolve("") : reject(e)));
    req.end();
  });
}

/** Captures discovery, the list, and `events` watch events produced by churning the namespace. */
export async function capture(client: Client, kubeconfig: string, namespace: string, objects: number, events: number): Promise<Recording> {
  const tls = tlsOf(kubeconfig);
  const discovery: Record<string, string> = {};
  for (const path of ["/api", "/apis", "/api/v1", "/version", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"]) discovery[path] = await get(tls, path); // kopf watches CRDs
  // Every group version, for clients that map kinds through discovery (controller-runtime).
  const groups = (JSON.parse(discovery["/apis"] ?? "{}") as { groups?: { versions: { groupVersion: string }[] }[] }).groups ?? [];
  for (const gv of groups.flatMap((g) => g.versions.map((v) => v.groupVersion))) discovery[`/apis/${gv}`] = await get(tls, `/apis/${gv}`);
  // kopf lists and watches namespaces even for one exact namespace.
  const ns = JSON.parse(await get(tls, `/api/v1/namespaces/${namespace}`)) as { metadata: { resourceVersion: string } };
  discovery["/api/v1/namespaces"] = JSON.stringify({ kind: "NamespaceList", apiVersion: "v1", metadata: { resourceVersion: ns.metadata.resourceVersion }, items: [ns] });
  const list = await get(tls, `/api/v1/namespaces/${namespace}/configmaps`);
  const rv = (JSON.parse(list) as { metadata: { resourceVersion: string } }).metadata.resourceVersion;
  const lines: string[] = [];
  let rest = "";
  const stop = new AbortController();
  let done!: () => void;
  const complete = new Promise<void>((r) => (done = r));
  void get(tls, `/api/v1/namespaces/${namespace}/configmaps?watch=1&resourceVersion=${rv}`, (chunk) => {
    const text = rest + chunk.toString();
    const parts = text.split("\n");
    rest = parts.pop() ?? "";
    for (const p of parts) if (p && lines.length < events) lines.push(`${p}\n`);
    if (lines.length >= events) done();
  }, stop.signal);
  await churn(client, namespace, objects, events, "capture");
  await complete;
  stop.abort();
  return { namespace, discovery, list, events: lines };
}

export interface ReplayServer {
  server: Server;
  url: string;
  /**
   * Holds the events of watches opened from now on (the initial state still flows) until the
   * returned function is called: the harness releases them once the contender said "synced", as
   * the live benchmark patches only then (a controller whose handlers attach after its cache
   * synced would otherwise miss a flood that came first).
   */
  hold(): () => void;
  /** A kubeconfig for the server (plain HTTP, no credentials), written to `path`. */
  kubeconfig(path: string): string;
  close(): Promise<void>;
}

/** RFC 7386 JSON merge patch: `patch` merged into `target` (null removes). */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = target !== null && typeof target === "object" && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** A handler contender's write: see the header. */
function answerWrite(req: IncomingMessage, res: ServerResponse, path: string, listPath: string, namespace: string): void {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    let body: unknown;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString() || "null");
    } catch {
      body = null;
    }
    if (req.method === "POST") {
      res.writeHead(201, { "content-type": "application/json" }).end(JSON.stringify(body ?? {}));
      return;
    }
    const name = path.startsWith(`${listPath}/`) ? path.slice(listPath.length + 1).split("/")[0] : undefined;
    if (!name) {
      res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", reason: "NotFound", code: 404, message: `${path} is not replayed` }));
      return;
    }
    const bare = { kind: "ConfigMap", apiVersion: "v1", metadata: { name, namespace } };
    const merged = (Array.isArray(body) ? bare : mergePatch(bare, body)) as { metadata: Record<string, unknown> };
    merged.metadata = { ...merged.metadata, name, namespace, resourceVersion: "1" };
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(merged));
  });
}

/**
 * Serves `recording`, its events repeated until `total` per watch. `pace` (events per second):
 * each event its own write at that rate, as a live API server sends them under a patch load, so
 * per-read costs show as they do live, without the API server's CPU on the same cores.
 */
export async function replayServer(recording: Recording, total: number, pace?: number): Promise<ReplayServer> {
  const list = JSON.parse(recording.list) as { metadata: { resourceVersion: string }; items: unknown[] };
  // A batch of the captured lines, written at once: one write per pass through the recording.
  // Each pass gets resourceVersions of its own, shifted past the previous pass's, as a live
  // server's events would have: a client that drops an update whose resourceVersion it has seen
  // (client-node's informer does) must count every replayed event, not only the first pass's.
  // Made before serving, so the replay server spends no CPU on it while contenders read.
  const RV = /"resourceVersion":"(\d+)"/;
  // data.seq is shifted per pass too, as if `total` patches had been made: a handler contender is
  // done when every object was handled at one of the last `objects` changes (seq ≥ total − objects).
  const SEQ = /"seq":"(\d+)"/;
  const R = recording.events.length;
  const shift = (line: string, k: number) => line.replace(RV, (_m, rv: string) => `"resourceVersion":"${Number(rv) + k * span}"`).replace(SEQ, (_m, seq: string) => `"seq":"${Number(seq) + k * R}"`);
  const rvs = recording.events.map((line) => Number(RV.exec(line)?.[1] ?? Number.NaN)).filter((rv) => Number.isFinite(rv));
  const span = rvs.length ? Math.max(...rvs) - Math.min(...rvs) + 1 : 0;
  const passes = Array.from({ length: Math.max(1, Math.floor(total / Math.max(1, recording.events.length))) }, (_, k) =>
    Buffer.from(recording.events.map((line) => shift(line, k)).join("")),
  );
  const listPath = `/api/v1/namespaces/${recording.namespace}/configmaps`;
  let gate: Promise<void> = Promise.resolve();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://replay");
    if (process.env.REPLAY_DEBUG) process.stderr.write(`replay: ${req.method} ${req.url} ${req.headers.accept ?? ""}\n`);
    const found = recording.discovery[url.pathname];
    if (found !== undefined && url.searchParams.has("watch")) {
      res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" }).flushHeaders(); // nothing new, ever
      return;
    }
    if (found !== undefined) {
      res.writeHead(200, { "content-type": "application/json" }).end(found);
      return;
    }
    if (req.method === "PATCH" || req.method === "POST") {
      answerWrite(req, res, url.pathname, listPath, recording.namespace);
      return;
    }
    if (url.pathname !== listPath) {
      res.writeHead(404, { "content-type": "application/json" }).end(JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", reason: "NotFound", code: 404, message: `${url.pathname} is not replayed` }));
      return;
    }
    const watching = url.searchParams.get("watch") === "1" || url.searchParams.get("watch") === "true";
    if (!watching) {
      res.writeHead(200, { "content-type": "application/json" }).end(recording.list);
      return;
    }
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    res.flushHeaders(); // a client may wait for the headers before it calls itself synced (client-node)
    const held = gate;
    void (async () => {
      const write = async (chunk: Buffer | string) => {
        if (!res.write(chunk)) await new Promise((r) => res.once("drain", r));
      };
      if (url.searchParams.get("sendInitialEvents") === "true") {
        // List items carry no kind; watch events must.
        for (const item of list.items) await write(`${JSON.stringify({ type: "ADDED", object: { kind: "ConfigMap", apiVersion: "v1", ...(item as object) } })}\n`);
        await write(`${JSON.stringify({ type: "BOOKMARK", object: { kind: "ConfigMap", apiVersion: "v1", metadata: { resourceVersion: list.metadata.resourceVersion, annotations: { "k8s.io/initial-events-end": "true" } } } })}\n`);
      }
      await held;
      let sent = 0;
      if (pace) {
        // Line by line, on a timer: the lines due by now, then wait a millisecond.
        const started = performance.now();
        while (sent < total && !res.destroyed) {
          const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * pace) + 1);
          for (; sent < due; sent++) res.write(shift(recording.events[sent % recording.events.length] as string, Math.floor(sent / recording.events.length)));
          await new Promise((r) => setTimeout(r, 1));
        }
        return;
      }
      for (const pass of passes) {
        if (sent + recording.events.length > total || res.destroyed) break;
        await write(pass);
        sent += recording.events.length;
      }
      if (sent < total && !res.destroyed) {
        const last = passes.length;
        await write(recording.events.slice(0, total - sent).map((line) => shift(line, last)).join(""));
      }
      // Then stay open, as a watch with nothing new.
    })().catch(() => res.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    server,
    url,
    hold: () => {
      let release!: () => void;
      gate = new Promise<void>((r) => (release = r));
      return release;
    },
    kubeconfig: (path) => {
      writeFileSync(path, YAML.stringify({ apiVersion: "v1", kind: "Config", clusters: [{ name: "replay", cluster: { server: url, "insecure-skip-tls-verify": true } }] /* client-node refuses http:// without it */, users: [{ name: "replay", user: {} }], contexts: [{ name: "replay", context: { cluster: "replay", user: "replay", namespace: recording.namespace } }], "current-context": "replay" }));
      return path;
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
