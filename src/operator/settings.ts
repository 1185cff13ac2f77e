// The Operator's options, and the one place they are merged, defaulted and checked. The
// Operator's own options and `run()`'s overrides become one frozen `Settings` object that
// everything below reads: the namespaces and their watch scope, the Lease, the probe and webhook
// servers, the handler level's knobs. A default is written here once (or, for what a lower layer
// owns, taken from that layer's exported defaults); a refused option throws naming it.
import type { Logger } from "pino";
import type { Client } from "../client/client.js";
import type { RateLimit } from "../client/rate-limit.js";
import type { Clock } from "../core/clock.js";
import { checkBucketCount } from "../core/shards.js";
import { checkHost, checkNumber, checkOneOf, checkPort, isDnsSubdomain } from "../core/check.js";
import { leaseTimings } from "../controller/leader-election.js";
import { MANAGER_DEFAULTS, checkManagerTimings, checkOperatorName, leaseNames, type Manager, type ManagerLeaderElection } from "../controller/manager.js";
import type { EventLevel } from "../handlers/registry.js";
import { checkNamespacePatterns, watchScope, type WatchScope } from "../handlers/scope.js";
import type { LevelWithSilent } from "../observe/logging.js";
import type { Metrics } from "../observe/metrics.js";
import type { ProbeServer, ProbeServerOptions } from "../observe/server.js";
import { checkWebhookOptions, type WebhookOptions } from "./webhooks.js";

/** Options of an {@link Operator}. */
export interface OperatorOptions {
  /** Lower-case DNS name: the field manager, the events' reporter, the Lease's name. */
  name: string;
  /** Leader election on a Lease; default on. `false` for development or a single replica. */
  leaderElection?: ManagerLeaderElection | false;
  /** Pause while a `kubeloop run --dev` of this operator runs (see the Manager's `devOverride`). Default on (with leader election). */
  devOverride?: false;
  /** How admission webhooks (`op.on.validate` / `op.on.mutate`) are served and registered. */
  webhooks?: WebhookOptions;
  /** The /metrics, /healthz, /readyz server; default port 8080 (`serve` picks endpoints). `false` for none. */
  probes?: ProbeOptions | false;
  /** Default "info"; one of pino's levels (another value throws a TypeError when the Operator is made). */
  logLevel?: LevelWithSilent;
  /** A logger of your own (overrides logLevel). */
  logger?: Logger;
  /** See the Manager's option: `run()` rejects with a CacheSyncTimeoutError past it. Default 120 000 ms (controller-runtime's); > 0. */
  cacheSyncTimeoutMs?: number;
  /** See the Manager's option: work still running past it is aborted, then abandoned. Default 30 000 ms; ≥ 0. */
  gracefulShutdownTimeoutMs?: number;
  /** See the Manager's option: a watch failing for longer makes /readyz 503, naming it. Default 60 000 ms; > 0. */
  watchFailureToleranceMs?: number;
  /** See the Manager's option: a watch silent for longer (no event, no bookmark) is dropped, reported, resumed. Default 180 000 ms; > 0. */
  watchInactivityTimeoutMs?: number;
  /**
   * Export traces: `run()` starts the OpenTelemetry Node SDK (`@opentelemetry/sdk-node`, an
   * optional peer dependency) with its OTLP exporter, configured by the OTEL_* environment
   * variables, the operator's name as the service name unless OTEL_SERVICE_NAME says another,
   * and shuts it down (flushing) when it ends. Without it kubeloop's spans go to whatever tracer
   * provider the application registered, if any (docs/observability.md). Default false.
   */
  otel?: boolean;
  /**
   * Namespaces the handlers serve: names, globs ("team-*"), negations ("!kube-*"). Default: all.
   * A pattern that can match no namespace (upper case, '_', empty) throws a TypeError naming it;
   * a namespace that does not exist yet is watched all the same (its objects come when it does).
   */
  namespaces?: string[];
  /** Handler log lines at or above this level are also posted as Events on the object. Default "info". */
  eventLevel?: EventLevel;
  /**
   * Objects of one kind whose handlers run at once (different objects; one object is never
   * handled twice at once). Default 256; an integer ≥ 1. Each handled change waits for its
   * progress write, so this bounds the writes in flight: with 16 or 64, changes to 1,000 objects
   * queued behind them and answered later than kopf, which runs every object at once
   * (bench/findings.md). `kubeloop run`'s client rate limit bounds the requests anyway.
   */
  concurrency?: number;
  /**
   * Where handler progress is kept: "annotations" (default) or "status" (`status.kubeloop.progress`;
   * the kind's status schema must keep unknown fields). The diff base is always an annotation.
   */
  progressIn?: "annotations" | "status";
  /** Client-side rate limit of the client the operator loads itself. Default 20 qps / burst 30; `false` for none. */
  rateLimit?: RateLimit | false;
  /**
   * Prefix of the annotations and finalizer the handlers use. Default `<name>.kubeloop.dev`.
   * Other kubeloop operators on the same kinds ignore annotations under `*.kubeloop.dev`; a prefix
   * outside that domain is seen by them as content (they would handle your bookkeeping as a change).
   */
  annotationPrefix?: string;
  /**
   * Split the objects of the handlers' kinds and the controllers' own kinds among the replicas
   * that run with it (docs/scaling.md). Default off: one leader acts. `true` takes the defaults.
   */
  sharding?: Sharding | boolean;
}

