// Traces end to end (issue 36): an operator run by `kubeloop run --otel` (the OpenTelemetry Node
// SDK, configured by OTEL_* variables) sends its spans over OTLP to a real OpenTelemetry
// Collector (test/otelcol, built from the upstream Go modules), which writes them to a file this
// test reads. On the local control plane:
// - one spec change → a reconcile span, its queue wait, and the API calls it made as children;
// - a handler that throws a TemporaryError once → one span per attempt, the first failed;
// - an admission request → its server span, with the decision;
// - the handler's log line carries its span's trace id;
// - with a kube-apiserver that traces too (its own control plane), the server's span of a call is
//   a child of kubeloop's client span: the traceparent went through.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Client, ConfigMap, ValidatingWebhookConfiguration } from "../src/entries/index.js";
import { Gadget, Widget } from "./fixtures/traced/operator.js";
import { DEFAULT_CONTROLLERS, startControlPlane } from "../src/entries/testing.js";
import { startCollector, type Collector, type ExportedSpan } from "./otel-collector.js";
import { call, createNamespace, eventually, identityFromKubeconfig, releaseSharedCluster, sharedCluster } from "./helpers.js";

const root = join(import.meta.dirname, "..");
const scratch = mkdtempSync(join(tmpdir(), "kubeloop-tracing-"));
let collector: Collector;
let admin: Client;
before(async () => {
  collector = await startCollector(scratch);
  admin = await Client.load({ path: (await sharedCluster()).kubeconfigPath, rateLimit: false });
});
after(async () => {
  await collector?.stop();
  await admin?.close();
  rmSync(scratch, { recursive: true, force: true });
  await releaseSharedCluster();
});

const SERVER = 2; // OTLP SpanKind
const ERROR = 2; // OTLP StatusCode

/** Runs the traced operator with `kubeloop run --otel` against `kubeconfig` in `ns`; its output, and stop(). */
function runTraced(kubeconfig: string, ns: string): { output: () => string; stop: () => Promise<unknown> } {
  let output = "";
  const operator = spawn(
    process.execPath,
    [join(root, "bin/kubeloop.mjs"), "run", join(root, "test/fixtures/traced/operator.ts"), "--otel", "--standalone", "--install-crds", "-n", ns, "--kubeconfig", kubeconfig, "--metrics-bind", "127.0.0.1:0", "--health-bind", "0", "--webhook-bind", "127.0.0.1:0", "--log-format", "json"],
    { cwd: root, detached: true, env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: collector.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: "http/protobuf", OTEL_BSP_SCHEDULE_DELAY: "200", OTEL_SERVICE_NAME: "" } },
  );
  operator.stdout?.on("data", (d: Buffer) => (output += d.toString()));
  operator.stderr?.on("data", (d: Buffer) => (output += d.toString()));
  const exited = new Promise((resolve) => operator.once("exit", resolve));
  return {
    output: () => output,
    stop: () => {
      if (operator.pid && operator.exitCode === null) process.kill(-operator.pid, "SIGTERM");
      return exited;
    },
  };
}

