// startControlPlane(): a real etcd + kube-apiserver (+ kube-controller-manager) on loopback,
// the way envtest runs them, for tests, examples and `kubeloop dev`; with `nodes`, also the
// scheduler, the workload controllers and KWOK's simulated nodes (nodes.ts). Or, when pointed at an
// existing cluster's kubeconfig, that cluster instead.
import { existsSync, promises as fs } from "node:fs";
import { request } from "node:https";
import { createServer, type AddressInfo, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import * as YAML from "yaml";
import * as binaries from "./binaries.js";
import type { BuildProgress } from "./binaries.js";
import { ControlPlaneError } from "./errors.js";
import * as pki from "../../core/pki.js";
import type { KeyPairPem } from "../../core/pki.js";
import { checkNodeCount, kwokFlags, syncNodes, readyNodes, schedulerFlags, WORKLOAD_CONTROLLERS } from "./nodes.js";
import { releasePidLock, tryPidLock } from "./pid-lock.js";
import { Component, Reaper } from "./supervisor.js";

/** The kube-controller-manager controllers run by default: garbage collection and namespace deletion. */
export const DEFAULT_CONTROLLERS: readonly string[] = ["garbage-collector-controller", "namespace-controller"];

/** Options for {@link startControlPlane}. Every field is optional. */
export interface ControlPlaneOptions {
  /**
   * Use this existing cluster instead of starting one: a kubeconfig path (its current context).
   * Default: `KUBELOOP_KUBECONFIG` from `env`. `false` always starts a local control plane.
   */
  kubeconfig?: string | false;
  /**
   * Keep etcd's data, the certificates and the chosen ports here, so a later start on the same
   * directory finds the same objects at the same address. Default: a temporary directory that
   * `stop()` removes.
   */
  dataDir?: string;
  /**
   * A directory of prebuilt binaries (`etcd`, `kube-apiserver`, optionally
   * `kube-controller-manager`), as envtest's assets. Default: `KUBEBUILDER_ASSETS` from `env`;
   * when neither is set, kubeloop's own binary is built from source (once; cached).
   */
  assetsDir?: string;
  /** Cache root for the built binary. Default: `KUBELOOP_CACHE_DIR`, else `~/.cache/kubeloop`. */
  cacheDir?: string;
  /**
   * kube-controller-manager controllers; `[]` runs no controller manager. Default
   * {@link DEFAULT_CONTROLLERS}, and with `nodes` also {@link WORKLOAD_CONTROLLERS}.
   */
  controllers?: readonly string[];
  /**
   * Simulated nodes (0 to 1,000; default 0): this many Node objects kept Ready by KWOK's
   * controller, with kube-scheduler and the workload controllers running, so Deployments get
   * Pods that are scheduled, Running and Ready (no container runs; docs/control-plane.md says
   * what is simulated). Resolves once every node is Ready. Needs kubeloop's own binary (prebuilt
   * assets carry no KWOK).
   */
  nodes?: number;
  /** Extra kube-apiserver flags, appended after kubeloop's own (a later flag wins). */
  apiServerFlags?: readonly string[];
  /**
   * kube-apiserver feature gates, over kubeloop's: {@link DEFAULT_FEATURE_GATES} turns on
   * `ShardedListAndWatch` (alpha: the server-side `shardSelector` sharded operators use), so the
   * server-side path is what developers see. `{ ShardedListAndWatch: false }` turns it off.
   */
  featureGates?: Readonly<Record<string, boolean>>;
  /** How long to wait for /readyz. Default 120 000 ms. */
  startTimeoutMs?: number;
  /** How long each component gets to exit on SIGTERM before SIGKILL. Default 10 000 ms. */
  stopTimeoutMs?: number;
  /** Progress lines (building, starting, ready). Default: none. */
  onProgress?: (message: string) => void;
  /** Each package a first build compiles, for a live display (see `ensureControlPlaneBinary`). */
  onBuildProgress?: (progress: BuildProgress) => void;
  /** Where `KUBELOOP_KUBECONFIG`, `KUBEBUILDER_ASSETS` and `KUBELOOP_CACHE_DIR` are read. Default: process.env. */
  env?: NodeJS.ProcessEnv;
}

/** A client identity issued by the local control plane's CA. */
export interface IssuedUser {
  /** A kubeconfig for this identity against this control plane. */
  kubeconfigPath: string;
  certificate: string;
  key: string;
}

/** A running control plane, or an existing cluster standing in for one. */
export interface ControlPlane {
  /** Absolute path of an admin kubeconfig. */
  readonly kubeconfigPath: string;
  /** The API server URL, e.g. `https://127.0.0.1:41234`. */
  readonly server: string;
  /** False when this is an existing cluster (`stop()` then does nothing). */
  readonly local: boolean;
  /** The data directory (local control planes only). */
  readonly dataDir: string | undefined;
  /**
   * etcd's client URL, plain HTTP on loopback (local control planes only): for tests that make
   * the state the API server forbids (an object removed with its finalizers, as a race in the
   * API server can leave it) through etcd's JSON gateway (`POST <etcdUrl>/v3/kv/deleterange`).
   */
  readonly etcdUrl: string | undefined;
  /** PEM of the cluster CA (local control planes only). */
  readonly caCertificate: string | undefined;
  /** The admin client certificate, in system:masters (local control planes only). */
  readonly admin: KeyPairPem | undefined;
  /** Process ids of the components and of the reaper (local control planes only). */
  readonly pids: Readonly<Record<string, number>>;
  /**
   * Resolves when the control plane has ended: with `undefined` after `stop()`, or with the
   * error of a component that exited on its own (the others are then stopped too).
   */
  readonly ended: Promise<ControlPlaneError | undefined>;
  /**
   * Issues a client certificate for `user` in `groups`, signed by the cluster CA, and writes a
   * kubeconfig for it. Fails with `BadOptions` on an existing cluster (its CA is not ours).
   */
  issueUser(user: string, groups?: readonly string[]): Promise<IssuedUser>;
  /**
   * Kills one component with `signal` (default SIGKILL) and, after `downMs` (default 0), starts
   * it again with the same flags and data: etcd or the API server dying under a running client.
   * Resolves once the new process runs (not once it serves: poll /readyz for that). Only for a
   * control plane this process started; `pids` is updated. Fails with `BadOptions` for an unknown
   * component or an existing cluster.
   */
  restart(component: "etcd" | "kube-apiserver" | "kube-controller-manager" | "kube-scheduler" | "kwok", options?: { signal?: NodeJS.Signals; downMs?: number }): Promise<void>;
  /** Stops every component (SIGTERM, then SIGKILL) and removes a temporary data dir. Idempotent. */
  stop(): Promise<void>;
}

interface State {
  ports: { etcdClient: number; etcdPeer: number; apiServer: number };
}

/**
 * Starts a local Kubernetes control plane, or returns the existing cluster named by
 * `options.kubeconfig` / `KUBELOOP_KUBECONFIG`.
 *
 * Guarantees: when it resolves, /readyz answered 200 and the `default` namespace exists; the
 * kubeconfig holds an admin identity (system:masters). Every child process ends when `stop()`
 * is called, when a component fails, and when this process dies in any way (a detached reaper
 * watches it).
 *
 * Fails with a {@link ControlPlaneError}: `ComponentExited` naming the component and carrying
 * its last log lines, `NotReady` after `startTimeoutMs`, `BadOptions` for an unusable data dir
 * (for instance one in use by another running control plane) or kubeconfig, `GoNotFound` or
 * `BuildFailed` when the binary must be built and cannot be. Nothing is left running on failure.
 */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const env = options.env ?? process.env;
  const existing = options.kubeconfig === undefined ? env.KUBELOOP_KUBECONFIG : options.kubeconfig || undefined;
  if (existing) return existingCluster(existing);

  const progress = options.onProgress ?? (() => {});
  const nodes = checkNodeCount(options.nodes ?? 0);
  const executables = await resolveExecutables(options, env, progress);
  if (nodes > 0 && (!executables.kubeScheduler || !executables.kwok || !executables.kubeControllerManager)) {
    throw new ControlPlaneError("BadOptions", `nodes need kube-scheduler, kube-controller-manager and KWOK, which ${executables.origin} does not have: leave KUBEBUILDER_ASSETS unset to use kubeloop's own binary`);
  }
  const temporary = options.dataDir === undefined;
  const dataDir = temporary
    ? await fs.mkdtemp(join(tmpdir(), "kubeloop-cp-"))
    : resolve(options.dataDir as string);
  await fs.mkdir(dataDir, { recursive: true });
  await lockDataDir(dataDir);

  const components: Component[] = [];
  const reaper = new Reaper();
  if (temporary) reaper.removeAfter(dataDir);
  const cleanup = async () => {
    await stopAll(components, options.stopTimeoutMs ?? 10_000);
    await reaper.close();
    await releasePidLock(join(dataDir, "kubeloop.pid"));
    if (temporary) await fs.rm(dataDir, { recursive: true, force: true });
  };

  try {
    const dirs = { pki: join(dataDir, "pki"), etcd: join(dataDir, "etcd"), logs: join(dataDir, "logs"), users: join(dataDir, "users") };
    for (const dir of Object.values(dirs)) await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const state = await choosePorts(dataDir);
    const server = `https://127.0.0.1:${state.ports.apiServer}`;
    const certs = await ensureCertificates(dirs.pki);
    const kubeconfigPath = join(dataDir, "kubeconfig");
    await writeKubeconfig(kubeconfigPath, server, certs.ca.certificate, certs.admin);

    const start = (name: string, command: binaries.Command, flags: string[]) => {
      const component = new Component(name, command.file, [...command.args, ...flags], {
        logFile: join(dirs.logs, `${name}.log`),
        env,
      });
      reaper.watch(component.pid);
      components.push(component);
      return component;
    };

    progress(`starting etcd and kube-apiserver (${executables.origin})`);
    const etcdUrl = `http://127.0.0.1:${state.ports.etcdClient}`;
    start("etcd", executables.etcd, etcdFlags(dirs.etcd, etcdUrl, `http://127.0.0.1:${state.ports.etcdPeer}`));
    const gates = Object.entries({ ...DEFAULT_FEATURE_GATES, ...options.featureGates }).map(([gate, on]) => `${gate}=${on}`);
    start("kube-apiserver", executables.kubeApiserver, [...apiServerFlags(dataDir, dirs.pki, etcdUrl, server, state.ports.apiServer), `--feature-gates=${gates.join(",")}`, ...(options.apiServerFlags ?? [])]);
    await waitUntilServing(server, certs, components, Date.now() + (options.startTimeoutMs ?? 120_000));

    const controllers = options.controllers ?? (nodes > 0 ? [...DEFAULT_CONTROLLERS, ...WORKLOAD_CONTROLLERS] : DEFAULT_CONTROLLERS);
    startControllers(start, executables, controllers, kubeconfigPath, dirs.pki, progress);
    const admin = { ca: certs.ca.certificate, cert: certs.admin.certificate, key: certs.admin.key };
    if (nodes > 0) await startNodes(start, executables, nodes, { server, admin, kubeconfigPath, components, deadline: Date.now() + (options.startTimeoutMs ?? 120_000) }, progress);
    // A kept data dir started before with nodes: none is left that nothing keeps Ready.
    else if (!temporary) await syncNodes(server, admin, 0);
    progress(`control plane ready at ${server}`);

    return running({ components, reaper, cleanup, kubeconfigPath, server, etcdUrl, dataDir, certs, usersDir: dirs.users });
  } catch (error) {
    await cleanup();
    throw error;
  }
}

