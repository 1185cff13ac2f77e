// Operator: the composition root, above both levels. It collects what an operator does
// (controllers, kopf-style handlers, timers, daemons, indexes, hooks, webhooks) while the module
// loads, and `run()` assembles the parts: the settings (settings.ts), the client, the Manager
// with the operator's controllers, the handler level (handlers/wiring.ts), the probe servers,
// the webhooks (webhooks.ts), the startup and cleanup activities (handlers/activities.ts) and
// signal handling. Nothing touches the cluster before `run()`, so `kubeloop run operator.ts`
// and tools that only read what an operator declares can import the same module.
import type { Logger } from "pino";
import type { TSchema } from "@sinclair/typebox";
import type { CustomResourceDefinition } from "kubernetes-types/apiextensions/v1.js";
import { Client } from "../client/client.js";
import { OPERATOR_RATE_LIMIT } from "../client/rate-limit.js";
import { systemClock } from "../core/clock.js";
import type { KubeObject, ResourceKind } from "../core/objects.js";
import { ControllerBuilder } from "../controller/builder.js";
import { CacheReader } from "../controller/cache.js";
import { Manager, type ManagerStatus } from "../controller/manager.js";
import type { ControllerSpec } from "../controller/spec.js";
import { runCleanups, runStartups, type Startup } from "../handlers/activities.js";
import type { Filters } from "../handlers/filters.js";
import { Registry, type DaemonOptions, type EventSpec, type FieldHandlerOptions, type HandlerFn, type TimerOptions, type Cause, type ActivityContext, type ProbeContext } from "../handlers/registry.js";
import { scopedSpec, wireHandlers, type WiredHandlers } from "../handlers/wiring.js";
import type { AccessNeed } from "../manifests/rbac.js";
import type { DefinedResource } from "../manifests/resource.js";
import { createLogger } from "../observe/logging.js";
import { Metrics } from "../observe/metrics.js";
import { serveProbes, servedEndpoints, type ProbeServer } from "../observe/server.js";
import type { MutateFn, ValidateFn } from "../webhook/admission.js";
import type { ConvertFn } from "../webhook/conversion.js";
import type { AdmissionHook } from "../webhook/registration.js";
import { accessNeeds } from "./access.js";
import { leasesOf, resolveSettings, type OperatorOptions, type RunOptions, type Settings } from "./settings.js";
import { trapSignals } from "./signals.js";
import { WebhookRegistry } from "./webhook-registry.js";
import type { OperatorOn } from "./on.js";
import { serveWebhooks, type AdmissionSpec, type MutateOptions, type RunningWebhooks } from "./webhooks.js";

export type { OperatorOptions, ProbeOptions, RunOptions, RunningOperator } from "./settings.js";
export { checkServed } from "../client/discovery.js";
export type { ManagerStatus, OperatorOn };

/** What one run holds, to be released when it ends. */
interface Parts {
  client?: Client;
  handlers?: WiredHandlers;
  webhooks?: RunningWebhooks;
  servers: ProbeServer[];
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
  /** The operator's own options, checked and defaulted (`run()` resolves them again with its overrides). */
  private readonly settings: Settings;
  private readonly specs: ControllerSpec<KubeObject>[] = [];
  private readonly registry = new Registry();
  private readonly hooks = new WebhookRegistry();
  private readonly startups: Startup[] = [];
  private readonly cleanups: ((ctx: ActivityContext) => Promise<void> | void)[] = [];
  private readonly probes = new Map<string, (ctx: ProbeContext) => Promise<unknown> | unknown>();
  private readonly extraAccess: AccessNeed[] = [];
  private login: ((ctx: { logger: Logger }) => Promise<Client> | Client) | undefined;
  private running = false;
  /** The handler level while running (for {@link Operator.trackedObjects}). */
  private wired: WiredHandlers | undefined;

  /** @throws TypeError or RangeError naming the option, for a name or option that cannot work. */
  constructor(private readonly options: OperatorOptions) {
    this.settings = resolveSettings(options);
    this.name = options.name;
  }

  /** kopf-style handlers and activities; see {@link OperatorOn}. */
  readonly on: OperatorOn = {
    create: (kind, fn, options = {}) => this.handler(kind, "create", fn, options),
    update: (kind, fn, options = {}) => this.handler(kind, "update", fn, options),
    delete: (kind, fn, options = {}) => this.handler(kind, "delete", fn, options),
    resume: (kind, fn, options = {}) => this.handler(kind, "resume", fn, options),
    field: (kind, path, fn, options = {}) => this.handler(kind, "field", fn, options, path),
    event: (kind, fn, options = {}) => {
      this.assertNotRunning();
      // The registry holds entries of every kind; this kind's entry only ever sees Ts (so below).
      this.registry.entry(kind as ResourceKind).events.push({ fn: fn as EventSpec["fn"], options: options as Filters<KubeObject> });
    },
    startup: (fn, options = {}) => void this.startups.push({ fn, options }),
    cleanup: (fn) => void this.cleanups.push(fn),
    login: (fn) => void (this.login = fn),
    probe: (id, fn) => void this.probes.set(id, fn),
    validate: (kind, fn, options = {}) => this.admissionHook("validate", kind, { validate: fn as ValidateFn<KubeObject> }, options),
    mutate: (kind, fn, options = {}) => this.admissionHook("mutate", kind, { mutate: fn as MutateFn<KubeObject> }, options),
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
    this.hooks.convert(kind, conversion);
  }

