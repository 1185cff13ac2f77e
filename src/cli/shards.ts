// `kubeloop shards NAME`: which replica of a sharded operator owns which buckets, read from the
// operator's member Leases (controller/shard-members.ts). One read: a member counts as live when
// its Lease's renewTime plus its duration is still ahead by this machine's clock (a display; the
// replicas themselves judge liveness by observed changes, not by remote clocks).
import { parseArgs } from "node:util";
import { parsed, UsageError } from "./args.js";
import type { Client } from "../client/client.js";
import { Lease } from "../core/builtins.js";
import { clientFromFlags } from "./pause.js";
import { CLAIMS_ANNOTATION, MEMBER_LABEL, SHARDING_ANNOTATION, formatClaims, parseClaims } from "../controller/shard-members.js";

export const SHARDS_USAGE = `usage: kubeloop shards <operator name> [--namespace NS] [--kubeconfig FILE] [--context NAME]

Prints the replicas of a sharded operator, what sharding each runs, and the buckets each claims,
read from the operator's member Leases (label ${MEMBER_LABEL}=<name>); then the buckets nobody claims.
--namespace NS  where the member Leases are (default: every namespace)
`;

/** One member Lease, as the table prints it. */
export interface MemberRow {
  namespace: string;
  identity: string;
  live: boolean;
  sharding: string;
  claims: Set<number>;
}

/** The member Leases of `operator` (in `namespace`, or everywhere). */
export async function memberRows(client: Client, operator: string, namespace: string | undefined, now = Date.now()): Promise<MemberRow[]> {
  const leases = namespace ? client.resource(Lease).namespace(namespace) : client.resource(Lease);
  const list = await leases.list({ labelSelector: `${MEMBER_LABEL}=${operator}` });
  return list.items
    .map((lease) => {
      const renewed = Date.parse(lease.spec?.renewTime ?? "");
      const durationMs = (lease.spec?.leaseDurationSeconds ?? 15) * 1000;
      return {
        namespace: lease.metadata?.namespace ?? "",
        identity: lease.spec?.holderIdentity ?? "?",
        live: Number.isFinite(renewed) && renewed + durationMs > now,
        sharding: lease.metadata?.annotations?.[SHARDING_ANNOTATION] ?? "?",
        claims: parseClaims(lease.metadata?.annotations?.[CLAIMS_ANNOTATION]),
      };
    })
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.identity.localeCompare(b.identity));
}

/** The table: a row per member, then per sharding the buckets no live member claims. */
export function formatRows(rows: MemberRow[]): string {
  const header = ["NAMESPACE", "MEMBER", "LIVE", "SHARDING", "BUCKETS", "CLAIMED"];
  const cells = rows.map((r) => [r.namespace, r.identity, r.live ? "yes" : "no", r.sharding, String(r.claims.size), formatClaims(r.claims) || "-"]);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] as string).length)));
  const line = (c: string[]) => c.map((v, i) => (i === c.length - 1 ? v : v.padEnd(widths[i] as number))).join("  ");
  const out = [line(header), ...cells.map(line)];
  for (const sharding of new Set(rows.filter((r) => r.live).map((r) => r.sharding))) {
    const count = Number(sharding.split("/")[0]);
    if (!Number.isInteger(count) || count < 1) continue;
    const claimed = new Set(rows.filter((r) => r.live && r.sharding === sharding).flatMap((r) => [...r.claims]));
    const unclaimed = Array.from({ length: count }, (_, b) => b).filter((b) => !claimed.has(b));
    out.push(`${sharding}: ${unclaimed.length ? `unclaimed ${formatClaims(unclaimed)}` : "every bucket claimed"}`);
  }
  if (new Set(rows.filter((r) => r.live).map((r) => r.sharding)).size > 1) out.push("live members disagree on the sharding (a rolling update?): no bucket is claimed anew until they agree");
  return out.join("\n") + "\n";
}

export async function run(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parsed(() => parseArgs({ args, allowPositionals: true, strict: true, options: { namespace: { type: "string", short: "n" }, kubeconfig: { type: "string" }, context: { type: "string" }, help: { type: "boolean", short: "h" } } }));
  if (values.help) {
    process.stdout.write(SHARDS_USAGE);
    return 0;
  }
  const [name, ...extra] = positionals;
  if (!name) throw new UsageError("which operator? kubeloop shards <operator name>");
  if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
  const client = await clientFromFlags(values, env);
  try {
    const rows = await memberRows(client, name, values.namespace);
    if (rows.length === 0) {
      process.stderr.write(`kubeloop: no member Leases of ${name}${values.namespace ? ` in ${values.namespace}` : ""}: it does not run sharded (or has not started)\n`);
      return 1;
    }
    process.stdout.write(formatRows(rows));
    return 0;
  } finally {
    await client.close();
  }
}