describe("traces", () => {
  it("kubeloop run --otel: reconciles with their API calls and queue wait, handler attempts, admissions, at a real collector", { timeout: 300_000 }, async () => {
    const cluster = await sharedCluster();
    const ns = await createNamespace(admin, "traced");
    const operator = runTraced(cluster.kubeconfigPath, ns);
    const spans = (test: (s: ExportedSpan) => boolean) => collector.spans().filter(test);
    try {
      await eventually("the operator's webhook registered", async () => (await admin.resource(ValidatingWebhookConfiguration).list()).items.some((c) => c.metadata?.name?.includes("traced")), { timeoutMs: 120_000, intervalMs: 500 }).catch((error: unknown) => {
        throw new Error(`${String(error)}\n${operator.output().slice(-3000)}`);
      });

      // One spec change → its reconcile, with the API calls it made as children.
      await admin.resource(Widget).namespace(ns).create({ metadata: { name: "w" }, spec: { colour: "red" } });
      await eventually("the ConfigMap applied", async () => admin.resource(ConfigMap).namespace(ns).get("w").then((c) => c.data?.colour === "red", () => false), { timeoutMs: 60_000 });
      await admin.resource(Widget).namespace(ns).patch("w", { spec: { colour: "blue" } }, { type: "merge" });
      const reconcile = await eventually("the reconcile of the change, exported", async () => {
        const all = spans((s) => s.name === "reconcile widget" && s.attributes["kubeloop.object.name"] === "w" && s.attributes["k8s.namespace.name"] === ns);
        return all.find((r) => spans((c) => c.parentSpanId === r.spanId && c.name.startsWith("PATCH configmaps")).length > 0 && all.indexOf(r) > 0);
      }, { timeoutMs: 60_000, intervalMs: 500 });
      assert.equal(reconcile.service, "traced", "the service is the operator's name");
      assert.equal(typeof reconcile.attributes["kubeloop.queue.wait_ms"], "number", "the queue wait");
      assert.equal(reconcile.attributes["kubeloop.reconcile.result"], "success");
      const widget = await admin.resource(Widget).namespace(ns).get("w");
      assert.equal(reconcile.attributes["kubeloop.object.resource_version"], widget.metadata?.resourceVersion, "the version it reconciled: the change's");
      // Linked to the watch event that queued it: the span of the watch request that delivered it.
      assert.equal(reconcile.links.length, 1, "one link: the event that queued it");
      const link = reconcile.links[0]!;
      const watchSpan = spans((s) => s.spanId === link.spanId)[0];
      assert.ok(watchSpan, "the linked span was exported");
      assert.equal(watchSpan.attributes["kubeloop.k8s.verb"], "watch", `a watch request: ${watchSpan.name}`);
      assert.equal(watchSpan.kind, 3, "a client span");
      assert.equal(link.attributes["kubeloop.event.type"], "apply");
      if (link.attributes["kubeloop.event.kind"] === "Widget") assert.equal(link.attributes["kubeloop.object.resource_version"], widget.metadata?.resourceVersion, "the change's version");
      else assert.equal(link.attributes["kubeloop.event.kind"], "ConfigMap", "or its child's, which queued it last");
      const calls = spans((c) => c.parentSpanId === reconcile.spanId);
      const apply = calls.find((c) => c.name.startsWith("PATCH configmaps"));
      assert.ok(apply, `the apply is a child of the reconcile: ${calls.map((c) => c.name).join(", ")}`);
      assert.equal(apply.traceId, reconcile.traceId);
      assert.equal(apply.attributes["http.request.method"], "PATCH");
      assert.equal(apply.attributes["http.response.status_code"], 200);
      assert.equal(apply.attributes["kubeloop.k8s.verb"], "patch");
      assert.match(String(apply.attributes["url.path"]), new RegExp(`/api/v1/namespaces/${ns}/configmaps/w$`));

      // The reconcile latency's exemplars (OpenMetrics, as Prometheus asks for it) name reconciles' traces.
      const metricsUrl = operator.output().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { url?: string; msg?: string }).find((l) => l.msg?.startsWith("serving") && l.msg.includes("/metrics"))?.url;
      assert.ok(metricsUrl, `the metrics server's URL is logged: ${operator.output().split("\n").filter((l) => l.includes("serving")).join("\n")}`);
      const scraped = await fetch(`${metricsUrl}/metrics`, { headers: { accept: "application/openmetrics-text; version=1.0.0" } });
      assert.match(scraped.headers.get("content-type") ?? "", /^application\/openmetrics-text/);
      const exemplars = [...(await scraped.text()).matchAll(/^controller_runtime_reconcile_time_seconds_bucket\{[^}]*controller="widget"[^}]*\} \d+ # \{trace_id="([0-9a-f]{32})",span_id="([0-9a-f]{16})"\}/gm)];
      assert.ok(exemplars.length > 0, "the reconcile latency buckets carry exemplars");
      for (const [, traceId, spanId] of exemplars) assert.ok(spans((r) => r.name === "reconcile widget" && r.traceId === traceId && r.spanId === spanId).length === 1, `the exemplar ${traceId}/${spanId} is an exported reconcile span`);

      // A TemporaryError, then success: one span per attempt.
      await admin.resource(Gadget).namespace(ns).create({ metadata: { name: "g" }, spec: { size: 1 } });
      const attempts = await eventually("two attempts of the handler, exported", async () => {
        const found = spans((s) => s.name === "handler settle" && s.attributes["kubeloop.object.name"] === "g");
        return found.length >= 2 ? found.sort((a, b) => Number(a.attributes["kubeloop.handler.attempt"]) - Number(b.attributes["kubeloop.handler.attempt"])) : undefined;
      }, { timeoutMs: 60_000, intervalMs: 500 });
      assert.deepEqual(attempts.map((a) => a.attributes["kubeloop.handler.attempt"]), [1, 2]);
      assert.equal(attempts[0]?.status.code, ERROR);
      assert.match(attempts[0]?.status.message ?? "", /not yet/);
      assert.ok(attempts[0]?.events.some((e) => e.name === "exception" && /TemporaryError/.test(String(e.attributes["exception.type"]))), "the exception is recorded");
      assert.notEqual(attempts[1]?.status.code, ERROR);
      assert.equal(attempts[0]?.attributes["kubeloop.handler.cause"], "create");
      // The handler's log line carries its span's trace id.
      const logged = operator.output().split("\n").filter((l) => l.includes("settling, attempt 2")).map((l) => JSON.parse(l) as { trace_id?: string; span_id?: string });
      assert.equal(logged[0]?.trace_id, attempts[1]?.traceId, "the log line names the trace");
      assert.equal(logged[0]?.span_id, attempts[1]?.spanId);

      // An admission request → its server span.
      const id = identityFromKubeconfig(cluster.kubeconfigPath);
      const refused = await call(id, "POST", `/apis/traced.kubeloop.dev/v1/namespaces/${ns}/gadgets`, { apiVersion: "traced.kubeloop.dev/v1", kind: "Gadget", metadata: { name: "huge" }, spec: { size: 99 } });
      assert.equal(refused.status, 403, JSON.stringify(refused.body));
      const admission = await eventually("the admission span, exported", async () => spans((s) => s.name.startsWith("admission ") && s.attributes["kubeloop.object.name"] === "huge").at(0), { timeoutMs: 60_000, intervalMs: 500 });
      assert.equal(admission.kind, SERVER);
      assert.equal(admission.attributes["kubeloop.admission.allowed"], false);
      assert.equal(admission.attributes["kubeloop.admission.operation"], "CREATE");
      console.log(`tracing: ${collector.spans().length} spans at the collector; reconcile ${reconcile.name} with ${calls.length} API call(s), queue wait ${reconcile.attributes["kubeloop.queue.wait_ms"]} ms; ${attempts.length} handler attempts; admission ${admission.name}`);
    } finally {
      await operator.stop();
      for (const c of (await admin.resource(ValidatingWebhookConfiguration).list()).items) if (c.metadata?.name?.includes("traced")) await admin.resource(ValidatingWebhookConfiguration).delete(c.metadata.name).catch(() => undefined);
    }
  });

  it("the API server continues the trace: its spans of a call are children of kubeloop's client span (traceparent)", { timeout: 300_000 }, async () => {
    // A control plane of its own, whose kube-apiserver exports its spans (OTLP gRPC) to the collector.
    const config = join(scratch, "apiserver-tracing.yaml");
    writeFileSync(config, `apiVersion: apiserver.config.k8s.io/v1\nkind: TracingConfiguration\nendpoint: ${collector.grpc}\nsamplingRatePerMillion: 1000000\n`);
    const cp = await startControlPlane({ kubeconfig: false, controllers: DEFAULT_CONTROLLERS, apiServerFlags: [`--tracing-config-file=${config}`] });
    const client = await Client.load({ path: cp.kubeconfigPath, rateLimit: false });
    const operator = runTraced(cp.kubeconfigPath, "default");
    try {
      await eventually("the Widget CRD installed", async () => client.resource(Widget).namespace("default").list().then(() => true, () => false), { timeoutMs: 120_000, intervalMs: 500 });
      await client.resource(Widget).namespace("default").create({ metadata: { name: "traced-through" }, spec: { colour: "green" } });
      const [call, server] = await eventually("kube-apiserver's span under kubeloop's apply", async () => {
        const spans = collector.spans();
        const applies = spans.filter((s) => s.service === "traced" && s.name.startsWith("PATCH configmaps") && String(s.attributes["url.path"]).endsWith("/configmaps/traced-through"));
        for (const apply of applies) {
          const child = spans.find((s) => s.parentSpanId === apply.spanId && s.service !== "traced");
          if (child) return [apply, child] as const;
        }
        return undefined;
      }, { timeoutMs: 90_000, intervalMs: 500 }).catch((error: unknown) => {
        const services = [...new Set(collector.spans().map((s) => s.service))];
        throw new Error(`${String(error)} (services seen: ${services.join(", ")})\n${operator.output().slice(-2000)}`);
      });
      assert.equal(server.traceId, call.traceId, "one trace");
      assert.equal(server.kind, SERVER);
      console.log(`tracing: kube-apiserver's span "${server.name}" (service ${server.service}) is a child of kubeloop's "${call.name}"`);
    } finally {
      await operator.stop();
      await client.close();
      await cp.stop();
    }
  });
});
