// Operator: the composition root, above both levels. It collects what an operator does
// (controllers, kopf-style handlers, timers, daemons, indexes, hooks) while the module loads,
// and `run()` connects to the cluster and wires it all into one Manager through the Manager's
// public methods (`controller()`, `informer()`, `add()`), with metrics, probes, logging and
// signal handling. Nothing touches the cluster before `run()`, so `kubeloop run operator.ts`
// and tools that only read what an operator declares can import the same module.
import { checkHost, checkNumber, checkOneOf, checkPort, isDnsSubdomain } from "../core/check.js";
import type { Logger } from "pino";
import { Client } from "../client/client.js";
import type { RateLimit } from "../client/rate-limit.js";
import type { CustomResourceDefinition } from "kubernetes-types/apiextensions/v1.js";
import type { KubeObject, ResourceKind } from "../core/objects.js";
import type { CacheView } from "../runtime/informer.js";
import { hasObject } from "../runtime/watcher.js";
import { OPERATOR_RATE_LIMIT } from "../client/rate-limit.js";
import { ControllerBuilder } from "../controller/builder.js";
import type { ControllerSpec } from "../controller/spec.js";
import { IndexSet } from "../handlers/indexes.js";
import { Processor, type EventLevel } from "../handlers/processing.js";
import { Registry, type KindEntry, type RawEvent, type DaemonOptions, type EventSpec, type FieldHandlerOptions, type HandlerFn, type HandlerOptions, type TimerOptions, type Cause, type ActivityContext, type ProbeContext, type StartupOptions, type Indexes } from "../handlers/registry.js";
import { objectLogger } from "../handlers/context.js";
import { retryDelay } from "../handlers/errors.js";
import { ApiError, NotFoundError, TerminalError } from "../core/errors.js";
import { systemClock } from "../core/clock.js";
import { checkNamespacePatterns, watchScope } from "../handlers/scope.js";
import { Tasks } from "../handlers/tasks.js";
import { progressKeys } from "../handlers/progress.js";
import { parsePath } from "../handlers/diff.js";
import { describeKind, objectKey, objectId } from "../core/objects.js";
import { within } from "../core/async.js";
import { matches, type Filters } from "../handlers/filters.js";
import { Manager, checkManagerTimings, checkOperatorName, type ManagerLeaderElection, type ManagerStatus, type Runnable } from "../controller/manager.js";
import { createLogger, type LevelWithSilent } from "../observe/logging.js";
import { Metrics } from "../observe/metrics.js";
import { serveProbes, servedEndpoints, type ProbeServer, type ProbeServerOptions } from "../observe/server.js";
import { checkWebhookOptions, serveWebhooks, type AdmissionOptions, type AdmissionSpec, type ConversionSpec, type MutateOptions, type RunningWebhooks, type WebhookOptions } from "./webhooks.js";
import type { ConvertFn } from "../webhook/conversion.js";
import { CacheReader } from "../controller/cache.js";
import { accessNeeds } from "./access.js";
import type { AccessNeed } from "../manifests/rbac.js";
import type { DefinedResource } from "../manifests/resource.js";
import type { TSchema } from "@sinclair/typebox";
import type { MutateFn, ValidateFn } from "../webhook/admission.js";
import type { AdmissionHook } from "../webhook/registration.js";

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
  /** See the Manager's option: `run()` rejects with a CacheSyncTimeoutError past it. Default 60 000 ms; > 0. */
  cacheSyncTimeoutMs?: number;
  /** See the Manager's option: work still running past it is aborted, then abandoned. Default 30 000 ms; ≥ 0. */
  gracefulShutdownTimeoutMs?: number;
  /**
   * Namespaces the handlers serve: names, globs ("team-*"), negations ("!kube-*"). Default: all.
   * A pattern that can match no namespace (upper case, '_', empty) throws a TypeError naming it;
   * a namespace that does not exist yet is watched all the same (its objects come when it does).
   */
  namespaces?: string[];
  /** Handler log lines at or above this level are also posted as Events on the object. Default "info". */
  eventLevel?: EventLevel;
  /** Objects of one kind whose handlers run at once (different objects; one object is never handled twice at once). Default 16; an integer ≥ 1. */
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
}

const OPERATIONS = ["CREATE", "UPDATE", "DELETE", "CONNECT"];
const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];
const EVENT_LEVELS = ["debug", "info", "warn", "error", "off"];

