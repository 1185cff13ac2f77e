// Sharding membership (issue 33): each replica of a sharded operator announces itself with a
// member Lease, `<operator>-member-<hash of its identity>`, labelled with the operator's name and
// annotated with the sharding it runs (bucket count and key), renewed every `renewMs`. Every
// replica reads the member Leases of its operator and takes as live those whose
// resourceVersion changed within their lease duration by its own clock (as leader election
// judges a holder: remote clocks are not trusted; a Lease seen for the first time counts as just
// changed, so a dead member found at start is dropped one lease duration later); a graceful stop
// deletes its Lease. From the
// live members, bucket owners follow by rendezvous hashing (core/shards.ts).
//
// Members that run another sharding (a rolling update that changes the bucket count or key)
// are reported as disagreeing: ownership computed over different bucket counts could overlap,
// so the caller must not take buckets while a disagreement lasts.
import { leaseResource, type Client } from "../client/client.js";
import { Lease } from "../core/builtins.js";
import { systemClock, type Clock } from "../core/clock.js";
import { AlreadyExistsError, ConflictError, NotFoundError } from "../core/errors.js";
import { microTime } from "../core/objects.js";
import { fnv1a64, type ShardKey } from "../core/shards.js";

/** The label every member Lease of an operator carries (its value: the operator's name). */
export const MEMBER_LABEL = "kubeloop.dev/shard-member-of";
/** The annotation by which a member says it is paused for a dev run (its value: the dev run's identity); it then claims nothing. */
export const MEMBER_PAUSED_ANNOTATION = "kubeloop.dev/paused";
/** The annotation saying which sharding a member runs: `<buckets>/<key>`, e.g. "32/uid". */
export const SHARDING_ANNOTATION = "kubeloop.dev/sharding";

/** Options of {@link ShardMembers}. */
export interface ShardMembersOptions {
  /** The operator's name: the members' label and the prefix of their Lease names. */
  operator: string;
  namespace: string;
  /** This replica's identity (unique per process). */
  identity: string;
  buckets: number;
  key: ShardKey;
  /** How long a member counts as live without a renewal. Default 15 000 ms. */
  leaseDurationMs?: number;
  clock?: Clock;
}

/** What the member Leases say now. */
export interface MemberView {
  /** Live members running this replica's sharding, this one included when its Lease is there. */
  members: string[];
  /** Live members running another sharding: identity → what they run ("16/uid"). */
  disagreeing: Map<string, string>;
  /** The buckets each live member of this sharding claims (its Lease's claims annotation). */
  claims: Map<string, Set<number>>;
}

/** A replica's membership: its own Lease, and what it sees of the others'. */
export class ShardMembers {
  private readonly clock: Clock;
  private readonly durationMs: number;
  private readonly seen = new Map<string, { rv: string; changedAt: number }>();

  constructor(
    private readonly client: Client,
    private readonly o: ShardMembersOptions,
  ) {
    this.clock = o.clock ?? systemClock;
    this.durationMs = o.leaseDurationMs ?? 15_000;
  }

  /** This replica's member Lease name: short and valid whatever the identity holds. */
  get leaseName(): string {
    return memberLeaseName(this.o.operator, this.o.identity);
  }

  /** What this replica runs, as the annotation says it. */
  get sharding(): string {
    return `${this.o.buckets}/${this.o.key}`;
  }

