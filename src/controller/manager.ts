// The Manager runs an operator's controllers (and, through `add`, any other runnable such as
// the handlers layer) on one set of shared informers, behind leader election, and stops them
// gracefully.
//
// Lifecycle of `run(signal)`:
//   1. start every informer the controllers need and wait for their caches (cacheSyncTimeoutMs;
//      failing names the resources that did not sync and why, e.g. a CRD that is not installed);
//   2. with leader election: wait to become leader. Caches stay warm meanwhile, so a follower
//      that takes over starts reconciling at once;
//   3. start the controllers and runnables;
//   4. run until `signal` aborts or leadership is lost.
//      Graceful stop: start no new work, let work in flight finish within
//      gracefulShutdownTimeoutMs (then abort its signals; what still runs is abandoned), and
//      only then release the Lease, so no successor acts while this replica still does. The
//      Lease is kept renewed meanwhile; it is not released when work was abandoned (it expires
//      instead), nor when renewal failed during the stop.
//      Leadership lost: abort every signal at once, wait for the work at most the same grace
//      period, and reject with LeaderElectionLostError: the process must exit (abandoned work
//      may still run), as controller-runtime's managers do.
import { checkNumber } from "../core/check.js";
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { pino } from "../core/lazy.js";
import type { Client } from "../client/client.js";
import { deadline } from "../core/async.js";
import type { KubeObject, ResourceKind } from "../core/objects.js";
import { describeKind } from "../core/objects.js";
import { InformerFactory, type CacheView, type EventSource, type InformerHandle, type InformerHealth, type InformerScope } from "../runtime/informer.js";
import { ControllerBuilder } from "./builder.js";
import { Controller } from "./controller.js";
import type { ControllerObserver } from "./reconcile.js";
import type { ControllerSpec, StopResult } from "./spec.js";
import { EventRecorder } from "./events.js";
import { leaseTimings, LeaderElectionLostError, LeaderElector, type LeadershipEnd } from "./leader-election.js";
import { WrittenVersions } from "./read-your-writes.js";
import { PauseWatch } from "./dev-pause.js";

/** Leader election settings; durations default to client-go's 15 s / 10 s / 2 s. */
export interface ManagerLeaderElection {
  /** Namespace of the Lease. Default: the client's default namespace. */
  namespace?: string;
  /** Name of the Lease. Default `<manager name>-leader`. */
  name?: string;
  /** Default: hostname + random suffix. */
  identity?: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
}

/** Something the Manager starts after caches sync (and leadership, if `needsLeader`) and stops on shutdown. */
export interface Runnable {
  /** Resolves once running. */
  start(signal: AbortSignal): Promise<void>;
  /**
   * Stops: starts nothing new, lets work in flight finish within `timeoutMs`, then aborts it;
   * aborting `hurry` (leadership lost) means abort everything now. Resolves once nothing runs,
   * reporting work that ignored its signal and was abandoned.
   */
  stop(timeoutMs: number, hurry?: AbortSignal): Promise<StopResult | void>;
  /** Informers to sync before starting (they are started by the Manager). */
  informers?(): InformerHandle[];
  /** Default true: runs only on the leader. */
  needsLeader?: boolean;
}

/** A replica's identity when none is given (as client-go's: the host name, made unique per process): `host_8hex`. */
export function defaultIdentity(): string {
  return `${hostname()}_${randomBytes(4).toString("hex")}`;
}

/** Fails unless `name` can name a Lease, a field manager and an annotation prefix (a lower-case DNS name). */
export function checkOperatorName(name: string): void {
  if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(name)) {
    throw new TypeError(`operator name "${name}" must be a lower-case DNS name (it names the Lease and the field manager)`);
  }
}

/** The Manager's timings when an option is left out. */
// The cache-sync timeout is controller-runtime's (CacheSyncTimeout, 2 min): a watch backing off
// through a storm of errors (0.8 s doubling to 30 s) may need most of a minute for one more try.
export const MANAGER_DEFAULTS = { cacheSyncTimeoutMs: 120_000, gracefulShutdownTimeoutMs: 30_000, watchFailureToleranceMs: 60_000, watchInactivityTimeoutMs: 180_000 } as const;

