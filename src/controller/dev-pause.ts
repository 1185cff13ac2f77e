// The dev override (kopf's `kopf run --dev` and freezing): a developer's `kubeloop run --dev`
// holds a Lease `<operator>-dev` beside the operator's leader Lease. The operator of the same
// name running in the cluster sees it, stops acting (its work stops as on a graceful stop; the
// leader keeps its Lease, so no other replica starts), says so in its log and readiness, and
// acknowledges on the Lease (annotation kubeloop.dev/paused = its identity). It acts again when
// the dev run releases the Lease or stops renewing it (killed): after the lease duration.
//
// Liveness is judged as leader election judges it: a Lease is live while its resourceVersion
// changed within leaseDurationSeconds of this process's own clock (no trust in remote clocks).
// A read that fails is "unknown", never "free": a paused operator stays paused until a read
// shows the Lease released, expired or deleted.
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { leaseResource, type Client } from "../client/client.js";
import { Lease } from "../core/builtins.js";
import { systemClock, type Clock } from "../core/clock.js";
import { AlreadyExistsError, ConflictError, ForbiddenError, NotFoundError } from "../core/errors.js";
import { microTime } from "../core/objects.js";
import type * as coordination from "../core/kube/coordination/v1.js";
import { CLAIMS_ANNOTATION, MEMBER_LABEL, MEMBER_PAUSED_ANNOTATION } from "./shard-members.js";

/** The annotation by which a paused operator acknowledges a dev run. */
export const PAUSED_ANNOTATION = "kubeloop.dev/paused";

type LeaseBody = coordination.Lease;

/** Where the dev Lease lives. */
export interface DevLeaseRef {
  namespace: string;
  /** Default `<operator>-dev`. */
  name: string;
}

/**
 * What one read of the dev Lease said: held by a live dev run, free (absent, released or
 * expired), or unknown (the read failed). Unknown is never free: a pause ends only on a read
 * that shows the Lease released or expired (client-go's elector treats a failed read as "not
 * acquired" in the same way).
 */
export type PauseState = { state: "held"; holder: string } | { state: "free" } | { state: "unknown"; error: unknown };

/** The operator's side: is a dev run holding the Lease? Polled; never throws. */
export class PauseWatch {
  private observedRv: string | undefined;
  private observedAt = 0;
  private lease: LeaseBody | undefined;
  private readonly clock: Clock;
  private failing = false;

  constructor(
    private readonly client: Client,
    private readonly ref: DevLeaseRef,
    private readonly options: { identity: string; periodMs: number; clock?: Clock; onError?: (error: unknown) => void; onRecovered?: () => void },
  ) {
    this.clock = options.clock ?? systemClock;
  }

  /**
   * One read of the dev Lease. A Lease that does not exist is free; one whose holder is empty,
   * or whose resourceVersion has not changed for its duration by this process's clock, is free
   * (expired); a failed read is unknown (its first failure in a row is reported to `onError`).
   */
  async read(signal?: AbortSignal): Promise<PauseState> {
    try {
      const lease = await this.leases().get(this.ref.name, signal ? { signal } : {});
      if (this.failing) {
        this.failing = false;
        this.options.onRecovered?.();
      }
      const rv = lease.metadata?.resourceVersion;
      if (rv !== this.observedRv) {
        this.observedRv = rv;
        this.observedAt = this.clock.now();
      }
      this.lease = lease;
      const holder = lease.spec?.holderIdentity ?? "";
      const durationMs = (lease.spec?.leaseDurationSeconds ?? 0) * 1000;
      const live = holder !== "" && this.observedAt + durationMs > this.clock.now() && !pauseOver(lease, holder, Date.now()); // wall clock: renewTime is one
      return live ? { state: "held", holder } : { state: "free" };
    } catch (error) {
      if (error instanceof NotFoundError) {
        this.lease = undefined;
        return { state: "free" };
      }
      if (!this.failing && !signal?.aborted) {
        this.failing = true;
        this.options.onError?.(error);
      }
      return { state: "unknown", error };
    }
  }

