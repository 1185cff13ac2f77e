// Connection settings: kubeconfig files (merged as kubectl merges them) and in-cluster config,
// resolved into one ClusterConfig the transport can use.
//
// Why not @kubernetes/client-node's KubeConfig: its 2.x line needs undici 8 and so Node 22,
// and its loader reports bad input loosely (a failed read or a missing context is often an
// undefined deep inside a request). kubectl's rules are small enough to own: files are merged
// first-definition-wins, relative paths resolve against the file that names them, and every
// error here names the file and the field.
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import type * as Yaml from "yaml";
import { onFirstUse } from "../core/lazy.js";
import { proxyFromEnvironment, ProxyVariableError } from "./proxy-env.js";

/** The yaml library, loaded on first use (an operator in-cluster never reads YAML). */
const yaml = onFirstUse<typeof Yaml>("yaml");

/** Raised for unusable configuration. The message names the file and the field. */
export class ConfigError extends Error {
  override name = "ConfigError";
  /** `NotFound` (no kubeconfig / no in-cluster env), `Invalid` (a bad field), `Unreadable` (a file). */
  readonly reason: "NotFound" | "Invalid" | "Unreadable";
  /** The kubeconfig file concerned, if any. */
  readonly file: string | undefined;
  /** The field concerned, kubectl-style: `users["alice"].user.client-key`. */
  readonly field: string | undefined;
  constructor(reason: ConfigError["reason"], message: string, options: { file?: string; field?: string; cause?: unknown } = {}) {
    const where = [options.file, options.field].filter(Boolean).join(": ");
    super(where ? `${where}: ${message}` : message, { cause: options.cause });
    this.reason = reason;
    this.file = options.file;
    this.field = options.field;
  }
}

/** An exec credential plugin (client.authentication.k8s.io). */
export interface ExecConfig {
  command: string;
  args: string[];
  env: { name: string; value: string }[];
  apiVersion: "client.authentication.k8s.io/v1" | "client.authentication.k8s.io/v1beta1";
  installHint?: string;
  provideClusterInfo: boolean;
  /** How long a run may take before it is killed (with anything it started) and fails. Default 60 s; not read from a kubeconfig. */
  timeoutMs?: number;
  /** Where it was configured, for error messages. */
  origin: string;
}

/** How requests authenticate (besides a TLS client certificate, which is in `tls`). */
export type AuthConfig =
  | { type: "none" }
  | { type: "token"; token: string }
  | { type: "tokenFile"; path: string }
  | { type: "basic"; username: string; password: string }
  | { type: "exec"; exec: ExecConfig };

