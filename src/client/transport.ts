// HTTP to one API server: one undici dispatcher (keep-alive pool, optionally HTTP/2) per
// cluster and identity, credentials on every request, a client-side token bucket, deadlines
// and cancellation, and retries that never repeat a call the server may have carried out.
//
// Retry policy (what is retried, with exponential backoff and jitter, or the server's Retry-After),
// client-go's: a write is repeated only when the server asked for it, because a write that was
// carried out and then repeated surfaces as a Conflict or NotFound that never happened.
// - 429 TooManyRequests, and any 5xx that carries Retry-After, any method: the server asked.
// - Connection refused, any method: nothing reached the server.
// - Other network errors and 502/503/504 without Retry-After: reads only (GET, or a call marked
//   `idempotent: true`). PUT, DELETE, PATCH and POST are sent once.
// - 401 once, after dropping cached credentials (a rotated token, an expired exec credential).
//
// Streams (watches) go over node:http(s), everything else over undici, when the connection is
// direct HTTP/1.1 (no proxy, no HTTP/2; otherwise undici carries streams too). A live watch
// brings about one event per read, and per read node:http costs less: a paced local server
// writing one event per write, 2,000 a second, read and parsed: ~48 µs CPU per event with
// node:http's data events, ~63 with undici's request() body (~59 with its raw dispatch handler).
// Same credentials, TLS, retries and errors either way.
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { Readable } from "node:stream";
import { checkNumber } from "../core/check.js";
import { Agent, ProxyAgent, type Dispatcher } from "./undici.js";
import { backoffDelay } from "../core/retry.js";
import { deadline, type Deadline } from "../core/async.js";
import { systemClock, type Clock } from "../core/clock.js";
import { inSpan, injectTraceContext, tagOrigin, type Traced } from "../core/tracing.js";
import { VERSION } from "../core/version.js";
import {
  ApiError,
  NetworkError,
  RequestTimeoutError,
  errorFromResponse,
  type RequestInfo,
} from "../core/errors.js";
import type { ClusterConfig } from "./config.js";
import { credentialsFor, type Credential, type Credentials } from "./credentials.js";
import { TokenBucket, type RateLimit } from "./rate-limit.js";

/** Transport settings; every field has a default. */
export interface TransportOptions {
  /**
   * Client-side rate limit, or `false` for none. Default: client-go's 5 qps, burst 10. A limit
   * without qps > 0 and burst ≥ 1 throws a RangeError when the client is made.
   */
  rateLimit?: RateLimit | false;
  /**
   * How many times a retryable failure is retried (0: never). Default 3. Anything but an integer
   * ≥ 0 throws a RangeError when the client is made.
   */
  retries?: number;
  /**
   * First retry delay; doubles each time, with jitter, up to `maxRetryDelayMs`. Default 200 ms.
   * A negative or non-finite value throws a RangeError when the client is made.
   */
  retryDelayMs?: number;
  /** Cap on one retry delay (and on a server's Retry-After). Default 10 000 ms. Negative or non-finite: RangeError. */
  maxRetryDelayMs?: number;
  /**
   * Deadline for one call (each attempt), unless the call sets its own; 0: none. Default
   * 30 000 ms. A call past it fails with a RequestTimeoutError. Negative or non-finite: RangeError.
   */
  timeoutMs?: number;
  /** Negotiate HTTP/2 (ALPN) when the server offers it. Default false. */
  http2?: boolean;
  /** User-Agent header. Default `kubeloop/<version>`. */
  userAgent?: string;
  /** Time source for the rate limiter and backoff. */
  clock?: Clock;
}

/** Refuses numeric options that would misbehave later (a RangeError naming the option). */
function checkOptions(options: TransportOptions): void {
  checkNumber("retries", options.retries, "integer ≥ 0");
  checkNumber("retryDelayMs", options.retryDelayMs, "≥ 0");
  checkNumber("maxRetryDelayMs", options.maxRetryDelayMs, "≥ 0");
  checkNumber("timeoutMs", options.timeoutMs, "≥ 0", { note: " (0: no deadline)" });
}

/** The HTTP methods the API server's REST interface uses. */
export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/** One API call. */
export interface HttpRequest {
  method: HttpMethod;
  /** Path from the server root, e.g. `/api/v1/namespaces`. */
  path: string;
  query?: Record<string, string | number | boolean | undefined>;
  /** A JSON-serializable body. */
  body?: unknown;
  contentType?: string;
  accept?: string;
  signal?: AbortSignal;
  /** Overrides the transport's deadline; 0 means none (watches). */
  timeoutMs?: number;
  /** Whether repeating the call after a network error or a plain 502/503/504 is harmless. Default: true for GET only. */
  idempotent?: boolean;
  /**
   * Not held by the client's rate limit: Lease traffic, which must not wait behind the work it
   * guards (a backlog longer than a renew deadline would lose the Lease).
   * @internal
   */
  unlimited?: boolean;
  /** `json` (default) parses the body; `text` returns it as a string (e.g. /metrics). */
  responseType?: "json" | "text";
}