/** Refuses options that cannot work (a TypeError or RangeError naming the option). */
function checkOperatorOptions(o: OperatorOptions): void {
  checkNumber("concurrency", o.concurrency, "integer ≥ 1");
  checkManagerTimings(o);
  checkNamespacePatterns(o.namespaces);
  checkOneOf("logLevel", o.logLevel, LOG_LEVELS);
  checkOneOf("eventLevel", o.eventLevel, EVENT_LEVELS);
  checkOneOf("progressIn", o.progressIn, ["annotations", "status"]);
  checkServerOptions(o);
  const prefix = o.annotationPrefix;
  if (prefix !== undefined && !isDnsSubdomain(prefix)) {
    throw new TypeError(`annotationPrefix ${JSON.stringify(prefix)} must be a lower-case DNS subdomain (it prefixes annotation keys and the finalizer)`);
  }
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
  /** Overrides fields of the operator's `webhooks` option (tests use `{ port: 0 }`). */
  webhooks?: WebhookOptions;
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

/**
 * An operator: register controllers (and handlers) on it, then `await op.run()`.
 *
 * ```ts
 * const op = new Operator({ name: "configmapsets" });
 * op.controller(ConfigMapSet).owns(ConfigMap).reconcile(async (ref, ctx) => { ... });
 * await op.run();
 * ```
 *
 * `run()` resolves after a graceful stop (signal, SIGTERM/SIGINT) and rejects on a fatal
 * error: bad configuration (ConfigError), caches that cannot sync (CacheSyncTimeoutError
 * naming the resource), leadership lost (LeaderElectionLostError), a probe port in use.
 *
 * Guarantees: with leader election, only the leader's handlers, timers, daemons and controllers
 * act; on a graceful stop the Lease is released only after all of them stopped; one object is
 * never handled by two workers at once; per-object memory is bounded by the cache; other
 * kubeloop operators' annotations on the same objects are not taken for changes.
 * The host's duty: when `run()` rejects (above all with LeaderElectionLostError), exit the
 * process (`kubeloop run` does): work that ignored its aborted signal cannot be killed in
 * JavaScript and may still be running.
 */
export class Operator {
  readonly name: string;
  private readonly specs: ControllerSpec<KubeObject>[] = [];
  private readonly registry = new Registry();
  private readonly startups: { fn: (ctx: ActivityContext) => Promise<void> | void; options: StartupOptions }[] = [];
  private readonly cleanups: ((ctx: ActivityContext) => Promise<void> | void)[] = [];
  private readonly probes = new Map<string, (ctx: ProbeContext) => Promise<unknown> | unknown>();
  private readonly admission: AdmissionSpec[] = [];
  private readonly conversions = new Map<string, ConversionSpec>();
  private readonly extraAccess: AccessNeed[] = [];
  private login: ((ctx: { logger: Logger }) => Promise<Client> | Client) | undefined;
  private running = false;
  /** Per-object state of the handlers while running (for {@link Operator.trackedObjects}). */
  private tracked: { processors: Processor[]; tasks: Tasks } | undefined;

  /**
   * kopf-style handlers. Each runs once to success per change, even across restarts (progress
   * is kept in the object's annotations); errors are retried (TemporaryError after its delay,
   * others with backoff), PermanentError is recorded and not retried.
   */
  readonly on = {
    /** When an object is created (or first seen without a record of being handled). */
    create: <T extends KubeObject>(kind: ResourceKind<T>, fn: HandlerFn<T>, options: HandlerOptions<T> = {}) => this.handler(kind, "create", fn, options),
    /** When an object's essence (spec, data, labels, annotations) changed since it was last handled. */
    update: <T extends KubeObject>(kind: ResourceKind<T>, fn: HandlerFn<T>, options: HandlerOptions<T> = {}) => this.handler(kind, "update", fn, options),
    /** When an object is being deleted; a finalizer keeps it until every delete handler is done. */
    delete: <T extends KubeObject>(kind: ResourceKind<T>, fn: HandlerFn<T>, options: HandlerOptions<T> = {}) => this.handler(kind, "delete", fn, options),
    /** For every object that exists when the operator starts (and was handled before). */
    resume: <T extends KubeObject>(kind: ResourceKind<T>, fn: HandlerFn<T>, options: HandlerOptions<T> = {}) => this.handler(kind, "resume", fn, options),
    /** When the value at `path` (e.g. "spec.replicas") is set on create or changes on update; `old`/`new` are the values. */
    field: <T extends KubeObject>(kind: ResourceKind<T>, path: string, fn: HandlerFn<T>, options: FieldHandlerOptions<T> = {}) => this.handler(kind, "field", fn, options, path),
    /**
     * Raw events, never retried (errors are logged): `exists` for every object present when this
     * replica starts leading (as kopf's initial listing), then every watched `apply` and `delete`.
     */
    event: <T extends KubeObject>(kind: ResourceKind<T>, fn: (event: RawEvent<T>) => Promise<void> | void, options: Filters<T> = {}) => {
      this.assertNotRunning();
      this.registry.entry(kind as ResourceKind).events.push({ fn: fn as EventSpec["fn"], options: options as Filters<KubeObject> });
    },
    /**
     * Before controllers and handlers act, in order. Retried as handlers are: a `TemporaryError`
     * after its delay, other errors with backoff, until `attempts` are used up; a `TerminalError`
     * (`PermanentError`) or the last attempt's error stops the operator from starting. A stop
     * signal ends the retries.
     */
    startup: (fn: (ctx: ActivityContext) => Promise<void> | void, options: StartupOptions = {}) => void this.startups.push({ fn, options }),
    /** After a graceful stop; a failure is logged. */
    cleanup: (fn: (ctx: ActivityContext) => Promise<void> | void) => void this.cleanups.push(fn),
    /**
     * Supplies the client (custom credentials) instead of `Client.load()`. `kubeloop run` and
     * `runOperator` use it instead of their own client when one is registered.
     */
    login: (fn: (ctx: { logger: Logger }) => Promise<Client> | Client) => void (this.login = fn),
    /** A liveness probe whose result /healthz reports under `id` (a throw makes it 500); it gets the client, a logger and the indexes. */
    probe: (id: string, fn: (ctx: ProbeContext) => Promise<unknown> | unknown) => void this.probes.set(id, fn),
    /**
     * A validating admission webhook (kopf's `on.validate`), called by the API server for objects of
     * `kind` (CREATE and UPDATE by default): throw `AdmissionError(message, { code })` to deny,
     * return (or `ctx.warn`) warnings kubectl shows. An unexpected error denies with its message.
     * Served over HTTPS and registered by the operator (see `webhooks`). Runs on every replica.
     */
    validate: <T extends KubeObject>(kind: ResourceKind<T>, fn: ValidateFn<T>, options: AdmissionOptions<T> = {}) => this.admissionHook("validate", kind, { validate: fn as ValidateFn<KubeObject> }, options),
    /**
     * A mutating admission webhook (kopf's `on.mutate`): change `ctx.object` in place; the answer
     * is the JSON patch from the object as sent (none when unchanged). Denies and warns as
     * `validate` does.
     */
    mutate: <T extends KubeObject>(kind: ResourceKind<T>, fn: MutateFn<T>, options: MutateOptions<T> = {}) => this.admissionHook("mutate", kind, { mutate: fn as MutateFn<KubeObject> }, options),
  };

  /**
   * Converts objects of a multi-version resource (`defineResource({ versions })`) from one
   * version to another, for the CRD's conversion webhook (ConversionReview v1). Register each
   * direction you need; a pair without a direct conversion goes through the storage version.
   * `fn` gets a copy of the object and returns it in the `to` version's shape; kubeloop sets its
   * apiVersion and keeps its metadata. The operator serves the webhook and points the CRD's
   * `spec.conversion` at it (managed mode). A throw fails the conversion with its message.
   */
  convert(kind: DefinedResource<TSchema, TSchema | undefined>, conversion: { from: string; to: string; fn: ConvertFn }): void {
    this.assertNotRunning();
    for (const v of [conversion.from, conversion.to]) if (!kind.versions.includes(v)) throw new TypeError(`${kind.kind} has no version "${v}" (it has ${kind.versions.join(", ")})`);
    const crd = kind.crd.metadata?.name ?? "";
    const spec = this.conversions.get(crd) ?? { crd, storage: kind.version, converters: [] };
    if (spec.converters.some((c) => c.from === conversion.from && c.to === conversion.to)) throw new Error(`a conversion from ${conversion.from} to ${conversion.to} of ${kind.kind} is already registered`);
    spec.converters.push(conversion);
    this.conversions.set(crd, spec);
  }

  private admissionHook<T extends KubeObject>(type: "validate" | "mutate", kind: ResourceKind<T>, fn: Pick<AdmissionSpec, "validate" | "mutate">, options: MutateOptions<T>): void {
    this.assertNotRunning();
    const base = options.id ?? `${type}-${kind.kind.toLowerCase()}`;
    let id = base;
    for (let n = 2; this.admission.some((a) => a.hook.id === id); n++) {
      if (options.id) throw new Error(`a webhook with id "${id}" is already registered`);
      id = `${base}-${n}`;
    }
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(id)) throw new TypeError(`webhook id "${id}" must be a lower-case DNS label (it is part of the webhook's name and URL)`);
    const timeoutSeconds = options.timeoutSeconds ?? 10;
    if (!(Number.isInteger(timeoutSeconds) && timeoutSeconds >= 1 && timeoutSeconds <= 30)) throw new RangeError(`timeoutSeconds must be an integer 1–30 (the API server's bounds), not ${timeoutSeconds}`);
    // What the API server would refuse at registration, named here instead.
    checkOneOf("failurePolicy", options.failurePolicy, ["Fail", "Ignore"]);
    checkOneOf("sideEffects", options.sideEffects, ["None", "NoneOnDryRun"]);
    checkOneOf("reinvocationPolicy", options.reinvocationPolicy, ["Never", "IfNeeded"]);
    if (options.operations) {
      if (options.operations.length === 0) throw new TypeError("operations must name at least one operation (default: CREATE and UPDATE)");
      for (const operation of options.operations) checkOneOf("operations:", operation, OPERATIONS);
    }
    const { labels, annotations, when } = options;
    this.admission.push({
      kind: kind as ResourceKind,
      filters: { ...(labels ? { labels } : {}), ...(annotations ? { annotations } : {}), ...(when ? { when } : {}) } as Filters<KubeObject>,
      ...fn,
      hook: {
        type,
        id,
        kind: kind as ResourceKind,
        operations: options.operations ?? ["CREATE", "UPDATE"],
        ...(options.subresource ? { subresource: options.subresource } : {}),
        failurePolicy: options.failurePolicy ?? "Fail",
        timeoutSeconds,
        sideEffects: options.sideEffects ?? "None",
        ...(options.reinvocationPolicy ? { reinvocationPolicy: options.reinvocationPolicy } : {}),
      },
    });
  }

  /** Calls `fn` every `intervalMs` for each object of `kind` (while it exists and this replica leads). */
  timer<T extends KubeObject>(kind: ResourceKind<T>, options: TimerOptions<T>, fn: HandlerFn<T>): void {
    this.assertNotRunning();
    // Required: a timer every 0 ms (or NaN ms) would spin.
    checkNumber("timer option intervalMs", options.intervalMs, "> 0", { required: true });
    checkNumber("timer option initialDelayMs", options.initialDelayMs, "≥ 0");
    checkNumber("timer option idleMs", options.idleMs, "≥ 0");
    const id = this.registry.claim(kind as ResourceKind, options.id ?? (fn.name ? `timer-${fn.name}` : "timer"), options.id !== undefined);
    // The registry holds entries of every kind; this kind's entry only ever sees Ts.
    this.registry.entry(kind as ResourceKind).timers.push({ id, fn: fn as HandlerFn<KubeObject>, options: options as unknown as TimerOptions<KubeObject> });
  }

  /** Runs `fn` once per object of `kind`, in the background; `ctx.signal` aborts on deletion or shutdown. */
  daemon<T extends KubeObject>(kind: ResourceKind<T>, fn: HandlerFn<T>, options: DaemonOptions<T> = {}): void {
    this.assertNotRunning();
    checkNumber("daemon option backoffMs", options.backoffMs, "≥ 0");
    checkNumber("daemon option cancellationTimeoutMs", options.cancellationTimeoutMs, "≥ 0");
    const id = this.registry.claim(kind as ResourceKind, options.id ?? (fn.name ? `daemon-${fn.name}` : "daemon"), options.id !== undefined);
    // As for timers: this kind's entry only ever sees Ts.
    this.registry.entry(kind as ResourceKind).daemons.push({ id, fn: fn as HandlerFn<KubeObject>, options: options as unknown as DaemonOptions<KubeObject> });
  }

  /** An in-memory index handlers read as `ctx.indexes.get(id)`: `fn` maps an object to {key: value}. */
  index<T extends KubeObject>(kind: ResourceKind<T>, id: string, fn: (object: T) => Record<string, unknown> | undefined): void {
    this.assertNotRunning();
    this.registry.entry(kind as ResourceKind).indexes.push({ id, fn: fn as (o: KubeObject) => Record<string, unknown> | undefined });
  }

  private handler<T extends KubeObject>(kind: ResourceKind<T>, cause: Cause, fn: HandlerFn<T>, options: FieldHandlerOptions<T>, field?: string): void {
    this.assertNotRunning();
    // A kopf user's `retries: 3` (from JavaScript, where the type does not stop it) would count differently.
    if ((options as { retries?: unknown }).retries !== undefined) throw new TypeError("handler option 'retries' is now 'attempts' (attempts in all; kopf's retries=3 is attempts: 3)");
    checkNumber("handler option 'attempts'", options.attempts, "integer ≥ 1");
    checkNumber("handler option timeoutMs", options.timeoutMs, "> 0");
    checkNumber("handler option backoffMs", options.backoffMs, "≥ 0");
    const fallback = fn.name && fn.name !== "fn" ? fn.name : field ? `${cause}-${field}` : cause;
    const id = this.registry.claim(kind as ResourceKind, options.id ?? fallback, options.id !== undefined);
    this.registry.entry(kind as ResourceKind).handlers.push({
      id,
      cause,
      ...(field ? { field: parsePath(field) } : {}),
      fn: fn as HandlerFn<KubeObject>,
      options: options as unknown as FieldHandlerOptions<KubeObject>, // this kind's entry only ever sees Ts
    });
  }

  /** Turns the registry into controllers (one per kind), index feeds, event feeds and the task runner. */
  private wireHandlers(manager: Manager, client: Client, logger: Logger, namespaces: string[] | undefined, metrics: Metrics): { tasks: Tasks; indexes: Indexes } {
    const indexSet = new IndexSet();
    const keys = progressKeys(this.options.annotationPrefix ?? `${this.name}.kubeloop.dev`);
    const finalizer = `${keys.prefix}/finalizer`;
    const { forKind, matches: inScope } = watchScope(namespaces);
    // Every kind with handlers: its cache is required (synced before anything starts, on
    // followers too, so indexes are warm and timers read the latest state).
    const caches = new Map([...this.registry.kinds.values()].map((entry) => [entry, manager.informer(entry.kind, forKind(entry.kind))] as const));
    const cacheOf = (entry: KindEntry) => caches.get(entry) as CacheView<KubeObject>;
    const tasks = new Tasks({ client, logger, indexes: indexSet.view, store: (entry) => cacheOf(entry).store, recorder: manager.recorder, onFailure: (kind, task) => metrics.taskFailed(kind, task), ...(this.options.eventLevel ? { eventLevel: this.options.eventLevel } : {}) });
    // Timers and daemons start with their objects (in the handlers' reconciles); this stops them
    // all. Added before the handlers' controllers, so that after a pause it has started again
    // before their first reconciles ask for tasks (the Manager starts runnables in order).
    manager.add({ start: async () => tasks.resume(), stop: () => tasks.stopAll() });
    const processors: Processor[] = [];
    for (const entry of this.registry.kinds.values()) {
      const scope = forKind(entry.kind);
      const informer = cacheOf(entry);
      for (const ix of entry.indexes) {
        indexSet.declare(ix.id);
        informer.subscribe((e) => {
          if (hasObject(e) && !inScope(e.object.metadata?.namespace)) return;
          indexSet.apply(ix.id, ix.fn, e);
        });
      }
      if (entry.handlers.length || entry.timers.length || entry.daemons.length) {
        const processor: Processor = new Processor({ client, entry, keys, finalizer, recorder: manager.recorder, logger, indexes: indexSet.view, tasks, ...(this.options.eventLevel ? { eventLevel: this.options.eventLevel } : {}), ...(this.options.progressIn ? { progressIn: this.options.progressIn } : {}) });
        processors.push(processor);
        manager
          .controller(entry.kind)
          .withPredicates((e) => !hasObject(e) || inScope(e.object.metadata?.namespace))
          .withOptions({ name: `handlers-${entry.kind.kind.toLowerCase()}`, scope, concurrency: this.options.concurrency ?? 16, requeueAfterRelist: true })
          .reconcile(processor.reconcile);
        // Per-object state lives as long as the object is cached: a delete event (also one a
        // relist discovers for an object deleted while the watch was down) drops it.
        informer.subscribe((e) => {
          if (e.type === "relisted") processor.relisted(); // before the controller requeues every object
          if (e.type !== "delete") return;
          const uid = objectId(e.object);
          processor.forget(uid);
          void tasks.stop(uid);
          // Gone with our finalizer, never seen being deleted: its delete handlers still run (the
          // controller takes the key this event queues).
          if (inScope(e.object.metadata?.namespace)) processor.vanish(e.object);
        });
        // Only the leader finalizes vanished objects (as it alone runs the handlers' controller).
        manager.add({ start: async () => processor.setLeading(true), stop: async () => processor.setLeading(false) });
      }
      if (entry.events.length) {
        const context = { client, indexes: indexSet.view, logger: (object: KubeObject) => objectLogger(logger, object, "event", { recorder: manager.recorder, level: this.options.eventLevel ?? "info" }) };
        manager.add(eventHandlers(entry, informer, inScope, logger, context));
      }
    }
    this.tracked = { processors, tasks };
    return { tasks, indexes: indexSet.view };
  }

  /**
   * How many per-object entries the handlers, timers and daemons hold now (0 when not running).
   * Bounded by the cache: an object's entries go when it leaves the cache (deleted, with or
   * without a finalizer, or found gone on a relist). For tests and memory diagnostics.
   */
  trackedObjects(): number {
    if (!this.tracked) return 0;
    return this.tracked.processors.reduce((sum, p) => sum + p.size, 0) + this.tracked.tasks.size;
  }

  private assertNotRunning(): void {
    if (this.running) throw new Error("register handlers before op.run()");
  }

  /** @throws TypeError or RangeError naming the option, for a name or option that cannot work. */
  constructor(private readonly options: OperatorOptions) {
    checkOperatorName(options.name);
    checkOperatorOptions(options);
    this.name = options.name;
  }

  /** A reconciler of `kind` at controller-runtime's level: `op.controller(Kind).owns(Child).reconcile(fn)`. */
  controller<T extends KubeObject>(kind: ResourceKind<T>): ControllerBuilder<T, void> {
    return new ControllerBuilder<T, void>(kind, (spec) => {
      if (this.running) throw new Error("add controllers before op.run()");
      // Specs of every kind in one list; each controller made from one sees only its kind's objects.
      this.specs.push(spec as unknown as ControllerSpec<KubeObject>);
    });
  }

  /** CRDs of the custom kinds the operator uses (declared with `defineResource`), for `kubeloop dev` and tests. */
  get crds(): CustomResourceDefinition[] {
    const seen = new Map<string, CustomResourceDefinition>();
    for (const k of this.kinds) {
      const crd = (k as { crd?: CustomResourceDefinition }).crd;
      if (crd?.metadata?.name) seen.set(crd.metadata.name, crd);
    }
    return [...seen.values()];
  }

  /**
   * The client `op.on.login` supplies, or undefined without a login handler. `kubeloop run` and
   * `runOperator` call it and run the operator with that client. Rejects with the handler's error.
   */
  async clientFromLogin(logger: Logger = createLogger(this.name, { level: this.options.logLevel ?? "info" })): Promise<Client | undefined> {
    return this.login ? await this.login({ logger }) : undefined;
  }

  /**
   * Where this operator's Leases live: the leader Lease and the dev override Lease beside it
   * (`kubeloop run --dev` holds the latter to pause the operator running in the cluster). The
   * namespace is the leader election's, else `defaultNamespace`.
   */
  leases(defaultNamespace: string): { namespace: string; leader: string; dev: string } {
    const le = this.options.leaderElection || {};
    return { namespace: le.namespace ?? defaultNamespace, leader: le.name ?? `${this.name}-leader`, dev: `${this.name}-dev` };
  }

  /**
   * Declares access the operator needs beyond what kubeloop derives from its registrations (what
   * handlers do by hand with `ctx.client`, e.g. creating Secrets): added to the generated RBAC.
   */
  permissions(...needs: { group: string; resource: string; verbs: string[]; namespaced?: boolean; resourceNames?: string[]; why?: string }[]): void {
    for (const n of needs) this.extraAccess.push({ group: n.group, resource: n.resource, verbs: n.verbs, namespaced: n.namespaced ?? true, ...(n.resourceNames ? { resourceNames: n.resourceNames } : {}), why: n.why ?? "declared with op.permissions()" });
  }

  /**
   * Everything this operator needs the API server to allow, derived from what it registered
   * (handlers, controllers and their children, indexes, raw events, Events, its Lease, managed
   * webhooks) plus `op.permissions()`: the input of `kubeloop generate rbac`. The Lease is in
   * `leaseNamespace` (the leader election's namespace wins). `manageWebhooks: false` leaves out
   * what registering webhooks needs (manifests register them); `reads` are kinds the code reads
   * through `ctx.cache` (get, list and watch); `finalizers: false` (the source calls no
   * `ctx.finalizer`) leaves out patch on controllers' own kinds. Fails naming a kind whose plural is unknown.
   */
  access(leaseNamespace: string, options: { manageWebhooks?: boolean; reads?: readonly ResourceKind[]; finalizers?: boolean } = {}): AccessNeed[] {
    const le = this.options.leaderElection;
    return accessNeeds({
      name: this.name,
      specs: this.specs,
      entries: [...this.registry.kinds.values()],
      admission: this.admission,
      conversions: [...this.conversions.values()],
      leaseNamespace: le === false ? undefined : (le?.namespace ?? leaseNamespace),
      manageWebhooks: options.manageWebhooks ?? this.options.webhooks?.manage ?? true,
      home: (le ? le.namespace : undefined) ?? leaseNamespace,
      ...(options.reads ? { reads: options.reads } : {}),
      ...(options.finalizers !== undefined ? { finalizers: options.finalizers } : {}),
      extra: this.extraAccess,
    });
  }

  /** The webhooks as the API server must call them: admission hooks, and the CRDs (names) converted (for `kubeloop generate`). */
  get webhooks(): { admission: AdmissionHook[]; conversions: string[] } {
    return { admission: this.admission.map((a) => a.hook), conversions: [...this.conversions.keys()] };
  }

  /** Whether the operator serves webhooks (admission or conversion). */
  get hasWebhooks(): boolean {
    return this.admission.length > 0 || this.conversions.size > 0;
  }

  /** Whether it runs with leader election (the default). */
  get usesLeaderElection(): boolean {
    return this.options.leaderElection !== false;
  }

  /** The namespaces the operator serves, as declared (undefined: all). */
  get servedNamespaces(): readonly string[] | undefined {
    return this.options.namespaces;
  }

  /** How long a graceful stop may take (the `gracefulShutdownTimeoutMs` option, default 30 000 ms). */
  get gracefulShutdownTimeoutMs(): number {
    return this.options.gracefulShutdownTimeoutMs ?? 30_000;
  }

  /** Kinds the operator watches (for RBAC generation and `kubeloop dev`). */
  get kinds(): ResourceKind[] {
    return [...this.specs.flatMap((s) => [s.kind as ResourceKind, ...s.sources.map((x) => x.kind)]), ...[...this.registry.kinds.values()].map((e) => e.kind)];
  }

  /** Connects and runs until stopped; see the class documentation for how it ends. */
  async run(options: RunOptions = {}): Promise<void> {
    if (this.running) throw new Error(`operator ${this.name} is already running`);
    checkNamespacePatterns(options.namespaces);
    if (options.leaderElection) checkManagerTimings({ leaderElection: options.leaderElection });
    checkServerOptions(options);
    this.running = true;
    const logger = options.logger ?? this.options.logger ?? createLogger(this.name, { level: this.options.logLevel ?? "info" });
    let client: Client | undefined;
    let tasks: Tasks | undefined;
    let webhooks: RunningWebhooks | undefined;
    const servers: ProbeServer[] = [];
    const signals = trapSignals(options, logger);
    try {
      client = options.client ?? (this.login ? await this.login({ logger }) : await Client.load({ rateLimit: OPERATOR_RATE_LIMIT }));
      for (const warning of client.config.warnings ?? []) logger.warn({ source: client.config.source }, warning);
      const metrics = new Metrics();
      const manager = this.assemble(client, logger, metrics, options);
      const wired = this.wireHandlers(manager, client, logger, options.namespaces ?? this.options.namespaces, metrics);
      tasks = wired.tasks;
      servers.push(...(await this.serve(manager, metrics, options, logger, { client, logger, indexes: wired.indexes })));
      if (this.admission.length || this.conversions.size) {
        // The operator's namespaces: admission reads never start cluster-wide informers of namespaced kinds.
        const { forKind } = watchScope(options.namespaces ?? this.options.namespaces);
        const extras = { indexes: wired.indexes, cache: new CacheReader(manager.informers, manager.writes, undefined, forKind) };
        const le = options.leaderElection ?? this.options.leaderElection;
        const home = (le ? le.namespace : undefined) ?? client.defaultNamespace;
        webhooks = await serveWebhooks(client, this.name, this.admission, [...this.conversions.values()], extras, { ...this.options.webhooks, ...options.webhooks }, { logger, namespaces: options.namespaces ?? this.options.namespaces, observer: metrics.webhookObserver, home });
        // The leader keeps the registration (and takes it back after a dev pause).
        if (webhooks.keeper) manager.add(webhooks.keeper);
      }
      let started = true;
      for (const startup of this.startups) started &&= await runStartup(startup, { client, logger }, signals.signal);
      if (!started) return; // stopped while a startup handler was being retried
      const webhookUrl = webhooks?.server.url;
      void manager.whenSynced().then(() => options.onStarted?.({ probes: servers[0], manager, metrics, ...(webhookUrl ? { webhookUrl } : {}) }));
      await manager.run(signals.signal);
      for (const cleanup of this.cleanups) {
        const c = client;
        await Promise.resolve()
          .then(() => cleanup({ client: c, logger, retries: 0 }))
          .catch((error: unknown) => logger.error({ err: error }, "cleanup handler failed"));
      }
    } finally {
      await webhooks?.stop();
      await tasks?.stopAll();
      signals.release();
      for (const server of servers) await server.close();
      if (!options.client) await client?.close();
      this.tracked = undefined;
      this.running = false;
    }
  }

  /** The Manager, with the operator's settings and every controller declared (narrowed to its namespaces). */
  private assemble(client: Client, logger: Logger, metrics: Metrics, options: RunOptions): Manager {
    const leaderElection = options.leaderElection ?? this.options.leaderElection;
    const manager = new Manager(client, {
      name: this.name,
      logger,
      observer: metrics.observer,
      ...(leaderElection !== undefined ? { leaderElection } : {}),
      ...(this.options.cacheSyncTimeoutMs !== undefined ? { cacheSyncTimeoutMs: this.options.cacheSyncTimeoutMs } : {}),
      ...(this.options.gracefulShutdownTimeoutMs !== undefined ? { gracefulShutdownTimeoutMs: this.options.gracefulShutdownTimeoutMs } : {}),
      ...(this.options.devOverride === false ? { devOverride: false as const } : {}),
    });
    const namespaces = options.namespaces ?? this.options.namespaces;
    for (const spec of this.specs) manager.addController(scoped(spec, namespaces));
    return manager;
  }

  /** The probe servers (/metrics, /healthz, /readyz), listening before caches sync. */
  private async serve(manager: Manager, metrics: Metrics, options: RunOptions, logger: Logger, probeContext: ProbeContext): Promise<ProbeServer[]> {
    const probeOptions = options.probes ?? this.options.probes;
    if (probeOptions === false) return [];
    const healthChecks = Object.fromEntries([...this.probes].map(([id, fn]) => [id, () => fn(probeContext)]));
    const servers: ProbeServer[] = [];
    for (const each of [probeOptions ?? {}, ...(options.extraProbes ? [options.extraProbes] : [])]) {
      const server = await serveProbes(manager, metrics, { ...each, healthChecks });
      servers.push(server);
      logger.info({ url: server.url }, `serving ${servedEndpoints(each)}`);
    }
    options.onListening?.(servers[0] as ProbeServer);
    return servers;
  }
}

