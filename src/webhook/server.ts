// The HTTPS server that the API server calls for admission (and conversion) reviews. One port;
// a route per webhook (`/validate/<id>`, `/mutate/<id>`). It never crashes or stalls on bad
// input: a request that is not a POST of an application/json AdmissionReview within the size
// limit gets a 400 naming the problem; a plain-HTTP client on the TLS port gets a plain-HTTP
// 400; a handler slower than its budget is answered (per failurePolicy) before the API server
// gives up. The certificate can be replaced while serving (new handshakes use the new one,
// requests in flight are not dropped).
import { readFileSync, unwatchFile, watchFile } from "node:fs";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from "node:net";
import type { Logger } from "pino";
import { TLSSocket } from "node:tls";
import { X509Certificate } from "node:crypto";
import { inSpan, withIncomingContext } from "../core/tracing.js";
import { parseReview, review, denied, type AdmissionRequest, type AdmissionResponse, type CallTransport } from "./admission.js";
import { AdmissionError } from "./admission.js";
import { conversionReview, parseConversionReview, type ConversionRequest, type ConversionResponse } from "./conversion.js";

/** One webhook the server answers. */
export interface WebhookRoute {
  /** Name in logs and metrics, e.g. "validate-widget". */
  name: string;
  /** `transport`: the call's headers and the caller's TLS certificate, if it presented one. */
  run: (request: AdmissionRequest, transport: CallTransport) => Promise<AdmissionResponse>;
  /** Answer by then (the API server waits `timeoutSeconds`). */
  budgetMs: number;
  /** What to answer when the handler is too slow: deny ("Fail") or admit ("Ignore"). */
  failurePolicy: "Fail" | "Ignore";
}

/** A conversion webhook the server answers (ConversionReview v1). */
export interface ConversionRoute {
  name: string;
  run: (request: ConversionRequest) => Promise<ConversionResponse>;
}

/** Metrics hooks (observe/metrics implements them with controller-runtime's names). */
export interface WebhookObserver {
  request(webhook: string, code: number, seconds: number, allowed: boolean | undefined): void;
  inFlight(webhook: string, delta: 1 | -1): void;
}

/** A serving certificate: PEM strings, or files re-read when they change (cert-manager rotation). */
export type ServingCertificate = { certificate: string; key: string } | { certFile: string; keyFile: string };

export interface WebhookServerOptions {
  /** Default 0: a free port. */
  port?: number;
  /** Default "0.0.0.0". */
  host?: string;
  tls: ServingCertificate;
  /** Larger bodies get a 400. Default 3 MiB (the API server's own request limit). */
  maxBodyBytes?: number;
  logger?: Logger;
  observer?: WebhookObserver;
}

const DEFAULT_MAX_BODY = 3 * 1024 * 1024;

/** A PEM certificate's validity period (its first certificate's, for a chain). */
function validity(pem: string): { from: number; to: number } {
  const cert = new X509Certificate(pem);
  return { from: Date.parse(cert.validFrom), to: Date.parse(cert.validTo) };
}

/** A running webhook server; see the file comment. */
export class WebhookServer {
  private readonly routes = new Map<string, WebhookRoute | (ConversionRoute & { conversion: true })>();
  private unwatch: () => void = () => {};
  /** When the certificate served now stops being valid, and from when it is (ms since the epoch). */
  private validity: { from: number; to: number } = { from: 0, to: Infinity };

  private constructor(
    private readonly tcp: NetServer,
    private readonly https: HttpsServer,
    private readonly sockets: Set<Socket>,
    readonly port: number,
    private readonly host: string,
    private readonly options: WebhookServerOptions,
  ) {}

  /** Starts listening; rejects naming the port if it cannot be bound, or the files if the certificate cannot be read. */
  static async start(options: WebhookServerOptions): Promise<WebhookServer> {
    const pem = readCertificate(options.tls);
    // requestCert: a caller may present a client certificate (handlers see it as `ctx.peer`);
    // none is required, and none is verified here.
    const https = createHttpsServer({ cert: pem.certificate, key: pem.key, requestCert: true, rejectUnauthorized: false });
    // Plain HTTP on this port gets a readable 400 instead of a TLS alert; TLS goes to the HTTPS server.
    // Every connection is kept here, to end at close(): the HTTPS server never listens itself, so
    // its own connection tracking (closeAllConnections) is never set up, and close() waited for
    // callers to hang up (the API server keeps an idle connection 90 s).
    const sockets = new Set<Socket>();
    const tcp = createNetServer({ pauseOnConnect: true }, (socket) => {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
      sniff(socket, https);
    });
    await new Promise<void>((resolve, reject) => {
      tcp.once("error", (error: NodeJS.ErrnoException) => reject(new Error(`webhook server: cannot listen on port ${options.port ?? 0}: ${error.code ?? error.message}`, { cause: error })));
      tcp.listen(options.port ?? 0, options.host ?? "0.0.0.0", resolve);
    });
    const host = options.host && options.host !== "0.0.0.0" ? options.host : "127.0.0.1";
    const server = new WebhookServer(tcp, https, sockets, (tcp.address() as AddressInfo).port, host, options);
    https.on("request", (req, res) => void server.handle(req, res));
    https.on("tlsClientError", (error) => options.logger?.debug({ err: error }, "webhook server: TLS handshake failed"));
    server.validity = validity(pem.certificate);
    if ("certFile" in options.tls) server.watchFiles(options.tls);
    return server;
  }

