// A sharded operator's run (issue 33): the ShardCoordinator ticking on the member Leases from
// before the caches list until after the work has stopped, the Share the sharded informers watch
// (kept at the buckets acted on), and the fence that holds the work to them. Releasing buckets
// follows the order the fence needs: not acted on → reconciles drained → timers and daemons
// stopped → the share shrinks → the claim is dropped.
import type { Logger } from "pino";
import type { Client } from "../client/client.js";
import type { Clock } from "../core/clock.js";
import { systemClock } from "../core/clock.js";
import { ForbiddenError } from "../core/errors.js";
import type { KubeObject } from "../core/objects.js";
import { PauseWatch } from "../controller/dev-pause.js";
import { ShardFence } from "../controller/shard-fence.js";
import { ShardCoordinator } from "../controller/sharding.js";
import { formatClaims } from "../controller/shard-members.js";
import type { ShardObserver } from "../observe/metrics.js";
import { Share } from "../runtime/share.js";
import type { Settings } from "./settings.js";

/** What a sharded run needs to know. */
export interface ShardedRunOptions {
  operator: string;
  /** Where the member Leases live (the leader Lease's namespace). */
  namespace: string;
  identity: string;
  sharding: Exclude<Settings["sharding"], false>;
  timings: { leaseDurationMs: number; renewDeadlineMs: number; retryPeriodMs: number };
  /** The operator's dev Lease: while a dev run (or `kubeloop pause`) holds it, this replica lets its buckets go. None: never paused. */
  devLease?: { namespace: string; name: string };
  logger: Logger;
  observer?: ShardObserver;
  clock?: Clock;
}

/** One replica's part in a sharded operator: the coordinator's loop, the share and the fence. */
export class ShardedRun {
  readonly share: Share;
  readonly fence: ShardFence;
  readonly coordinator: ShardCoordinator;
  private readonly stoppers: ((test: (object: KubeObject) => boolean) => Promise<number>)[] = [];
  private readonly clock: Clock;
  private readonly stopping = new AbortController();
  private loop: Promise<void> | undefined;
  private readonly modes = new Set<"server" | "client">();
  private readonly pause: PauseWatch | undefined;

  constructor(
    client: Client,
    private readonly o: ShardedRunOptions,
  ) {
    this.clock = o.clock ?? systemClock;
    const { buckets: count, key } = o.sharding;
    this.share = new Share({ key, count, buckets: [], onMode: (mode) => this.heard(mode) });
    this.coordinator = new ShardCoordinator(client, {
      operator: o.operator,
      namespace: o.namespace,
      identity: o.identity,
      buckets: count,
      key,
      ...o.timings,
      clock: this.clock,
      release: (buckets) => this.release(buckets),
      acquire: (buckets, waitedMs) => this.acquire(buckets, waitedMs),
    });
    this.fence = new ShardFence(this.share, (bucket) => this.coordinator.standing(bucket), o.timings.retryPeriodMs, this.clock);
    if (o.devLease) {
      this.pause = new PauseWatch(client, o.devLease, {
        identity: o.identity,
        periodMs: o.timings.retryPeriodMs,
        clock: this.clock,
        onError: (error) => o.logger.warn({ err: error }, "sharding: cannot read the dev override Lease: what it said last holds"),
      });
    }
  }

  /** Registers how the tasks (timers, daemons) of some objects are stopped, for releases. */
  onRelease(stop: (test: (object: KubeObject) => boolean) => Promise<number>): void {
    this.stoppers.push(stop);
  }

  /**
   * Joins: ticks until one tick succeeded (the share is known before the caches list), then
   * keeps ticking every retry period until `stop()`. Rejects only if `signal` aborts first.
   */
  async start(signal: AbortSignal): Promise<void> {
    const first = AbortSignal.any([signal, this.stopping.signal]);
    while (!(await this.step())) await this.clock.sleep(this.o.timings.retryPeriodMs, first);
    this.o.logger.info({ identity: this.o.identity, buckets: this.o.sharding.buckets, key: this.o.sharding.key }, "sharding: joined (buckets are claimed from the next tick on)");
    this.loop = (async () => {
      while (!this.stopping.signal.aborted) {
        await this.clock.sleep(this.coordinator.periodMs, this.stopping.signal).catch(() => {});
        if (!this.stopping.signal.aborted) await this.step();
      }
    })();
  }

  /** After the work stopped: leaves (the member Lease is deleted, so others take over at once). */
  async stop(): Promise<void> {
    this.stopping.abort();
    await this.loop;
    const left = await this.coordinator.leave().catch((error: unknown) => {
      this.o.logger.warn({ err: error }, "sharding: could not delete the member Lease: the others take its buckets once it expires");
      return true;
    });
    if (!left) this.o.logger.error("sharding: work on some buckets did not stop: the member Lease is left to expire");
    this.o.observer?.owned(0);
  }

