// The operator's HTTP endpoint: /metrics (Prometheus), /healthz (the process is alive and not
// failed) and /readyz (caches synced and leadership settled), as controller-runtime's manager
// serves them. Plain HTTP on a port of its own, usually scraped inside the cluster.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Manager, ManagerStatus } from "../controller/manager.js";
import type { Metrics } from "./metrics.js";

/** Options of {@link serveProbes}. */
export interface ProbeServerOptions {
  /** Port; 0 picks a free one. Default 8080. */
  port?: number;
  /** Default "0.0.0.0" (reachable by the kubelet and Prometheus). */
  host?: string;
  /** Liveness probes reported by /healthz as JSON {id: result}; a throwing probe makes it 500. */
  healthChecks?: Record<string, () => Promise<unknown> | unknown>;
  /** Extra readiness checks: each returns undefined when fine, else what is wrong. */
  readyChecks?: Record<string, () => string | undefined>;
  /** Lines /readyz adds after "ok" when ready (`name: line`), e.g. a sharded replica's buckets. */
  readyDetails?: Record<string, () => string>;
  /** Which endpoints this server answers (the others are 404). Default: both. */
  serve?: { metrics?: boolean; health?: boolean };
}

/** A running probe server. */
export interface ProbeServer {
  /** e.g. "http://127.0.0.1:8080" */
  url: string;
  port: number;
  close(): Promise<void>;
}

/** The endpoints a server with these options answers, for logs. */
export function servedEndpoints(options: Pick<ProbeServerOptions, "serve">): string {
  return [options.serve?.metrics !== false ? "/metrics" : "", options.serve?.health !== false ? "/healthz, /readyz" : ""].filter(Boolean).join(", ");
}

/**
 * Serves /metrics, /healthz and /readyz for `manager`. Resolves once listening; rejects if the
 * port cannot be bound (e.g. EADDRINUSE, with the port named).
 */
export function serveProbes(manager: Manager, metrics: Metrics | undefined, options: ProbeServerOptions = {}): Promise<ProbeServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const reply = (status: number, body: string, type = "text/plain; charset=utf-8") => {
      res.writeHead(status, { "content-type": type });
      res.end(body);
    };
    const serveMetrics = options.serve?.metrics !== false;
    const serveHealth = options.serve?.health !== false;
    if (path === "/metrics" && metrics && serveMetrics) {
      // OpenMetrics (with exemplars) for a scraper that asks for it, as Prometheus does when exemplar storage is on.
      const openMetrics = /application\/openmetrics-text/.test(req.headers.accept ?? "");
      metrics.text(openMetrics).then(
        (text) => reply(200, text, openMetrics ? metrics.openMetricsContentType : metrics.contentType),
        (error: unknown) => reply(500, `metrics failed: ${String(error)}\n`),
      );
      return;
    }
    const status = manager.status;
    if (!serveHealth) return reply(404, "not found: this server answers /metrics only\n");
    if (path === "/healthz" || path === "/livez") {
      if (status.phase === "failed") return reply(500, `failed: ${status.error ?? "unknown"}\n`);
      void health(options.healthChecks ?? {}).then(({ ok, body }) => (body === undefined ? reply(200, "ok\n") : reply(ok ? 200 : 500, body, "application/json")));
      return;
    }
    if (path === "/readyz") {
      const problems = readiness(status, options.readyChecks ?? {});
      if (problems.length) return reply(503, problems.join("\n") + "\n");
      const details = Object.entries(options.readyDetails ?? {}).map(([name, line]) => `${name}: ${line()}\n`);
      return reply(200, ["ok\n", ...details].join(""));
    }
    reply(404, `not found: try ${serveMetrics ? "/metrics, " : ""}/healthz or /readyz\n`);
  });
  return new Promise((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) => reject(new Error(`probe server: cannot listen on port ${options.port ?? 8080}: ${error.code ?? error.message}`, { cause: error })));
    server.listen(options.port ?? 8080, options.host ?? "0.0.0.0", () => {
      const { port } = server.address() as AddressInfo;
      const host = options.host && options.host !== "0.0.0.0" ? options.host : "127.0.0.1";
      resolve({
        url: `http://${host}:${port}`,
        port,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

/** The liveness checks' results as JSON (each within 5 s), and whether all passed; no body when there are none. */
async function health(checks: Record<string, () => Promise<unknown> | unknown>): Promise<{ ok: boolean; body?: string }> {
  const entries = Object.entries(checks);
  if (entries.length === 0) return { ok: true };
  const results = await Promise.all(
    entries.map(async ([id, check]) => {
      try {
        return [id, { ok: true, result: (await Promise.race([Promise.resolve().then(check), timeout(5_000)])) ?? null }] as const;
      } catch (error) {
        return [id, { ok: false, error: error instanceof Error ? error.message : String(error) }] as const;
      }
    }),
  );
  return { ok: results.every(([, r]) => r.ok), body: JSON.stringify(Object.fromEntries(results)) + "\n" };
}

/** What keeps the operator from being ready (none: ready): caches, the Lease, the Manager's phase, watches failing, the extra checks. */
function readiness(status: ManagerStatus, checks: Record<string, () => string | undefined>): string[] {
  const problems: string[] = [];
  if (!status.synced) problems.push("caches: not synced");
  if (!status.leadershipSettled) problems.push("leader election: not settled");
  if (status.phase === "paused") problems.push(`manager: paused by the dev run ${status.pausedBy ?? "?"}`);
  else if (status.phase !== "leading" && status.phase !== "following") problems.push(`manager: ${status.phase}`);
  for (const watch of status.failingWatches) problems.push(`watch of ${watch.cache}: failing for ${Math.round(watch.failingForMs / 1000)} s: ${watch.error ?? "no answer"}`);
  for (const [name, check] of Object.entries(checks)) {
    const problem = check();
    if (problem) problems.push(`${name}: ${problem}`);
  }
  return problems;
}

function timeout(ms: number): Promise<never> {
  return new Promise((_, reject) => setTimeout(() => reject(new Error(`probe timed out after ${ms} ms`)), ms).unref());
}
