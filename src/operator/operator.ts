// Operator: what operator authors hold. It collects what an operator does (controllers,
// kopf-style handlers, timers, daemons, indexes, activities, webhooks) while the module loads,
// each checked as it is registered (handlers/registry.ts, webhook-registry.ts), and answers
// what tools ask of it (kinds, CRDs, RBAC, Leases). `run()` resolves the settings once
// (settings.ts) and hands what was declared to the composition (assembly.ts). Nothing touches
// the cluster before `run()`, so `kubeloop run operator.ts` and tools that only read what an
// operator declares can import the same module.
import type { Logger } from "pino";
import type { TSchema } from "@sinclair/typebox";
import type { CustomResourceDefinition } from "../core/kube/apiextensions/v1.js";
import type { Client } from "../client/client.js";
import type { KubeObject, ResourceKind } from "../core/objects.js";
import { ControllerBuilder } from "../controller/builder.js";
import type { ManagerStatus } from "../controller/manager.js";
import type { ControllerSpec } from "../controller/spec.js";
import type { Startup } from "../handlers/activities.js";
import type { Filters } from "../handlers/filters.js";
import { Registry, type DaemonOptions, type EventSpec, type FieldHandlerOptions, type HandlerFn, type TimerOptions, type Cause, type ActivityContext, type ProbeContext } from "../handlers/registry.js";
import type { WiredHandlers } from "../handlers/wiring.js";
import type { AccessNeed } from "../manifests/rbac.js";
import type { DefinedResource } from "../manifests/resource.js";
import { createLogger } from "../observe/logging.js";
import type { MutateFn, ValidateFn } from "../webhook/admission.js";
import type { ConvertFn } from "../webhook/conversion.js";
import type { AdmissionHook } from "../webhook/registration.js";
import { accessNeeds } from "./access.js";
import { runAssembled } from "./assembly.js";
import type { OperatorOn } from "./on.js";
import { leasesOf, resolveSettings, type OperatorOptions, type RunOptions, type Settings } from "./settings.js";
import { WebhookRegistry } from "./webhook-registry.js";
import type { AdmissionSpec, MutateOptions } from "./webhooks.js";

export type { OperatorOptions, ProbeOptions, RunOptions, RunningOperator, Sharding } from "./settings.js";
export { checkServed } from "../client/discovery.js";
export type { ManagerStatus, OperatorOn };

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
      leaseNamespace: this.settings.leaderElection === false && !this.settings.sharding ? undefined : home,
      sharding: this.settings.sharding !== false,
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

  /** Whether it shards its objects among replicas (the `sharding` option). */
  get usesSharding(): boolean {
    return this.settings.sharding !== false;
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
    try {
      const declared = { name: this.name, logger: this.options.logger, specs: this.specs, registry: this.registry, hooks: this.hooks, startups: this.startups, cleanups: this.cleanups, probes: this.probes, login: this.login };
      await runAssembled(declared, settings, options, (wired) => (this.wired = wired));
    } finally {
      this.wired = undefined;
      this.running = false;
    }
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
