// Helpers for integration tests: the shared cluster, plain HTTPS calls with a client
// certificate, and waiting on a condition with a deadline (never a fixed sleep).
import { createServer as createNetServer } from "node:net";
import { readFileSync, writeFileSync } from "node:fs";
import type { IncomingHttpHeaders } from "node:http";
import { request } from "node:https";
import * as YAML from "yaml";
import { startControlPlane, waitFor, type ControlPlane } from "../src/entries/testing.js";
import { ClusterRole, ClusterRoleBinding, Namespace, Role, RoleBinding, ServiceAccount, type Client, type KubeObject } from "../src/entries/index.js";

/** TLS material of a certificate-authenticated kubeconfig. */
export interface Identity {
  server: string;
  ca: string;
  cert: string;
  key: string;
}

let shared: Promise<ControlPlane> | undefined;

/**
 * The cluster this test run shares: KUBELOOP_KUBECONFIG when the test command set it, else a
 * control plane started for this file alone (running one file by hand).
 */
export function sharedCluster(): Promise<ControlPlane> {
  shared ??= startControlPlane();
  return shared;
}

/** Stops the cluster if this file started it (a no-op for the run's shared one). */
export async function releaseSharedCluster(): Promise<void> {
  if (shared) await (await shared).stop();
  if (sharedNodes) await (await sharedNodes).stop();
}

let sharedNodes: Promise<ControlPlane> | undefined;

/** The simulated nodes of the run's second shared cluster. */
export const SHARED_NODES = 3;

/**
 * The cluster with simulated nodes this test run shares (a Deployment gets Pods that become
 * Ready): KUBELOOP_NODES_KUBECONFIG when the test command started one (it does when a test
 * file calls this function), else a control plane with {@link SHARED_NODES} nodes started for
 * this file alone. Kept apart from {@link sharedCluster}: its endpointslice controller would
 * write slices for the Services that other tests back with EndpointSlices of their own.
 */
export function sharedClusterWithNodes(): Promise<ControlPlane> {
  sharedNodes ??= startControlPlane({ kubeconfig: process.env.KUBELOOP_NODES_KUBECONFIG ?? false, nodes: SHARED_NODES });
  return sharedNodes;
}

/** Reads server, CA and client certificate from a kubeconfig's current context. */
export function identityFromKubeconfig(path: string): Identity {
  const config = YAML.parse(readFileSync(path, "utf8"));
  const context = config.contexts.find((c: { name: string }) => c.name === config["current-context"]).context;
  const cluster = config.clusters.find((c: { name: string }) => c.name === context.cluster).cluster;
  const user = config.users.find((u: { name: string }) => u.name === context.user).user;
  const b64 = (s: string) => Buffer.from(s, "base64").toString();
  if (!user["client-certificate-data"]) throw new Error(`${path}: these tests need a client-certificate identity`);
  return {
    server: cluster.server,
    ca: b64(cluster["certificate-authority-data"]),
    cert: b64(user["client-certificate-data"]),
    key: b64(user["client-key-data"]),
  };
}

/** The JSON answer of one API call. */
export interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- test code reads arbitrary JSON
}

/** One HTTPS request to the API server with a client certificate. */
export function call(
  who: Identity,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${who.server}${path}`,
      {
        method,
        ca: who.ca,
        cert: who.cert,
        key: who.key,
        timeout: 15_000,
        headers: { accept: "application/json", ...(body ? { "content-type": "application/json" } : {}), ...headers },
      },
      (res) => {
        let text = "";
        res.on("data", (d: Buffer) => (text += d.toString()));
        res.on("end", () => {
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON: keep the text
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed });
        });
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: timed out`)));
    req.on("error", reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** Polls `check` until it returns a value other than undefined/false; throws at the deadline (kubeloop/testing's waitFor). */
export function eventually<T>(what: string, check: () => Promise<T | undefined | false>, options: { timeoutMs?: number; intervalMs?: number } = {}): Promise<T> {
  return waitFor(what, check, options);
}

/** A name unique to this test run, for objects tests create. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`;
}

/** Creates a namespace named `<prefix>-<unique>`; returns its name. */
export async function createNamespace(client: Client, prefix: string): Promise<string> {
  const ns = uniqueName(prefix);
  await client.resource(Namespace).create({ metadata: { name: ns } });
  return ns;
}

/** A token for a ServiceAccount from the TokenRequest API (an hour); throws with the answer if refused. */
export async function serviceAccountToken(who: Identity, namespace: string, name: string): Promise<string> {
  const answer = await call(who, "POST", `/api/v1/namespaces/${namespace}/serviceaccounts/${name}/token`, { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 3600 } });
  if (answer.status !== 201) throw new Error(`TokenRequest for ${namespace}/${name}: ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body.status.token as string;
}

/** Writes a kubeconfig for `who`'s server and CA that authenticates with `token`; returns `path`. */
export function tokenKubeconfig(who: Identity, namespace: string, token: string, path: string): string {
  writeFileSync(
    path,
    YAML.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: "c", cluster: { server: who.server, "certificate-authority-data": Buffer.from(who.ca).toString("base64") } }],
      users: [{ name: "sa", user: { token } }],
      contexts: [{ name: "sa", context: { cluster: "c", user: "sa", namespace } }],
      "current-context": "sa",
    }),
  );
  return path;
}

/** Creates or replaces RBAC objects (ServiceAccount, Roles, ClusterRoles and bindings). */
export async function applyRbac(client: Client, objects: readonly KubeObject[]): Promise<void> {
  for (const o of objects) {
    const kind = { ServiceAccount, ClusterRole, ClusterRoleBinding, Role, RoleBinding }[o.kind as "Role"];
    const resource = o.metadata?.namespace ? client.resource(kind).namespace(o.metadata.namespace) : client.resource(kind);
    try {
      const current = await resource.get(o.metadata?.name ?? "");
      await resource.replace({ ...o, metadata: { ...o.metadata, resourceVersion: current.metadata?.resourceVersion } } as never);
    } catch {
      await resource.create(o as never);
    }
  }
}

/** A TCP port free on `host` now (the OS picks it; a process started next listens on it). */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}