/**
 * Where an operator's Leases live: the leader Lease (`<name>-leader` unless named) and the dev
 * override Lease (`<name>-dev`) beside it, in the leader election's namespace, else
 * `defaultNamespace`. The one place these names are made.
 */
export function leaseNames(name: string, leaderElection: { namespace?: string; name?: string } | false | undefined, defaultNamespace: string, devName?: string): { namespace: string; leader: string; dev: string } {
  const le = leaderElection || {};
  return { namespace: le.namespace ?? defaultNamespace, leader: le.name ?? `${name}-leader`, dev: devName ?? `${name}-dev` };
}

/** Refuses timings that cannot work (a RangeError naming them). The Operator checks its own with it. */
export function checkManagerTimings(options: Pick<ManagerOptions, "cacheSyncTimeoutMs" | "gracefulShutdownTimeoutMs" | "leaderElection" | "watchFailureToleranceMs" | "watchInactivityTimeoutMs">): void {
  checkNumber("cacheSyncTimeoutMs", options.cacheSyncTimeoutMs, "> 0");
  checkNumber("watchFailureToleranceMs", options.watchFailureToleranceMs, "> 0");
  checkNumber("watchInactivityTimeoutMs", options.watchInactivityTimeoutMs, "> 0");
  checkNumber("gracefulShutdownTimeoutMs", options.gracefulShutdownTimeoutMs, "≥ 0");
  if (options.leaderElection) leaseTimings(options.leaderElection);
}

/** Options of a {@link Manager}. */
export interface ManagerOptions {
  /** The operator's name: field manager, event reporter, Lease name. Lower-case DNS label. */
  name: string;
  /** Leader election, on by default; `false` for development or a single replica. */
  leaderElection?: ManagerLeaderElection | false;
  /**
   * How long to wait for caches to sync; past it `run()` rejects with a CacheSyncTimeoutError
   * naming the resources not synced and their last error. Default 120 000 ms (controller-runtime's);
   * a finite number > 0.
   */
  cacheSyncTimeoutMs?: number;
  /**
   * How long a synced cache's watch may keep failing (refused, unreachable, or silent past the
   * watcher's inactivity timeout) before the Manager reports it in `status.failingWatches`, and
   * /readyz turns 503 naming it and its error: a cache that no longer hears the server serves
   * stale objects. Readiness returns once the server answers that watch again. Default 60 000
   * ms; a finite number > 0.
   */
  watchFailureToleranceMs?: number;
  /**
   * How long a cache's watch may stay silent (no event, no bookmark) before it is dropped,
   * reported as a failure, and resumed: what finds a stream that a proxy or load balancer keeps
   * open but no longer passes on. The API server sends a bookmark about once a minute on a quiet
   * watch, so keep it well above that. Default 180 000 ms; a finite number > 0.
   */
  watchInactivityTimeoutMs?: number;
  /**
   * How long reconciles in flight may take to finish on shutdown; then their signals abort, and
   * work that ignores its signal is abandoned (and the Lease is not released). Default 30 000 ms;
   * a finite number ≥ 0.
   */
  gracefulShutdownTimeoutMs?: number;
  /** Default: pino at level "info" on stdout. */
  logger?: Logger;
  /** Metrics hooks; see observe/metrics. */
  observer?: ManagerObserver;
  /** Where the informers' events come from; default the API server. Tests give kubeloop/testing's `ScriptedEvents`. */
  source?: EventSource;
  /**
   * The dev override (with leader election only): while a `kubeloop run --dev` holds the Lease
   * `<name>-dev` beside the leader Lease, the leader stops its work (as on a graceful stop, keeping
   * its Lease), reports phase "paused" (not ready), and starts it again once that Lease is
   * released or expires. Runnables must therefore be restartable (start after stop); a
   * controller starts again with a new queue. `false` turns it off. Default: on.
   */
  devOverride?: false | { name?: string };
}

