// Leader election on a coordination.k8s.io/v1 Lease, with client-go's algorithm, so that of
// several replicas of an operator exactly one runs its controllers.
//
// - A candidate takes the Lease when it is free (no holder, or a holder that released it) or
//   when the holder has not renewed it for `leaseDurationMs`. "Not renewed" is judged by when
//   this candidate last *saw the Lease change* (on its own clock), never by comparing the
//   holder's renewTime with the local clock: clocks of different machines may disagree.
// - Writes use the Lease's resourceVersion, so two candidates racing for it cannot both win:
//   the loser gets a Conflict and tries again after `retryPeriodMs`.
// - The leader renews every `retryPeriodMs`. If it cannot renew for `renewDeadlineMs`, it
//   gives up leadership (its controllers must stop at once). Because renewDeadline < leaseDuration,
//   it stops acting before any other candidate can consider the Lease expired.
// - On a graceful stop the leader releases the Lease (empty holder), so a successor takes over
//   at its next retry instead of waiting out the lease duration.
import { checkNumber } from "../core/check.js";
import { leaseResource, type Client } from "../client/client.js";
import { deadline } from "../core/async.js";
import { systemClock, type Clock } from "../core/clock.js";
import { AlreadyExistsError, ConflictError, NotFoundError } from "../core/errors.js";
import { Lease } from "../core/builtins.js";
import { microTime } from "../core/objects.js";
import type * as coordination from "../core/kube/coordination/v1.js";

type LeaseObject = coordination.Lease;

/** Options of a {@link LeaderElector}. Durations follow client-go's defaults. */
export interface LeaderElectionOptions {
  /** Namespace of the Lease. */
  namespace: string;
  /** Name of the Lease: the same for every replica of one operator. */
  name: string;
  /** This candidate's identity (unique per process, e.g. pod name + random suffix). */
  identity: string;
  /** How long a Lease stays valid without renewal. Default 15 000 ms. */
  leaseDurationMs?: number;
  /** How long the leader keeps trying to renew before giving up. Default 10 000 ms; must be < leaseDurationMs. */
  renewDeadlineMs?: number;
  /**
   * Time between attempts (to acquire, to renew). Default 2 000 ms; must be < renewDeadlineMs.
   * Timings that break these rules, or are not finite numbers > 0, throw a RangeError when the
   * elector (or the Manager) is made.
   */
  retryPeriodMs?: number;
  /** Release the Lease when stopped gracefully. Default true. */
  releaseOnCancel?: boolean;
  clock?: Clock;
  /** Called when the observed holder changes (including to this candidate). */
  onNewLeader?: (identity: string) => void;
  /** Called on failed attempts (network errors, forbidden); the elector keeps trying. */
  onError?: (error: unknown) => void;
}

/** The Lease timings when an option is left out (client-go's defaults). */
export const LEASE_DEFAULTS = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 } as const;

type LeaseTimings = { leaseDurationMs: number; renewDeadlineMs: number; retryPeriodMs: number };

/**
 * The Lease timings with their defaults, refused (a RangeError naming them) when they cannot
 * work: each a finite number > 0, retryPeriodMs < renewDeadlineMs < leaseDurationMs (as
 * client-go requires).
 */
export function leaseTimings(t: { leaseDurationMs?: number | undefined; renewDeadlineMs?: number | undefined; retryPeriodMs?: number | undefined }): LeaseTimings {
  const lease = t.leaseDurationMs ?? LEASE_DEFAULTS.leaseDurationMs;
  const renew = t.renewDeadlineMs ?? LEASE_DEFAULTS.renewDeadlineMs;
  const retry = t.retryPeriodMs ?? LEASE_DEFAULTS.retryPeriodMs;
  for (const [name, value] of [["leaseDurationMs", lease], ["renewDeadlineMs", renew], ["retryPeriodMs", retry]] as const) checkNumber(`leader election: ${name}`, value, "> 0");
  if (renew >= lease) throw new RangeError(`leader election: renewDeadlineMs (${renew}) must be less than leaseDurationMs (${lease})`);
  if (retry >= renew) throw new RangeError(`leader election: retryPeriodMs (${retry}) must be less than renewDeadlineMs (${renew})`);
  return { leaseDurationMs: lease, renewDeadlineMs: renew, retryPeriodMs: retry };
}

/** How leadership ended. */
export type LeadershipEnd = "released" | "lost";

/** Raised by the Manager when leadership was lost (renewal failed for renewDeadline). */
export class LeaderElectionLostError extends Error {
  override name = "LeaderElectionLostError";
  readonly reason = "LeaderElectionLost";
}

/**
 * One candidate for the leadership of a Lease.
 *
 * ```ts
 * await elector.acquire(signal);            // resolves once leader
 * const end = await elector.hold(signal);   // "lost" (stop acting now) or "released" (signal aborted)
 * ```
 *
 * Guarantees: `acquire` resolves only after this candidate wrote itself as holder with the
 * Lease's current resourceVersion; `hold` resolves "lost" no later than `renewDeadlineMs` after
 * the last successful renewal. Failures of single attempts are reported to `onError` and retried.
 */
export class LeaderElector {
  readonly leaseDurationMs: number;
  readonly renewDeadlineMs: number;
  readonly retryPeriodMs: number;
  private readonly clock: Clock;
  private observed: LeaseObject | undefined;
  private observedAt = 0;
  private lastRenew = 0;
  private leading = false;

  constructor(
    private readonly client: Client,
    private readonly options: LeaderElectionOptions,
  ) {
    ({ leaseDurationMs: this.leaseDurationMs, renewDeadlineMs: this.renewDeadlineMs, retryPeriodMs: this.retryPeriodMs } = leaseTimings(options));
    this.clock = options.clock ?? systemClock;
  }