  /** Calls `fn` every `intervalMs` for each object of `kind` (while it exists and this replica leads). */
  timer<T extends KubeObject>(kind: ResourceKind<T>, options: TimerOptions<T>, fn: HandlerFn<T>): void {
    this.assertNotRunning();
    this.registry.timer(kind as ResourceKind, options as unknown as TimerOptions<KubeObject>, fn as HandlerFn<KubeObject>);
  }

  /** Runs `fn` once per object of `kind`, in the background; `ctx.signal` aborts on deletion or shutdown. */
  daemon<T extends KubeObject>(kind: ResourceKind<T>, fn: HandlerFn<T>, options: DaemonOptions<T> = {}): void {
    this.assertNotRunning();
    this.registry.daemon(kind as ResourceKind, fn as HandlerFn<KubeObject>, options as unknown as DaemonOptions<KubeObject>);
  }

  /** An in-memory index handlers read as `ctx.indexes.get(id)`: `fn` maps an object to {key: value}. */
  index<T extends KubeObject>(kind: ResourceKind<T>, id: string, fn: (object: T) => Record<string, unknown> | undefined): void {
    this.assertNotRunning();
    this.registry.entry(kind as ResourceKind).indexes.push({ id, fn: fn as (o: KubeObject) => Record<string, unknown> | undefined });
  }

  /** A reconciler of `kind` at controller-runtime's level: `op.controller(Kind).owns(Child).reconcile(fn)`. */
  controller<T extends KubeObject>(kind: ResourceKind<T>): ControllerBuilder<T, void> {
    return new ControllerBuilder<T, void>(kind, (spec) => {
      if (this.running) throw new Error("add controllers before op.run()");
      // Specs of every kind in one list; each controller made from one sees only its kind's objects.
      this.specs.push(spec as unknown as ControllerSpec<KubeObject>);
    });
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
    const home = leasesOf(this.settings, leaseNamespace).namespace;
    return accessNeeds({
      name: this.name,
      specs: this.specs,
      entries: [...this.registry.kinds.values()],
      admission: this.hooks.admission,
      conversions: [...this.hooks.conversions.values()],
      leaseNamespace: this.settings.leaderElection === false ? undefined : home,
      manageWebhooks: options.manageWebhooks ?? this.settings.manageWebhooks,
      home,
      ...(options.reads ? { reads: options.reads } : {}),
      ...(options.finalizers !== undefined ? { finalizers: options.finalizers } : {}),
      extra: this.extraAccess,
    });
  }

  /**
   * Where this operator's Leases live: the leader Lease and the dev override Lease beside it
   * (`kubeloop run --dev` holds the latter to pause the operator running in the cluster). The
   * namespace is the leader election's, else `defaultNamespace`.
   */
  leases(defaultNamespace: string): { namespace: string; leader: string; dev: string } {
    return leasesOf(this.settings, defaultNamespace);
  }

  /** The webhooks as the API server must call them: admission hooks, and the CRDs (names) converted (for `kubeloop generate`). */
  get webhooks(): { admission: AdmissionHook[]; conversions: string[] } {
    return this.hooks.declared;
  }

  /** Whether the operator serves webhooks (admission or conversion). */
  get hasWebhooks(): boolean {
    return this.hooks.any;
  }

  /** Whether it runs with leader election (the default). */
  get usesLeaderElection(): boolean {
    return this.settings.leaderElection !== false;
  }

  /** The namespaces the operator serves, as declared (undefined: all). */
  get servedNamespaces(): readonly string[] | undefined {
    return this.options.namespaces;
  }

  /** How long a graceful stop may take (the `gracefulShutdownTimeoutMs` option, default 30 000 ms). */
  get gracefulShutdownTimeoutMs(): number {
    return this.settings.gracefulShutdownTimeoutMs;
  }