/** The kube-apiserver feature gates the local control plane turns on unless told otherwise. */
export const DEFAULT_FEATURE_GATES: Readonly<Record<string, boolean>> = Object.freeze({ ShardedListAndWatch: true });

/** kube-controller-manager with `controllers` (none: not started), talking to the API server through `kubeconfigPath`. */
function startControllers(start: (name: string, command: binaries.Command, flags: string[]) => unknown, executables: Awaited<ReturnType<typeof resolveExecutables>>, controllers: readonly string[], kubeconfigPath: string, pkiDir: string, progress: (message: string) => void): void {
  if (controllers.length === 0) return;
  if (!executables.kubeControllerManager) {
    progress(`no kube-controller-manager in ${executables.origin}: garbage collection and namespace deletion will not run`);
    return;
  }
  start("kube-controller-manager", executables.kubeControllerManager, [
    `--kubeconfig=${kubeconfigPath}`,
    `--controllers=${controllers.join(",")}`,
    "--leader-elect=false",
    "--secure-port=0",
    // The token controller signs ServiceAccount token Secrets with the API server's key, and puts the CA in them.
    `--service-account-private-key-file=${join(pkiDir, "sa.key")}`,
    `--root-ca-file=${join(pkiDir, "ca.crt")}`,
  ]);
}

