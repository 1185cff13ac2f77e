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
});