/** A cache's namespace, or its namespaces joined by commas; "" for all. */
function namespacesOf(scope: InformerScope): string {
  return scope.namespace ?? scope.namespaces?.join(",") ?? "";
}

/** Observes a Manager (metrics): controllers' hooks plus leadership and the caches' watches. */
export interface ManagerObserver extends ControllerObserver {
  leader?(name: string, isLeader: boolean): void;
  /** Called once, when the Manager is made: `read` gives each cache's watch health when called (at a scrape). */
  caches?(read: () => CacheHealth[]): void;
}

/** A cache's watch health, as metrics read it. */
export interface CacheHealth {
  /** `apiVersion Kind`. */
  kind: string;
  /** Its namespace ("" for all; several joined by commas). */
  namespace: string;
  health: InformerHealth;
}

/** The caches did not sync in time: names each resource and the last error seen for it. */
export class CacheSyncTimeoutError extends Error {
  override name = "CacheSyncTimeoutError";
  readonly reason = "CacheSyncTimeout";
}

/** Where a Manager is: for health and readiness endpoints. */
export interface ManagerStatus {
  phase: "created" | "syncing" | "following" | "leading" | "paused" | "stopping" | "stopped" | "failed";
  /** The dev run this replica is paused for, when phase is "paused". */
  pausedBy?: string;
  /** Every cache synced. */
  synced: boolean;
  /** Leader election disabled, or this replica leads, or it follows a known leader. */
  leadershipSettled: boolean;
  leader?: string;
  /** Why it failed, when phase is "failed". */
  error?: string;
  /** The watches failing for longer than `watchFailureToleranceMs` (none: every watch works). */
  failingWatches: FailingWatch[];
}

/** A cache's watch that has been failing for longer than the Manager tolerates. */
export interface FailingWatch {
  /** `apiVersion Kind`, and the namespace when the cache is of some namespaces. */
  cache: string;
  failingForMs: number;
  /** The last error, as the watcher reported it. */
  error: string | undefined;
}

/**
 * Runs controllers and runnables. Register them first (`manager.controller(Kind)…reconcile(fn)`,
 * `manager.add(runnable)`), then `await manager.run(signal)`.
 *
 * Guarantees: no controller runs before every cache it reads has synced; with leader election,
 * only the leader's controllers and runnables run. On a graceful stop they start nothing new and
 * the Lease is released only after all of them have stopped, so two replicas never act at once.
 * When renewal has failed for the renew deadline (before another replica can take the Lease),
 * every signal aborts at once and nothing new starts.
 * Failure modes: rejects with CacheSyncTimeoutError (naming resources), LeaderElectionLostError.
 * After LeaderElectionLostError the host must exit the process: work that ignores its aborted
 * signal cannot be killed in JavaScript and may keep acting (`kubeloop run` exits non-zero).
 */
export class Manager {
  readonly client: Client;
  readonly name: string;
  readonly informers: InformerFactory;
  readonly logger: Logger;
  readonly recorder: EventRecorder;
  readonly writes = new WrittenVersions();
  readonly identity: string;
  private readonly controllers: { name: string }[] = [];
  private readonly runnables: Runnable[] = [];
  private readonly required: InformerHandle[] = [];
  private readonly elector: LeaderElector | undefined;
  private readonly pause: PauseWatch | undefined;
  private state: Omit<ManagerStatus, "failingWatches"> = { phase: "created", synced: false, leadershipSettled: false };
  private started: Runnable[] = [];
  private syncedResolve!: () => void;
  private readonly syncedPromise = new Promise<void>((resolve) => (this.syncedResolve = resolve));