/**
 * Fails at once, naming the kind, when the server does not serve one of `kinds` (typically: its
 * CRD is not installed), instead of waiting for a cache that cannot sync; `hint` says how to
 * install it. Discovery is asked, not the kind's descriptor. (`op.run()` itself waits for a
 * CRD that appears later, not ready meanwhile; `kubeloop run` and `runOperator` check first.)
 */
export async function checkServed(client: Client, kinds: readonly ResourceKind[], hint = "install its CustomResourceDefinition first"): Promise<void> {
  const seen = new Set<string>();
  for (const kind of kinds) {
    const id = `${kind.apiVersion}/${kind.kind}`;
    if (seen.has(id)) continue;
    seen.add(id);
    try {
      await client.mapper.mapping({ apiVersion: kind.apiVersion, kind: kind.kind });
    } catch (error) {
      if (error instanceof NotFoundError || (error instanceof ApiError && /not served|no kind/.test(error.message))) throw new Error(`${describeKind(kind)} is not served by ${client.config.server}: ${hint}`, { cause: error });
      throw error;
    }
  }
}

/** SIGTERM and SIGINT (unless `handleSignals: false`) and the caller's signal, as one signal; `release` unhooks. */
function trapSignals(options: RunOptions, logger: Logger): { signal: AbortSignal; release: () => void } {
  const stop = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    logger.info({ signal: sig }, "signal received: stopping gracefully");
    stop.abort(new Error(`received ${sig}`));
  };
  const handle = options.handleSignals ?? true;
  if (handle) {
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
  }
  return {
    signal: options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal,
    release: () => {
      if (!handle) return;
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
    },
  };
}

