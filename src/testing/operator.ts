// Running an operator inside a test: start it against a cluster, wait until its caches have
// synced, stop it at the end; install CRDs and wait for conditions with deadlines (never
// fixed sleeps).
import type { Logger } from "pino";
import { pino } from "../core/lazy.js";
import { Client } from "../client/client.js";
import { inClusterConfig } from "../client/config.js";
import { checkServed, type Operator, type RunningOperator } from "../operator/operator.js";
import type { WebhookOptions } from "../operator/webhooks.js";
import { WEBHOOK_MARKER, webhooksInEffect } from "../webhook/registration.js";

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
 *
 * With admission webhooks (managed mode) it resolves only once the API server calls them: the
 * configurations carry a marker webhook, and the test's client dry-run creates ConfigMaps in
 * `default` until the marker refuses one (a client that may not gets a warning, not the wait).
 * Rejects when the API server does not take them into effect within startTimeoutMs.
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
    // Marker webhooks (managed mode): resolved only once the API server calls the configurations.
    webhooks: { port: 0, host: "127.0.0.1", ...options.webhooks, [WEBHOOK_MARKER]: true } as WebhookOptions,
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
  const startedAt = Date.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const running = await Promise.race([
      ready,
      done.then(() => Promise.reject(new Error(`operator ${op.name} stopped before it started`))),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`operator ${op.name} did not start within ${timeoutMs} ms`)), timeoutMs))),
    ]);
    if (running.webhookUrl) {
      const proven = await webhooksInEffect(client, op.name, { timeoutMs: Math.max(1_000, timeoutMs - (Date.now() - startedAt)) });
      if (!proven) logger.warn(`runOperator: this client may not create ConfigMaps in "default", so it cannot see when the API server starts calling ${op.name}'s webhooks: the first requests may be admitted unchecked`);
    }
    return { ...running, client, stop };
  } catch (error) {
    await stop().catch(() => {});
    throw error;
  } finally {
    clearTimeout(timer);
  }
}

// Kept in kubeloop/testing, where tests find them; they live where the CLI may use them too.
export { installCrd, type CrdInstalled } from "../manifests/install.js";
export { waitFor } from "../core/async.js";
