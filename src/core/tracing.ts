// OpenTelemetry tracing through `@opentelemetry/api` alone, an optional peer dependency: kubeloop
// makes spans and the application (or `kubeloop run --otel`) chooses the SDK and the exporter.
// Without the package, or without a registered tracer provider, nothing is recorded: the API's
// no-op tracer hands out non-recording spans, and attributes are only computed for a span that
// records.
import type * as Otel from "@opentelemetry/api";
import { optionalModule } from "./lazy.js";
import { VERSION } from "./version.js";

const otel = optionalModule<typeof Otel>("@opentelemetry/api");
let cached: Otel.Tracer | undefined;

/**
 * kubeloop's tracer from the registered tracer provider, or undefined while none is registered
 * (or @opentelemetry/api is not installed). Asked of the global provider's delegate rather than
 * through the API's proxy tracer: a span of the proxy with nothing behind it still costs ~3 µs
 * (a reconcile makes two or more), a question answered "none" almost nothing.
 */
function tracer(): Otel.Tracer | undefined {
  if (cached) return cached;
  const provider = otel()?.trace.getTracerProvider() as (Otel.TracerProvider & { getDelegateTracer?(name: string, version?: string): Otel.Tracer | undefined }) | undefined;
  return (cached = provider?.getDelegateTracer ? provider.getDelegateTracer("kubeloop", VERSION) : provider?.getTracer("kubeloop", VERSION));
}

/** Attribute values a span takes. */
export type SpanAttributes = Record<string, string | number | boolean | undefined>;

/** A span being recorded, as kubeloop's code sees it: add attributes and events, end it. */
export interface Traced {
  /** Whether the span records (attributes that cost something to compute are skipped otherwise). */
  readonly recording: boolean;
  /** Its context, to link other spans to it (a span that records only). */
  readonly context?: Otel.SpanContext;
  set(attributes: SpanAttributes): void;
  event(name: string, attributes?: SpanAttributes): void;
  /** Ends it: an error marks it failed, with the exception as an event. */
  end(error?: unknown): void;
}

const NOT_RECORDING: Traced = { recording: false, set: () => {}, event: () => {}, end: () => {} };

/**
 * Runs `fn` in a new span (a child of the active one, and active within `fn`, so spans started
 * by what `fn` calls are its children). `fn` ends the span through its `Traced`, or it ends when
 * `fn` settles (failed if `fn` threw). Without @opentelemetry/api, `fn` runs with a span that
 * records nothing.
 */
export async function inSpan<T>(name: string, options: { kind?: "client" | "server" | "internal"; attributes?: SpanAttributes; links?: Otel.Link[] }, fn: (span: Traced) => Promise<T>): Promise<T> {
  const t = tracer();
  const api = otel();
  if (!t || !api) return fn(NOT_RECORDING);
  const kind = options.kind === "client" ? api.SpanKind.CLIENT : options.kind === "server" ? api.SpanKind.SERVER : api.SpanKind.INTERNAL;
  const span = t.startSpan(name, { kind, attributes: clean(options.attributes), ...(options.links ? { links: options.links } : {}) });
  const traced = wrap(api, span);
  try {
    const result = await api.context.with(api.trace.setSpan(api.context.active(), span), () => fn(traced));
    traced.end();
    return result;
  } catch (error) {
    traced.end(error);
    throw error;
  }
}

function wrap(api: typeof Otel, span: Otel.Span): Traced {
  let ended = false;
  const recording = span.isRecording();
  return {
    recording,
    ...(recording ? { context: span.spanContext() } : {}),
    set: (attributes) => void span.setAttributes(clean(attributes)),
    event: (name, attributes) => void span.addEvent(name, clean(attributes)),
    end: (error) => {
      if (ended) return;
      ended = true;
      if (error !== undefined) {
        span.recordException(error instanceof Error ? error : String(error));
        span.setStatus({ code: api.SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      }
      span.end();
    },
  };
}

function clean(attributes: SpanAttributes | undefined): Otel.Attributes {
  const out: Otel.Attributes = {};
  for (const [key, value] of Object.entries(attributes ?? {})) if (value !== undefined) out[key] = value;
  return out;
}

/**
 * Adds the active trace context to outgoing request headers (W3C `traceparent`, with the
 * propagator the application registered; none: nothing is added).
 */
export function injectTraceContext(headers: Record<string, string>): void {
  const api = otel();
  if (api) api.propagation.inject(api.context.active(), headers);
}

/** The active span's ids for a log line (`trace_id`, `span_id`), or undefined when none records. */
export function traceIds(): { trace_id: string; span_id: string } | undefined {
  const api = otel();
  const span = api?.trace.getActiveSpan();
  if (!span?.isRecording()) return undefined;
  const { traceId, spanId } = span.spanContext();
  return { trace_id: traceId, span_id: spanId };
}

/** A link from a span to another (OpenTelemetry's `Link`): the span it points at, and what it means. */
export type TraceLink = Otel.Link;

// Where a watch event came from, for the span of the work it causes (a reconcile links to it).
// Events carry no trace context of their own; the watch request that delivered them has a span
// (a client span, the API server's span its child). The stream's body carries that span's
// context; while its events are handed over (synchronously) it is the "origin", and the watcher
// tags each event with it, so that it survives merged or queued delivery.
const STREAM_ORIGIN = Symbol("kubeloop.traceOrigin");
let origin: Otel.SpanContext | undefined;

/** Marks `target` (a watch's body, or an event) as coming from the span of `context`; nothing when undefined. */
export function tagOrigin(target: object, context: Otel.SpanContext | undefined): void {
  if (context) (target as { [STREAM_ORIGIN]?: Otel.SpanContext })[STREAM_ORIGIN] = context;
}

/** The span context `target` was tagged with, if any. */
export function originOf(target: object): Otel.SpanContext | undefined {
  return (target as { [STREAM_ORIGIN]?: Otel.SpanContext })[STREAM_ORIGIN];
}

/** Runs `fn` with `context` as the origin of the events it hands over (synchronously). */
export function fromOrigin<T>(context: Otel.SpanContext, fn: () => T): T {
  const before = origin;
  origin = context;
  try {
    return fn();
  } finally {
    origin = before;
  }
}

/** The origin of the events being handed over now (see {@link fromOrigin}), or undefined. */
export function currentOrigin(): Otel.SpanContext | undefined {
  return origin;
}

/**
 * Runs `fn` in the trace context carried by incoming request headers (a `traceparent` the caller
 * sent), so that spans started inside continue the caller's trace.
 */
export function withIncomingContext<T>(headers: Record<string, string | string[] | undefined>, fn: () => T): T {
  const api = otel();
  if (!api) return fn();
  return api.context.with(api.propagation.extract(api.context.active(), headers), fn);
}