const DEFAULT_RATE_LIMIT: RateLimit = { qps: 5, burst: 10 };

/** HTTP client of one cluster. Create one per cluster and share it; `close()` when done. */
export class Transport {
  readonly server: string;
  private readonly origin: string;
  private readonly basePath: string;
  private readonly credentials: Credentials;
  private readonly limiter: TokenBucket | undefined;
  private readonly clock: Clock;
  private readonly options: Required<Omit<TransportOptions, "rateLimit" | "clock">>;
  private dispatcher: Dispatcher | undefined;
  private dispatcherIdentity: string | undefined;
  /** node:http(s) agents of streams, per client-certificate identity (the last made is current). */
  private streamAgents = new Map<string, HttpAgent>();
  /** The server's host and port, as spans name them. */
  private readonly peer: { address: string; port: number };
  private readonly staticHeaders: Record<string, string | string[]>;

  constructor(
    private readonly config: ClusterConfig,
    options: TransportOptions = {},
  ) {
    const url = new URL(config.server);
    this.server = config.server;
    this.origin = url.origin;
    this.peer = { address: url.hostname, port: Number(url.port || (url.protocol === "http:" ? 80 : 443)) };
    this.basePath = url.pathname.replace(/\/+$/, "");
    this.clock = options.clock ?? systemClock;
    this.credentials = credentialsFor(config, () => Date.now());
    const limit = options.rateLimit === undefined ? DEFAULT_RATE_LIMIT : options.rateLimit;
    this.limiter = limit ? new TokenBucket(limit, this.clock) : undefined;
    checkOptions(options);
    this.options = {
      retries: options.retries ?? 3,
      retryDelayMs: options.retryDelayMs ?? 200,
      maxRetryDelayMs: options.maxRetryDelayMs ?? 10_000,
      timeoutMs: options.timeoutMs ?? 30_000,
      http2: options.http2 ?? false,
      userAgent: options.userAgent ?? `kubeloop/${VERSION} (node ${process.version})`,
    };
    this.staticHeaders = { "user-agent": this.options.userAgent, ...impersonationHeaders(config.impersonate) };
  }

  /** Sends a call and returns the parsed JSON body of a 2xx answer; throws an {@link ApiError} otherwise. */
  async request<T>(req: HttpRequest): Promise<T> {
    const { response, info, timer } = await this.exchange(req);
    try {
      const text = await textOf(response.body);
      if (req.responseType === "text") return text as T;
      return (text ? JSON.parse(text) : undefined) as T;
    } catch (error) {
      throw this.failure(error, info, req, timer?.signal);
    } finally {
      timer?.clear();
    }
  }

  /**
   * Sends a call and returns the body of a 2xx answer as a byte stream (watches), to read as an
   * async iterable or by its `data` events. There is no deadline on the body; `signal` ends it.
   */
  async stream(req: HttpRequest): Promise<Readable> {
    const { response, timer } = await this.exchange({ ...req, timeoutMs: req.timeoutMs ?? 0 }, { streaming: true, node: !this.config.proxyUrl && !this.options.http2 });
    timer?.clear(); // a deadline given for a stream bounds its answer's headers, not its body
    return response.body;
  }

  /** Closes idle connections and refuses further calls. */
  async close(): Promise<void> {
    const d = this.dispatcher;
    this.dispatcher = undefined;
    for (const agent of this.streamAgents.values()) agent.destroy();
    this.streamAgents.clear();
    await d?.close();
  }

  /**
   * One call with its retries, in a client span (OpenTelemetry, when an SDK is registered):
   * named `<METHOD> <resource>`, with HTTP semantic conventions' attributes, the Kubernetes verb,
   * the retries and the time the rate limiter held it; for a stream it ends when the answer's
   * headers came.
   */
  private exchange(req: HttpRequest, mode: { streaming?: boolean; node?: boolean } = {}): Promise<{ response: Answer; info: RequestInfo; timer: Deadline | undefined }> {
    return inSpan(
      `${req.method} ${resourceOf(req.path)}`,
      {
        kind: "client",
        attributes: {
          "http.request.method": req.method,
          "server.address": this.peer.address,
          "server.port": this.peer.port,
          "url.path": this.basePath + req.path,
          "kubeloop.k8s.verb": verbOf(req),
        },
      },
      async (span) => {
        const exchanged = await this.attempts(req, mode, span);
        if (span.recording) span.set({ "http.response.status_code": exchanged.response.statusCode });
        // A stream's events come from this span: a reconcile they cause links to it.
        if (mode.streaming) tagOrigin(exchanged.response.body, span.context);
        return exchanged;
      },
    );
  }