  /** Writes (creates or renews) this replica's member Lease, claiming `claims`; `pausedFor`: the dev run it has paused for. */
  async renew(claims: Iterable<number> = [], pausedFor?: string): Promise<void> {
    const leases = leaseResource(this.client, Lease).namespace(this.o.namespace);
    const spec = { holderIdentity: this.o.identity, leaseDurationSeconds: Math.ceil(this.durationMs / 1000), renewTime: microTime(new Date()) }; // wall-clock time, for readers (the clock is monotonic)
    const annotations = { [SHARDING_ANNOTATION]: this.sharding, [CLAIMS_ANNOTATION]: formatClaims(claims), ...(pausedFor ? { [MEMBER_PAUSED_ANNOTATION]: pausedFor } : {}) };
    const metadata = { name: this.leaseName, labels: { [MEMBER_LABEL]: this.o.operator }, annotations };
    for (let attempt = 0; attempt < 3; attempt++) {
      const current = await leases.get(this.leaseName).catch((error: unknown) => (error instanceof NotFoundError ? undefined : Promise.reject(error)));
      try {
        if (!current) await leases.create({ metadata, spec });
        else await leases.replace({ ...current, metadata: { ...current.metadata, ...metadata }, spec: { ...current.spec, ...spec } });
        return;
      } catch (error) {
        if (!(error instanceof ConflictError || error instanceof AlreadyExistsError)) throw error;
      }
    }
  }

  /** Deletes this replica's member Lease (a graceful stop: the others see it gone at once). */
  async leave(): Promise<void> {
    await leaseResource(this.client, Lease).namespace(this.o.namespace).delete(this.leaseName).catch((error: unknown) => (error instanceof NotFoundError ? undefined : Promise.reject(error)));
  }

  /** Reads the member Leases: the live ones, split by whether they run this replica's sharding. */
  async view(): Promise<MemberView> {
    const list = await leaseResource(this.client, Lease).namespace(this.o.namespace).list({ labelSelector: `${MEMBER_LABEL}=${this.o.operator}` });
    const now = this.clock.now();
    const view: MemberView = { members: [], disagreeing: new Map(), claims: new Map() };
    const names = new Set<string>();
    for (const lease of list.items) {
      const name = lease.metadata?.name ?? "";
      const identity = lease.spec?.holderIdentity;
      if (!identity) continue;
      names.add(name);
      const rv = lease.metadata?.resourceVersion ?? "";
      const last = this.seen.get(name);
      if (!last || last.rv !== rv) this.seen.set(name, { rv, changedAt: now });
      const durationMs = (lease.spec?.leaseDurationSeconds ?? this.durationMs / 1000) * 1000;
      if (now - (this.seen.get(name)?.changedAt ?? now) >= durationMs) continue; // not renewed: gone
      const sharding = lease.metadata?.annotations?.[SHARDING_ANNOTATION] ?? "?";
      if (sharding === this.sharding) {
        view.members.push(identity);
        view.claims.set(identity, parseClaims(lease.metadata?.annotations?.[CLAIMS_ANNOTATION]));
      } else view.disagreeing.set(identity, sharding);
    }
    for (const name of this.seen.keys()) if (!names.has(name)) this.seen.delete(name);
    view.members.sort();
    return view;
  }
}

/** The member Lease name of `identity` in `operator`: `<operator>-member-<16 hex digits of its hash>`. */
export function memberLeaseName(operator: string, identity: string): string {
  return `${operator}-member-${fnv1a64(identity).toString(16).padStart(16, "0")}`;
}

/** The annotation of a member Lease listing the buckets it claims, e.g. "0-3,7,9". */
export const CLAIMS_ANNOTATION = "kubeloop.dev/shard-claims";

/** Buckets as a claims annotation: ascending runs, "0-3,7,9". */
export function formatClaims(buckets: Iterable<number>): string {
  const sorted = [...new Set(buckets)].sort((a, b) => a - b);
  const runs: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && (sorted[j + 1] as number) === (sorted[j] as number) + 1) j++;
    runs.push(i === j ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`);
    i = j + 1;
  }
  return runs.join(",");
}

/** A claims annotation read back (what cannot be read claims nothing). */
export function parseClaims(text: string | undefined): Set<number> {
  const out = new Set<number>();
  for (const part of (text ?? "").split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!m) continue;
    for (let b = Number(m[1]); b <= Number(m[2] ?? m[1]); b++) out.add(b);
  }
  return out;
}
