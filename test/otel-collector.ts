// A real OTLP receiver for the tracing test: the OpenTelemetry Collector of test/otelcol (the OTLP
// receiver and the file exporter), built with Go on first use and cached by the hash of its
// sources (~/.cache/kubeloop/otelcol/<hash>/otelcol), started on a free loopback port, writing
// what it receives as OTLP JSON lines to a file the test reads.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { waitFor } from "../src/entries/testing.js";
import { freePort } from "./helpers.js";

const source = join(import.meta.dirname, "otelcol");

/** The collector binary, built if this version of its sources has not been. */
export async function collectorBinary(): Promise<string> {
  const hash = createHash("sha256");
  for (const f of ["go.mod", "go.sum", "main.go"]) hash.update(readFileSync(join(source, f)));
  const dir = join(process.env.KUBELOOP_CACHE_DIR ?? join(homedir(), ".cache", "kubeloop"), "otelcol", hash.digest("hex").slice(0, 16));
  const binary = join(dir, "otelcol");
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  const building = `${binary}.${process.pid}`;
  await promisify(execFile)("go", ["build", "-o", building, "."], { cwd: source, maxBuffer: 1 << 24 }).catch((error: { stderr?: string }) => {
    throw new Error(`building the OpenTelemetry Collector (test/otelcol) failed: ${error.stderr ?? String(error)}`);
  });
  renameSync(building, binary); // atomic: a concurrent build of the same sources writes the same file
  return binary;
}

/** A running collector: its OTLP/HTTP endpoint (and gRPC's host:port), the spans it wrote so far, and stop(). */
export interface Collector {
  endpoint: string;
  grpc: string;
  spans(): ExportedSpan[];
  stop(): Promise<void>;
}

/** A span as the file exporter writes it (OTLP JSON), flattened with its resource's service name. */
export interface ExportedSpan {
  service: string;
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: number;
  attributes: Record<string, string | number | boolean>;
  status: { code?: number; message?: string };
  events: { name: string; attributes: Record<string, string | number | boolean> }[];
  links: { traceId: string; spanId: string; attributes: Record<string, string | number | boolean> }[];
}

type OtlpValue = { stringValue?: string; intValue?: string; boolValue?: boolean; doubleValue?: number };
function attributes(list: { key: string; value: OtlpValue }[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of list ?? []) out[key] = value.stringValue ?? (value.intValue !== undefined ? Number(value.intValue) : (value.boolValue ?? value.doubleValue ?? ""));
  return out;
}

/** Starts the collector in `dir`; resolves once it accepts OTLP/HTTP. */
export async function startCollector(dir: string): Promise<Collector> {
  const binary = await collectorBinary();
  const port = await freePort();
  const grpcPort = await freePort();
  const file = join(dir, "traces.jsonl");
  const config = join(dir, "otelcol.yaml");
  writeFileSync(
    config,
    [
      "receivers:",
      "  otlp:",
      "    protocols:",
      "      http:",
      `        endpoint: 127.0.0.1:${port}`,
      "      grpc:",
      `        endpoint: 127.0.0.1:${grpcPort}`,
      "exporters:",
      "  file:",
      `    path: ${file}`,
      "    format: json",
      "    flush_interval: 100ms",
      "service:",
      "  telemetry:",
      "    metrics:",
      "      level: none",
      "  pipelines:",
      "    traces:",
      "      receivers: [otlp]",
      "      exporters: [file]",
      "",
    ].join("\n"),
  );
  let output = "";
  const child: ChildProcess = spawn(binary, ["--config", `file:${config}`], { detached: true, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  child.stderr?.on("data", (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const stop = async () => {
    if (child.exitCode === null && child.pid) process.kill(-child.pid, "SIGTERM");
    await exited;
  };
  try {
    await waitFor("the collector's OTLP receiver", async () => {
      if (child.exitCode !== null) return "exited";
      // An empty OTLP/HTTP export: 200 once the receiver listens.
      const res = await fetch(`http://127.0.0.1:${port}/v1/traces`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }).catch(() => undefined);
      return res?.ok ? "ready" : undefined;
    }, { timeoutMs: 60_000, intervalMs: 200 }).then((state) => {
      if (state === "exited") throw new Error(`the collector exited (${child.exitCode}): ${output}`);
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    endpoint: `http://127.0.0.1:${port}`,
    grpc: `127.0.0.1:${grpcPort}`,
    stop,
    spans: () => {
      if (!existsSync(file)) return [];
      const spans: ExportedSpan[] = [];
      for (const line of readFileSync(file, "utf8").split("\n")) {
        if (!line.trim()) continue;
        const doc = JSON.parse(line) as { resourceSpans?: { resource?: { attributes?: { key: string; value: OtlpValue }[] }; scopeSpans?: { spans?: (Omit<ExportedSpan, "attributes" | "events" | "service" | "links"> & { attributes?: { key: string; value: OtlpValue }[]; events?: { name: string; attributes?: { key: string; value: OtlpValue }[] }[]; links?: { traceId: string; spanId: string; attributes?: { key: string; value: OtlpValue }[] }[] })[] }[] }[] };
        for (const rs of doc.resourceSpans ?? []) {
          const service = String(attributes(rs.resource?.attributes)["service.name"] ?? "");
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              spans.push({ ...s, service, parentSpanId: s.parentSpanId ?? "", status: s.status ?? {}, attributes: attributes(s.attributes), events: (s.events ?? []).map((e) => ({ name: e.name, attributes: attributes(e.attributes) })), links: (s.links ?? []).map((l) => ({ traceId: l.traceId, spanId: l.spanId, attributes: attributes(l.attributes) })) });
            }
          }
        }
      }
      return spans;
    },
  };
}