  private async attempts(req: HttpRequest, mode: { streaming?: boolean; node?: boolean }, span: Traced): Promise<{ response: Answer; info: RequestInfo; timer: Deadline | undefined }> {
    const info: RequestInfo = { method: req.method, path: req.path };
    const idempotent = req.idempotent ?? req.method === "GET";
    const path = this.basePath + req.path + queryString(req.query);
    const body = req.body === undefined ? undefined : typeof req.body === "string" ? req.body : JSON.stringify(req.body);
    let attempt = 0;
    let reauthenticated = false;
    for (;;) {
      if (attempt > 0 && span.recording) span.set({ "http.request.resend_count": attempt });
      if (this.limiter && !req.unlimited) {
        const queued = span.recording ? performance.now() : 0;
        try {
          await this.limiter.acquire(req.signal);
        } catch (error) {
          throw this.failure(error, info, req);
        }
        if (span.recording) span.set({ "kubeloop.rate_limit.wait_ms": Math.round(performance.now() - queued) });
      }
      const timeoutMs = req.timeoutMs ?? this.options.timeoutMs;
      // Credential failures (an exec plugin that fails) are not network errors: they propagate as they are.
      const credential = await this.credentials.get();
      // The attempt's deadline covers the answer (headers and, for request(), the body); cleared once it is read.
      const timer = timeoutMs > 0 ? deadline(timeoutMs, req.signal ? [req.signal] : []) : undefined;
      const signal = timer?.signal ?? req.signal;
      const headers = {
        ...this.staticHeaders,
        accept: req.accept ?? "application/json",
        ...(credential.authorization ? { authorization: credential.authorization } : {}),
        ...(body !== undefined ? { "content-type": req.contentType ?? "application/json" } : {}),
      };
      if (span.recording) injectTraceContext(headers); // W3C traceparent: the API server continues the trace where it traces
      let response: Answer;
      try {
        response = await this.send(credential, { method: req.method, path, headers, body, signal, timeoutMs }, mode);
      } catch (error) {
        timer?.clear();
        const failure = this.failure(error, info, req, timer?.signal);
        const notSent = failure instanceof NetworkError && networkCode(error) === "ECONNREFUSED";
        if (failure instanceof NetworkError && (idempotent || notSent) && attempt < this.options.retries) {
          await this.backoff(attempt++, undefined, req, info);
          continue;
        }
        throw failure;
      }
      if (response.statusCode < 300) return { response, info, timer };

      const { parsed, retryAfterMs } = await refusal(response);
      timer?.clear();
      const code = response.statusCode;
      if (span.recording) span.set({ "http.response.status_code": code });
      if (code === 401 && !reauthenticated && this.credentials.invalidate()) {
        reauthenticated = true;
        continue;
      }
      const retryable =
        code === 429 || (code >= 500 && retryAfterMs !== undefined) || (idempotent && (code === 502 || code === 503 || code === 504));
      if (retryable && attempt < this.options.retries) {
        await this.backoff(attempt++, retryAfterMs, req, info);
        continue;
      }
      throw errorFromResponse(code, parsed, info, retryAfterMs);
    }
  }

  /** One attempt: over node:http(s) for streams on direct connections, else through undici's dispatcher. */
  private send(credential: Credential, r: { method: HttpMethod; path: string; headers: Record<string, string>; body: string | undefined; signal: AbortSignal | undefined; timeoutMs: number }, mode: { streaming?: boolean; node?: boolean }): Promise<Answer> {
    if (mode.node) return this.sendByNode(credential, r.method, r.path, r.headers, r.body, r.signal);
    return this.dispatcherFor(credential).request({
      origin: this.origin,
      path: r.path,
      method: r.method,
      headers: r.headers,
      ...(r.body !== undefined ? { body: r.body } : {}),
      ...(r.signal ? { signal: r.signal } : {}),
      headersTimeout: r.timeoutMs > 0 ? r.timeoutMs : 0,
      bodyTimeout: mode.streaming ? 0 : r.timeoutMs > 0 ? r.timeoutMs : 0,
    });
  }

