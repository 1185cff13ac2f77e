// Operator: the object users write an operator around. It collects what the operator does
// (controllers now; kopf-style handlers, timers and daemons in this layer later) while the
// module loads, and `run()` connects to the cluster and runs it all in one Manager with
// metrics, probes, logging and signal handling. Nothing touches the cluster before `run()`,
// so `kubeloop run operator.ts` and `kubeloop generate` can import the same module.
import type { Logger } from "pino";
import { Client } from "../client/client.js";
import type { KubeObject, ResourceKind } from "../core/objects.js";
import { ControllerBuilder, type ControllerSpec } from "../controller/controller.js";
import { Manager, type ManagerLeaderElection, type ManagerStatus } from "../controller/manager.js";
import { createLogger, type LevelWithSilent } from "../observe/logging.js";
import { Metrics } from "../observe/metrics.js";
import { serveProbes, type ProbeServer } from "../observe/server.js";

/** Options of an {@link Operator}. */
export interface OperatorOptions {
  /** Lower-case DNS name: the field manager, the events' reporter, the Lease's name. */
  name: string;
  /** Leader election on a Lease; default on. `false` for development or a single replica. */
  leaderElection?: ManagerLeaderElection | false;
  /** The /metrics, /healthz, /readyz server; default port 8080. `false` for none. */
  probes?: { port?: number; host?: string } | false;
  /** Default "info". */
  logLevel?: LevelWithSilent;
  /** A logger of your own (overrides logLevel). */
  logger?: Logger;
  /** Default 60 000 ms. */
  cacheSyncTimeoutMs?: number;
  /** Default 30 000 ms. */
  gracefulShutdownTimeoutMs?: number;
}

/** Options of {@link Operator.run}. */
export interface RunOptions {
  /** The cluster; default `Client.load()` (KUBECONFIG, in-cluster, ~/.kube/config) with a 20 qps / burst 30 limit. Not closed by run(). */
  client?: Client;
  /** Stops the operator gracefully when aborted. */
  signal?: AbortSignal;
  /** Stop gracefully on SIGTERM and SIGINT. Default true. */
  handleSignals?: boolean;
  /** Overrides the operator's probe server setting (tests use `{ port: 0 }`). */
  probes?: { port?: number; host?: string } | false;
  /** Overrides the operator's logger. */
  logger?: Logger;
  /** Overrides the operator's leader election setting. */
  leaderElection?: ManagerLeaderElection | false;
  /** Called once the probe server listens (before caches sync). */
  onListening?: (probes: ProbeServer) => void;
  /** Called once the operator is running (caches synced, probes listening). */
  onStarted?: (running: RunningOperator) => void;
}

/** What `onStarted` gets: where the probes are and how the manager is. */
export interface RunningOperator {
  probes: ProbeServer | undefined;
  manager: Manager;
  metrics: Metrics;
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
 */
export class Operator {
  readonly name: string;
  private readonly specs: ControllerSpec<KubeObject>[] = [];
  private running = false;

  constructor(private readonly options: OperatorOptions) {
    if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(options.name)) {
      throw new TypeError(`operator name "${options.name}" must be a lower-case DNS name (it names the Lease and the field manager)`);
    }
    this.name = options.name;
  }

  /** A reconciler of `kind` at controller-runtime's level: `op.controller(Kind).owns(Child).reconcile(fn)`. */
  controller<T extends KubeObject>(kind: ResourceKind<T>): ControllerBuilder<T, void> {
    return new ControllerBuilder<T, void>(kind, (spec) => {
      if (this.running) throw new Error("add controllers before op.run()");
      this.specs.push(spec as unknown as ControllerSpec<KubeObject>);
    });
  }

  /** Kinds the operator watches (for RBAC generation and `kubeloop dev`). */
  get kinds(): ResourceKind[] {
    return this.specs.flatMap((s) => [s.kind as ResourceKind, ...s.sources.map((x) => x.kind)]);
  }

  /** Connects and runs until stopped; see the class documentation for how it ends. */
  async run(options: RunOptions = {}): Promise<void> {
    if (this.running) throw new Error(`operator ${this.name} is already running`);
    this.running = true;
    const logger = options.logger ?? this.options.logger ?? createLogger(this.name, { level: this.options.logLevel ?? "info" });
    // controller-runtime raises client-go's 5 qps / burst 10 to 20 / 30 for operators; so do we.
    const client = options.client ?? (await Client.load({ rateLimit: { qps: 20, burst: 30 } }));
    const metrics = new Metrics();
    const manager = new Manager(client, {
      name: this.name,
      logger,
      observer: metrics.observer,
      ...((options.leaderElection ?? this.options.leaderElection) !== undefined ? { leaderElection: options.leaderElection ?? this.options.leaderElection } : {}),
      ...(this.options.cacheSyncTimeoutMs !== undefined ? { cacheSyncTimeoutMs: this.options.cacheSyncTimeoutMs } : {}),
      ...(this.options.gracefulShutdownTimeoutMs !== undefined ? { gracefulShutdownTimeoutMs: this.options.gracefulShutdownTimeoutMs } : {}),
    });
    for (const spec of this.specs) manager.addController(spec);

    const stop = new AbortController();
    const onSignal = (sig: NodeJS.Signals) => {
      logger.info({ signal: sig }, "signal received: stopping gracefully");
      stop.abort(new Error(`received ${sig}`));
    };
    const handle = options.handleSignals ?? true;
    if (handle) {
      process.once("SIGTERM", onSignal);
      process.once("SIGINT", onSignal);
    }
    const signal = options.signal ? AbortSignal.any([options.signal, stop.signal]) : stop.signal;
    let probes: ProbeServer | undefined;
    try {
      const probeOptions = options.probes ?? this.options.probes;
      if (probeOptions !== false) {
        probes = await serveProbes(manager, metrics, probeOptions ?? {});
        logger.info({ url: probes.url }, "serving /metrics, /healthz, /readyz");
        options.onListening?.(probes);
      }
      void manager.whenSynced().then(() => options.onStarted?.({ probes, manager, metrics }));
      await manager.run(signal);
    } finally {
      if (handle) {
        process.off("SIGTERM", onSignal);
        process.off("SIGINT", onSignal);
      }
      await probes?.close();
      if (!options.client) await client.close();
      this.running = false;
    }
  }
}

export type { ManagerStatus };
