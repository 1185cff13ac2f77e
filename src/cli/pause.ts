// `kubeloop pause NAME` / `kubeloop resume NAME`: kopf's freeze and resume without a running
// process. The pause is the dev override's Lease `<NAME>-dev` (controller/dev-pause.ts), held by
// `pause:<user>@<host>` for the pause's duration and not renewed: the operator running in the
// cluster pauses (after finishing its work in flight, acknowledged on the Lease), and acts again
// when `kubeloop resume` frees the Lease or the duration has passed, so a forgotten pause ends.
import { hostname, userInfo } from "node:os";
import { parseArgs } from "node:util";
import { parsed, UsageError } from "./args.js";
import { Client } from "../client/client.js";
import { DevOverride, PAUSE_PREFIX } from "../controller/dev-pause.js";
import { findOperatorNamespace } from "./dev-override.js";

export const PAUSE_USAGE = `usage: kubeloop pause <operator name> [--for DURATION] [--namespace NS] [--kubeconfig FILE] [--context NAME]
       kubeloop resume <operator name> [--namespace NS] [--kubeconfig FILE] [--context NAME] [--force]

pause    the operator of that name running in the cluster stops acting (work in flight finishes
         first) until "kubeloop resume", or until DURATION has passed (e.g. 90s, 30m, 2h; default 1h)
resume   ends a pause made by "kubeloop pause" at once (--force: also one a dev run holds)
--namespace NS  where the operator's Leases are (default: the namespace holding <name>-leader)
`;

const say = (m: string) => process.stderr.write(`kubeloop: ${m}\n`);

/** A duration: a whole number with s, m or h (or ms). */
export function parseDuration(text: string): number {
  const m = /^(\d+)(ms|s|m|h)$/.exec(text.trim());
  const ms = m ? Number(m[1]) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"] : NaN;
  if (!Number.isSafeInteger(ms) || ms < 1_000 || ms > 366 * 24 * 3_600_000) throw new Error(`--for ${text}: expected a duration from 1s to 366 days, e.g. 90s, 30m or 2h`);
  return ms;
}

/** The client of an admin command's `--kubeconfig` / `--context` flags (no rate limit: one-off calls). */
export function clientFromFlags(values: { kubeconfig?: string | undefined; context?: string | undefined }, env: NodeJS.ProcessEnv): Promise<Client> {
  return Client.load({ env, rateLimit: false, ...(values.kubeconfig ? { path: values.kubeconfig } : {}), ...(values.context ? { context: values.context } : {}) });
}

export async function run(command: "pause" | "resume", args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals } = parsed(() =>
    parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: { for: { type: "string" }, namespace: { type: "string", short: "n" }, kubeconfig: { type: "string" }, context: { type: "string" }, force: { type: "boolean" }, help: { type: "boolean", short: "h" } },
    }),
  );
  if (values.help) {
    process.stdout.write(PAUSE_USAGE);
    return 0;
  }
  const [name, ...extra] = positionals;
  if (!name) throw new UsageError(`which operator? kubeloop ${command} <operator name>`);
  if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
  if (command === "resume" && values.for) throw new UsageError("--for goes with pause");
  if (command === "pause" && values.force) throw new UsageError("--force goes with resume");
  let forMs = 0;
  if (command === "pause") {
    try {
      forMs = parseDuration(values.for ?? "1h");
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  }
  const client = await clientFromFlags(values, env);
  try {
    const namespace = values.namespace ?? (await findOperatorNamespace(client, name, `${name}-leader`, say));
    const ref = { namespace, name: `${name}-dev` };
    if (command === "resume") {
      // Without --force, only a pause kubeloop pause made (a dev run's hold ends when it stops).
      const lease = await DevOverride.free(client, ref, values.force ? undefined : (holder) => holder.startsWith(PAUSE_PREFIX));
      say(lease ? `${name} resumed (the pause held by ${lease} in ${namespace} is over)` : `${name} is not paused by kubeloop pause in ${namespace}${values.force ? "" : " (a dev run's hold ends when it stops, or with --force)"}`);
      return 0;
    }
    const identity = `${PAUSE_PREFIX}${userInfo().username}@${hostname()}`;
    const held = await DevOverride.take(client, ref, { leaderLease: { namespace, name: `${name}-leader` }, members: name, identity, leaseDurationMs: forMs, log: say });
    await held.detach(); // held, not renewed: it ends by itself after the duration
    say(`${name} is paused in ${namespace} until ${new Date(Date.now() + forMs).toISOString()} (kubeloop resume ${name} ends it sooner)`);
    return 0;
  } finally {
    await client.close();
  }
}