  /**
   * Polls every period until a read shows the Lease in `state` ("held", with the holder, or
   * "free"); failed reads change nothing and polling goes on. Rejects when `signal` aborts.
   */
  async until(state: "held" | "free", signal: AbortSignal): Promise<PauseState & { state: "held" | "free" }> {
    for (;;) {
      const read = await this.read(signal);
      if (signal.aborted) throw signal.reason;
      if (read.state === state) return read;
      await this.clock.sleep(this.options.periodMs, signal);
    }
  }

  /**
   * Polls until a read says held or free. A refused read (403) counts as free: an operator whose
   * RBAC does not let it read the dev Lease cannot be paused, so it acts (`onError` said why).
   * Rejects when `signal` aborts.
   */
  async settled(signal: AbortSignal): Promise<PauseState & { state: "held" | "free" }> {
    for (;;) {
      const read = await this.read(signal);
      if (signal.aborted) throw signal.reason;
      if (read.state !== "unknown") return read;
      if (read.error instanceof ForbiddenError) return { state: "free" };
      await this.clock.sleep(this.options.periodMs, signal);
    }
  }

  /** Tells the dev run this operator has stopped acting (annotation on its Lease). Never throws. */
  async acknowledge(): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const lease = this.lease;
      if (!lease) return;
      try {
        const next = { ...lease, metadata: { ...lease.metadata, annotations: { ...lease.metadata?.annotations, [PAUSED_ANNOTATION]: this.options.identity } } };
        this.lease = (await this.leases().replace(next));
        this.observedRv = this.lease.metadata?.resourceVersion; // our own write does not make it live
        return;
      } catch (error) {
        if (!(error instanceof ConflictError)) return this.options.onError?.(error);
        await this.read();
      }
    }
  }

  private leases() {
    return leaseResource(this.client, Lease).namespace(this.ref.namespace);
  }
}

/** Options of {@link DevOverride.take}. */
export interface DevOverrideOptions {
  /** The operator's leader Lease: whose holder must acknowledge before the dev run acts. */
  leaderLease: { namespace: string; name: string };
  /** Default: hostname + random suffix, prefixed "dev:". */
  identity?: string;
  /** How long the Lease stays valid without renewal (the operator resumes this long after the dev run died). Default 15 000 ms. */
  leaseDurationMs?: number;
  /** Renewal period. Default 2 000 ms. */
  renewMs?: number;
  /** How long to wait for the operator in the cluster to acknowledge. Default 60 000 ms. */
  ackTimeoutMs?: number;
  /** The operator's name, to wait for its sharded replicas too (each says so on its member Lease). */
  members?: string;
  log?: (message: string) => void;
}

/**
 * The dev run's side: holds (and renews) the `<operator>-dev` Lease, waits until the operator
 * leading in the cluster acknowledged (and, given `members`, every live sharded replica of it
 * let its buckets go), and releases the Lease at the end.
 *
 * Fails: when another live dev run holds the Lease (naming it), and when a leader is live but
 * does not acknowledge within `ackTimeoutMs` (an operator built without the dev override, or
 * without RBAC to update its Leases); the Lease is released then.
 */
export class DevOverride {
  private readonly stop = new AbortController();
  private renewing: Promise<void> = Promise.resolve();

  private constructor(
    private readonly client: Client,
    private readonly ref: DevLeaseRef,
    readonly identity: string,
    private readonly durationMs: number,
  ) {}

  static async take(client: Client, ref: DevLeaseRef, options: DevOverrideOptions): Promise<DevOverride> {
    const identity = options.identity ?? `dev:${hostname()}_${randomBytes(3).toString("hex")}`;
    const durationMs = options.leaseDurationMs ?? 15_000;
    const log = options.log ?? (() => {});
    const self = new DevOverride(client, ref, identity, durationMs);
    await self.acquire();
    self.renewing = self.renew(options.renewMs ?? 2_000);
    try {
      const deadline = Date.now() + (options.ackTimeoutMs ?? 60_000);
      await self.leaderPaused(options, deadline, log);
      if (options.members !== undefined) await self.membersPaused(options.members, deadline, options.ackTimeoutMs ?? 60_000, log);
      return self;
    } catch (error) {
      await self.release();
      throw error;
    }
  }