  /** Whether this candidate currently holds the Lease (as far as it knows). */
  get isLeader(): boolean {
    return this.leading;
  }

  /** The holder last observed (maybe this candidate), or undefined if none. */
  get leader(): string | undefined {
    return this.observed?.spec?.holderIdentity || undefined;
  }

  /** Tries every retryPeriod (with jitter) until this candidate holds the Lease. Rejects only when `signal` aborts. */
  async acquire(signal: AbortSignal): Promise<void> {
    for (;;) {
      signal.throwIfAborted();
      if (await this.tryAcquireOrRenew(signal)) {
        this.leading = true;
        this.lastRenew = this.clock.now();
        return;
      }
      await this.clock.sleep(this.retryPeriodMs * (1 + Math.random() * 0.2), signal);
    }
  }

  /**
   * Renews until the signal aborts (then releases the Lease if configured: "released") or until
   * renewal has failed for renewDeadlineMs ("lost").
   */
  async hold(signal: AbortSignal): Promise<LeadershipEnd> {
    try {
      for (;;) {
        try {
          await this.clock.sleep(this.retryPeriodMs, signal);
        } catch {
          break;
        }
        // One attempt may not outlive the renew deadline.
        const left = this.renewDeadlineMs - (this.clock.now() - this.lastRenew);
        const attempt = deadline(Math.max(1, Math.ceil(left)), [signal]);
        const renewed = await this.tryAcquireOrRenew(attempt.signal).finally(attempt.clear);
        if (renewed) {
          this.lastRenew = this.clock.now();
        } else if (signal.aborted) {
          break;
        } else if (this.clock.now() - this.lastRenew >= this.renewDeadlineMs || (this.observed && this.leader !== this.options.identity)) {
          this.leading = false;
          return "lost";
        }
      }
      if (this.options.releaseOnCancel ?? true) await this.release();
      this.leading = false;
      return "released";
    } finally {
      this.leading = false;
    }
  }

  /**
   * Gives up the Lease (empty holder) if this candidate holds it; errors are reported, not thrown.
   * On a conflict it reads the Lease again and retries while still the holder: a renewal aborted
   * at shutdown may have been applied by the server unseen, and a stale view must not leave the
   * Lease to expire.
   */
  async release(): Promise<void> {
    const { signal, clear } = deadline(this.renewDeadlineMs);
    try {
      await this.releaseBefore(signal);
    } finally {
      clear();
    }
  }

  /** release()'s attempts, all within `signal`. */
  private async releaseBefore(signal: AbortSignal): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      if (!this.observed || this.leader !== this.options.identity) return;
      const now = microTime(new Date());
      const released: LeaseObject = {
        ...this.observed,
        spec: { ...this.observed.spec, holderIdentity: "", leaseDurationSeconds: 1, renewTime: now, acquireTime: now },
      };
      try {
        this.observed = await this.leases().replace(released, { signal });
        this.observedAt = this.clock.now();
        return;
      } catch (error) {
        if (!(error instanceof ConflictError)) return this.options.onError?.(error);
        try {
          this.observe(await this.leases().get(this.options.name, { signal }));
        } catch (readError) {
          return this.options.onError?.(readError);
        }
      }
    }
  }

  private leases() {
    return leaseResource(this.client, Lease).namespace(this.options.namespace);
  }

  /** One attempt; true if this candidate holds the Lease afterwards. Never throws. */
  private async tryAcquireOrRenew(signal: AbortSignal): Promise<boolean> {
    const me = this.options.identity;
    const now = new Date();
    const spec = {
      holderIdentity: me,
      leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
      renewTime: microTime(now),
    };
    try {
      let current: LeaseObject;
      try {
        current = await this.leases().get(this.options.name, { signal });
      } catch (error) {
        if (!(error instanceof NotFoundError)) throw error;
        const created = await this.leases().create(
          { metadata: { name: this.options.name, namespace: this.options.namespace }, spec: { ...spec, acquireTime: microTime(now), leaseTransitions: 0 } },
          { signal },
        );
        this.observe(created);
        return true;
      }
      this.observe(current);
      const holder = current.spec?.holderIdentity ?? "";
      const held = holder !== "" && holder !== me;
      const durationMs = (current.spec?.leaseDurationSeconds ?? 0) * 1000;
      if (held && this.observedAt + durationMs > this.clock.now()) return false;
      const next: LeaseObject = {
        ...current,
        spec: {
          ...current.spec,
          ...spec,
          ...(holder === me
            ? {}
            : { acquireTime: microTime(now), leaseTransitions: (current.spec?.leaseTransitions ?? 0) + (holder === "" && !current.spec?.leaseTransitions ? 0 : 1) }),
        },
      };
      this.observe(await this.leases().replace(next, { signal }));
      return true;
    } catch (error) {
      // Losing a race to another candidate is normal: not an error.
      if (!(error instanceof ConflictError || error instanceof AlreadyExistsError)) this.options.onError?.(error);
      return false;
    }
  }

  /** Records a Lease as seen now if it changed since last seen. */
  private observe(lease: LeaseObject): void {
    const before = this.observed;
    if (before?.metadata?.resourceVersion !== lease.metadata?.resourceVersion) {
      this.observed = lease;
      this.observedAt = this.clock.now();
    }
    const holder = lease.spec?.holderIdentity ?? "";
    if ((before?.spec?.holderIdentity ?? "") !== holder && holder) this.options.onNewLeader?.(holder);
  }
}