export type { ManagerStatus };

/**
 * A controller narrowed to the operator's namespaces (one scope for both levels): its own kind
 * and its sources are watched in those namespaces (namespaced watches for exact names), and
 * events from elsewhere do not reconcile. A scope the controller sets itself wins.
 */
function scoped<T extends KubeObject>(spec: ControllerSpec<T>, namespaces: string[] | undefined): ControllerSpec<T> {
  if (!namespaces || namespaces.length === 0) return spec;
  const { forKind, matches } = watchScope(namespaces);
  return {
    ...spec,
    predicates: [...spec.predicates, (e) => !hasObject(e) || matches(e.object.metadata?.namespace)],
    sources: spec.sources.map((s) => ({ ...s, scope: { ...forKind(s.kind), ...s.scope } })),
    options: { ...spec.options, scope: { ...forKind(spec.kind), ...spec.options.scope } },
  };
}

/**
 * The runnable of a kind's `op.on.event` handlers: on start, `exists` for every cached object,
 * then every watched change; on stop, calls in flight finish within the deadline (they get no
 * signal: past it they are abandoned and counted).
 */
function eventHandlers(
  entry: KindEntry,
  informer: CacheView<KubeObject>,
  inScope: (namespace: string | undefined) => boolean,
  logger: Logger,
  context: { client: Client; indexes: Indexes; logger: (object: KubeObject) => RawEvent<KubeObject>["logger"] },
): Runnable {
  let unsubscribe = () => {};
  const inFlight = new Set<Promise<void>>();
  const deliver = (bare: Omit<RawEvent<KubeObject>, "logger" | "client" | "indexes">) => {
    const event: RawEvent<KubeObject> = { ...bare, client: context.client, indexes: context.indexes, logger: context.logger(bare.object) };
    if (!inScope(event.object.metadata?.namespace)) return;
    for (const h of entry.events) {
      if (!matches(event.object, h.options)) continue;
      const call: Promise<void> = Promise.resolve()
        .then(() => h.fn(event))
        .catch((error: unknown) => logger.error({ err: error, object: objectKey(event.object.metadata) }, "event handler failed (not retried)"))
        .finally(() => inFlight.delete(call));
      inFlight.add(call);
    }
  };
  return {
    start: async () => {
      unsubscribe = informer.subscribe((e) => {
        if (!hasObject(e)) return;
        deliver({ type: e.type === "delete" ? "delete" : "apply", object: e.object, ...(e.type === "apply" && e.old ? { old: e.old } : {}) });
      });
      // What exists already (the cache synced before this replica started leading).
      for (const object of informer.store.list()) deliver({ type: "exists", object });
    },
    stop: async (timeoutMs) => {
      unsubscribe();
      const finished = await within(Promise.all(inFlight), timeoutMs);
      if (!finished) logger.error({ abandoned: inFlight.size }, "event handlers still running at the shutdown deadline: abandoning them");
      return { abandoned: finished ? 0 : inFlight.size };
    },
  };
}

/**
 * Runs one startup handler until it succeeds (true): a TemporaryError after its delay, other
 * errors with backoff; a TerminalError or the last of `attempts` rejects; the stop signal ends
 * it with false.
 */
async function runStartup(startup: { fn: (ctx: ActivityContext) => Promise<void> | void; options: StartupOptions }, ctx: Omit<ActivityContext, "retries">, signal: AbortSignal): Promise<boolean> {
  const { attempts, backoffMs = 1_000 } = startup.options;
  for (let retries = 0; ; retries++) {
    if (signal.aborted) return false;
    try {
      await startup.fn({ ...ctx, retries });
      return true;
    } catch (error) {
      if (error instanceof TerminalError || (attempts !== undefined && retries + 1 >= attempts)) throw error;
      const delay = retryDelay(error, retries, { ms: backoffMs, doubling: true });
      ctx.logger.error({ err: error, handler: startup.fn.name || "startup", retries: retries + 1, delayMs: delay }, "startup handler failed: will retry");
      await systemClock.sleep(delay, signal).catch(() => {}); // aborted: checked above
    }
  }
}
