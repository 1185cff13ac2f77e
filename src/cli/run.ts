// `kubeloop run <operator.ts>`: runs an operator against the current kubeconfig.
import { OPERATOR_RATE_LIMIT } from "../client/rate-limit.js";
import { parseArgs } from "node:util";
import { parsed, UsageError } from "./args.js";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Client } from "../client/client.js";
import { ConfigError } from "../client/config.js";
import { checkNamespacePatterns } from "../handlers/scope.js";
import { createLogger } from "../observe/logging.js";
import { installCrd } from "../manifests/install.js";
import { loadOperator, type LoadedOperator } from "./load.js";
import { holdDevOverride } from "./dev-override.js";
import { checkServed, type Operator, type ProbeOptions } from "../operator/operator.js";
import type { Logger } from "../observe/logging.js";
import { WEBHOOK_MARKER, webhooksInEffect } from "../webhook/registration.js";

export const USAGE = `usage: kubeloop run <operator.ts|.js> [flags]

  -n, --namespace NS     serve this namespace (repeatable; globs "team-*", negation "!kube-*")
  -A, --all-namespaces   serve every namespace (the default unless the operator names some)
      --kubeconfig FILE  default: KUBECONFIG, in-cluster, ~/.kube/config
      --context NAME     a kubeconfig context other than the current one
      --standalone       no leader election (one replica, or development)
      --sharding         split the objects among the replicas that run with it (docs/scaling.md)
      --shard-buckets N  with --sharding: how many buckets (default 32; the same on every replica)
      --shard-key KEY    with --sharding: uid (default) or namespace
      --dev              pause the operator of the same name running in the cluster while this
                         runs (implies --standalone, not sharded); it acts again when this ends,
                         or 15 s after this is killed
      --dev-namespace NS where that operator's Leases are (default: its leader election namespace,
                         else the namespace holding the Lease <operator>-leader, else the
                         kubeconfig's namespace)
      --metrics-bind ADDR  serve /metrics (and /healthz, /readyz) on ADDR, e.g. 0.0.0.0:8080; "0": no /metrics
      --health-bind ADDR   serve /healthz, /readyz (and /metrics) on ADDR, e.g. 0.0.0.0:8081; "0": no health
      --install-crds     create the CRDs the operator declares (defineResource) if missing
      --webhook-bind ADDR  serve admission/conversion webhooks on [HOST:]PORT (default 0.0.0.0:9443)
      --webhook-url URL    the base URL the API server calls (in a cluster: the Service's,
                           e.g. https://my-operator.ns.svc:443; default: this server on loopback)
      --webhook-dns-name N a DNS name for the self-signed serving certificate (repeatable)
      --webhook-cert-dir DIR  serve with DIR/tls.crt and DIR/tls.key (re-read when they change,
                           e.g. a mounted cert-manager Secret); DIR/ca.crt is the CA registered
      --webhook-unmanaged  only serve: manifests register the webhooks (kubeloop generate
                           --webhooks cert-manager), so no registration rights are needed
  -v, --verbose          debug logging
      --log-format F     plain (default on a terminal: levels coloured unless NO_COLOR is set, errors
                         with their stacks) or json
      --otel             export traces with the OpenTelemetry Node SDK (@opentelemetry/sdk-node),
                         configured by the OTEL_* environment variables (OTLP to localhost:4318 by default)
`;

type Bind = { host: string; port: number };

function parseBind(value: string, flag: string): Bind | false {
  if (value === "0") return false;
  const m = /^(?:(.*):)?(\d+)$/.exec(value);
  if (!m) throw new Error(`${flag} ${value}: expected [HOST:]PORT, e.g. 0.0.0.0:8080`);
  return { host: m[1] || "0.0.0.0", port: Number(m[2]) };
}

/**
 * The probe servers for --metrics-bind and --health-bind: undefined (flag absent), false ("0",
 * that endpoint off) or an address. Two different addresses give two servers answering every
 * endpoint; "0" turns off only the endpoint it names (the other keeps its address, or the
 * default one); both "0": no server.
 */
export function probeServers(metrics: Bind | false | undefined, health: Bind | false | undefined): { probes?: ProbeOptions | false; extraProbes?: ProbeOptions } {
  if (metrics === undefined && health === undefined) return {};
  if (metrics === false && health === false) return { probes: false };
  const serve = { metrics: metrics !== false, health: health !== false };
  const [first, second] = [metrics, health].filter((b): b is Bind => b !== undefined && b !== false);
  if (!first) return { probes: { serve } };
  if (!second || (second.port !== 0 && JSON.stringify(first) === JSON.stringify(second))) return { probes: { ...first, serve } };
  return { probes: { ...first, serve }, extraProbes: { ...second, serve } };
}