  constructor(
    client: Client,
    private readonly options: ManagerOptions,
  ) {
    checkOperatorName(options.name);
    checkManagerTimings(options);
    this.client = client;
    this.name = options.name;
    this.logger = options.logger ?? pino({ name: options.name });
    // A throwing listener (a watches() mapper, a predicate) must not stop the informer, nor go unseen.
    this.informers = new InformerFactory(client, {
      ...(options.source ? { source: options.source } : {}),
      inactivityTimeoutMs: options.watchInactivityTimeoutMs ?? MANAGER_DEFAULTS.watchInactivityTimeoutMs,
      onListenerError: (error, informer) =>
        this.logger.error({ err: error, kind: describeKind(informer.kind), namespace: informer.scope.namespace }, "an informer listener (mapper, predicate or event handler) threw: event skipped for it"),
    });
    options.observer?.caches?.(() =>
      this.informers.all().map((i) => ({ kind: describeKind(i.kind), namespace: namespacesOf(i.scope), health: i.health() })),
    );
    const le = options.leaderElection === false ? undefined : (options.leaderElection ?? {});
    this.identity = le?.identity ?? defaultIdentity();
    this.recorder = new EventRecorder(client, {
      controller: `kubeloop.dev/${options.name}`,
      instance: this.identity,
      onError: (error) => this.logger.warn({ err: error }, "could not record an event"),
    });
    if (le) {
      const leases = leaseNames(options.name, le, client.defaultNamespace, options.devOverride ? options.devOverride.name : undefined);
      this.elector = new LeaderElector(client, {
        namespace: leases.namespace,
        name: leases.leader,
        identity: this.identity,
        ...(le.leaseDurationMs !== undefined ? { leaseDurationMs: le.leaseDurationMs } : {}),
        ...(le.renewDeadlineMs !== undefined ? { renewDeadlineMs: le.renewDeadlineMs } : {}),
        ...(le.retryPeriodMs !== undefined ? { retryPeriodMs: le.retryPeriodMs } : {}),
        // The Manager releases the Lease itself, once its work has stopped.
        releaseOnCancel: false,
        onNewLeader: (leader) => {
          this.state = { ...this.state, leader, leadershipSettled: true };
          this.logger.info({ leader, me: leader === this.identity }, "new leader observed");
        },
        onError: (error) => this.logger.warn({ err: error }, "leader election attempt failed"),
      });
      if (options.devOverride !== false) {
        this.pause = new PauseWatch(
          client,
          { namespace: leases.namespace, name: leases.dev },
          {
            identity: this.identity,
            periodMs: this.elector.retryPeriodMs,
            onError: (error) => this.logger.warn({ err: error }, "cannot read the dev override Lease: what it said last holds (paused stays paused; a 403 at start means no `kubeloop run --dev` can pause this operator)"),
            onRecovered: () => this.logger.info("the dev override Lease can be read again"),
          },
        );
      }
    }
  }

  /** A controller builder wired to this manager (shared informers, logging, events, metrics, read-your-own-writes). */
  controller<T extends KubeObject>(kind: ResourceKind<T>): ControllerBuilder<T> {
    if (this.state.phase !== "created") throw new Error("add controllers before manager.run()");
    return new ControllerBuilder<T>(kind, (spec) => this.addController(spec));
  }

  /** Makes and registers a controller from a builder's spec, wired to this manager. */
  addController<T extends KubeObject>(spec: ControllerSpec<T>): Controller<T> {
    const c = new Controller<T>(this.client, {
      ...spec,
      options: {
        logger: this.logger,
        recorder: this.recorder,
        fieldManager: this.name,
        ...(this.options.observer ? { observer: this.options.observer } : {}),
        ...spec.options,
        informers: this.informers,
        writes: this.writes,
      },
    });
    this.register(c);
    return c;
  }

  /**
   * The shared informer of `kind` in `scope`, required: the Manager starts it and waits for it
   * to sync before anything runs (on followers too, so caches and indexes are warm).
   */
  informer<T extends KubeObject>(kind: ResourceKind<T>, scope: InformerScope = {}): CacheView<T> {
    if (this.state.phase !== "created") throw new Error("require informers before manager.run()");
    const informer = this.informers.informer(kind, scope);
    if (!this.required.includes(informer)) this.required.push(informer);
    return informer;
  }

  /** Adds a runnable (started after sync and, if it needs it, leadership). */
  add(runnable: Runnable): void {
    if (this.state.phase !== "created") throw new Error("add runnables before manager.run()");
    this.runnables.push(runnable);
  }