/**
 * How a sharded operator cuts its objects among replicas: every replica must run with the same
 * values (while they disagree, no bucket changes hands).
 */
export interface Sharding {
  /** How many buckets the hash space is cut into: an integer from 1 to 65536, at least the replicas you will run. Default 32. */
  buckets?: number;
  /**
   * What is hashed: "uid" (default: an even spread) or "namespace" (every object of a namespace,
   * and so most owner/child families, on one replica; as even as the namespaces are).
   */
  key?: "uid" | "namespace";
}

/** Options of {@link Operator.run}. */
export interface RunOptions {
  /** The cluster; default `Client.load()` (KUBECONFIG, in-cluster, ~/.kube/config) with a 20 qps / burst 30 limit. Not closed by run(). */
  client?: Client;
  /** Stops the operator gracefully when aborted. */
  signal?: AbortSignal;
  /** Stop gracefully on SIGTERM and SIGINT. Default true. */
  handleSignals?: boolean;
  /** Overrides the operator's probe server setting (tests use `{ port: 0 }`). */
  probes?: ProbeOptions | false;
  /** A second server (e.g. health on another port than metrics). */
  extraProbes?: ProbeOptions;
  /** Overrides the operator's logger. */
  logger?: Logger;
  /** Overrides the operator's namespaces for its handlers (`[]`: all). */
  namespaces?: string[];
  /** Overrides the operator's leader election setting. */
  leaderElection?: ManagerLeaderElection | false;
  /** Overrides the operator's sharding setting (`kubeloop run --sharding`). */
  sharding?: Sharding | boolean;
  /** Overrides fields of the operator's `webhooks` option (tests use `{ port: 0 }`). */
  webhooks?: WebhookOptions;
  /** Overrides the operator's `otel` option (`kubeloop run --otel`). */
  otel?: boolean;
  /** The clock startup retries wait on (tests pass a `ManualClock`). Default: the system clock. */
  clock?: Clock;
  /** Called once the probe server listens (before caches sync). */
  onListening?: (probes: ProbeServer) => void;
  /** Called once the operator is running (caches synced, probes listening). */
  onStarted?: (running: RunningOperator) => void;
}

/** Where a probe server listens and which endpoints it answers (default: all). */
export type ProbeOptions = Pick<ProbeServerOptions, "port" | "host" | "serve">;

/** What `onStarted` gets: where the probes are and how the manager is. */
export interface RunningOperator {
  probes: ProbeServer | undefined;
  manager: Manager;
  metrics: Metrics;
  /** The admission webhook server's URL, when the operator has webhooks. */
  webhookUrl?: string;
}

/** The operator's settings: its options with `run()`'s overrides, merged, defaulted and checked once. */
export interface Settings {
  readonly name: string;
  readonly logLevel: LevelWithSilent;
  readonly eventLevel: EventLevel;
  readonly concurrency: number;
  readonly progressIn: "annotations" | "status";
  /** Prefix of the handlers' annotations and finalizer. */
  readonly annotationPrefix: string;
  /** The namespace patterns served, as given (undefined or empty: all). */
  readonly namespaces: readonly string[] | undefined;
  /** How those patterns are watched and matched (one scope for both levels and the webhooks). */
  readonly scope: WatchScope;
  /** `false`, or the Lease settings with their timings defaulted. */
  readonly leaderElection: false | (ManagerLeaderElection & { leaseDurationMs: number; renewDeadlineMs: number; retryPeriodMs: number });
  readonly devOverride: boolean;
  readonly cacheSyncTimeoutMs: number;
  readonly gracefulShutdownTimeoutMs: number;
  readonly watchFailureToleranceMs: number;
  readonly watchInactivityTimeoutMs: number;
  readonly otel: boolean;
  /** The probe servers to start (none when probes are off): the main one first. */
  readonly probes: readonly ProbeOptions[];
  /** The webhook options, the operator's with `run()`'s fields over them. */
  readonly webhooks: WebhookOptions;
  /** Whether webhooks are registered by the operator (managed mode, the default). */
  readonly manageWebhooks: boolean;
  readonly handleSignals: boolean;
  /** `false`, or the sharding with its defaults. */
  readonly sharding: false | Readonly<Required<Sharding>>;
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];
const EVENT_LEVELS = ["debug", "info", "warn", "error", "off"];

