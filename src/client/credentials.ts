// Credentials for requests: a static token, a token file that rotates (service accounts),
// basic auth, or an exec plugin whose ExecCredential is cached until it expires and fetched
// again when the server answers 401.
import { spawn } from "node:child_process";
import { promises as fs } from "node:fs";
import type { ClusterConfig, ExecConfig } from "./config.js";

/** Raised when credentials cannot be obtained (an exec plugin failed, a token file vanished). */
export class CredentialError extends Error {
  override name = "CredentialError";
  readonly reason: "ExecFailed" | "ExecOutputInvalid" | "TokenFileUnreadable";
  constructor(reason: CredentialError["reason"], message: string, options: { cause?: unknown } = {}) {
    super(message, options);
    this.reason = reason;
  }
}

/** What an authenticated request carries. */
export interface Credential {
  /** The Authorization header value, if any. */
  authorization?: string;
  /** A client certificate from an exec plugin (overrides the kubeconfig's). */
  clientCertificate?: { cert: string; key: string };
}

/** Supplies credentials; `invalidate()` after a 401 says whether fresh ones may help. */
export interface Credentials {
  get(): Promise<Credential>;
  /** Drops cached credentials after a 401. Returns true when a retry could succeed. */
  invalidate(): boolean;
}

/** The credential source for a cluster's `auth` settings. `now` is injectable for tests. */
export function credentialsFor(config: ClusterConfig, now: () => number = Date.now): Credentials {
  const auth = config.auth;
  switch (auth.type) {
    case "none":
      return { get: async () => ({}), invalidate: () => false };
    case "token":
      return { get: async () => ({ authorization: `Bearer ${auth.token}` }), invalidate: () => false };
    case "basic": {
      const value = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString("base64")}`;
      return { get: async () => ({ authorization: value }), invalidate: () => false };
    }
    case "tokenFile":
      return new TokenFileCredentials(auth.path, now);
    case "exec":
      return new ExecCredentials(auth.exec, config, now);
  }
}

/** Re-reads the token file at most once a minute, and at once after a 401 (it may have rotated). */
class TokenFileCredentials implements Credentials {
  private token: string | undefined;
  private readAt = 0;
  constructor(
    private readonly path: string,
    private readonly now: () => number,
  ) {}

  async get(): Promise<Credential> {
    if (this.token === undefined || this.now() - this.readAt > 60_000) {
      try {
        this.token = (await fs.readFile(this.path, "utf8")).trim();
        this.readAt = this.now();
      } catch (error) {
        if (this.token === undefined) {
          throw new CredentialError("TokenFileUnreadable", `cannot read the token file ${this.path}`, { cause: error });
        }
        // Keep the last token; kubelet rewrites the file atomically, a failed read is transient.
      }
    }
    return { authorization: `Bearer ${this.token}` };
  }

  invalidate(): boolean {
    this.readAt = 0;
    return true;
  }
}

interface ExecResult {
  credential: Credential;
  expiresAt: number | undefined;
}

/**
 * Runs the plugin as kubectl does: KUBERNETES_EXEC_INFO in its environment, ExecCredential on
 * stdout, the user's terminal never attached. Concurrent callers share one run.
 */
class ExecCredentials implements Credentials {
  private cached: ExecResult | undefined;
  private running: Promise<ExecResult> | undefined;
  constructor(
    private readonly exec: ExecConfig,
    private readonly cluster: ClusterConfig,
    private readonly now: () => number,
  ) {}

  async get(): Promise<Credential> {
    const cached = this.cached;
    // Refresh a little before expiry so a request does not leave with a token about to lapse.
    if (cached && (cached.expiresAt === undefined || cached.expiresAt - 10_000 > this.now())) return cached.credential;
    this.running ??= this.run().finally(() => (this.running = undefined));
    this.cached = await this.running;
    return this.cached.credential;
  }

  invalidate(): boolean {
    this.cached = undefined;
    return true;
  }

  private async run(): Promise<ExecResult> {
    const e = this.exec;
    const info = {
      apiVersion: e.apiVersion,
      kind: "ExecCredential",
      spec: {
        interactive: false,
        ...(e.provideClusterInfo
          ? {
              cluster: {
                server: this.cluster.server,
                ...(this.cluster.tls.serverName ? { "tls-server-name": this.cluster.tls.serverName } : {}),
                "insecure-skip-tls-verify": this.cluster.tls.insecureSkipVerify,
                ...(this.cluster.tls.ca ? { "certificate-authority-data": Buffer.from(this.cluster.tls.ca).toString("base64") } : {}),
                ...(this.cluster.proxyUrl ? { "proxy-url": this.cluster.proxyUrl } : {}),
              },
            }
          : {}),
      },
    };
    const env = { ...process.env, ...Object.fromEntries(e.env.map((v) => [v.name, v.value])), KUBERNETES_EXEC_INFO: JSON.stringify(info) };
    const timeoutMs = e.timeoutMs ?? 60_000;
    const { stdout, stderr, code, error, timedOut } = await runCommand(e.command, e.args, env, timeoutMs);
    const what = `exec credential plugin '${e.command}' (${e.origin})`;
    if (timedOut) throw new CredentialError("ExecFailed", `${what} did not finish within ${timeoutMs} ms and was killed: ${stderr.trim().slice(-500) || "(no stderr)"}`);
    if (error) {
      const hint = e.installHint ? `\n${e.installHint}` : "";
      throw new CredentialError("ExecFailed", `${what} could not be run: ${error.message}${hint}`, { cause: error });
    }
    if (code !== 0) {
      throw new CredentialError("ExecFailed", `${what} exited with ${code}: ${stderr.trim() || "(no stderr)"}`);
    }
    return parseExecCredential(stdout, e.apiVersion, what);
  }
}

/** A plugin's output as a credential, refused (ExecOutputInvalid) when it is not a usable ExecCredential of `apiVersion`; never echoes the output. */
function parseExecCredential(stdout: string, apiVersion: string, what: string): ExecResult {
    let parsed: {
    apiVersion?: string;
    kind?: string;
    status?: { token?: string; clientCertificateData?: string; clientKeyData?: string; expirationTimestamp?: string };
  };
  try {
    parsed = JSON.parse(stdout);
  } catch {
    // Not echoed: a broken credential may still hold a token.
    throw new CredentialError("ExecOutputInvalid", `${what} printed no JSON ExecCredential (${stdout.length} bytes, not shown: they may hold a credential)`);
  }
  if (parsed.kind !== "ExecCredential") throw new CredentialError("ExecOutputInvalid", `${what} printed kind ${parsed.kind}, not ExecCredential`);
  if (parsed.apiVersion !== apiVersion) {
    throw new CredentialError("ExecOutputInvalid", `${what} answered apiVersion ${parsed.apiVersion}, but ${apiVersion} was asked for`);
  }
  const status = parsed.status ?? {};
  const credential: Credential = {};
  if (status.token) credential.authorization = `Bearer ${status.token}`;
  if (status.clientCertificateData || status.clientKeyData) {
    if (!status.clientCertificateData || !status.clientKeyData) {
      throw new CredentialError("ExecOutputInvalid", `${what}: clientCertificateData and clientKeyData must come together`);
    }
    credential.clientCertificate = { cert: status.clientCertificateData, key: status.clientKeyData };
  }
  if (!credential.authorization && !credential.clientCertificate) {
    throw new CredentialError("ExecOutputInvalid", `${what}: the ExecCredential has neither a token nor a client certificate`);
  }
  const expiresAt = status.expirationTimestamp ? Date.parse(status.expirationTimestamp) : undefined;
  if (expiresAt !== undefined && Number.isNaN(expiresAt)) {
    throw new CredentialError("ExecOutputInvalid", `${what}: expirationTimestamp ${status.expirationTimestamp} is not a date`);
  }
  return { credential, expiresAt };
}

/**
 * Runs a plugin in its own process group. At `timeoutMs` the whole group is killed (SIGKILL: a
 * plugin that ignores SIGTERM must not hang the client), and the run fails. Its output counts
 * once it has exited: a process it left behind holding stdout open does not keep us waiting
 * (child_process's own `timeout` and 'close' do neither).
 */
function runCommand(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ stdout: string; stderr: string; code: number | null; error?: Error; timedOut?: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    let stdout = "";
    let stderr = "";
    let timedOut = false;
    const killGroup = () => {
      try {
        if (child.pid) process.kill(-child.pid, "SIGKILL");
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, timeoutMs);
    const finish = (code: number | null, error?: Error) => {
      clearTimeout(timer);
      child.stdout.destroy();
      child.stderr.destroy();
      killGroup(); // whatever it left running in its group
      resolve({ stdout, stderr, code, ...(error ? { error } : {}), ...(timedOut ? { timedOut } : {}) });
    };
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", (error) => finish(null, error));
    // 'close' comes once the pipes are drained; if something else holds them, 'exit' plus a
    // short grace for the last bytes is enough.
    let closed = false;
    child.on("close", (code) => {
      closed = true;
      finish(code);
    });
    child.on("exit", (code) => setTimeout(() => !closed && finish(code), 200));
  });
}