  /** Where the manager is (health and readiness). */
  get status(): ManagerStatus {
    return { ...this.state, failingWatches: this.failingWatches() };
  }

  /** The started caches whose watch has failed for longer than the tolerance. */
  private failingWatches(): FailingWatch[] {
    const tolerance = this.options.watchFailureToleranceMs ?? MANAGER_DEFAULTS.watchFailureToleranceMs;
    const failing: FailingWatch[] = [];
    for (const informer of this.informers.all()) {
      const health = informer.health();
      if (health.failingForMs === undefined || health.failingForMs < tolerance) continue;
      const where = namespacesOf(informer.scope);
      failing.push({ cache: `${describeKind(informer.kind)}${where ? ` in ${where}` : ""}`, failingForMs: Math.round(health.failingForMs), error: health.lastError?.message });
    }
    return failing;
  }

  /** Resolves once every cache has synced (never, if run() fails before). */
  whenSynced(): Promise<void> {
    return this.syncedPromise;
  }

  /** Ready: caches synced, leadership settled (leading, or following a known leader), and no watch failing past the tolerance. */
  get ready(): boolean {
    return this.state.synced && this.state.leadershipSettled && (this.state.phase === "leading" || this.state.phase === "following") && this.failingWatches().length === 0;
  }

  /**
   * Runs until `signal` aborts (resolves after a graceful stop) or a fatal error (rejects:
   * CacheSyncTimeoutError, LeaderElectionLostError). Call once.
   */
  async run(signal: AbortSignal): Promise<void> {
    if (this.state.phase !== "created") throw new Error("manager.run() may be called once");
    const stopWrites = this.client.onWrite((kind, object) => {
      if (this.informers.all().some((i) => i.kind.apiVersion === kind.apiVersion && i.kind.kind === kind.kind)) this.writes.record(kind, object);
    });
    const leading = new AbortController();
    try {
      this.state = { ...this.state, phase: "syncing" };
      await this.sync(signal);
      if (signal.aborted) return;
      this.state = { ...this.state, synced: true };
      this.syncedResolve();
      await this.startRunnables(signal, false);
      const held = await this.lead(signal, leading.signal);
      if (held === "aborted") return; // stopped while following
      const end = held?.end;
      for (;;) {
        const after = await this.whilePaused(signal, end);
        if (after === "lost") await this.onLeadershipLost();
        if (after === "aborted") break;
        this.state = { ...this.state, phase: "leading", leadershipSettled: true, pausedBy: undefined, ...(this.elector ? { leader: this.identity } : {}) };
        await this.startRunnables(signal, true);
        const watching = new AbortController();
        const outcome = await Promise.race([aborted(signal, watching.signal), ...(end ? [end] : []), ...(this.pause ? [this.pause.until("held", watching.signal).then(() => "paused" as const, () => "aborted" as const)] : [])]);
        watching.abort();
        if (outcome === "lost") await this.onLeadershipLost();
        if (outcome !== "paused") break;
        this.logger.warn("a dev run asks this operator to pause: finishing work in flight, then acting no more until it ends");
        const abandoned = await this.stopRunnables(this.graceMs, undefined, true);
        if (abandoned) this.logger.error({ abandoned }, "work that ignored its signal may still run while paused");
      }
      await this.shutDown(end, leading);
    } catch (error) {
      this.state = { ...this.state, phase: "failed", error: error instanceof Error ? error.message : String(error) };
      await this.stopRunnables(0, AbortSignal.abort());
      throw error;
    } finally {
      leading.abort();
      stopWrites();
      await this.informers.stop();
      await this.recorder.flush();
      if (this.state.phase !== "failed") this.state = { ...this.state, phase: "stopped" };
    }
  }