/** kube-scheduler and KWOK, then `count` Nodes; resolves once all are Ready (KWOK's heartbeat), fails at the deadline or when a component exits. */
async function startNodes(
  start: (name: string, command: binaries.Command, flags: string[]) => unknown,
  executables: Awaited<ReturnType<typeof resolveExecutables>>,
  count: number,
  c: { server: string; admin: { ca: string; cert: string; key: string }; kubeconfigPath: string; components: Component[]; deadline: number },
  progress: (message: string) => void,
): Promise<void> {
  progress(`starting kube-scheduler and ${count} simulated node(s) (KWOK)`);
  start("kube-scheduler", executables.kubeScheduler as binaries.Command, schedulerFlags(c.kubeconfigPath));
  start("kwok", executables.kwok as binaries.Command, kwokFlags(c.kubeconfigPath));
  await syncNodes(c.server, c.admin, count);
  let ready: string[] = [];
  while (Date.now() < c.deadline) {
    const exited = c.components.find((component) => component.hasExited);
    if (exited) await exited.failOnExit();
    ready = await readyNodes(c.server, c.admin).catch(() => []);
    if (ready.length >= count) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  const kwok = c.components.find((component) => component.name === "kwok");
  throw new ControlPlaneError("NotReady", `${ready.length} of ${count} simulated nodes Ready before the deadline`, { component: "kwok", logTail: kwok?.logTail() ?? [] });
}

/** The handle of a started control plane: stop (once), `ended` (a component died), users. */
function running(p: {
  components: Component[];
  reaper: Reaper;
  cleanup: () => Promise<void>;
  kubeconfigPath: string;
  etcdUrl: string;
  server: string;
  dataDir: string;
  certs: Awaited<ReturnType<typeof ensureCertificates>>;
  usersDir: string;
}): ControlPlane {
  const { components, reaper, cleanup, server, certs } = p;
  let stopping: Promise<void> | undefined;
  let resolveEnded: (value: ControlPlaneError | undefined) => void = () => {};
  const ended = new Promise<ControlPlaneError | undefined>((r) => (resolveEnded = r));
  const stop = () => (stopping ??= cleanup().then(() => resolveEnded(undefined)));
  // A component that exits on its own ends the control plane, unless restart() killed it.
  const supervise = (component: Component) =>
    component.failOnExit().catch((error: ControlPlaneError) => {
      if (stopping || !components.includes(component)) return;
      stopping = cleanup().then(() => resolveEnded(error));
    });
  components.forEach(supervise);
  const pids: Record<string, number> = Object.fromEntries(components.map((c) => [c.name, c.pid]));
  if (reaper.pid) pids.reaper = reaper.pid;
  const restart: ControlPlane["restart"] = async (name, options = {}) => {
    const index = components.findIndex((c) => c.name === name);
    const old = components[index];
    if (!old) throw new ControlPlaneError("BadOptions", `no component '${name}' runs in this control plane`);
    if (stopping) throw new ControlPlaneError("BadOptions", "the control plane is stopping");
    components.splice(index, 1);
    old.kill(options.signal ?? "SIGKILL");
    await old.exited;
    reaper.forget(old.pid);
    if (options.downMs) await new Promise((r) => setTimeout(r, options.downMs));
    const fresh = old.respawn();
    components.splice(index, 0, fresh);
    reaper.watch(fresh.pid);
    pids[name] = fresh.pid;
    supervise(fresh);
    if (stopping) await fresh.stop(1_000);
  };
  return {
    kubeconfigPath: p.kubeconfigPath,
    server,
    local: true,
    dataDir: p.dataDir,
    etcdUrl: p.etcdUrl,
    caCertificate: certs.ca.certificate,
    admin: certs.admin,
    pids,
    ended,
    stop,
    restart,
    issueUser: (user, groups = []) => issueUser(certs, server, p.usersDir, user, groups),
  };
}

/** A kubeconfig for `user` in `groups`, with a client certificate signed by the control plane's CA. */
async function issueUser(certs: Awaited<ReturnType<typeof ensureCertificates>>, server: string, usersDir: string, user: string, groups: readonly string[]): ReturnType<ControlPlane["issueUser"]> {
  const identity = await certs.ca.sign({ commonName: user, organizations: groups, usage: "client" });
  const path = join(usersDir, `${user.replace(/[^\w.-]/g, "_")}.kubeconfig`);
  await writeKubeconfig(path, server, certs.ca.certificate, identity, user);
  return { kubeconfigPath: path, ...identity };
}

/** etcd on loopback, for one member, without fsync (tests: speed over durability). */
function etcdFlags(dataDir: string, clientUrl: string, peerUrl: string): string[] {
  return [
    "--name=kubeloop",
    `--data-dir=${dataDir}`,
    `--listen-client-urls=${clientUrl}`,
    `--advertise-client-urls=${clientUrl}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=kubeloop=${peerUrl}`,
    "--unsafe-no-fsync=true",
    "--log-level=warn",
  ];
}

/** kube-apiserver on loopback with RBAC, our certificates and service-account keys (as envtest). */
function apiServerFlags(dataDir: string, pki: string, etcdUrl: string, server: string, port: number): string[] {
  const pkiFile = (name: string) => join(pki, name);
  return [
    `--etcd-servers=${etcdUrl}`,
    "--advertise-address=127.0.0.1",
    // Since 1.37 the lease reconciler refuses a loopback address for the `kubernetes` Service's
    // endpoints; nothing runs in-cluster here that would use them.
    "--endpoint-reconciler-type=none",
    "--bind-address=127.0.0.1",
    `--secure-port=${port}`,
    `--cert-dir=${join(dataDir, "apiserver")}`,
    `--tls-cert-file=${pkiFile("apiserver.crt")}`,
    `--tls-private-key-file=${pkiFile("apiserver.key")}`,
    `--client-ca-file=${pkiFile("ca.crt")}`,
    "--authorization-mode=RBAC",
    // Webhooks and aggregated APIs behind a Service are called at an endpoint of its
    // EndpointSlices (there is no Service network here): tests serve a Service's webhooks from
    // this machine by writing an EndpointSlice with its address.
    "--enable-aggregator-routing=true",
    "--disable-admission-plugins=ServiceAccount",
    // As on clusters that enforce it (OpenShift among them): setting blockOwnerDeletion on an
    // owner reference needs update on the owner's finalizers subresource.
    "--enable-admission-plugins=OwnerReferencesPermissionEnforcement",
    "--service-cluster-ip-range=10.0.0.0/24",
    "--allow-privileged=true",
    `--service-account-issuer=${server}`,
    `--service-account-key-file=${pkiFile("sa.pub")}`,
    `--service-account-signing-key-file=${pkiFile("sa.key")}`,
  ];
}

/** Waits for /readyz and the default namespace, failing at once (with its log) if a component exits. */
async function waitUntilServing(server: string, certs: Awaited<ReturnType<typeof ensureCertificates>>, components: Component[], deadline: number): Promise<void> {
  const tls = { ca: certs.ca.certificate, cert: certs.admin.certificate, key: certs.admin.key };
  const failures = components.map((c) => c.failOnExit());
  failures.forEach((f) => f.catch(() => {}));
  await Promise.race([waitForEndpoint(server, "/readyz", tls, deadline, "kube-apiserver /readyz", components), ...failures]);
  await Promise.race([waitForEndpoint(server, "/api/v1/namespaces/default", tls, deadline, "the default namespace", components), ...failures]);
}

async function resolveExecutables(
  options: ControlPlaneOptions,
  env: NodeJS.ProcessEnv,
  progress: (message: string) => void,
): Promise<binaries.Executables> {
  const assets = options.assetsDir ?? env.KUBEBUILDER_ASSETS;
  if (assets) return binaries.prebuiltExecutables(resolve(assets));
  const binary = await binaries.ensureControlPlaneBinary({
    env,
    onProgress: progress,
    ...(options.onBuildProgress ? { onBuildProgress: options.onBuildProgress } : {}),
    ...(options.cacheDir ? { cacheDir: options.cacheDir } : {}),
  });
  return binaries.multiCallExecutables(binary);
}

async function existingCluster(kubeconfigPath: string): Promise<ControlPlane> {
  const path = resolve(kubeconfigPath);
  let text: string;
  try {
    text = await fs.readFile(path, "utf8");
  } catch (error) {
    throw new ControlPlaneError("BadOptions", `cannot read the kubeconfig ${path} (KUBELOOP_KUBECONFIG)`, { cause: error });
  }
  let config: { "current-context"?: string; contexts?: { name: string; context?: { cluster?: string } }[]; clusters?: { name: string; cluster?: { server?: string } }[] };
  try {
    config = YAML.parse(text) ?? {};
  } catch (error) {
    throw new ControlPlaneError("BadOptions", `the kubeconfig ${path} is not valid YAML`, { cause: error });
  }
  const context = config.contexts?.find((c) => c.name === config["current-context"]);
  const server = config.clusters?.find((c) => c.name === context?.context?.cluster)?.cluster?.server;
  if (!server) {
    throw new ControlPlaneError("BadOptions", `the kubeconfig ${path} has no server for its current-context '${config["current-context"] ?? ""}'`);
  }
  return {
    kubeconfigPath: path,
    server,
    local: false,
    dataDir: undefined,
    etcdUrl: undefined,
    caCertificate: undefined,
    admin: undefined,
    pids: {},
    ended: new Promise(() => {}),
    stop: async () => {},
    restart: async () => {
      throw new ControlPlaneError("BadOptions", `cannot restart components of an existing cluster (${path})`);
    },
    issueUser: async () => {
      throw new ControlPlaneError("BadOptions", `cannot issue users on an existing cluster (${path}): its CA is not kubeloop's`);
    },
  };
}

/** Refuses a data dir that a live control plane is using (etcd would otherwise block on its lock). */
async function lockDataDir(dataDir: string): Promise<void> {
  let result: Awaited<ReturnType<typeof tryPidLock>>;
  try {
    result = await tryPidLock(join(dataDir, "kubeloop.pid"));
  } catch (error) {
    throw new ControlPlaneError("BadOptions", `cannot use data dir ${dataDir}`, { cause: error });
  }
  if (!result.acquired) {
    throw new ControlPlaneError("BadOptions", `data dir ${dataDir} is in use by a control plane of process ${result.owner}`);
  }
}

/** Reuses the ports a data dir used before when they are still free (so kubeconfigs stay valid). */
async function choosePorts(dataDir: string): Promise<State> {
  const file = join(dataDir, "state.json");
  const previous = existsSync(file) ? (JSON.parse(await fs.readFile(file, "utf8")) as State) : undefined;
  const wanted = previous ? Object.values(previous.ports) : [];
  const reusable = wanted.length === 3 && (await Promise.all(wanted.map(portIsFree))).every(Boolean);
  const state: State = reusable && previous ? previous : await freshPorts();
  await fs.writeFile(file, JSON.stringify(state, null, 2));
  return state;
}

async function freshPorts(): Promise<State> {
  // Hold all three listeners open until each has a port, so they differ from each other.
  const servers = await Promise.all(
    [0, 1, 2].map(
      () =>
        new Promise<Server>((resolvePromise, reject) => {
          const s = createServer();
          s.once("error", reject);
          s.listen(0, "127.0.0.1", () => resolvePromise(s));
        }),
    ),
  );
  const ports = servers.map((s) => (s.address() as AddressInfo).port);
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  const [etcdClient, etcdPeer, apiServer] = ports as [number, number, number];
  return { ports: { etcdClient, etcdPeer, apiServer } };
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const s = createServer();
    s.once("error", () => resolvePromise(false));
    s.listen(port, "127.0.0.1", () => s.close(() => resolvePromise(true)));
  });
}

