// Running what an operator declared: the composition, as a list of parts in the order they
// start (the client, the Manager with the controllers, the handler level, the probe servers, the
// webhooks, the startup activities, the Manager's run, the cleanup activities) and how each is
// stopped. The Operator (operator.ts) is the registration facade in front of it.
import type { Logger } from "pino";
import { Client } from "../client/client.js";
import { OPERATOR_RATE_LIMIT } from "../client/rate-limit.js";
import { systemClock, type Clock } from "../core/clock.js";
import type { KubeObject } from "../core/objects.js";
import { CacheReader } from "../controller/cache.js";
import { defaultIdentity, Manager, type Runnable } from "../controller/manager.js";
import type { ControllerSpec } from "../controller/spec.js";
import { runCleanups, runStartups, type Startup } from "../handlers/activities.js";
import type { ActivityContext, ProbeContext, Registry } from "../handlers/registry.js";
import { scopedSpec, wireHandlers, type WiredHandlers } from "../handlers/wiring.js";
import { createLogger } from "../observe/logging.js";
import { Metrics, type ShardObserver } from "../observe/metrics.js";
import { serveProbes, servedEndpoints, type ProbeServer } from "../observe/server.js";
import { leaseTimings } from "../controller/leader-election.js";
import { leasesOf, type RunOptions, type Settings } from "./settings.js";
import { ShardedRun } from "./sharding.js";
import { trapSignals } from "./signals.js";
import type { WebhookRegistry } from "./webhook-registry.js";
import { serveWebhooks, type RunningWebhooks } from "./webhooks.js";
import { startTracing } from "../observe/otel.js";

/** What an operator declared (read only while it runs). */
export interface Declared {
  readonly name: string;
  /** The operator's own logger, if it was given one. */
  readonly logger: Logger | undefined;
  readonly specs: readonly ControllerSpec<KubeObject>[];
  readonly registry: Registry;
  readonly hooks: WebhookRegistry;
  readonly startups: readonly Startup[];
  readonly cleanups: readonly ((ctx: ActivityContext) => Promise<void> | void)[];
  readonly probes: ReadonlyMap<string, (ctx: ProbeContext) => Promise<unknown> | unknown>;
  readonly login: ((ctx: { logger: Logger }) => Promise<Client> | Client) | undefined;
}

/** What one run holds, to be released when it ends. */
interface Parts {
  client?: Client;
  handlers?: WiredHandlers;
  webhooks?: RunningWebhooks;
  servers: ProbeServer[];
  sharded?: ShardedRun;
}

/**
 * Runs what an operator declared with its settings until stopped: the client, the Manager with
 * the controllers, the handler level, the probe servers, the webhooks, the startup activities,
 * then the Manager's run; the cleanup activities after a graceful stop. Everything it started is
 * stopped when it ends, however it ends. `onWired` hears of the handler level (for
 * `op.trackedObjects()`).
 */