  /** Waits until the live leader (if any) acknowledged this dev run on the dev Lease. */
  private async leaderPaused(options: DevOverrideOptions, deadline: number, log: (message: string) => void): Promise<void> {
    const leader = await this.liveLeader(options.leaderLease);
    if (!leader) {
      if (options.members === undefined) log(`no operator leads in ${options.leaderLease.namespace} (Lease ${options.leaderLease.name}): nothing to pause`);
      return;
    }
    log(`asking ${leader} to pause (Lease ${this.ref.namespace}/${this.ref.name})`);
    for (;;) {
      const lease = await this.leases().get(this.ref.name);
      if (lease.metadata?.annotations?.[PAUSED_ANNOTATION] === leader) return log(`${leader} paused`);
      if (!(await this.liveLeader(options.leaderLease))) return; // the leader went away meanwhile: nothing acts in the cluster
      if (Date.now() > deadline) {
        throw new Error(`the operator leading in the cluster (${leader}) did not pause within ${options.ackTimeoutMs ?? 60_000} ms: it may predate the dev override, or lack RBAC to read and update the Lease ${this.ref.namespace}/${this.ref.name}`);
      }
      await systemClock.sleep(500);
    }
  }

  /**
   * A sharded operator: waits until every live member (a member Lease renewed within its
   * duration, by its renewTime) says it paused for this dev run and claims no bucket.
   */
  private async membersPaused(operator: string, deadline: number, timeoutMs: number, log: (message: string) => void): Promise<void> {
    let told = false;
    for (;;) {
      const leases = (await this.leases().list({ labelSelector: `${MEMBER_LABEL}=${operator}` })).items;
      const live = leases.filter((l) => renewedHolder(l) !== undefined);
      const busy = live.filter((l) => l.metadata?.annotations?.[MEMBER_PAUSED_ANNOTATION] !== this.identity || (l.metadata?.annotations?.[CLAIMS_ANNOTATION] ?? "") !== "");
      if (busy.length === 0) {
        if (live.length) log(`${live.length} sharded replica(s) paused`);
        return;
      }
      if (!told) log(`asking ${live.length} sharded replica(s) to pause`);
      told = true;
      if (Date.now() > deadline) {
        throw new Error(`sharded replicas of ${operator} did not pause within ${timeoutMs} ms: ${busy.map((l) => l.spec?.holderIdentity).join(", ")} (they may predate pausing sharded replicas, or lack RBAC to read the Lease ${this.ref.namespace}/${this.ref.name})`);
      }
      await systemClock.sleep(500);
    }
  }

  /** Stops renewing and frees the Lease, so the operator in the cluster resumes at once. Never throws. */
  async release(): Promise<void> {
    this.stop.abort();
    await this.renewing;
    await DevOverride.free(this.client, this.ref, (holder) => holder === this.identity).catch(() => {}); // else it expires by itself
  }

  /**
   * Stops renewing and leaves the Lease held: the pause lasts until the Lease's duration has
   * passed without renewal, or until someone frees it (`kubeloop pause` / `kubeloop resume`).
   */
  async detach(): Promise<void> {
    this.stop.abort();
    await this.renewing;
  }

  /**
   * Frees the dev Lease (holder emptied, acknowledgement removed): the paused operator acts again
   * at its next poll. Only if its holder passes `holds`, when given. Resolves the holder it freed,
   * or undefined when nobody (or nobody it may free) held it. Rejects with the API error.
   */
  static async free(client: Client, ref: DevLeaseRef, holds?: (holder: string) => boolean): Promise<string | undefined> {
    const leases = leaseResource(client, Lease).namespace(ref.namespace);
    const lease = await leases.get(ref.name).catch((error: unknown) => (error instanceof NotFoundError ? undefined : Promise.reject(error)));
    const current = lease?.spec?.holderIdentity ?? "";
    if (!lease || current === "" || (holds && !holds(current))) return undefined;
    const annotations = { ...lease.metadata?.annotations };
    delete annotations[PAUSED_ANNOTATION];
    await leases.replace({ ...lease, metadata: { ...lease.metadata, annotations }, spec: { ...lease.spec, holderIdentity: "", leaseDurationSeconds: 1 } });
    return current;
  }