interface Certificates {
  ca: pki.CertificateAuthority;
  admin: pki.KeyPairPem;
}

/** Creates the PKI in `dir`, or reuses one written there before while it stays valid. */
async function ensureCertificates(dir: string): Promise<Certificates> {
  const file = (name: string) => join(dir, name);
  const read = async (name: string) => fs.readFile(file(name), "utf8");
  const write = (name: string, data: string) => fs.writeFile(file(name), data, { mode: 0o600 });
  const have = (...names: string[]) => names.every((n) => existsSync(file(n)));

  let ca: pki.CertificateAuthority;
  if (have("ca.crt", "ca.key") && pki.validFor(await read("ca.crt"), 30)) {
    ca = await pki.loadCertificateAuthority({ certificate: await read("ca.crt"), key: await read("ca.key") });
  } else {
    ca = await pki.createCertificateAuthority("kubeloop-ca");
    await write("ca.crt", ca.certificate);
    await write("ca.key", ca.key);
    for (const stale of ["apiserver.crt", "admin.crt"]) await fs.rm(file(stale), { force: true });
  }
  if (!have("sa.key", "sa.pub")) {
    const sa = await pki.createSigningKey();
    await write("sa.key", sa.key);
    await write("sa.pub", sa.certificate);
  }
  const leaf = async (name: string, request: pki.LeafRequest) => {
    if (have(`${name}.crt`, `${name}.key`) && pki.validFor(await read(`${name}.crt`), 7)) {
      return { certificate: await read(`${name}.crt`), key: await read(`${name}.key`) };
    }
    const issued = await ca.sign(request);
    await write(`${name}.crt`, issued.certificate);
    await write(`${name}.key`, issued.key);
    return issued;
  };
  await leaf("apiserver", {
    commonName: "kube-apiserver",
    usage: "server",
    dnsNames: ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"],
    ipAddresses: ["127.0.0.1", "::1", "10.0.0.1"],
  });
  const admin = await leaf("admin", { commonName: "kubeloop-admin", organizations: ["system:masters"], usage: "client" });
  return { ca, admin };
}