/** Everything needed to talk to one cluster as one identity. */
export interface ClusterConfig {
  /** The API server URL, without a trailing slash. */
  server: string;
  /** Where this came from: `kubeconfig /path (context "x")` or `in-cluster`. */
  source: string;
  /** The context's namespace, or "default". */
  namespace: string;
  tls: {
    ca?: string;
    cert?: string;
    key?: string;
    insecureSkipVerify: boolean;
    serverName?: string;
  };
  auth: AuthConfig;
  proxyUrl?: string;
  impersonate?: { user?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
  /** Things the user should know that do not stop the load (e.g. TLS verification turned off). Whoever runs the client logs them. */
  warnings?: string[];
}

/** Options for {@link loadKubeconfig} and {@link loadConfig}. */
export interface LoadConfigOptions {
  /** Kubeconfig file(s). Default: the `KUBECONFIG` list from `env`, else `~/.kube/config`. */
  path?: string | readonly string[];
  /** Context to use instead of the files' current-context. */
  context?: string;
  /** Namespace to use instead of the context's. */
  namespace?: string;
  /** Where `KUBECONFIG`, `HOME` and the in-cluster variables are read. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** In-cluster service account directory. Default: `KUBELOOP_SERVICE_ACCOUNT_DIR`, else /var/run/secrets/kubernetes.io/serviceaccount. */
  serviceAccountDir?: string;
}

const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/**
 * Resolves connection settings as controller-runtime does: an explicit `path`, else
 * `KUBECONFIG`, else in-cluster config when running in a Pod, else `~/.kube/config`.
 * Fails with a {@link ConfigError} naming what was looked for.
 */
export function loadConfig(options: LoadConfigOptions = {}): ClusterConfig {
  const env = options.env ?? process.env;
  return runsInCluster(options, env) ? inClusterConfig({ ...options, env }) : loadKubeconfig({ ...options, env });
}

/**
 * {@link loadConfig}, with the YAML parser loaded by an awaited `import()` first when a
 * kubeconfig will be read (`Client.load` uses it).
 */
export async function loadConfigAsync(options: LoadConfigOptions = {}): Promise<ClusterConfig> {
  if (!yaml.loaded && !runsInCluster(options, options.env ?? process.env)) {
    // yaml is CommonJS: its exports are the default export (and named ones, as Node reads them).
    const loaded = (await import("yaml")) as typeof Yaml & { default?: typeof Yaml };
    yaml.provide(loaded.default ?? loaded);
  }
  return loadConfig(options);
}

function runsInCluster(options: LoadConfigOptions, env: NodeJS.ProcessEnv): boolean {
  if (options.path !== undefined || env.KUBECONFIG || !env.KUBERNETES_SERVICE_HOST) return false;
  const dir = options.serviceAccountDir ?? env.KUBELOOP_SERVICE_ACCOUNT_DIR ?? SERVICE_ACCOUNT_DIR;
  return existsSync(join(dir, "token"));
}

/** Service-account config of a Pod. The token file is re-read by the transport as it rotates. */
export function inClusterConfig(options: Pick<LoadConfigOptions, "env" | "serviceAccountDir" | "namespace"> = {}): ClusterConfig {
  const env = options.env ?? process.env;
  const dir = options.serviceAccountDir ?? env.KUBELOOP_SERVICE_ACCOUNT_DIR ?? SERVICE_ACCOUNT_DIR;
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new ConfigError("NotFound", "not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not both set");
  }
  const tokenPath = join(dir, "token");
  if (!existsSync(tokenPath)) throw new ConfigError("NotFound", `in-cluster: no service account token at ${tokenPath}`);
  const ca = readText(join(dir, "ca.crt"), { field: "in-cluster ca.crt" });
  const namespaceFile = join(dir, "namespace");
  const namespace = options.namespace ?? (existsSync(namespaceFile) ? readFileSync(namespaceFile, "utf8").trim() : "default");
  const hostPart = host.includes(":") ? `[${host}]` : host; // IPv6
  const server = `https://${hostPart}:${port}`;
  return {
    server,
    source: "in-cluster",
    namespace,
    tls: { ca, insecureSkipVerify: false },
    auth: { type: "tokenFile", path: tokenPath },
    ...withProxy(server, undefined, env), // client-go's in-cluster transport honours them too
  };
}

interface Named<T> {
  value: T;
  file: string;
  index: number;
}

/** Loads and merges kubeconfig files, then resolves one context. See {@link loadConfig}. */
export function loadKubeconfig(options: LoadConfigOptions = {}): ClusterConfig {
  const files = kubeconfigFiles(options, options.env ?? process.env);
  const { context, contextName, cluster, clusterName, user, userName } = resolveContext(files, options.context);
  const fileList = files.join(", ");
  const ctxField = `contexts["${contextName}"].context`;
  const cField = `clusters["${clusterName}"].cluster`;
  const { server, tls, proxyUrl } = clusterSettings(cluster, cField);
  let auth: AuthConfig = { type: "none" };
  let impersonate: ClusterConfig["impersonate"];
  if (user) {
    const u = user.value;
    const uField = `users["${userName}"].user`;
    const cert = pem(u, "client-certificate", user.file, uField);
    const key = pem(u, "client-key", user.file, uField);
    if (Boolean(cert) !== Boolean(key)) {
      throw new ConfigError("Invalid", "client-certificate and client-key must be given together", { file: user.file, field: uField });
    }
    if (cert && key) Object.assign(tls, { cert, key });
    auth = userAuth(u, user.file, uField);
    impersonate = impersonation(u, user.file, uField);
  }
  const namespace = options.namespace ?? optionalString(context.value.namespace, context.file, `${ctxField}.namespace`) ?? "default";
  return {
    server: server.replace(/\/+$/, ""),
    source: `kubeconfig ${fileList} (context "${contextName}")`,
    namespace,
    tls,
    auth,
    ...withProxy(server, proxyUrl, options.env ?? process.env),
    ...(impersonate ? { impersonate } : {}),
    ...(tls.insecureSkipVerify
      ? { warnings: [`${cluster.file}: ${cField}.insecure-skip-tls-verify is set: the server's identity is not verified, anyone on the path can read and change the traffic (and the credentials)`] }
      : {}),
  };
}