/**
 * The settings of an operator with `options`, run with `run` (the overrides win field by field
 * where the option is an object: `webhooks`; whole otherwise). Frozen.
 * @throws TypeError or RangeError naming the option, for an option that cannot work.
 */
export function resolveSettings(options: OperatorOptions, run: Omit<RunOptions, "client" | "signal" | "logger" | "clock" | "onListening" | "onStarted"> = {}): Settings {
  checkOptions(options);
  checkNamespacePatterns(run.namespaces);
  checkServerOptions(run);
  checkSharding(run.sharding);
  const sharding = run.sharding ?? options.sharding ?? false;
  const namespaces = run.namespaces ?? options.namespaces;
  const le = run.leaderElection ?? options.leaderElection ?? {};
  const probes = run.probes ?? options.probes;
  const webhooks = { ...options.webhooks, ...run.webhooks };
  return Object.freeze({
    name: options.name,
    logLevel: options.logLevel ?? "info",
    eventLevel: options.eventLevel ?? "info",
    concurrency: options.concurrency ?? 256,
    progressIn: options.progressIn ?? "annotations",
    annotationPrefix: options.annotationPrefix ?? `${options.name}.kubeloop.dev`,
    namespaces: namespaces ? Object.freeze([...namespaces]) : undefined,
    scope: watchScope(namespaces),
    leaderElection: le === false ? false : Object.freeze({ ...le, ...leaseTimings(le) }),
    devOverride: options.devOverride !== false,
    cacheSyncTimeoutMs: options.cacheSyncTimeoutMs ?? MANAGER_DEFAULTS.cacheSyncTimeoutMs,
    gracefulShutdownTimeoutMs: options.gracefulShutdownTimeoutMs ?? MANAGER_DEFAULTS.gracefulShutdownTimeoutMs,
    watchFailureToleranceMs: options.watchFailureToleranceMs ?? MANAGER_DEFAULTS.watchFailureToleranceMs,
    watchInactivityTimeoutMs: options.watchInactivityTimeoutMs ?? MANAGER_DEFAULTS.watchInactivityTimeoutMs,
    otel: run.otel ?? options.otel ?? false,
    probes: probes === false ? [] : [probes ?? {}, ...(run.extraProbes ? [run.extraProbes] : [])],
    webhooks,
    manageWebhooks: webhooks.manage ?? true,
    handleSignals: run.handleSignals ?? true,
    sharding: sharding === false ? false : Object.freeze({ buckets: 32, key: "uid" as const, ...(sharding === true ? {} : sharding) }),
  });
}

/** Where the operator's Leases live, and its home namespace (the shared webhook certificate's). */
export function leasesOf(settings: Settings, defaultNamespace: string): { namespace: string; leader: string; dev: string } {
  return leaseNames(settings.name, settings.leaderElection, defaultNamespace);
}

/** Refuses the Operator's options that cannot work (a TypeError or RangeError naming the option). */
function checkOptions(o: OperatorOptions): void {
  checkOperatorName(o.name);
  checkNumber("concurrency", o.concurrency, "integer ≥ 1");
  checkManagerTimings(o);
  checkNamespacePatterns(o.namespaces);
  checkOneOf("logLevel", o.logLevel, LOG_LEVELS);
  checkOneOf("eventLevel", o.eventLevel, EVENT_LEVELS);
  checkOneOf("progressIn", o.progressIn, ["annotations", "status"]);
  checkServerOptions(o);
  checkSharding(o.sharding);
  const prefix = o.annotationPrefix;
  if (prefix !== undefined && !isDnsSubdomain(prefix)) {
    throw new TypeError(`annotationPrefix ${JSON.stringify(prefix)} must be a lower-case DNS subdomain (it prefixes annotation keys and the finalizer)`);
  }
}

/** Refuses a sharding that cannot work (naming `sharding.buckets` or `sharding.key`). */
function checkSharding(sharding: Sharding | boolean | undefined): void {
  if (sharding === undefined || typeof sharding === "boolean") return;
  if (typeof sharding !== "object" || sharding === null) throw new TypeError(`sharding must be true, false or { buckets, key }, not ${JSON.stringify(sharding)}`);
  if (sharding.buckets !== undefined) checkBucketCount(sharding.buckets);
  checkOneOf("sharding.key", sharding.key, ["uid", "namespace"]);
}

/** Refuses probe and webhook server options that cannot work (before anything listens or registers). */
function checkServerOptions(o: { probes?: ProbeOptions | false; extraProbes?: ProbeOptions; webhooks?: WebhookOptions }): void {
  for (const [name, probes] of [["probes", o.probes], ["extraProbes", o.extraProbes]] as const) {
    if (!probes) continue;
    checkPort(`${name}.port`, probes.port);
    checkHost(`${name}.host`, probes.host);
  }
  if (o.webhooks) checkWebhookOptions(o.webhooks);
}
