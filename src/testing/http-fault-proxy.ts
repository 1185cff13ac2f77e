// An HTTP-level fault injector in front of the real API server, for the faults the server will
// not produce on demand: 429 and 503 storms with Retry-After, slow responses. Unlike the TCP
// FaultProxy it terminates the connection: clients speak plain HTTP to it on loopback, without
// credentials, and it forwards each request to the API server over TLS with the identity it was
// given (typically the control plane's admin). Responses, watch streams included, are piped
// through as they arrive. Every request is counted, so a test can measure how hard a client
// pushes while it is being refused.
import { writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { Agent, request as httpsRequest } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import * as YAML from "yaml";

/** What the proxy does to the requests a fault matches. */
export interface HttpFault {
  /**
   * Answer with this status (and a Kubernetes Status body) instead of forwarding. 404 stands for
   * what a server that has not caught up answers (e.g. discovery of a CRD just established).
   */
  status?: 404 | 429 | 500 | 502 | 503 | 504;
  /** The `Retry-After` header sent with `status`, in seconds. None when absent. */
  retryAfterSeconds?: number;
  /**
   * Forward the request and pass the server's status and headers back, but none of its body: the
   * answer stays open and silent (a proxy that keeps a watch stream and passes nothing on). Such
   * answers end only when the client goes away, or at `cutAll()` / `close()`.
   */
  silent?: boolean;
  /** Wait this long before answering or forwarding: a slow server. */
  delayMs?: number;
  /** Share of matching requests affected, 0–1. Default 1 (all). */
  fraction?: number;
  /** Affect only this many requests, then heal. Default: no limit. */
  times?: number;
  /** Which requests are affected. Default: all. */
  match?: (request: { method: string; path: string; watch: boolean }) => boolean;
}

/** One request the proxy saw. */
export interface ProxiedRequest {
  at: number;
  method: string;
  path: string;
  watch: boolean;
  /** The status answered by the proxy, or undefined when forwarded. */
  injected: number | undefined;
  /** The status the API server answered (forwarded requests, once it answered). */
  status?: number;
  /** Forwarded, its answer's body not passed on (`HttpFault.silent`). */
  silenced?: boolean;
}

/** Where the proxy forwards to, and as whom: a client certificate, or a bearer token (a ServiceAccount's). */
export interface HttpFaultProxyTarget {
  /** The API server, e.g. `https://127.0.0.1:6443`. */
  server: string;
  /** PEM of the CA that signed the server's certificate. */
  ca: string;
  /** Client certificate and key (PEM) used for every forwarded request. */
  certificate?: string;
  key?: string;
  /** A bearer token sent with every forwarded request instead (e.g. from the TokenRequest API). */
  token?: string;
}

const KEEP_REQUESTS = 200_000;

/** A running HTTP fault injector; see the file comment. Stop it with {@link HttpFaultProxy.close}. */
export class HttpFaultProxy {
  private fault: HttpFault | undefined;
  private left = Infinity;
  private readonly sockets = new Set<Socket>();
  private readonly log: ProxiedRequest[] = [];
  /** Requests seen since start (the log keeps the last 200,000). */
  total = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly target: URL,
    private readonly agent: Agent,
    private readonly token: string | undefined,
  ) {}

  /** Starts the proxy on a free loopback port. */
  static async start(target: HttpFaultProxyTarget): Promise<HttpFaultProxy> {
    const agent = new Agent({ keepAlive: true, ca: target.ca, cert: target.certificate, key: target.key, maxSockets: 256 });
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    });
    const proxy = new HttpFaultProxy(server, (server.address() as AddressInfo).port, new URL(target.server), agent, target.token);
    server.on("connection", (socket) => {
      proxy.sockets.add(socket);
      socket.on("close", () => proxy.sockets.delete(socket));
    });
    server.on("request", (req, res) => void proxy.handle(req, res));
    return proxy;
  }

  /** `http://127.0.0.1:<port>`: the address clients should use. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Applies `fault` to requests from now on (replacing any earlier one); `undefined` heals. */
  inject(fault: HttpFault | undefined): void {
    this.fault = fault;
    this.left = fault?.times ?? Infinity;
  }

  /** Ends the current fault. */
  heal(): void {
    this.fault = undefined;
  }

  /** Closes every client connection (open watches end): clients must come back through the current fault. */
  cutAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  /** The requests seen at or after `since` (epoch ms), oldest first. */
  requestsSince(since: number): ProxiedRequest[] {
    return this.log.filter((r) => r.at >= since);
  }

  /** Writes a kubeconfig that points at this proxy, without credentials; returns its path. */
  writeKubeconfig(outputPath: string, namespace = "default"): string {
    const doc = {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "proxy", cluster: { server: this.url } }],
      users: [{ name: "proxy", user: {} }],
      contexts: [{ name: "proxy", context: { cluster: "proxy", user: "proxy", namespace } }],
      "current-context": "proxy",
    };
    writeFileSync(outputPath, YAML.stringify(doc), { mode: 0o600 });
    return outputPath;
  }

  /** Stops listening, ends every connection. */
  async close(): Promise<void> {
    this.cutAll();
    await new Promise((resolve) => this.server.close(resolve));
    this.agent.destroy();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? "GET";
    const path = req.url ?? "/";
    const watch = /[?&]watch=(1|true)/.test(path);
    const fault = this.fault;
    const hit = fault !== undefined && this.left > 0 && (fault.match?.({ method, path, watch }) ?? true) && Math.random() < (fault.fraction ?? 1);
    if (hit && --this.left === 0) this.fault = undefined;
    const injected = hit ? fault.status : undefined;
    const entry: ProxiedRequest = { at: Date.now(), method, path, watch, injected, ...(hit && fault.silent && injected === undefined ? { silenced: true } : {}) };
    this.record(entry);
    if (hit && fault.delayMs) await new Promise((r) => setTimeout(r, fault.delayMs));
    if (injected !== undefined) {
      req.resume();
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (fault?.retryAfterSeconds !== undefined) headers["retry-after"] = String(fault.retryAfterSeconds);
      const reason = injected === 404 ? "NotFound" : injected === 429 ? "TooManyRequests" : injected === 503 ? "ServiceUnavailable" : "InternalError";
      res.writeHead(injected, headers).end(JSON.stringify({ kind: "Status", apiVersion: "v1", status: "Failure", reason, code: injected, message: `injected by the HTTP fault proxy (${injected})` }));
      return;
    }
    this.forward(req, res, entry);
  }

  private forward(req: IncomingMessage, res: ServerResponse, entry: ProxiedRequest): void {
    const { method, path } = entry;
    const headers = { ...req.headers, host: this.target.host };
    delete headers.authorization;
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const upstream = httpsRequest(
      { protocol: "https:", hostname: this.target.hostname, port: this.target.port || 443, method, path, headers, agent: this.agent },
      (answer) => {
        entry.status = answer.statusCode;
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        if (entry.silenced) {
          res.flushHeaders();
          answer.resume(); // read and dropped; the client's answer stays open, with nothing in it
        } else answer.pipe(res);
        answer.on("error", () => res.destroy());
      },
    );
    upstream.on("error", () => (res.headersSent ? res.destroy() : res.writeHead(502).end()));
    // The client went away before the answer was complete (a watch it closed, a cut): end upstream too.
    res.on("close", () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  }

  private record(entry: ProxiedRequest): void {
    this.total++;
    this.log.push(entry);
    if (this.log.length > KEEP_REQUESTS) this.log.splice(0, this.log.length - KEEP_REQUESTS);
  }
}