/** `kubeloop run`'s flags. */
function parseRunArgs(args: string[]) {
  return parsed(() => parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      namespace: { type: "string", short: "n", multiple: true },
      "all-namespaces": { type: "boolean", short: "A" },
      kubeconfig: { type: "string" },
      context: { type: "string" },
      standalone: { type: "boolean" },
      sharding: { type: "boolean" },
      "shard-buckets": { type: "string" },
      "shard-key": { type: "string" },
      dev: { type: "boolean" },
      "dev-namespace": { type: "string" },
      "dev-lease-ms": { type: "string" },
      "webhook-bind": { type: "string" },
      "webhook-url": { type: "string" },
      "webhook-dns-name": { type: "string", multiple: true },
      "webhook-cert-dir": { type: "string" },
      "webhook-unmanaged": { type: "boolean" },
      "metrics-bind": { type: "string" },
      "health-bind": { type: "string" },
      "install-crds": { type: "boolean" },
      verbose: { type: "boolean", short: "v" },
      "log-format": { type: "string" },
      otel: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  }));
}

type RunFlags = ReturnType<typeof parseRunArgs>["values"];

/** `--sharding` with its buckets and key (`run()` checks the values, naming the option); a dev run is never sharded. */
function shardingFlags(values: RunFlags): { sharding?: { buckets?: number; key?: "uid" | "namespace" } | false } {
  if (values.dev) return { sharding: false };
  const buckets = values["shard-buckets"];
  const key = values["shard-key"];
  if (!values.sharding) {
    if (buckets !== undefined || key !== undefined) throw new Error("--shard-buckets and --shard-key go with --sharding");
    return {};
  }
  if (buckets !== undefined && !/^\d+$/.test(buckets)) throw new Error(`--shard-buckets ${buckets}: expected a whole number from 1 to 65536`);
  return { sharding: { ...(buckets !== undefined ? { buckets: Number(buckets) } : {}), ...(key !== undefined ? { key: key as "uid" | "namespace" } : {}) } };
}

/** Filled in by {@link run}: when the graceful-shutdown budget ends (the stop signal's time plus the operator's graceful-shutdown timeout; 0: no graceful stop). */
export interface Shutdown {
  drainUntil: number;
}

export async function run(args: string[], env: NodeJS.ProcessEnv, shutdown: Shutdown = { drainUntil: 0 }): Promise<number> {
  const { values, positionals } = parseRunArgs(args);
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [file, ...extra] = positionals;
  if (!file) throw new UsageError("which operator? kubeloop run <operator.ts|.js>");
  if (extra.length) throw new UsageError(`unexpected argument '${extra[0]}'`);
  if (!existsSync(file)) throw new UsageError(`${file}: no such file`);
  if (values.namespace && values["all-namespaces"]) throw new UsageError("give either -n/--namespace or -A/--all-namespaces, not both");
  checkNamespacePatterns(values.namespace); // before the kubeconfig: the flag's mistake first
  const format = values["log-format"] ?? (process.stdout.isTTY ? "plain" : "json");
  if (format !== "plain" && format !== "json") throw new UsageError(`--log-format ${format}: expected plain or json`);
  const { probes, extraProbes } = probeServers(
    values["metrics-bind"] ? parseBind(values["metrics-bind"], "--metrics-bind") : undefined,
    values["health-bind"] ? parseBind(values["health-bind"], "--health-bind") : undefined,
  );

  // A development run: --dev, or the operator child of `kubeloop dev`.
  const development = values.dev === true || process.channel !== undefined;
  const webhooks = development ? developmentWebhooks(webhookSettings(values)) : webhookSettings(values);
  const stopped = new AbortController();
  const { operator, crds } = await loadOperator(file);
  // Colour only on a terminal, and never with NO_COLOR set (to anything but the empty string: no-color.org).
  const logger = createLogger(operator.name, { level: values.verbose ? "debug" : "info", format, colour: format === "plain" && process.stdout.isTTY === true && !env.NO_COLOR });
  const client = await operatorClient(operator, logger, values, env);
  stopWithParent(logger);
  // The graceful-shutdown budget counts from the stop signal (Kubernetes' grace period does too).
  const budgetMs = operator.gracefulShutdownTimeoutMs;
  const onStop = () => (shutdown.drainUntil = Date.now() + budgetMs);
  process.once("SIGTERM", onStop);
  process.once("SIGINT", onStop);
  try {
    await prepareCluster(client, operator, values["install-crds"] ? crds : [], logger);
    const override = values.dev
      ? await holdDevOverride(operator, client, {
          ...(values["dev-namespace"] ? { namespace: values["dev-namespace"] } : {}),
          ...(values["dev-lease-ms"] ? { leaseMs: Number(values["dev-lease-ms"]) } : {}),
          log: (message) => logger.info(`dev override: ${message}`),
        })
      : undefined;
    try {
      await operator.run({
        client,
        logger,
        ...(values.namespace ? { namespaces: values.namespace } : values["all-namespaces"] ? { namespaces: [] } : {}),
        ...(values.standalone || values.dev ? { leaderElection: false } : {}),
        ...shardingFlags(values),
        ...(probes !== undefined ? { probes } : {}),
        ...(extraProbes ? { extraProbes } : {}),
        ...(webhooks ? { webhooks } : {}),
        ...(values.otel ? { otel: true } : {}),
        ...(development ? { onStarted: ({ webhookUrl }) => void (webhookUrl && reportWebhooksInEffect(client, operator.name, logger, stopped.signal)) } : {}),
      });
    } finally {
      stopped.abort();
      await override?.release();
    }
    return 0;
  } finally {
    await client.close();
  }
}

