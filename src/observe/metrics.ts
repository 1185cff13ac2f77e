// Prometheus metrics under the names controller-runtime users already have dashboards and
// alerts for (controller_runtime_reconcile_*, workqueue_*, leader_election_master_status),
// fed by the Manager's observer hooks. Each Metrics has its own prom-client Registry: no
// global state, two operators in one process do not collide.
//
// prom-client is loaded when the first Metrics is made, not when kubeloop is imported: a program
// that only uses the client or watches does not load it.
import type * as PromClient from "prom-client";
import { onFirstUse } from "../core/lazy.js";
import type { CacheHealth, ManagerObserver } from "../controller/manager.js";
import type { InformerHealth } from "../runtime/informer.js";
import type { ReconcileResult, TraceRef } from "../controller/reconcile.js";
import { LOW_PRIORITY, type WorkQueueHooks } from "../runtime/queue.js";
import type { WebhookObserver } from "../webhook/server.js";
import { BoundHistogram, BoundValue } from "./series.js";

/** Options of {@link Metrics}. */
export interface MetricsOptions {
  /** Also collect Node.js process metrics (CPU, memory, event loop lag). Default true. */
  processMetrics?: boolean;
}

// controller-runtime's buckets for reconcile time and queue durations.
const RECONCILE_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4, 4.5, 5, 6, 7, 8, 9, 10, 15, 20, 25, 30, 40, 50, 60];
const QUEUE_BUCKETS = [1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 0.01, 0.1, 1, 10, 100, 1000];

const loadPromClient = onFirstUse<typeof PromClient>("prom-client");
type Counter<L extends string> = PromClient.Counter<L>;
type Gauge<L extends string> = PromClient.Gauge<L>;
type Histogram<L extends string> = PromClient.Histogram<L>;

/** What a sharded operator reports (issue 33; the series exist only when sharding is on). */
export interface ShardObserver {
  /** Buckets this replica acts on now. */
  owned(buckets: number): void;
  /** Buckets that came to this replica ("acquired") or left it ("released"). */
  moved(direction: "acquired" | "released", buckets: number): void;
  /** A bucket's hand-over time: from this replica finding it should own it to acting on it. */
  handover(seconds: number): void;
  /** A sharded watch's filtering: by the API server or by the replica. */
  mode(mode: "server" | "client"): void;
  /** Live members, and of them those running another sharding. */
  members(live: number, disagreeing: number): void;
}

/** The metrics of one operator, and the observer that feeds them. */
export class Metrics {
  readonly registry: PromClient.Registry;
  // Updated per reconcile or per queue operation: bound series (see series.ts).
  private readonly reconcileTotal: BoundValue<"controller" | "result">;
  private readonly reconcileTime: BoundHistogram<"controller">;
  private readonly activeWorkers: BoundValue<"controller">;
  private readonly adds: BoundValue<"name" | "controller">;
  private readonly queueDuration: BoundHistogram<"name" | "controller">;
  private readonly workDuration: BoundHistogram<"name" | "controller">;
  private readonly priorityWait: BoundHistogram<"controller" | "priority">;
  private readonly retries: BoundValue<"name" | "controller">;
  /** Each controller's bound series. */
  private readonly controllers = new Map<string, { reconciled: Record<ReconcileResult, (delta: number) => void>; time: (seconds: number, trace?: TraceRef) => void; active: (delta: number) => void }>();
  private readonly reconcileErrors: Counter<"controller">;
  private readonly terminalErrors: Counter<"controller">;
  private readonly stuck: Gauge<"controller">;
  private readonly depth: Gauge<"name" | "controller">;
  private readonly leader: Gauge<"name">;
  private readonly webhookRequests: Counter<"webhook" | "code">;
  private readonly webhookLatency: Histogram<"webhook">;
  private readonly webhookInFlight: Gauge<"webhook">;
  private readonly webhookDenials: Counter<"webhook">;
  private readonly taskFailures: Counter<"kind" | "task">;
  private readonly depths = new Map<string, () => number>();