async function writeKubeconfig(path: string, server: string, ca: string, identity: pki.KeyPairPem, user = "kubeloop-admin"): Promise<void> {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "kubeloop", cluster: { server, "certificate-authority-data": b64(ca) } }],
    users: [{ name: user, user: { "client-certificate-data": b64(identity.certificate), "client-key-data": b64(identity.key) } }],
    contexts: [{ name: "kubeloop", context: { cluster: "kubeloop", user, namespace: "default" } }],
    "current-context": "kubeloop",
  };
  await fs.writeFile(path, YAML.stringify(config), { mode: 0o600 });
}

/** Polls `path` with the admin identity until it answers 200, or fails at `deadline`. */
async function waitForEndpoint(
  server: string,
  path: string,
  tls: { ca: string; cert: string; key: string },
  deadline: number,
  what: string,
  components: readonly Component[],
): Promise<void> {
  let last = "no answer yet";
  while (Date.now() < deadline) {
    if (components.some((c) => c.hasExited)) return; // failOnExit() reports it
    try {
      const status = await httpsStatus(`${server}${path}`, tls);
      if (status === 200) return;
      last = `HTTP ${status}`;
    } catch (error) {
      last = (error as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const apiserver = components.find((c) => c.name === "kube-apiserver");
  throw new ControlPlaneError("NotReady", `${what} was not reached before the deadline (last: ${last})`, {
    component: "kube-apiserver",
    logTail: apiserver?.logTail() ?? [],
  });
}

function httpsStatus(url: string, tls: { ca: string; cert: string; key: string }): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const req = request(url, { ...tls, timeout: 5000, agent: false }, (res) => {
      res.resume();
      res.on("end", () => resolvePromise(res.statusCode ?? 0));
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end();
  });
}

async function stopAll(components: readonly Component[], graceMs: number): Promise<void> {
  // Reverse start order: the controller manager, then the API server, then etcd.
  for (const component of [...components].reverse()) await component.stop(graceMs);
}