  /** `https://<host>:<port>`. */
  get url(): string {
    return `https://${this.host}:${this.port}`;
  }

  /** Serves `route` at `path` (e.g. "/validate/widget"). */
  route(path: string, route: WebhookRoute): void {
    this.routes.set(path, route);
  }

  /** Serves a conversion webhook at `path` (e.g. "/convert/widgets.example.com"). */
  conversionRoute(path: string, route: ConversionRoute): void {
    this.routes.set(path, { ...route, conversion: true });
  }

  /** Replaces the serving certificate: new connections use it; requests in flight go on. */
  setCertificate(certificate: string, key: string): void {
    this.https.setSecureContext({ cert: certificate, key });
    this.validity = validity(certificate);
  }

  /** Seconds until the certificate served now expires (negative once it has). */
  get certificateSecondsLeft(): number {
    return (this.validity.to - Date.now()) / 1000;
  }

  /**
   * What keeps the server from serving (for /readyz), or undefined: it does not listen, or the
   * certificate it serves is expired or not valid yet (callers would refuse the handshake).
   */
  problem(now = Date.now()): string | undefined {
    if (!this.tcp.listening) return "not listening";
    if (now >= this.validity.to) return `its certificate expired at ${new Date(this.validity.to).toISOString()}`;
    if (now < this.validity.from) return `its certificate is valid only from ${new Date(this.validity.from).toISOString()}`;
    return undefined;
  }