  constructor(options: MetricsOptions = {}) {
    const { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } = loadPromClient();
    this.registry = new Registry();
    const registers = [this.registry];
    this.reconcileTotal = new BoundValue("counter", "controller_runtime_reconcile_total", "Total number of reconciliations per controller", ["controller", "result"], this.registry);
    this.reconcileErrors = new Counter({ name: "controller_runtime_reconcile_errors_total", help: "Total number of reconciliation errors per controller", labelNames: ["controller"], registers });
    this.terminalErrors = new Counter({
      name: "controller_runtime_terminal_reconcile_errors_total",
      help: "Total number of terminal reconciliation errors per controller",
      labelNames: ["controller"],
      registers,
    });
    this.reconcileTime = new BoundHistogram("controller_runtime_reconcile_time_seconds", "Length of time per reconciliation per controller", ["controller"], RECONCILE_BUCKETS, this.registry);
    this.activeWorkers = new BoundValue("gauge", "controller_runtime_active_workers", "Number of currently used workers per controller", ["controller"], this.registry);
    this.stuck = new Gauge({
      name: "kubeloop_stuck_reconciles",
      help: "Reconciles still running long after their signal aborted (timeout or shutdown): they ignore it and keep their key",
      labelNames: ["controller"],
      registers,
    });
    const depths = this.depths;
    this.depth = new Gauge({
      name: "workqueue_depth",
      help: "Current depth of workqueue",
      labelNames: ["name", "controller"],
      registers,
      collect() {
        for (const [name, depth] of depths) this.set({ name, controller: name }, depth());
      },
    });
    this.adds = new BoundValue("counter", "workqueue_adds_total", "Total number of adds handled by workqueue", ["name", "controller"], this.registry);
    this.queueDuration = new BoundHistogram(
      "workqueue_queue_duration_seconds",
      "How long in seconds an item stays in workqueue before being requested",
      ["name", "controller"],
      QUEUE_BUCKETS,
      this.registry,
    );
    this.priorityWait = new BoundHistogram(
      "kubeloop_workqueue_wait_seconds",
      "How long a key waited in the workqueue, by priority: normal (a watch event, a retry), low (an initial list, a resync, a relist)",
      ["controller", "priority"],
      QUEUE_BUCKETS,
      this.registry,
    );
    this.workDuration = new BoundHistogram("workqueue_work_duration_seconds", "How long in seconds processing an item from workqueue takes", ["name", "controller"], QUEUE_BUCKETS, this.registry);
    this.retries = new BoundValue("counter", "workqueue_retries_total", "Total number of retries handled by workqueue", ["name", "controller"], this.registry);
    this.leader = new Gauge({ name: "leader_election_master_status", help: "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master", labelNames: ["name"], registers });
    // controller-runtime's webhook metrics, plus denials.
    this.webhookRequests = new Counter({ name: "controller_runtime_webhook_requests_total", help: "Total number of admission requests by HTTP status code", labelNames: ["webhook", "code"], registers });
    this.webhookLatency = new Histogram({ name: "controller_runtime_webhook_latency_seconds", help: "Histogram of the latency of processing admission requests", labelNames: ["webhook"], registers });
    this.webhookInFlight = new Gauge({ name: "controller_runtime_webhook_requests_in_flight", help: "Current number of admission requests being served", labelNames: ["webhook"], registers });
    this.webhookDenials = new Counter({ name: "kubeloop_webhook_denials_total", help: "Admission requests denied", labelNames: ["webhook"], registers });
    this.taskFailures = new Counter({ name: "kubeloop_task_failures_total", help: "Failed runs of timers and daemons (each is logged with its stack and posted as a Warning Event)", labelNames: ["kind", "task"], registers });
    if (options.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }

  /**
   * `kubeloop_webhook_certificate_expiry_seconds`: seconds until the webhook server's certificate
   * expires, read from `secondsLeft` when scraped (no sample before the server runs). Call once.
   */
  webhookCertificate(secondsLeft: () => number | undefined): void {
    const { Gauge } = loadPromClient();
    new Gauge({
      name: "kubeloop_webhook_certificate_expiry_seconds",
      help: "Seconds until the certificate the webhook server serves expires (alert well before 0: callers refuse an expired one)",
      registers: [this.registry],
      collect() {
        const left = secondsLeft();
        if (left !== undefined) this.set(left);
      },
    });
  }

  /** Counts a failed run of a timer or daemon (`kind` as Kind.group, `task` its id). */
  taskFailed(kind: string, task: string): void {
    this.taskFailures.inc({ kind, task });
  }

  /** The hooks to give a webhook server. */
  get webhookObserver(): WebhookObserver {
    return {
      request: (webhook, code, seconds, allowed) => {
        this.webhookRequests.inc({ webhook, code: String(code) });
        if (code === 200) this.webhookLatency.observe({ webhook }, seconds);
        if (allowed === false) this.webhookDenials.inc({ webhook });
      },
      inFlight: (webhook, delta) => this.webhookInFlight.inc({ webhook }, delta),
    };
  }

  /** The hooks to give a Manager (`observer`). */
  get observer(): ManagerObserver {
    return {
      queue: (controller, depth): WorkQueueHooks => {
        this.depths.set(controller, depth);
        const labels = { name: controller, controller };
        this.depth.set(labels, 0);
        this.seriesOf(controller); // exported at 0 from the start, as controller-runtime does
        const [adds, waited, worked, retries] = [this.adds.bind(labels), this.queueDuration.bind(labels), this.workDuration.bind(labels), this.retries.bind(labels)];
        const [normal, low] = [this.priorityWait.bind({ controller, priority: "normal" }), this.priorityWait.bind({ controller, priority: "low" })];
        const byPriority = new Map<number, (seconds: number) => void>([[0, normal], [LOW_PRIORITY, low]]);
        const waitedAt = (priority: number) => {
          let bound = byPriority.get(priority);
          if (!bound) byPriority.set(priority, (bound = this.priorityWait.bind({ controller, priority: String(priority) })));
          return bound;
        };
        return {
          added: () => adds(1),
          started: (_key, waitedMs, priority) => {
            waited(waitedMs / 1000);
            waitedAt(priority)(waitedMs / 1000);
          },
          finished: (_key, workedMs) => worked(workedMs / 1000),
          retried: () => retries(1),
        };
      },
      reconciled: (controller: string, result: ReconcileResult, seconds: number, terminal: boolean, trace?: TraceRef) => {
        const series = this.seriesOf(controller);
        series.reconciled[result](1);
        series.time(seconds, trace);
        if (result === "error") this.reconcileErrors.inc({ controller });
        if (terminal) this.terminalErrors.inc({ controller });
      },
      active: (controller, delta) => this.seriesOf(controller).active(delta),
      stuck: (controller, delta) => this.stuck.inc({ controller }, delta),
      leader: (name, isLeader) => this.leader.set({ name }, isLeader ? 1 : 0),
      caches: (read) => this.watchSeries(read),
    };
  }

  /**
   * The caches' watches, read when scraped: `kubeloop_watch_failing_seconds` (0 while it works),
   * `kubeloop_watch_last_heard_seconds` (since the server last said something to it),
   * `kubeloop_watch_failures_total`, `kubeloop_watch_relists_total`; labels kind, namespace.
   */
  private watchSeries(read: () => CacheHealth[]): void {
    const { Counter, Gauge } = loadPromClient();
    const registers = [this.registry];
    const labelNames = ["kind", "namespace"] as const;
    const rows = () => read().map((r) => ({ labels: { kind: r.kind, namespace: r.namespace }, health: r.health }));
    new Gauge({
      name: "kubeloop_watch_failing_seconds",
      help: "How long a cache's watch has been failing (0 while it works): past the Manager's watchFailureToleranceMs, /readyz is 503",
      labelNames,
      registers,
      collect() {
        for (const { labels, health } of rows()) this.set(labels, (health.failingForMs ?? 0) / 1000);
      },
    });
    new Gauge({
      name: "kubeloop_watch_last_heard_seconds",
      help: "Seconds since the API server last said something on a cache's watch (an event, a bookmark, a list page)",
      labelNames,
      registers,
      collect() {
        for (const { labels, health } of rows()) if (health.sinceHeardMs !== undefined) this.set(labels, health.sinceHeardMs / 1000);
      },
    });
    // Counters read from running totals: each scrape adds what was counted since the last.
    const counted = (name: string, help: string, value: (h: InformerHealth) => number) => {
      const seen = new Map<string, number>();
      new Counter({
        name,
        help,
        labelNames,
        registers,
        collect() {
          for (const { labels, health } of rows()) {
            const key = `${labels.kind}\u0000${labels.namespace}`;
            const now = value(health);
            const delta = now - (seen.get(key) ?? 0);
            if (delta > 0 || !seen.has(key)) this.inc(labels, Math.max(delta, 0));
            seen.set(key, now);
          }
        },
      });
    };
    counted("kubeloop_watch_failures_total", "Failed attempts of a cache's watch (refused, broken, silent past its inactivity timeout)", (h) => h.failures);
    counted("kubeloop_watch_relists_total", "Relists of a cache after its watch could not resume", (h) => h.relists);
  }

  /**
   * The hooks of a sharded operator, and its series: `kubeloop_shard_buckets_owned`,
   * `kubeloop_shard_bucket_moves_total{direction}`, `kubeloop_shard_handover_seconds`,
   * `kubeloop_shard_filtering{mode}` (watches), `kubeloop_shard_members{state}`, and
   * `kubeloop_shard_cached_objects{kind,selector}` (each sharded cache) read from `cached` when
   * scraped. Call once.
   * @internal
   */
  shardObserver(cached: () => { kind: string; selector: string; objects: number }[]): ShardObserver {
    const { Counter, Gauge, Histogram } = loadPromClient();
    const registers = [this.registry];
    const owned = new Gauge({ name: "kubeloop_shard_buckets_owned", help: "Buckets this replica acts on", registers });
    const moves = new Counter({ name: "kubeloop_shard_bucket_moves_total", help: "Buckets acquired by or released from this replica", labelNames: ["direction"], registers });
    const handover = new Histogram({ name: "kubeloop_shard_handover_seconds", help: "From a replica finding it should own a bucket to acting on it", buckets: [0.1, 0.5, 1, 2, 5, 10, 15, 20, 30, 60, 120], registers });
    const filtering = new Gauge({ name: "kubeloop_shard_filtering", help: "Sharded watches by who filters them: the API server (server) or this replica (client)", labelNames: ["mode"], registers });
    const members = new Gauge({ name: "kubeloop_shard_members", help: "Live members of this operator: agreeing on its sharding, or running another", labelNames: ["state"], registers });
    new Gauge({
      name: "kubeloop_shard_cached_objects",
      help: "Objects in each sharded cache of this replica (by kind and label selector)",
      labelNames: ["kind", "selector"],
      registers,
      collect() {
        for (const { kind, selector, objects } of cached()) this.set({ kind, selector }, objects);
      },
    });
    moves.inc({ direction: "acquired" }, 0);
    moves.inc({ direction: "released" }, 0);
    return {
      owned: (n) => owned.set(n),
      moved: (direction, n) => moves.inc({ direction }, n),
      handover: (seconds) => handover.observe(seconds),
      mode: (mode) => filtering.inc({ mode }),
      members: (live, disagreeing) => {
        members.set({ state: "agreeing" }, live);
        members.set({ state: "disagreeing" }, disagreeing);
      },
    };
  }

  /** A controller's bound series, made on its first update. */
  private seriesOf(controller: string) {
    let series = this.controllers.get(controller);
    if (!series) {
      const result = (r: ReconcileResult) => this.reconcileTotal.bind({ controller, result: r });
      series = {
        reconciled: { success: result("success"), requeue_after: result("requeue_after"), error: result("error") },
        time: this.reconcileTime.bind({ controller }),
        active: this.activeWorkers.bind({ controller }),
      };
      this.controllers.set(controller, series);
    }
    return series;
  }

  /**
   * The exposition served on /metrics: Prometheus' text format, or OpenMetrics (`openMetrics`:
   * what a scraper asks for with `Accept: application/openmetrics-text`), which adds exemplars:
   * the reconcile latency buckets name the trace of their last traced reconcile.
   */
  text(openMetrics = false): Promise<string> {
    if (!openMetrics) return this.registry.metrics();
    // The same metrics through an OpenMetrics registry. It renames counters in place (drops the
    // "_total" it adds back on each sample): each goes in as a view of its own, so that the
    // Prometheus exposition keeps its names.
    const { Registry } = loadPromClient();
    const open = new Registry<typeof Registry.OPENMETRICS_CONTENT_TYPE>();
    open.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    for (const metric of this.registry.getMetricsAsArray()) {
      const m = metric as unknown as { name: string; type: string; get(): Promise<{ name: string }>; getForPromString?(): Promise<{ name: string }> };
      // The exposition reads getForPromString() (our bound series) or get() (prom-client's own).
      const view = { name: m.name, type: m.type, getForPromString: async () => ({ ...(await (m.getForPromString?.() ?? m.get())), name: view.name }), reset: () => {} };
      open.registerMetric(view as unknown as PromClient.Metric);
    }
    return open.metrics();
  }

  /** The content type of {@link Metrics.text}'s Prometheus text. */
  get contentType(): string {
    return this.registry.contentType;
  }

  /** The content type of {@link Metrics.text}'s OpenMetrics exposition. */
  get openMetricsContentType(): string {
    return loadPromClient().Registry.OPENMETRICS_CONTENT_TYPE;
  }
}