  /**
   * With leader election: waits for the Lease, then keeps it renewed until `leading` aborts (not
   * the process signal: renewal goes on through a graceful stop). Resolves how leadership will
   * end (wrapped: awaiting this must not wait for it); `undefined` without leader election;
   * "aborted" if `signal` aborted while following.
   */
  private async lead(signal: AbortSignal, leading: AbortSignal): Promise<{ end: Promise<LeadershipEnd> } | undefined | "aborted"> {
    if (!this.elector) return undefined;
    this.state = { ...this.state, phase: "following" };
    this.logger.info({ identity: this.identity }, "waiting for leadership");
    try {
      await this.elector.acquire(signal);
    } catch {
      return "aborted";
    }
    this.options.observer?.leader?.(this.name, true);
    this.logger.info({ identity: this.identity }, "became leader");
    return { end: this.elector.hold(leading) };
  }

  /** Renewal failed: every signal aborts at once; rejects after the grace period. */
  private async onLeadershipLost(): Promise<never> {
    this.logger.error("leadership lost: aborting all work at once");
    this.state = { ...this.state, phase: "stopping" };
    this.options.observer?.leader?.(this.name, false);
    const abandoned = await this.stopRunnables(this.graceMs, AbortSignal.abort());
    throw new LeaderElectionLostError(
      `${this.identity} lost the Lease (could not renew it within the renew deadline)${abandoned ? `; ${abandoned} tasks ignored their signal and still run: exit the process` : ""}`,
    );
  }

  /**
   * A graceful stop: the runnables stop first (work in flight finishes within the grace
   * period; should renewal fail meanwhile, it is aborted at once), and only then is the Lease
   * released, unless work was abandoned or renewal failed (then it is left to expire).
   */
  private async shutDown(end: Promise<LeadershipEnd> | undefined, leading: AbortController): Promise<void> {
    this.logger.info("shutting down: finishing work in flight before giving up the Lease");
    this.state = { ...this.state, phase: "stopping" };
    const lost = new AbortController();
    void end?.then((o) => o === "lost" && lost.abort());
    const abandoned = await this.stopRunnables(this.graceMs, lost.signal);
    leading.abort();
    if (!end || !this.elector) return;
    const how = await end;
    this.options.observer?.leader?.(this.name, false);
    if (how === "lost") this.logger.error("leadership lost during shutdown: work was aborted; the Lease is left to expire");
    else if (abandoned > 0) this.logger.error({ abandoned }, "work abandoned at shutdown may still run: the Lease is left to expire instead of being released");
    else await this.elector.release();
  }

  private get graceMs(): number {
    return this.options.gracefulShutdownTimeoutMs ?? MANAGER_DEFAULTS.gracefulShutdownTimeoutMs;
  }

  private register<T extends KubeObject>(c: Controller<T>): void {
    if (this.state.phase !== "created") throw new Error("add controllers before manager.run()");
    if (this.controllers.some((o) => o.name === c.name)) {
      throw new Error(`a controller named "${c.name}" is already registered: give one another name with .withOptions({ name })`);
    }
    this.controllers.push(c);
    // After a dev pause, the same controller starts again (with a new queue).
    this.runnables.push({
      start: (signal) => c.start(signal),
      stop: (timeoutMs, hurry) => c.stop(timeoutMs, hurry),
      informers: () => c.watched,
      // A sharded controller acts on its share on every replica; the others, on the leader.
      needsLeader: !c.sharded,
    });
  }