/** The merged files' context (`chosen`, else the first current-context), with its cluster and user, each checked to exist. */
function resolveContext(files: string[], chosen: string | undefined) {
  const clusters = new Map<string, Named<Record<string, unknown>>>();
  const users = new Map<string, Named<Record<string, unknown>>>();
  const contexts = new Map<string, Named<Record<string, unknown>>>();
  let currentContext: string | undefined;
  for (const file of files) {
    const doc = parseFile(file);
    currentContext ||= typeof doc["current-context"] === "string" ? doc["current-context"] : undefined;
    collect(doc, "clusters", "cluster", file, clusters);
    collect(doc, "users", "user", file, users);
    collect(doc, "contexts", "context", file, contexts);
  }
  const fileList = files.join(", ");
  const contextName = chosen ?? currentContext;
  if (!contextName) {
    throw new ConfigError("Invalid", `no current-context is set in ${fileList}; choose a context (available: ${[...contexts.keys()].join(", ") || "none"})`);
  }
  const context = contexts.get(contextName);
  if (!context) {
    throw new ConfigError("Invalid", `context "${contextName}" not found in ${fileList} (available: ${[...contexts.keys()].join(", ") || "none"})`);
  }
  const ctxField = `contexts["${contextName}"].context`;
  const clusterName = optionalString(context.value.cluster, context.file, `${ctxField}.cluster`);
  const userName = optionalString(context.value.user, context.file, `${ctxField}.user`);
  if (!clusterName) throw new ConfigError("Invalid", "is missing", { file: context.file, field: `${ctxField}.cluster` });
  const cluster = clusters.get(clusterName);
  if (!cluster) {
    throw new ConfigError("Invalid", `names cluster "${clusterName}", which is not defined in ${fileList}`, { file: context.file, field: `${ctxField}.cluster` });
  }
  const user = userName ? users.get(userName) : undefined;
  if (userName && !user) {
    throw new ConfigError("Invalid", `names user "${userName}", which is not defined in ${fileList}`, { file: context.file, field: `${ctxField}.user` });
  }
  return { context, contextName, cluster, clusterName, user, userName };
}

/**
 * The proxy: the kubeconfig's proxy-url, else the environment's (HTTPS_PROXY / HTTP_PROXY /
 * NO_PROXY, as kubectl reads them).
 */
function withProxy(server: string, proxyUrl: string | undefined, env: NodeJS.ProcessEnv): { proxyUrl?: string } {
  if (proxyUrl) return { proxyUrl };
  try {
    const fromEnv = proxyFromEnvironment(server, env);
    return fromEnv ? { proxyUrl: fromEnv } : {};
  } catch (error) {
    if (error instanceof ProxyVariableError) throw new ConfigError("Invalid", error.message, { field: error.variable });
    throw error;
  }
}

/** A cluster entry's server URL, TLS settings and proxy, each checked. */
function clusterSettings(cluster: Named<Record<string, unknown>>, cField: string): { server: string; tls: ClusterConfig["tls"]; proxyUrl: string | undefined } {
  const c = cluster.value;
  const server = optionalString(c.server, cluster.file, `${cField}.server`);
  if (!server) throw new ConfigError("Invalid", "is missing", { file: cluster.file, field: `${cField}.server` });
  try {
    const url = new URL(server);
    if (url.protocol !== "https:" && url.protocol !== "http:") throw new Error(`unsupported scheme ${url.protocol}`);
  } catch (error) {
    throw new ConfigError("Invalid", `is not a valid http(s) URL: ${server}`, { file: cluster.file, field: `${cField}.server`, cause: error });
  }
  const tls: ClusterConfig["tls"] = { insecureSkipVerify: c["insecure-skip-tls-verify"] === true };
  const ca = pem(c, "certificate-authority", cluster.file, cField);
  if (ca) tls.ca = ca;
  const serverName = optionalString(c["tls-server-name"], cluster.file, `${cField}.tls-server-name`);
  if (serverName) tls.serverName = serverName;
  const proxyUrl = optionalString(c["proxy-url"], cluster.file, `${cField}.proxy-url`);
  if (proxyUrl && !/^https?:\/\//.test(proxyUrl)) {
    throw new ConfigError("Invalid", `only http:// and https:// proxies are supported, not ${proxyUrl}`, { file: cluster.file, field: `${cField}.proxy-url` });
  }
  return { server, tls, proxyUrl };
}