  private async acquire(): Promise<void> {
    const spec = { holderIdentity: this.identity, leaseDurationSeconds: Math.ceil(this.durationMs / 1000), renewTime: microTime(new Date()), acquireTime: microTime(new Date()) };
    let lease: LeaseBody;
    try {
      lease = (await this.leases().get(this.ref.name));
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
      try {
        await this.leases().create({ metadata: { name: this.ref.name, namespace: this.ref.namespace }, spec });
        return;
      } catch (raced) {
        if (!(raced instanceof AlreadyExistsError)) throw raced;
        lease = (await this.leases().get(this.ref.name));
      }
    }
    const holder = renewedHolder(lease);
    if (holder && holder !== this.identity) {
      throw new Error(`another dev run (${holder}) holds ${this.ref.namespace}/${this.ref.name}: stop it first, or wait until its Lease expires`);
    }
    const annotations = { ...lease.metadata?.annotations };
    delete annotations[PAUSED_ANNOTATION];
    await this.leases().replace({ ...lease, metadata: { ...lease.metadata, annotations }, spec: { ...lease.spec, ...spec } });
  }

  private async renew(periodMs: number): Promise<void> {
    while (!this.stop.signal.aborted) {
      try {
        await systemClock.sleep(periodMs, this.stop.signal);
      } catch {
        return;
      }
      try {
        const lease = (await this.leases().get(this.ref.name, { signal: this.stop.signal }));
        if (lease.spec?.holderIdentity !== this.identity) continue;
        await this.leases().replace({ ...lease, spec: { ...lease.spec, renewTime: microTime(new Date()) } }, { signal: this.stop.signal });
      } catch {
        // Next period; the operator resumes if this stays broken for the lease duration.
      }
    }
  }

  /** The holder of the leader Lease if it was renewed within its duration (by the server's renewTime). */
  private async liveLeader(ref: { namespace: string; name: string }): Promise<string | undefined> {
    try {
      const lease = (await leaseResource(this.client, Lease).namespace(ref.namespace).get(ref.name));
      return renewedHolder(lease);
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
  }

  private leases() {
    return leaseResource(this.client, Lease).namespace(this.ref.namespace);
  }
}

/** Holders of pauses made by `kubeloop pause` (no process renews them). */
export const PAUSE_PREFIX = "pause:";
/** How far the clock of whoever ran `kubeloop pause` may be behind ours. */
const PAUSE_SKEW_MS = 10 * 60_000;

/**
 * Whether a `kubeloop pause` is over by its own renewTime plus duration (with 10 minutes for clock
 * skew): a replica that first sees a long pause late must not hold it for a whole duration more.
 * Dev runs renew their Lease, so only observation counts for them (no trust in remote clocks).
 */
function pauseOver(lease: LeaseBody, holder: string, now: number): boolean {
  if (!holder.startsWith(PAUSE_PREFIX) || !lease.spec?.renewTime) return false;
  return Date.parse(lease.spec.renewTime) + (lease.spec.leaseDurationSeconds ?? 0) * 1000 + PAUSE_SKEW_MS < now;
}

/** The holder of `lease` if it was renewed within its duration, by the server's renewTime (the dev run's own check, before it can watch for changes). */
function renewedHolder(lease: LeaseBody): string | undefined {
  const holder = lease.spec?.holderIdentity ?? "";
  const renewed = lease.spec?.renewTime ? Date.parse(lease.spec.renewTime) : 0;
  return holder && renewed + (lease.spec?.leaseDurationSeconds ?? 0) * 1000 > Date.now() ? holder : undefined;
}