  /** Stops listening and ends every connection at once (a request in flight is cut); resolves when the port is free. */
  async close(): Promise<void> {
    this.unwatch();
    const closed = new Promise((resolve) => this.tcp.close(resolve));
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  private watchFiles(files: { certFile: string; keyFile: string }): void {
    const reload = () => {
      try {
        const pem = readCertificate(files);
        this.setCertificate(pem.certificate, pem.key);
        this.options.logger?.info({ certFile: files.certFile }, "webhook server: certificate reloaded");
      } catch (error) {
        // A rotation writes two files; a half-written pair is read again at the next change.
        this.options.logger?.warn({ err: error }, "webhook server: cannot reload the certificate yet; keeping the current one");
      }
    };
    for (const file of [files.certFile, files.keyFile]) watchFile(file, { interval: 1_000 }, reload);
    this.unwatch = () => {
      for (const file of [files.certFile, files.keyFile]) unwatchFile(file, reload);
    };
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const route = this.routes.get(path);
    const bad = (code: number, message: string) => {
      req.resume();
      if (!res.headersSent) res.writeHead(code, { "content-type": "text/plain; charset=utf-8" }).end(`${message}\n`);
      this.options.observer?.request(route?.name ?? "unknown", code, 0, undefined);
    };
    if (!route) return bad(404, `no webhook at ${path}`);
    const expected = "conversion" in route ? "a ConversionReview" : "an AdmissionReview";
    if (req.method !== "POST") return bad(400, `${req.method} is not allowed: POST ${expected}`);
    const type = req.headers["content-type"] ?? "";
    if (!/^application\/json\b/i.test(type)) return bad(400, `content-type ${JSON.stringify(type)} is not application/json`);
    const started = performance.now();
    this.options.observer?.inFlight(route.name, 1);
    try {
      const body = await readBody(req, this.options.maxBodyBytes ?? DEFAULT_MAX_BODY);
      if (typeof body === "string") return bad(400, body);
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString("utf8"));
      } catch (error) {
        return bad(400, `the body is not JSON: ${error instanceof Error ? error.message : String(error)}`);
      }
      if ("conversion" in route) {
        const request = parseConversionReview(parsed);
        if (typeof request === "string") return bad(400, request);
        const attributes = { "kubeloop.webhook": route.name, "kubeloop.conversion.desired_api_version": request.desiredAPIVersion, "kubeloop.conversion.objects": request.objects.length };
        const response = await withIncomingContext(req.headers, () =>
          inSpan(`conversion ${route.name}`, { kind: "server", attributes }, async (span) => {
            const converted = await route.run(request);
            span.set({ "kubeloop.conversion.status": converted.result.status });
            return converted;
          }),
        );
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(conversionReview(response)));
        this.options.observer?.request(route.name, 200, (performance.now() - started) / 1000, response.result.status === "Success");
        return;
      }
      const request = parseReview(parsed);
      if (typeof request === "string") return bad(400, request);
      const attributes = { "kubeloop.webhook": route.name, "kubeloop.admission.operation": request.operation, "k8s.namespace.name": request.namespace, "kubeloop.object.name": request.name, "kubeloop.admission.dry_run": request.dryRun };
      const response = await withIncomingContext(req.headers, () =>
        inSpan(`admission ${route.name}`, { kind: "server", attributes }, async (span) => {
          const answered = await answerInTime(route, request, transportOf(req), this.options.logger);
          span.set({ "kubeloop.admission.allowed": answered.allowed, "http.response.status_code": 200 });
          return answered;
        }),
      );
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(review(response)));
      this.options.observer?.request(route.name, 200, (performance.now() - started) / 1000, response.allowed);
    } catch (error) {
      this.options.logger?.error({ err: error, webhook: route.name }, "webhook server: request failed");
      bad(400, `the request could not be read: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      this.options.observer?.inFlight(route.name, -1);
    }
  }
}

/** The call's headers and the certificate its caller presented (frozen copies: handlers only read them). */
function transportOf(req: IncomingMessage): CallTransport {
  const cert = req.socket instanceof TLSSocket ? req.socket.getPeerCertificate() : undefined;
  const peer = cert && Object.keys(cert).length > 0
    ? Object.freeze({ subject: cert.subject, issuer: cert.issuer, subjectaltname: cert.subjectaltname, valid_from: cert.valid_from, valid_to: cert.valid_to, fingerprint256: cert.fingerprint256, serialNumber: cert.serialNumber, raw: cert.raw })
    : undefined;
  return { headers: Object.freeze({ ...req.headers }), peer };
}

/** The handler's answer, or, past its budget, the failurePolicy's (the handler goes on unawaited; its late answer is dropped). */
async function answerInTime(route: WebhookRoute, request: AdmissionRequest, transport: CallTransport, logger: Logger | undefined): Promise<AdmissionResponse> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<AdmissionResponse>((resolve) => {
    timer = setTimeout(() => {
      logger?.warn({ webhook: route.name, budgetMs: route.budgetMs, failurePolicy: route.failurePolicy }, "admission handler too slow: answered by the failure policy");
      const message = `the admission handler ${route.name} did not answer within ${route.budgetMs} ms`;
      resolve(route.failurePolicy === "Ignore" ? { uid: request.uid, allowed: true, warnings: [`${message}: admitted (failurePolicy Ignore)`] } : denied(request.uid, new AdmissionError(message, { code: 504, reason: "Timeout" })));
    }, route.budgetMs);
  });
  try {
    return await Promise.race([route.run(request, transport).catch((error: unknown) => denied(request.uid, error)), late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The body, or a message when it is larger than `limit` bytes. */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"] ?? NaN);
    if (declared > limit) return resolve(`the body (${declared} bytes) is larger than ${limit} bytes`);
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.removeAllListeners("data");
        req.resume();
        resolve(`the body is larger than ${limit} bytes`);
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

/**
 * Looks at a new connection's first byte without consuming it: a TLS handshake record (0x16)
 * goes to the HTTPS server (which reads what is buffered before the rest), anything else is
 * answered with a plain-HTTP 400.
 */
function sniff(socket: Socket, https: HttpsServer): void {
  socket.on("error", () => socket.destroy());
  socket.setTimeout(10_000, () => socket.destroy());
  const look = () => {
    const first = socket.read(1) as Buffer | null;
    if (first === null) return socket.once("readable", look);
    socket.setTimeout(0);
    socket.unshift(first);
    if (first[0] === 0x16) {
      https.emit("connection", socket);
      return;
    }
    const body = "this webhook server speaks HTTPS only\n";
    socket.end(`HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
  };
  look();
}

function readCertificate(tls: ServingCertificate): { certificate: string; key: string } {
  if ("certificate" in tls) return tls;
  return { certificate: readFileSync(tls.certFile, "utf8"), key: readFileSync(tls.keyFile, "utf8") };
}