  /**
   * One exchange over node:http(s) (streams; see the header): the answer once its headers came.
   * Connecting has the dispatcher's deadline (10 s, or the call's timeout if shorter); the
   * answer's headers have the call's (through `signal`).
   */
  private sendByNode(credential: Credential, method: HttpMethod, path: string, headers: Record<string, string | string[]>, body: string | undefined, signal: AbortSignal | undefined): Promise<Answer> {
    const url = new URL(this.origin);
    const secure = url.protocol === "https:";
    const connectMs = this.connectTimeoutMs();
    return new Promise<Answer>((resolve, reject) => {
      const request = (secure ? httpsRequest : httpRequest)({
        host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
        port: url.port || (secure ? 443 : 80),
        path,
        method,
        headers,
        agent: this.streamAgentFor(credential, secure),
        ...(signal ? { signal } : {}),
      });
      const timer = setTimeout(() => request.destroy(Object.assign(new Error(`connecting took more than ${connectMs} ms`), { code: "UND_ERR_CONNECT_TIMEOUT" })), connectMs);
      request.on("socket", (socket) => {
        if (!socket.connecting) return clearTimeout(timer);
        socket.once(secure ? "secureConnect" : "connect", () => clearTimeout(timer));
      });
      request.on("response", (response) => {
        clearTimeout(timer);
        resolve({ statusCode: response.statusCode ?? 0, headers: response.headers, body: response });
      });
      request.on("error", (error) => {
        clearTimeout(timer);
        reject(error);
      });
      request.end(body);
    });
  }

  private connectTimeoutMs(): number {
    return Math.min(10_000, this.options.timeoutMs || 10_000);
  }

  /** TLS settings of a connection for `credential`: the cluster's CA and name, its client certificate or the config's. */
  private tlsOptions(credential: Credential): { ca?: string; cert?: string; key?: string; rejectUnauthorized: boolean; servername?: string } {
    const tls = this.config.tls;
    return {
      ...(tls.ca ? { ca: tls.ca } : {}),
      ...(credential.clientCertificate
        ? { cert: credential.clientCertificate.cert, key: credential.clientCertificate.key }
        : tls.cert && tls.key
          ? { cert: tls.cert, key: tls.key }
          : {}),
      rejectUnauthorized: !tls.insecureSkipVerify,
      ...(tls.serverName ? { servername: tls.serverName } : {}),
    };
  }