function kubeconfigFiles(options: LoadConfigOptions, env: NodeJS.ProcessEnv): string[] {
  if (options.path !== undefined) {
    const paths = (typeof options.path === "string" ? [options.path] : [...options.path]).map((p) => resolve(p));
    for (const p of paths) if (!existsSync(p)) throw new ConfigError("Unreadable", "kubeconfig file does not exist", { file: p });
    return paths;
  }
  if (env.KUBECONFIG) {
    // kubectl: entries of the list that do not exist are skipped; at least one must.
    const listed = env.KUBECONFIG.split(":").filter(Boolean).map((p) => resolve(p));
    const present = listed.filter((p) => existsSync(p));
    if (present.length === 0) throw new ConfigError("NotFound", `none of the files in KUBECONFIG exist: ${listed.join(", ")}`);
    return [...new Set(present)];
  }
  const home = env.HOME || homedir();
  const fallback = join(home, ".kube", "config");
  if (!existsSync(fallback)) {
    throw new ConfigError("NotFound", `no kubeconfig: KUBECONFIG is not set, ${fallback} does not exist, and this is not a Pod`);
  }
  return [fallback];
}

function parseFile(file: string): Record<string, unknown> {
  const text = readText(file, {});
  let doc: unknown;
  try {
    doc = yaml().parse(text);
  } catch (error) {
    throw new ConfigError("Invalid", `is not valid YAML: ${(error as Error).message}`, { file, cause: error });
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) throw new ConfigError("Invalid", "is not a kubeconfig (the top level must be a mapping)", { file });
  return doc as Record<string, unknown>;
}

function collect(
  doc: Record<string, unknown>,
  list: "clusters" | "users" | "contexts",
  key: "cluster" | "user" | "context",
  file: string,
  into: Map<string, Named<Record<string, unknown>>>,
): void {
  const entries = doc[list];
  if (entries === undefined || entries === null) return;
  if (!Array.isArray(entries)) throw new ConfigError("Invalid", "must be a list", { file, field: list });
  entries.forEach((entry: unknown, index) => {
    const field = `${list}[${index}]`;
    if (typeof entry !== "object" || entry === null) throw new ConfigError("Invalid", "must be a mapping", { file, field });
    const name = (entry as Record<string, unknown>).name;
    if (typeof name !== "string" || !name) throw new ConfigError("Invalid", "has no name", { file, field });
    const value = (entry as Record<string, unknown>)[key] ?? {};
    if (typeof value !== "object" || Array.isArray(value)) throw new ConfigError("Invalid", "must be a mapping", { file, field: `${list}["${name}"].${key}` });
    if (!into.has(name)) into.set(name, { value: value as Record<string, unknown>, file, index }); // first definition wins
  });
}

function userAuth(u: Record<string, unknown>, file: string, field: string): AuthConfig {
  if (u["auth-provider"] !== undefined) {
    const name = (u["auth-provider"] as { name?: string } | null)?.name ?? "?";
    throw new ConfigError("Invalid", `auth-provider "${name}" is not supported (it was removed from kubectl too); use an exec credential plugin`, {
      file,
      field: `${field}.auth-provider`,
    });
  }
  const token = optionalString(u.token, file, `${field}.token`);
  const tokenFile = optionalString(u.tokenFile, file, `${field}.tokenFile`);
  const username = optionalString(u.username, file, `${field}.username`);
  const password = optionalString(u.password, file, `${field}.password`);
  const exec = u.exec;
  if ((token || tokenFile) && (username || password)) {
    throw new ConfigError("Invalid", "a token and a username/password cannot both be set", { file, field });
  }
  if (exec !== undefined && exec !== null) return { type: "exec", exec: execConfig(exec, file, `${field}.exec`) };
  if (token) return { type: "token", token };
  if (tokenFile) {
    const path = relativeTo(file, tokenFile);
    readText(path, { file, field: `${field}.tokenFile` }); // fail now, naming the field, if unreadable
    return { type: "tokenFile", path };
  }
  if (username || password) return { type: "basic", username: username ?? "", password: password ?? "" };
  return { type: "none" };
}

