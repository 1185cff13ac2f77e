// Running an operator inside a test: start it against a cluster, wait until its caches have
// synced, stop it at the end; install CRDs and wait for conditions with deadlines (never
// fixed sleeps).
import { pino, type Logger } from "pino";
import { Client } from "../client/client.js";
import { inClusterConfig } from "../client/config.js";
import { CustomResourceDefinition } from "../core/builtins.js";
import { AlreadyExistsError } from "../core/errors.js";
import { checkServed, type Operator, type RunningOperator } from "../operator/operator.js";
import type { WebhookOptions } from "../operator/webhooks.js";
import type { CustomResourceDefinition as Crd } from "kubernetes-types/apiextensions/v1.js";

/** Options of {@link runOperator}. */
export interface RunOperatorOptions {
  /** The cluster: a client, or a kubeconfig path. */
  client?: Client;
  kubeconfig?: string;
  /** Default: warnings and errors only. */
  logger?: Logger;
  /** Serve /metrics, /healthz, /readyz on a free port. Default false. */
  probes?: boolean;
  /** Leader election as the operator declares it. Default: off, except as another identity (KUBELOOP_OPERATOR_KUBECONFIG): on, as deployed. */
  leaderElection?: boolean;
  /** Overrides of the operator's webhook settings. Default: a free port on 127.0.0.1 (the local control plane calls it there). */
  webhooks?: WebhookOptions;
  /** How long to wait for the operator to start. Default 60 s. */
  startTimeoutMs?: number;
}

/** A running operator under test. */
export interface OperatorUnderTest extends RunningOperator {
  client: Client;
  /** Stops it gracefully and waits; rejects if it failed. */
  stop(): Promise<void>;
}

/**
 * Starts `op` in this process and resolves once its caches have synced. Rejects if it fails
 * to start (the operator's own error, e.g. a missing CRD) or takes longer than startTimeoutMs.
 * The operator's client: its `op.on.login`, else the kubeconfig in `KUBELOOP_OPERATOR_KUBECONFIG`
 * (to run a test's operator as another identity, e.g. its generated ServiceAccount, with leader
 * election on unless `leaderElection: false`; the value `in-cluster` loads in-cluster config from
 * KUBERNETES_SERVICE_HOST/PORT and the service account directory, `KUBELOOP_SERVICE_ACCOUNT_DIR`),
 * else the test's own client.
 */