  /** Why this replica is not ready, if it is paused for a dev run (for /readyz). */
  problem(): string | undefined {
    const paused = this.coordinator.pausedFor;
    return paused === undefined ? undefined : `paused by the dev run ${paused}`;
  }

  /** A line for /readyz: what this replica owns and how its watches filter. */
  describe(): string {
    const status = this.coordinator.status;
    const modes = status.active.length === this.o.sharding.buckets ? "none (every bucket)" : [...this.modes].join("+") || "not listed yet";
    const disagreeing = status.disagreeing.size ? `; ${status.disagreeing.size} member(s) run another sharding (${[...new Set(status.disagreeing.values())].join(", ")}): no bucket changes hands` : "";
    return `buckets ${formatClaims(status.active) || "none"} of ${this.o.sharding.buckets} by ${this.o.sharding.key}, ${status.members.length} member(s), filtering: ${modes}${disagreeing}`;
  }

  /** One tick (after reading the dev Lease); a failure is logged, and past the renew deadline every bucket is let go. */
  private async step(): Promise<boolean> {
    await this.readPause();
    try {
      await this.coordinator.tick();
      const status = this.coordinator.status;
      this.o.observer?.members(status.members.length, status.disagreeing.size);
      if (status.disagreeing.size) this.o.logger.warn({ disagreeing: Object.fromEntries(status.disagreeing) }, "sharding: live members run another sharding: no bucket is claimed anew until they are gone");
      return true;
    } catch (error) {
      this.o.logger.warn({ err: error }, "sharding: could not renew the member Lease");
      await this.coordinator.lapse().catch(() => {});
      return false;
    }
  }

  /** Follows the dev Lease: held → paused for its holder; free → not; a failed read changes nothing (a 403: never paused). */
  private async readPause(): Promise<void> {
    if (!this.pause) return;
    const read = await this.pause.read();
    const before = this.coordinator.pausedFor;
    if (read.state === "held") this.coordinator.pausedFor = read.holder;
    else if (read.state === "free" || read.error instanceof ForbiddenError) this.coordinator.pausedFor = undefined;
    const now = this.coordinator.pausedFor;
    if (now !== before && now !== undefined) this.o.logger.warn({ devRun: now }, "sharding: a dev run asks this operator to pause: letting every bucket go until it ends");
    if (now !== before && now === undefined) this.o.logger.warn({ devRun: before }, "sharding: the dev run ended: claiming buckets again");
  }

  private async release(buckets: number[]): Promise<number[]> {
    const started = this.clock.now();
    const drained = await this.fence.drain(buckets, this.o.timings.retryPeriodMs);
    const picked = new Set(drained);
    const abandoned = (await Promise.all(this.stoppers.map((stop) => stop((object) => picked.has(this.fence.bucket(object)))))).reduce((a, b) => a + b, 0);
    if (abandoned > 0) {
      this.o.logger.error({ buckets: formatClaims(drained), abandoned }, "sharding: tasks ignored their signal: their buckets stay claimed until they end");
      return [];
    }
    if (drained.length < buckets.length) this.o.logger.info({ busy: formatClaims(buckets.filter((b) => !picked.has(b))) }, "sharding: reconciles still run on buckets to hand over: released next period");
    this.share.set(this.share.buckets.filter((b) => !picked.has(b)));
    this.o.logger.info({ buckets: formatClaims(drained), ms: this.clock.now() - started }, "sharding: released buckets");
    this.o.observer?.moved("released", drained.length);
    this.o.observer?.owned(this.share.buckets.length);
    return drained;
  }

  private acquire(buckets: number[], waitedMs: number[]): void {
    this.share.set([...this.share.buckets, ...buckets]);
    this.o.logger.info({ buckets: formatClaims(buckets) }, "sharding: acquired buckets");
    this.o.observer?.moved("acquired", buckets.length);
    for (const ms of waitedMs) this.o.observer?.handover(ms / 1000);
    this.o.observer?.owned(this.share.buckets.length);
  }

  private heard(mode: "server" | "client"): void {
    if (!this.modes.has(mode)) {
      this.modes.add(mode);
      const why = mode === "server" ? "the API server filters each watch by its shardSelector" : "the API server does not apply shardSelector (the ShardedListAndWatch gate is off or the server is older): every object is sent and filtered here";
      this.o.logger.info({ mode }, `sharding: ${why}`);
    }
    this.o.observer?.mode(mode);
  }
}