  private async sync(signal: AbortSignal): Promise<void> {
    const informers = [...new Set([...this.required, ...this.runnables.flatMap((r) => r.informers?.() ?? [])])];
    for (const i of informers) {
      this.writes.observe(i);
      // The watcher recovers by itself; say what it recovered from.
      i.subscribe((e) => {
        if (e.type === "error") this.logger.warn({ kind: describeKind(i.kind), namespace: i.scope.namespace, err: e.error }, "watch interrupted: recovering");
      });
      i.start();
    }
    const timeoutMs = this.options.cacheSyncTimeoutMs ?? MANAGER_DEFAULTS.cacheSyncTimeoutMs;
    const syncDeadline = deadline(timeoutMs, [signal]);
    const started = performance.now();
    // Progress on a slow sync (large lists, an API server far away, a CRD still missing).
    const progress = setInterval(() => {
      const waiting = informers.filter((i) => !i.store.isReady).map((i) => describeKind(i.kind));
      this.logger.info({ synced: informers.length - waiting.length, of: informers.length, waiting }, "waiting for caches to sync");
    }, 5_000);
    try {
      await Promise.all(informers.map((i) => i.waitUntilReady(syncDeadline.signal)));
    } catch (error) {
      if (signal.aborted) return;
      const missing = informers.filter((i) => !i.store.isReady);
      const lines = await Promise.all(
        missing.map(async (i) => {
          // Discovery says best why a kind cannot be listed (typically: its CRD is not installed).
          const why = await this.client.mapper.mapping({ apiVersion: i.kind.apiVersion, kind: i.kind.kind }).then(
            () => i.lastError?.message ?? "no answer yet",
            (e: unknown) => (e instanceof Error ? e.message : String(e)),
          );
          return `${describeKind(i.kind)}${i.scope.namespace ? ` in ${i.scope.namespace}` : ""}: ${why}`;
        }),
      );
      throw new CacheSyncTimeoutError(`caches did not sync within ${timeoutMs} ms:\n  ${lines.join("\n  ")}`, { cause: error });
    } finally {
      clearInterval(progress);
      syncDeadline.clear();
    }
    this.logger.info({ informers: informers.length, ms: Math.round(performance.now() - started) }, "caches synced");
  }

  private async startRunnables(signal: AbortSignal, leaderOnly: boolean): Promise<void> {
    for (const r of this.runnables) {
      if (signal.aborted) return; // stopped while one was starting (a startup being retried): start nothing more
      if ((r.needsLeader ?? true) !== leaderOnly) continue;
      await r.start(signal);
      this.started.push(r);
    }
  }

  /**
   * Before acting: reads the dev Lease until a read is definite (a failed read is not "free").
   * Held by a dev run: pauses (holding the leader Lease, acting not at all), acknowledges, and
   * waits until a read shows the dev Lease released or expired ("act"); or the signal aborts
   * ("aborted"), or leadership is lost ("lost").
   */
  private async whilePaused(signal: AbortSignal, end: Promise<LeadershipEnd> | undefined): Promise<"act" | "aborted" | "lost"> {
    const pause = this.pause;
    if (!pause) return "act";
    const watching = new AbortController();
    const stop = AbortSignal.any([signal, watching.signal]);
    const paused = async (): Promise<"act"> => {
      const now = await pause.settled(stop);
      if (now.state === "free") return "act";
      this.state = { ...this.state, phase: "paused", pausedBy: now.holder };
      this.logger.warn({ devRun: now.holder }, "paused by a dev run: not acting until it ends (its Lease is released or expires)");
      await pause.acknowledge();
      await pause.until("free", stop);
      this.logger.warn({ devRun: now.holder }, "the dev run ended: acting again");
      return "act";
    };
    try {
      return await Promise.race([
        paused().catch(() => "aborted" as const),
        aborted(signal, watching.signal),
        ...(end ? [end.then((o) => (o === "lost" ? ("lost" as const) : ("aborted" as const)))] : []),
      ]);
    } finally {
      watching.abort();
    }
  }

  /** Stops every started runnable (only those needing the leader, for a pause); returns how many tasks were abandoned. */
  private async stopRunnables(timeoutMs: number, hurry?: AbortSignal, leaderOnly = false): Promise<number> {
    const started = leaderOnly ? this.started.filter((r) => r.needsLeader ?? true) : this.started.splice(0);
    if (leaderOnly) this.started = this.started.filter((r) => !(r.needsLeader ?? true));
    const results = await Promise.all(started.map((r) => r.stop(timeoutMs, hurry)));
    return results.reduce((sum, r) => sum + (r?.abandoned ?? 0), 0);
  }
}

/** Resolves "aborted" once `signal` aborts; its listener goes when `done` aborts (a race that ended otherwise). */
function aborted(signal: AbortSignal, done: AbortSignal): Promise<"aborted"> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve("aborted");
    const onAbort = () => resolve("aborted");
    signal.addEventListener("abort", onAbort, { once: true });
    done.addEventListener("abort", () => signal.removeEventListener("abort", onAbort), { once: true });
  });
}