export async function runOperator(op: Operator, options: RunOperatorOptions = {}): Promise<OperatorUnderTest> {
  const ownClient = !options.client;
  const client = options.client ?? (await Client.load({ ...(options.kubeconfig ? { path: options.kubeconfig } : {}), rateLimit: false }));
  const logger = options.logger ?? pino({ level: "warn" });
  // An operator with op.on.login runs with the client it supplies (the test keeps its own); with
  // KUBELOOP_OPERATOR_KUBECONFIG set (RBAC proofs), it runs as that identity instead.
  const asIdentity = process.env.KUBELOOP_OPERATOR_KUBECONFIG;
  const identity = async () => (asIdentity === "in-cluster" ? new Client(inClusterConfig(), { rateLimit: false }) : Client.load({ path: asIdentity as string, rateLimit: false }));
  const loginClient = (await op.clientFromLogin(logger)) ?? (asIdentity ? await identity() : undefined);
  // A kind the server does not serve fails the start at once, naming it (op.run() alone waits for it).
  try {
    await checkServed(client, op.kinds, "install its CustomResourceDefinition first (installCrd(client, Kind.crd))");
  } catch (error) {
    if (ownClient) await client.close();
    throw error;
  }
  const controller = new AbortController();
  let started!: (r: RunningOperator) => void;
  const ready = new Promise<RunningOperator>((resolve) => (started = resolve));
  const done = op.run({
    client: loginClient ?? client,
    signal: controller.signal,
    handleSignals: false,
    probes: options.probes ? { port: 0, host: "127.0.0.1" } : false,
    logger,
    // As another identity (an RBAC proof) it runs as deployed: with leader election, its Lease in
    // that kubeconfig's namespace, so the proof covers the Lease rule too.
    ...((options.leaderElection ?? asIdentity !== undefined) ? {} : { leaderElection: false }),
    webhooks: { port: 0, host: "127.0.0.1", ...options.webhooks },
    onStarted: started,
  });
  const stop = async () => {
    controller.abort();
    try {
      await done;
    } finally {
      if (ownClient) await client.close();
      await loginClient?.close();
    }
  };
  const timeoutMs = options.startTimeoutMs ?? 60_000;
  let timer: NodeJS.Timeout | undefined;
  try {
    const running = await Promise.race([
      ready,
      done.then(() => Promise.reject(new Error(`operator ${op.name} stopped before it started`))),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`operator ${op.name} did not start within ${timeoutMs} ms`)), timeoutMs))),
    ]);
    return { ...running, client, stop };
  } catch (error) {
    await stop().catch(() => {});
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

/** What {@link installCrd} did. */
export interface CrdInstalled {
  /** "created", "updated" (the definition differed: applied), or "unchanged". */
  outcome: "created" | "updated" | "unchanged";
  /** For "updated": what changed, e.g. "v1: schema", "v2: added", "shortNames". */
  changes: string[];
}

/**
 * Creates a CRD, or brings an existing one to `crd` with server-side apply (field manager
 * `options.fieldManager`, default "kubeloop"; forced, as the definition in code is the truth), and
 * waits until it is Established. Returns what changed. Refuses, naming the version, to remove a
 * version the API server still stores objects in (`status.storedVersions`): the API server would
 * refuse it too; keep it with `served: false` until its objects are migrated.
 */
export async function installCrd(client: Client, crd: Crd, timeoutMs = 30_000, options: { fieldManager?: string } = {}): Promise<CrdInstalled> {
  const crds = client.resource(CustomResourceDefinition);
  const name = crd.metadata?.name ?? "";
  let result: CrdInstalled = { outcome: "created", changes: [] };
  const exists = await crds.create(crd).then(
    () => false,
    (error: unknown) => (error instanceof AlreadyExistsError ? true : Promise.reject(error)),
  );
  if (exists) {
    const current = await crds.get(name);
    const changes = crdChanges(current, crd);
    const wanted = new Set(crd.spec.versions.map((v) => v.name));
    const dropped = (current.status?.storedVersions ?? []).filter((v) => !wanted.has(v));
    if (dropped.length) {
      throw new Error(
        `CRD ${name}: the new definition removes version ${dropped.join(", ")}, which the API server still stores objects in (status.storedVersions): it would refuse the change. Keep ${dropped.join(", ")} in versions (served: false) until its objects are migrated to the storage version and storedVersions no longer lists it`,
      );
    }
    if (changes.length) {
      await crds.apply({ apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", metadata: { name, ...(crd.metadata?.labels ? { labels: crd.metadata.labels } : {}), ...(crd.metadata?.annotations ? { annotations: crd.metadata.annotations } : {}) }, spec: crd.spec }, { fieldManager: options.fieldManager ?? "kubeloop", force: true });
      result = { outcome: "updated", changes };
    } else {
      result = { outcome: "unchanged", changes: [] };
    }
  }
  await waitFor(`CRD ${name} to be established`, async () => (await crds.get(name)).status?.conditions?.some((c) => c.type === "Established" && c.status === "True"), { timeoutMs });
  return result;
}

/** What differs between the CRD in the cluster and the one in code, per version and per top-level spec field (the server's defaults aside). */
function crdChanges(current: Crd, wanted: Crd): string[] {
  const changes: string[] = [];
  const have = new Map(current.spec.versions.map((v) => [v.name, v]));
  for (const v of wanted.spec.versions) {
    const h = have.get(v.name);
    if (!h) {
      changes.push(`${v.name}: added`);
      continue;
    }
    for (const field of ["schema", "served", "storage", "subresources", "additionalPrinterColumns", "deprecated", "deprecationWarning", "selectableFields"] as const) {
      if (v[field] !== undefined && !covers(h[field], v[field])) changes.push(`${v.name}: ${field}`);
    }
    if (v.schema && h.schema && !covers(v.schema, h.schema)) {
      if (!changes.includes(`${v.name}: schema`)) changes.push(`${v.name}: schema`);
    }
  }
  for (const v of current.spec.versions) if (!wanted.spec.versions.some((w) => w.name === v.name)) changes.push(`${v.name}: removed`);
  for (const [field, value] of Object.entries(wanted.spec)) {
    if (field === "versions") continue;
    if (field === "names") {
      const names = current.spec.names as unknown as Record<string, unknown>;
      for (const [k, n] of Object.entries(value as object)) if (!covers(names[k], n)) changes.push(k);
    } else if (!covers((current.spec as unknown as Record<string, unknown>)[field], value)) changes.push(field);
  }
  return changes;
}

/** Whether `have` holds everything `want` says (fields the server added by default aside). */
function covers(have: unknown, want: unknown): boolean {
  if (want === undefined) return true;
  if (Array.isArray(want)) return Array.isArray(have) && have.length === want.length && want.every((w, i) => covers(have[i], w));
  if (want !== null && typeof want === "object") {
    if (have === null || typeof have !== "object" || Array.isArray(have)) return false;
    return Object.entries(want).every(([k, w]) => covers((have as Record<string, unknown>)[k], w));
  }
  return have === want;
}

/**
 * Polls `check` until it returns something other than undefined/false; throws at the deadline
 * naming `what` and the last error `check` threw.
 */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, options: { timeoutMs?: number; intervalMs?: number } = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${options.timeoutMs ?? 30_000} ms waiting for ${what}${last ? `: ${last instanceof Error ? last.message : String(last)}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 200));
  }
}