  /** Kinds the operator watches (for RBAC generation and `kubeloop dev`). */
  get kinds(): ResourceKind[] {
    return [...this.specs.flatMap((s) => [s.kind as ResourceKind, ...s.sources.map((x) => x.kind)]), ...[...this.registry.kinds.values()].map((e) => e.kind)];
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
  async clientFromLogin(logger: Logger = createLogger(this.name, { level: this.settings.logLevel })): Promise<Client | undefined> {
    return this.login ? await this.login({ logger }) : undefined;
  }

  /**
   * How many per-object entries the handlers, timers and daemons hold now (0 when not running).
   * Bounded by the cache: an object's entries go when it leaves the cache (deleted, with or
   * without a finalizer, or found gone on a relist). For tests and memory diagnostics.
   */
  trackedObjects(): number {
    if (!this.wired) return 0;
    return this.wired.processors.reduce((sum, p) => sum + p.size, 0) + this.wired.tasks.size;
  }

  /** Connects and runs until stopped; see the class documentation for how it ends. */
  async run(options: RunOptions = {}): Promise<void> {
    if (this.running) throw new Error(`operator ${this.name} is already running`);
    const settings = resolveSettings(this.options, options);
    this.running = true;
    const logger = options.logger ?? this.options.logger ?? createLogger(this.name, { level: settings.logLevel });
    const parts: Parts = { servers: [] };
    const signals = trapSignals(settings.handleSignals, options.signal, logger);
    try {
      const client = (parts.client = options.client ?? (this.login ? await this.login({ logger }) : await Client.load({ rateLimit: OPERATOR_RATE_LIMIT })));
      for (const warning of client.config.warnings ?? []) logger.warn({ source: client.config.source }, warning);
      const metrics = new Metrics();
      const manager = this.assemble(settings, client, logger, metrics);
      const handlers = (this.wired = parts.handlers = wireHandlers(manager, this.registry, settings, { client, logger, onTaskFailure: (kind, task) => metrics.taskFailed(kind, task) }));
      parts.servers = await this.serveProbes(settings, manager, metrics, { client, logger, indexes: handlers.indexes });
      options.onListening?.(parts.servers[0] as ProbeServer);
      if (this.hooks.any) parts.webhooks = await this.serveWebhooks(settings, manager, metrics, { client, logger, indexes: handlers.indexes });
      if (!(await runStartups(this.startups, { client, logger }, signals.signal, options.clock ?? systemClock))) return; // stopped while a startup handler was being retried
      const webhookUrl = parts.webhooks?.server.url;
      void manager.whenSynced().then(() => options.onStarted?.({ probes: parts.servers[0], manager, metrics, ...(webhookUrl ? { webhookUrl } : {}) }));
      await manager.run(signals.signal);
      await runCleanups(this.cleanups, { client, logger });
    } finally {
      await parts.webhooks?.stop();
      await parts.handlers?.tasks.stopAll();
      signals.release();
      for (const server of parts.servers) await server.close();
      if (!options.client) await parts.client?.close();
      this.wired = undefined;
      this.running = false;
    }
  }

  /** The Manager, with the operator's settings and every controller declared (narrowed to its namespaces). */
  private assemble(settings: Settings, client: Client, logger: Logger, metrics: Metrics): Manager {
    const manager = new Manager(client, {
      name: this.name,
      logger,
      observer: metrics.observer,
      leaderElection: settings.leaderElection,
      cacheSyncTimeoutMs: settings.cacheSyncTimeoutMs,
      gracefulShutdownTimeoutMs: settings.gracefulShutdownTimeoutMs,
      ...(settings.devOverride ? {} : { devOverride: false as const }),
    });
    for (const spec of this.specs) manager.addController(scopedSpec(spec, settings.namespaces, settings.scope));
    return manager;
  }

  /** The probe servers (/metrics, /healthz, /readyz), listening before caches sync. */
  private async serveProbes(settings: Settings, manager: Manager, metrics: Metrics, probeContext: ProbeContext): Promise<ProbeServer[]> {
    const healthChecks = Object.fromEntries([...this.probes].map(([id, fn]) => [id, () => fn(probeContext)]));
    const servers: ProbeServer[] = [];
    for (const each of settings.probes) {
      const server = await serveProbes(manager, metrics, { ...each, healthChecks });
      servers.push(server);
      probeContext.logger.info({ url: server.url }, `serving ${servedEndpoints(each)}`);
    }
    return servers;
  }

  /** The webhook server, with the registration's keeper added to the Manager (the leader keeps it, and takes it back after a dev pause). */
  private async serveWebhooks(settings: Settings, manager: Manager, metrics: Metrics, context: ProbeContext): Promise<RunningWebhooks> {
    // The operator's namespaces: admission reads never start cluster-wide informers of namespaced kinds.
    const cache = new CacheReader(manager.informers, manager.writes, undefined, settings.scope.forKind);
    const webhooks = await serveWebhooks(context.client, {
      operator: this.name,
      admission: this.hooks.admission,
      conversions: [...this.hooks.conversions.values()],
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

  private handler<T extends KubeObject>(kind: ResourceKind<T>, cause: Cause, fn: HandlerFn<T>, options: FieldHandlerOptions<T>, field?: string): void {
    this.assertNotRunning();
    this.registry.handler(kind as ResourceKind, cause, fn as HandlerFn<KubeObject>, options as unknown as FieldHandlerOptions<KubeObject>, field);
  }

  private admissionHook<T extends KubeObject>(type: "validate" | "mutate", kind: ResourceKind<T>, fn: Pick<AdmissionSpec, "validate" | "mutate">, options: MutateOptions<T>): void {
    this.assertNotRunning();
    this.hooks.admissionHook(type, kind as ResourceKind, fn, options as unknown as MutateOptions<KubeObject>);
  }

  private assertNotRunning(): void {
    if (this.running) throw new Error("register handlers before op.run()");
  }
}