function execConfig(exec: unknown, file: string, field: string): ExecConfig {
  if (typeof exec !== "object" || exec === null) throw new ConfigError("Invalid", "must be a mapping", { file, field });
  const e = exec as Record<string, unknown>;
  const command = optionalString(e.command, file, `${field}.command`);
  if (!command) throw new ConfigError("Invalid", "is missing", { file, field: `${field}.command` });
  const apiVersion = optionalString(e.apiVersion, file, `${field}.apiVersion`);
  if (apiVersion !== "client.authentication.k8s.io/v1" && apiVersion !== "client.authentication.k8s.io/v1beta1") {
    throw new ConfigError("Invalid", `must be client.authentication.k8s.io/v1 or v1beta1 (got ${apiVersion ?? "nothing"})`, {
      file,
      field: `${field}.apiVersion`,
    });
  }
  const args = e.args ?? [];
  if (!Array.isArray(args) || !args.every((a) => typeof a === "string")) throw new ConfigError("Invalid", "must be a list of strings", { file, field: `${field}.args` });
  const envList = e.env ?? [];
  if (!Array.isArray(envList)) throw new ConfigError("Invalid", "must be a list of {name, value}", { file, field: `${field}.env` });
  const vars = envList.map((v: unknown, i) => {
    const entry = v as { name?: unknown; value?: unknown };
    if (typeof entry?.name !== "string" || typeof entry.value !== "string") {
      throw new ConfigError("Invalid", "must have string name and value", { file, field: `${field}.env[${i}]` });
    }
    return { name: entry.name, value: entry.value };
  });
  // kubectl: a relative command with a path separator is relative to the kubeconfig's directory.
  const resolved = command.includes("/") && !isAbsolute(command) ? relativeTo(file, command) : command;
  const installHint = optionalString(e.installHint, file, `${field}.installHint`);
  return {
    command: resolved,
    args: args as string[],
    env: vars,
    apiVersion,
    provideClusterInfo: e.provideClusterInfo === true,
    origin: `${file}: ${field}`,
    ...(installHint ? { installHint } : {}),
  };
}

function impersonation(u: Record<string, unknown>, file: string, field: string): ClusterConfig["impersonate"] {
  const user = optionalString(u.as, file, `${field}.as`);
  const uid = optionalString(u["as-uid"], file, `${field}.as-uid`);
  const groups = u["as-groups"];
  const extra = u["as-user-extra"];
  if (groups !== undefined && (!Array.isArray(groups) || !groups.every((g) => typeof g === "string"))) {
    throw new ConfigError("Invalid", "must be a list of strings", { file, field: `${field}.as-groups` });
  }
  if (extra !== undefined && (typeof extra !== "object" || extra === null || !Object.values(extra).every((v) => Array.isArray(v)))) {
    throw new ConfigError("Invalid", "must map keys to lists of strings", { file, field: `${field}.as-user-extra` });
  }
  if (!user && !uid && !groups && !extra) return undefined;
  if (!user && (groups || extra)) throw new ConfigError("Invalid", "impersonating groups or extra requires a user (as)", { file, field });
  return {
    ...(user ? { user } : {}),
    ...(uid ? { uid } : {}),
    ...(groups ? { groups: groups as string[] } : {}),
    ...(extra ? { extra: extra as Record<string, string[]> } : {}),
  };
}

/** Reads `<name>` (a file path) or `<name>-data` (base64 PEM). */
function pem(entry: Record<string, unknown>, name: string, file: string, field: string): string | undefined {
  const data = optionalString(entry[`${name}-data`], file, `${field}.${name}-data`);
  if (data) {
    const decoded = Buffer.from(data, "base64").toString("utf8");
    if (!decoded.includes("-----BEGIN")) throw new ConfigError("Invalid", "is not base64-encoded PEM", { file, field: `${field}.${name}-data` });
    return decoded;
  }
  const path = optionalString(entry[name], file, `${field}.${name}`);
  if (!path) return undefined;
  const text = readText(relativeTo(file, path), { file, field: `${field}.${name}` });
  if (!text.includes("-----BEGIN")) throw new ConfigError("Invalid", `${path} does not contain PEM data`, { file, field: `${field}.${name}` });
  return text;
}

function optionalString(value: unknown, file: string, field: string): string | undefined {
  if (value === undefined || value === null || value === "") return undefined;
  if (typeof value !== "string") throw new ConfigError("Invalid", `must be a string (got ${typeof value})`, { file, field });
  return value;
}

function relativeTo(kubeconfig: string, path: string): string {
  if (path.startsWith("~/")) return join(homedir(), path.slice(2));
  return isAbsolute(path) ? path : resolve(dirname(kubeconfig), path);
}

function readText(path: string, where: { file?: string; field?: string }): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? "error";
    throw new ConfigError("Unreadable", where.file ? `cannot read ${path} (${code})` : `cannot read (${code})`, {
      ...(where.file ? { file: where.file } : { file: path }),
      ...(where.field ? { field: where.field } : {}),
      cause: error,
    });
  }
}