  private streamAgentFor(credential: Credential, secure: boolean): HttpAgent {
    const identity = identityOf(credential);
    let agent = this.streamAgents.get(identity);
    if (agent) return agent;
    agent = secure ? new HttpsAgent({ keepAlive: true, ...this.tlsOptions(credential) }) : new HttpAgent({ keepAlive: true });
    // A rotated client certificate: streams in flight on an older agent go on (close() ends
    // them); it keeps no idle connection from now on.
    for (const previous of this.streamAgents.values()) {
      if (retired.has(previous)) continue;
      retired.add(previous);
      previous.on("free", (socket: { destroy(): void }) => socket.destroy());
      for (const sockets of Object.values(previous.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
    }
    this.streamAgents.set(identity, agent);
    return agent;
  }

  private dispatcherFor(credential: Credential): Dispatcher {
    const identity = identityOf(credential);
    if (this.dispatcher && this.dispatcherIdentity === identity) return this.dispatcher;
    const old = this.dispatcher;
    const connect = { ...this.tlsOptions(credential), timeout: this.connectTimeoutMs() };
    this.dispatcher = this.config.proxyUrl
      ? new ProxyAgent({ uri: this.config.proxyUrl, requestTls: connect, allowH2: this.options.http2 })
      : new Agent({ connect, allowH2: this.options.http2, keepAliveTimeout: 30_000, pipelining: 1 });
    this.dispatcherIdentity = identity;
    // Calls in flight on the old dispatcher finish; it closes when they have.
    void old?.close().catch(() => {});
    return this.dispatcher;
  }

  private async backoff(attempt: number, retryAfterMs: number | undefined, req: HttpRequest, info: RequestInfo): Promise<void> {
    const exponential = backoffDelay({ baseMs: this.options.retryDelayMs, maxMs: this.options.maxRetryDelayMs, factor: 2 }, attempt);
    const delay = retryAfterMs !== undefined ? Math.min(retryAfterMs, this.options.maxRetryDelayMs) : exponential / 2 + Math.random() * (exponential / 2);
    try {
      await this.clock.sleep(delay, req.signal);
    } catch (error) {
      throw this.failure(error, info, req);
    }
  }

  /** Turns a thrown error into an ApiError: Aborted, RequestTimeout or Network. */
  private failure(error: unknown, info: RequestInfo, req: HttpRequest, deadline?: AbortSignal): ApiError {
    if (error instanceof ApiError) return error;
    if (req.signal?.aborted) return new ApiError("Aborted", "aborted by the caller", { request: info, cause: req.signal.reason });
    const code = networkCode(error);
    if (deadline?.aborted || code === "UND_ERR_HEADERS_TIMEOUT" || code === "UND_ERR_BODY_TIMEOUT") {
      return new RequestTimeoutError("Timeout", `no answer within ${req.timeoutMs ?? this.options.timeoutMs} ms from ${this.server}`, {
        request: info,
        cause: error,
      });
    }
    if (error instanceof SyntaxError) return new ApiError("Unknown", `the server's answer is not JSON: ${error.message}`, { request: info, cause: error });
    const detail = code ? `${code}${(error as Error).message ? `: ${(error as Error).message}` : ""}` : String((error as Error)?.message ?? error);
    return new NetworkError("Network", `cannot reach ${this.server} (${detail})`, { request: info, cause: error });
  }
}

/** Which client certificate a credential connects with ("" for none): connections are per identity. */
function identityOf(credential: Credential): string {
  return credential.clientCertificate ? credential.clientCertificate.cert : "";
}

/** Stream agents of a former client certificate: they keep no idle connection. */
const retired = new WeakSet<HttpAgent>();

/** An answer whose headers came: undici's or node:http's (streams). */
interface Answer {
  statusCode: number;
  headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>;
  body: Readable & { text?: () => Promise<string> };
}

/** A body read to its end as UTF-8 text. */
async function textOf(body: Answer["body"]): Promise<string> {
  if (body.text) return body.text();
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function networkCode(error: unknown): string | undefined {
  let e = error as { code?: string; cause?: unknown } | undefined;
  for (let depth = 0; e && depth < 4; depth++) {
    if (typeof e.code === "string") return e.code;
    e = e.cause as typeof e;
  }
  return undefined;
}

function queryString(query: HttpRequest["query"]): string {
  if (!query) return "";
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined && value !== "") params.set(key, String(value));
  const text = params.toString();
  return text ? `?${text}` : "";
}

function retryAfter(header: string | string[] | undefined): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function impersonationHeaders(imp: ClusterConfig["impersonate"]): Record<string, string | string[]> {
  if (!imp) return {};
  const headers: Record<string, string | string[]> = {};
  if (imp.user) headers["impersonate-user"] = imp.user;
  if (imp.uid) headers["impersonate-uid"] = imp.uid;
  if (imp.groups?.length) headers["impersonate-group"] = imp.groups;
  for (const [key, values] of Object.entries(imp.extra ?? {})) headers[`impersonate-extra-${encodeURIComponent(key)}`] = values;
  return headers;
}

/** A refused answer's body (JSON when it is, else its text: a proxy's HTML page, plain text) and its Retry-After. */
async function refusal(response: Answer): Promise<{ parsed: unknown; retryAfterMs: number | undefined }> {
  const text = await textOf(response.body).catch(() => "");
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON: keep the text for the message
  }
  return { parsed, retryAfterMs: retryAfter(response.headers["retry-after"]) };
}

/** The resource a path names, for a span's name: `/api/v1/namespaces/a/pods/b/status` → `pods/status`. */
function resourceOf(path: string): string {
  const parts = path.split("?")[0]?.split("/").filter(Boolean) ?? [];
  let i = parts[0] === "api" ? 2 : parts[0] === "apis" ? 3 : parts.length;
  if (parts[i] === "namespaces" && parts.length > i + 2) i += 2;
  const resource = parts[i] ?? parts.join("/");
  return parts.length > i + 2 ? `${resource}/${parts[i + 2]}` : resource || "/";
}

/** The Kubernetes verb of a call (get, list, watch, create, update, patch, delete). */
function verbOf(req: HttpRequest): string {
  if (req.method === "GET") {
    if (req.query?.watch) return "watch";
    const parts = req.path.split("/").filter(Boolean);
    const i = parts[0] === "api" ? 2 : parts[0] === "apis" ? 3 : parts.length;
    const rest = parts.slice(parts[i] === "namespaces" && parts.length > i + 2 ? i + 2 : i);
    return rest.length >= 2 ? "get" : "list";
  }
  return { POST: "create", PUT: "update", PATCH: "patch", DELETE: "delete", HEAD: "get", OPTIONS: "options" }[req.method] ?? req.method.toLowerCase();
}