export async function runAssembled(d: Declared, settings: Settings, options: RunOptions, onWired: (wired: WiredHandlers) => void): Promise<void> {
  const logger = options.logger ?? d.logger ?? createLogger(d.name, { level: settings.logLevel });
  const parts: Parts = { servers: [] };
  // First, so that every span of the run is exported; last to stop, so that the last ones are.
  const tracing = settings.otel ? await startTracing(d.name, logger) : undefined;
  const signals = trapSignals(settings.handleSignals, options.signal, logger);
  try {
    const client = (parts.client = options.client ?? (d.login ? await d.login({ logger }) : await Client.load({ rateLimit: OPERATOR_RATE_LIMIT })));
    for (const warning of client.config.warnings ?? []) logger.warn({ source: client.config.source }, warning);
    const metrics = new Metrics();
    const identity = (settings.leaderElection && settings.leaderElection.identity) || defaultIdentity();
    const made: { manager?: Manager } = {}; // the cached-objects metric reads the Manager's informers when scraped
    const sharded = (parts.sharded = settings.sharding ? shardedRun(d, settings, client, logger, metrics.shardObserver(() => shardedCaches(made.manager)), identity) : undefined);
    // Startups marked leaderOnly run under the Lease (a runnable ahead of the leader's work); without leader election, with the others.
    const clock = options.clock ?? systemClock;
    const everywhere = settings.leaderElection ? d.startups.filter((s) => !s.options.leaderOnly) : d.startups;
    const onLeader = settings.leaderElection ? leaderStartups(d.startups.filter((s) => s.options.leaderOnly), { client, logger }, clock) : undefined;
    const manager = (made.manager = assemble(d, settings, client, logger, metrics, identity, sharded, onLeader));
    const handlers = (parts.handlers = wireHandlers(manager, d.registry, { ...settings, fence: sharded?.fence }, { client, logger, onTaskFailure: (kind, task) => metrics.taskFailed(kind, task) }));
    sharded?.onRelease((test) => handlers.tasks.stopWhere(test));
    onWired(handlers);
    parts.servers = await serveAllProbes(d, settings, manager, metrics, { client, logger, indexes: handlers.indexes }, sharded, () => parts.webhooks);
    options.onListening?.(parts.servers[0] as ProbeServer);
    if (d.hooks.any) parts.webhooks = await serveHooks(d, settings, manager, metrics, { client, logger, indexes: handlers.indexes });
    if (!(await runStartups(everywhere, { client, logger }, signals.signal, clock))) return; // stopped while a startup handler was being retried
    // The share is known before the caches list (they list it alone).
    if (sharded && !(await sharded.start(signals.signal).then(() => true, () => false))) return;
    const webhookUrl = parts.webhooks?.server.url;
    void manager.whenSynced().then(() => options.onStarted?.({ probes: parts.servers[0], manager, metrics, ...(webhookUrl ? { webhookUrl } : {}) }));
    await manager.run(signals.signal);
    await runCleanups(d.cleanups, { client, logger });
  } finally {
    await parts.webhooks?.stop();
    await parts.handlers?.tasks.stopAll();
    await parts.sharded?.stop(); // after the work stopped: leaves, so the others take over at once
    signals.release();
    for (const server of parts.servers) await server.close();
    if (!options.client) await parts.client?.close();
    await tracing?.shutdown().catch((error: unknown) => logger.warn({ err: error }, "tracing: the last spans could not be exported"));
  }
}

/** A sharded operator's part: the coordinator on the member Leases beside the leader Lease, its share and fence. */
function shardedRun(d: Declared, settings: Settings, client: Client, logger: Logger, observer: ShardObserver, identity: string): ShardedRun {
  const leases = leasesOf(settings, client.defaultNamespace);
  return new ShardedRun(client, {
    operator: d.name,
    namespace: leases.namespace,
    identity,
    sharding: settings.sharding as Exclude<Settings["sharding"], false>,
    timings: settings.leaderElection || leaseTimings({}),
    ...(settings.devOverride ? { devLease: { namespace: leases.namespace, name: leases.dev } } : {}),
    logger,
    observer,
  });
}

/** `Kind` or `Kind.group`, as the task failures' metric labels kinds. */
function kindLabel(kind: { apiVersion: string; kind: string }): string {
  const slash = kind.apiVersion.indexOf("/");
  return slash < 0 ? kind.kind : `${kind.kind}.${kind.apiVersion.slice(0, slash)}`;
}

/** The objects in each sharded cache, by kind (for `kubeloop_shard_cached_objects`). */
function shardedCaches(manager: Manager | undefined): { kind: string; selector: string; objects: number }[] {
  return (manager?.informers.all() ?? []).filter((i) => i.scope.share).map((i) => ({ kind: kindLabel(i.kind), selector: i.scope.labelSelector ?? "", objects: i.store.size }));
}

