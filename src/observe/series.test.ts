// The bound series of the reconcile loop's metrics are exposed exactly as prom-client exposes
// its own Counter, Gauge and Histogram after the same updates (the Registry formats both).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import * as prom from "prom-client";
import { BoundHistogram, BoundValue } from "./series.js";
import { Metrics } from "./metrics.js";

const BUCKETS = [1e-6, 1e-3, 0.01, 0.1, 1, 10];

describe("bound series", () => {
  it("a histogram's text and JSON are prom-client's for the same observations (label values escaped, +Inf, sum, count)", async () => {
    const ours = new prom.Registry();
    const theirs = new prom.Registry();
    const histogram = new BoundHistogram("work_seconds", "Work time", ["name", "controller"], BUCKETS, ours);
    const reference = new prom.Histogram({ name: "work_seconds", help: "Work time", labelNames: ["name", "controller"], buckets: BUCKETS, registers: [theirs] });
    const labels = [
      { name: "a", controller: "a" },
      { name: 'we"ird\\name\n', controller: "b" },
    ];
    const values = [0, 5e-7, 1e-6, 0.002, 0.5, 3, 10, 11, 1e6];
    for (const l of labels) {
      const observe = histogram.bind(l);
      for (const v of values) {
        observe(v);
        reference.observe(l, v);
      }
    }
    assert.equal(await ours.metrics(), await theirs.metrics());
    // JSON: the same samples (prom-client adds `exemplar: null` to each, exemplars being off).
    const withoutExemplars = (metrics: prom.MetricObjectWithValues<prom.MetricValue<string>>[]) =>
      metrics.map((m) => ({ ...m, values: m.values.map((v) => Object.fromEntries(Object.entries(v).filter(([k]) => k !== "exemplar"))) }));
    assert.deepEqual(await ours.getMetricsAsJSON(), withoutExemplars(await theirs.getMetricsAsJSON()));
    ours.resetMetrics();
    theirs.resetMetrics();
    histogram.bind(labels[0] as { name: string; controller: string })(0.5);
    reference.observe(labels[0] as { name: string; controller: string }, 0.5);
    // After a reset prom-client forgets its series; ours keeps them at zero (exported, as
    // controller-runtime exports a controller's series from its start).
    assert.match(await ours.metrics(), /work_seconds_count\{name="a",controller="a"\} 1\n/);
    assert.match(await ours.metrics(), /work_seconds_count\{name="we\\"ird\\\\name\\n",controller="b"\} 0/);
  });

  it("a counter's and a gauge's text are prom-client's for the same updates", async () => {
    const ours = new prom.Registry();
    const theirs = new prom.Registry();
    const counter = new BoundValue("counter", "adds_total", "Adds", ["controller", "result"], ours);
    const gauge = new BoundValue("gauge", "active", "Active", ["controller"], ours);
    const refCounter = new prom.Counter({ name: "adds_total", help: "Adds", labelNames: ["controller", "result"], registers: [theirs] });
    const refGauge = new prom.Gauge({ name: "active", help: "Active", labelNames: ["controller"], registers: [theirs] });
    const add = counter.bind({ controller: "c", result: "success" });
    const active = gauge.bind({ controller: "c" });
    for (let i = 0; i < 5; i++) {
      add(1);
      refCounter.inc({ controller: "c", result: "success" });
      active(1);
      refGauge.inc({ controller: "c" }, 1);
    }
    active(-2);
    refGauge.inc({ controller: "c" }, -2);
    assert.equal(await ours.metrics(), await theirs.metrics());
  });

  it("refuses a series without all its labels, naming the metric and the label", () => {
    const histogram = new BoundHistogram("h", "H", ["controller"], BUCKETS, new prom.Registry());
    assert.throws(() => histogram.bind({} as { controller: string }), /metric h: label controller is missing/);
  });

  it("the Manager's hooks move the controller-runtime metrics", async () => {
    const metrics = new Metrics({ processMetrics: false });
    const observer = metrics.observer;
    const hooks = observer.queue?.("widgets", () => 3);
    hooks?.added?.("ns/a");
    hooks?.added?.("ns/b");
    hooks?.started?.("ns/a", 2, 0);
    hooks?.finished?.("ns/a", 40);
    hooks?.retried?.("ns/a");
    observer.active?.("widgets", 1);
    observer.reconciled?.("widgets", "success", 0.004, false);
    observer.reconciled?.("widgets", "error", 0.2, true);
    observer.active?.("widgets", -1);
    const text = await metrics.text();
    for (const line of [
      'workqueue_adds_total{name="widgets",controller="widgets"} 2',
      'workqueue_retries_total{name="widgets",controller="widgets"} 1',
      'workqueue_depth{name="widgets",controller="widgets"} 3',
      'workqueue_queue_duration_seconds_bucket{le="0.01",name="widgets",controller="widgets"} 1',
      'workqueue_work_duration_seconds_bucket{le="0.01",name="widgets",controller="widgets"} 0',
      'workqueue_work_duration_seconds_bucket{le="0.1",name="widgets",controller="widgets"} 1',
      'controller_runtime_reconcile_total{controller="widgets",result="success"} 1',
      'controller_runtime_reconcile_total{controller="widgets",result="error"} 1',
      'controller_runtime_reconcile_total{controller="widgets",result="requeue_after"} 0',
      'controller_runtime_reconcile_time_seconds_bucket{le="0.005",controller="widgets"} 1',
      'controller_runtime_reconcile_time_seconds_count{controller="widgets"} 2',
      'controller_runtime_reconcile_errors_total{controller="widgets"} 1',
      'controller_runtime_terminal_reconcile_errors_total{controller="widgets"} 1',
      'controller_runtime_active_workers{controller="widgets"} 0',
    ]) {
      assert.ok(text.includes(`${line}\n`), `missing: ${line}`);
    }
  });

  it("exemplars: a traced observation is its bucket's exemplar in OpenMetrics, as prom-client's own exemplars are written; the Prometheus text has none", async () => {
    // prom-client's types give the Registry's content type no constructor argument; its code takes one.
    const openRegistry = () => {
      const r = new prom.Registry();
      r.setContentType(prom.Registry.OPENMETRICS_CONTENT_TYPE as unknown as typeof prom.Registry.PROMETHEUS_CONTENT_TYPE);
      return r;
    };
    const ours = openRegistry();
    const theirs = openRegistry();
    const histogram = new BoundHistogram("work_seconds", "Work time", ["controller"], BUCKETS, ours);
    const reference = new prom.Histogram({ name: "work_seconds", help: "Work time", labelNames: ["controller"], buckets: BUCKETS, registers: [theirs], enableExemplars: true });
    const observe = histogram.bind({ controller: "c" });
    const trace = { traceId: "0af7651916cd43dd8448eb211c80319c", spanId: "b7ad6b7169203331" };
    for (const [value, traced] of [[0.005, true], [0.5, false], [20, true]] as const) {
      observe(value, traced ? trace : undefined);
      // (prom-client types exemplarLabels with the metric's own label names; any names work.)
      reference.observe({ labels: { controller: "c" }, value, ...(traced ? { exemplarLabels: { trace_id: trace.traceId, span_id: trace.spanId } as never } : {}) });
    }
    const withoutTime = (text: string) => text.replace(/ (\d+(\.\d+)?)$/gm, (m, t: string) => (Number(t) > 1e9 ? " <time>" : m));
    const text = await ours.metrics();
    assert.equal(withoutTime(text), withoutTime(await theirs.metrics()));
    assert.match(text, /work_seconds_bucket\{le="0.01",controller="c"\} 1 # \{trace_id="0af7651916cd43dd8448eb211c80319c",span_id="b7ad6b7169203331"\} 0.005 \d+/);
    assert.match(text, /work_seconds_bucket\{le="\+Inf",controller="c"\} 3 # \{trace_id="[0-9a-f]+",span_id="[0-9a-f]+"\} 20 /);
    const plain = new prom.Registry();
    const again = new BoundHistogram("work_seconds", "Work time", ["controller"], BUCKETS, plain);
    again.bind({ controller: "c" })(0.005, trace);
    assert.doesNotMatch(await plain.metrics(), /#.*trace_id/, "the Prometheus text format has no exemplars");
  });

  it("Metrics: OpenMetrics on request, with the reconcile latency's exemplars; the Prometheus text keeps its counter names after it", async () => {
    const metrics = new Metrics({ processMetrics: false });
    metrics.observer.reconciled?.("widgets", "success", 0.004, false, { traceId: "1".repeat(32), spanId: "2".repeat(16) });
    const open = await metrics.text(true);
    assert.match(open, /controller_runtime_reconcile_time_seconds_bucket\{le="0.005",controller="widgets"\} 1 # \{trace_id="1{32}",span_id="2{16}"\} 0.004 /);
    assert.match(open, /^controller_runtime_reconcile_total\{controller="widgets",result="success"\} 1$/m);
    assert.match(open, /# EOF\n$/);
    assert.match(metrics.openMetricsContentType, /^application\/openmetrics-text; version=1.0.0/);
    const text = await metrics.text();
    assert.match(text, /^controller_runtime_reconcile_total\{controller="widgets",result="success"\} 1$/m, "the counter's name in the Prometheus text, after an OpenMetrics scrape");
    assert.match(text, /^# TYPE controller_runtime_reconcile_total counter$/m);
    assert.doesNotMatch(text, /trace_id/);
    assert.match(metrics.contentType, /^text\/plain; version=0.0.4/);
  });
});