/**
 * A development run registers its loopback URL, which dies with it: it puts back what it
 * replaced when it stops. It also writes marker webhooks (managed mode), so that it can log once
 * the API server calls its configurations ({@link reportWebhooksInEffect}): the API server takes
 * a configuration into effect when its own informer delivers it, and admits unchecked until then.
 */
function developmentWebhooks(settings: ReturnType<typeof webhookSettings>) {
  return { ...settings, restoreOnStop: true, ...(settings?.manage === false ? {} : { [WEBHOOK_MARKER]: true }) };
}

/** Logs once the API server calls the development run's webhook configurations (their markers), or why that cannot be told. */
async function reportWebhooksInEffect(client: Client, operator: string, logger: Logger, signal: AbortSignal): Promise<void> {
  try {
    const proven = await webhooksInEffect(client, operator, { timeoutMs: 60_000, signal });
    if (signal.aborted) return;
    if (proven) logger.info("webhooks in effect: the API server calls them, so every request from now on is checked");
    else logger.warn(`cannot tell when the API server starts calling the webhooks (this identity may not create ConfigMaps in "default"): requests made in the first seconds may be admitted unchecked`);
  } catch (error) {
    if (!signal.aborted) logger.warn({ err: error }, "cannot tell when the API server starts calling the webhooks (see the error): requests made meanwhile may be admitted unchecked");
  }
}

/** The operator's webhook settings from the flags, or undefined when no webhook flag is given. */
function webhookSettings(values: RunFlags) {
  const webhookBind = values["webhook-bind"] ? parseBind(values["webhook-bind"], "--webhook-bind") : undefined;
  const certDir = values["webhook-cert-dir"];
  if (certDir) {
    for (const f of ["tls.crt", "tls.key"]) if (!existsSync(join(certDir, f))) throw new Error(`--webhook-cert-dir ${certDir}: ${f} is missing (expected tls.crt, tls.key and, to register, ca.crt)`);
  }
  return (
    webhookBind || values["webhook-url"] || values["webhook-dns-name"] || certDir || values["webhook-unmanaged"]
      ? {
          ...(webhookBind ? { host: webhookBind.host, port: webhookBind.port } : {}),
          ...(values["webhook-url"] ? { url: values["webhook-url"] } : {}),
          ...(values["webhook-dns-name"] ? { dnsNames: values["webhook-dns-name"] } : {}),
          ...(certDir ? { certificate: { certFile: join(certDir, "tls.crt"), keyFile: join(certDir, "tls.key"), ...(existsSync(join(certDir, "ca.crt")) ? { caFile: join(certDir, "ca.crt") } : {}) } } : {}),
          ...(values["webhook-unmanaged"] ? { manage: false } : {}),
        }
      : undefined);
}

/** The operator's client: from `op.on.login` when registered (kopf's login handlers), else the kubeconfig. */
async function operatorClient(operator: Operator, logger: Logger, values: RunFlags, env: NodeJS.ProcessEnv): Promise<Client> {
  try {
    return (await operator.clientFromLogin(logger)) ?? await Client.load({
      env,
      ...(values.kubeconfig ? { path: values.kubeconfig } : {}),
      ...(values.context ? { context: values.context } : {}),
      rateLimit: OPERATOR_RATE_LIMIT,
    });
  } catch (error) {
    if (error instanceof ConfigError) throw new Error(`cannot load a kubeconfig: ${error.message}`, { cause: error });
    throw error;
  }
}

/** Installs `crds`, then fails fast, by name, on kinds the server does not serve (typically: a CRD not installed). */
async function prepareCluster(client: Client, operator: Operator, crds: LoadedOperator["crds"], logger: Logger): Promise<void> {
  for (const crd of crds) {
    const { outcome, changes } = await installCrd(client, crd, undefined, { fieldManager: operator.name });
    if (outcome === "updated") logger.info({ crd: crd.metadata?.name, changes }, `CRD updated (server-side apply): ${changes.join(", ")}`);
    else logger.info({ crd: crd.metadata?.name }, outcome === "created" ? "CRD installed" : "CRD unchanged");
  }
  await checkServed(client, operator.kinds, "install its CustomResourceDefinition first (or pass --install-crds)");
}

/**
 * Under `kubeloop dev` (which spawns this process with an IPC channel), the parent holds the dev
 * Lease that pauses the operator deployed in the cluster. When the parent is gone, SIGKILL
 * included, the channel closes: this process exits at once. A graceful stop has no bound below
 * the pause's expiry (work may ignore its signal), and the deployed operator resumes when the
 * Lease expires; what was in flight is left as after a SIGKILL, which handlers' progress
 * records already cover. Without a channel (a plain `kubeloop run`), nothing changes.
 */
function stopWithParent(logger: Logger): void {
  if (!process.channel) return;
  process.channel.unref(); // the channel alone must not keep the operator's process alive
  process.once("disconnect", () => {
    logger.error("the parent process (kubeloop dev) is gone: exiting at once, before the pause it held on the deployed operator can expire");
    process.exit(1);
  });
}