/** The Manager, with the operator's settings and every controller declared (narrowed to its namespaces; sharded when `sharded`). */
function assemble(d: Declared, settings: Settings, client: Client, logger: Logger, metrics: Metrics, identity: string, sharded: ShardedRun | undefined, onLeader: Runnable | undefined): Manager {
  const manager = new Manager(client, {
    name: d.name,
    logger,
    observer: metrics.observer,
    leaderElection: settings.leaderElection && { ...settings.leaderElection, identity },
    cacheSyncTimeoutMs: settings.cacheSyncTimeoutMs,
    gracefulShutdownTimeoutMs: settings.gracefulShutdownTimeoutMs,
    watchFailureToleranceMs: settings.watchFailureToleranceMs,
    watchInactivityTimeoutMs: settings.watchInactivityTimeoutMs,
    ...(settings.devOverride ? {} : { devOverride: false as const }),
  });
  if (onLeader) manager.add(onLeader); // first of the leader's runnables: they start in order, each once the one before started
  for (const spec of d.specs) manager.addController(scopedSpec(spec, settings.namespaces, settings.scope, sharded?.fence));
  return manager;
}

/** The startups marked `leaderOnly`, as the leader's first runnable: run once per process, when it first leads. */
function leaderStartups(startups: readonly Startup[], ctx: Omit<ActivityContext, "retries">, clock: Clock): Runnable | undefined {
  if (startups.length === 0) return undefined;
  let ran = false;
  return {
    needsLeader: true,
    start: async (signal) => {
      if (!ran) ran = await runStartups(startups, ctx, signal, clock);
    },
    stop: async () => {},
  };
}

/** The probe servers (/metrics, /healthz, /readyz), listening before caches sync. */
async function serveAllProbes(d: Declared, settings: Settings, manager: Manager, metrics: Metrics, probeContext: ProbeContext, sharded: ShardedRun | undefined, webhooks: () => RunningWebhooks | undefined): Promise<ProbeServer[]> {
  const healthChecks = Object.fromEntries([...d.probes].map(([id, fn]) => [id, () => fn(probeContext)]));
  const readyDetails: Record<string, () => string> = sharded ? { sharding: () => sharded.describe() } : {};
  const readyChecks: Record<string, () => string | undefined> = sharded ? { sharding: () => sharded.problem() } : {};
  // The webhook server (served once the probes listen): listening, with a certificate valid now.
  if (d.hooks.any) {
    readyChecks["webhook server"] = () => webhooks()?.server.problem() ?? (webhooks() ? undefined : "not started");
    metrics.webhookCertificate(() => webhooks()?.server.certificateSecondsLeft);
  }
  const servers: ProbeServer[] = [];
  for (const each of settings.probes) {
    const server = await serveProbes(manager, metrics, { ...each, healthChecks, readyChecks, readyDetails });
    servers.push(server);
    probeContext.logger.info({ url: server.url }, `serving ${servedEndpoints(each)}`);
  }
  return servers;
}

/** The webhook server, with the registration's keeper added to the Manager (the leader keeps it, and takes it back after a dev pause). */
async function serveHooks(d: Declared, settings: Settings, manager: Manager, metrics: Metrics, context: ProbeContext): Promise<RunningWebhooks> {
  // The operator's namespaces: admission reads never start cluster-wide informers of namespaced kinds.
  const cache = new CacheReader(manager.informers, manager.writes, undefined, settings.scope.forKind);
  const webhooks = await serveWebhooks(context.client, {
    operator: d.name,
    admission: d.hooks.admission,
    conversions: [...d.hooks.conversions.values()],
    extras: { indexes: context.indexes, cache },
    options: settings.webhooks,
    logger: context.logger,
    namespaces: settings.namespaces,
    observer: metrics.webhookObserver,
    home: leasesOf(settings, context.client.defaultNamespace).namespace,
  });
  if (webhooks.keeper) manager.add(webhooks.keeper);
  return webhooks;
}
