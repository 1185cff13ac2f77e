// Kubernetes Events (events.k8s.io/v1) about the objects an operator manages, deduplicated
// into series as client-go's events recorder does: the same event about the same object
// (same type, reason, action and note) within `seriesWindowMs` does not create a new Event
// but raises `series.count` on the first one.
//
// Recording never fails a reconcile: events are best effort (a write failure is reported to
// `onError`), and writes are serialized per series so counts never go backwards.
import type { Client } from "../client/client.js";
import { CoreEvent, Event } from "../core/builtins.js";
import { systemClock, type Clock } from "../core/clock.js";
import { NotFoundError } from "../core/errors.js";
import { microTime, type KubeObject } from "../core/objects.js";
import type * as events from "../core/kube/events/v1.js";
import type * as core from "../core/kube/core/v1.js";

/** What happened. `type` is Normal unless said; `action` defaults to the reason. */
export interface EventInput {
  /**
   * "Normal" (default) or "Warning", posted as events.k8s.io/v1 Events (with series). Any other
   * type (kopf posts "Error" for exceptions, and any custom type) is posted as a core/v1 Event:
   * events.k8s.io refuses types other than Normal and Warning, core/v1 accepts them.
   */
  type?: "Normal" | "Warning" | (string & {});
  /** Short CamelCase machine-readable cause, e.g. "ScaledUp". */
  reason: string;
  /** Human-readable description (at most 1 kB). */
  note: string;
  /** What the controller did, e.g. "Scale". */
  action?: string;
  /** A second object involved, e.g. the Deployment that was scaled. */
  related?: KubeObject;
}

/** Options of an {@link EventRecorder}. */
export interface EventRecorderOptions {
  /** `reportingController`, e.g. "kubeloop.dev/pod-autoscaler". */
  controller: string;
  /** `reportingInstance`, e.g. the pod name. */
  instance: string;
  /** Repeats within this window join a series. Default 6 minutes (client-go's). */
  seriesWindowMs?: number;
  clock?: Clock;
  onError?: (error: unknown) => void;
}

interface Series {
  namespace: string;
  name: string;
  count: number;
  lastSeen: number;
  /** Serializes writes of this series. */
  writing: Promise<void>;
}

/**
 * Records events about objects.
 *
 * Guarantees: at most one Event object per (object, type, reason, action, note) per series
 * window; later occurrences patch its `series` (count, lastObservedTime). Failures are
 * reported, never thrown; `flush()` waits for writes in flight.
 */
export class EventRecorder {
  private readonly series = new Map<string, Series>();
  private readonly clock: Clock;
  private readonly windowMs: number;

  constructor(
    private readonly client: Client,
    private readonly options: EventRecorderOptions,
  ) {
    this.clock = options.clock ?? systemClock;
    this.windowMs = options.seriesWindowMs ?? 6 * 60_000;
  }

  /** Records an event about `regarding` (which needs apiVersion, kind, name and, if namespaced, namespace). */
  event(regarding: KubeObject, input: EventInput): void {
    const ref = objectReference(regarding);
    const type = input.type ?? "Normal";
    if (type !== "Normal" && type !== "Warning") return this.coreEvent(ref, type, input);
    const action = input.action ?? input.reason;
    const note = noteOf(input);
    const key = JSON.stringify([ref.uid ?? "", ref.namespace ?? "", ref.kind, ref.name, type, input.reason, action, note]);
    const now = this.clock.now();
    this.prune(now);
    const existing = this.series.get(key);
    if (existing && now - existing.lastSeen < this.windowMs) {
      existing.count += 1;
      existing.lastSeen = now;
      existing.writing = existing.writing.then(() => this.patchSeries(existing));
      return;
    }
    const namespace = ref.namespace || "default";
    const name = eventName(ref.name ?? "", uniqueSuffix());
    const body: events.Event = {
      metadata: { name, namespace },
      eventTime: microTime(new Date()),
      reportingController: this.options.controller,
      reportingInstance: this.options.instance,
      action,
      reason: input.reason,
      type,
      note,
      regarding: ref,
      ...(input.related ? { related: objectReference(input.related) } : {}),
    };
    const series: Series = { namespace, name, count: 1, lastSeen: now, writing: Promise.resolve() };
    this.series.set(key, series);
    series.writing = this.client
      .resource(Event)
      .create(body)
      .then(
        () => undefined,
        (error) => {
          this.series.delete(key);
          this.options.onError?.(error);
        },
      );
  }

  /** A core/v1 Event (for types events.k8s.io refuses); not aggregated into series. */
  private coreEvent(ref: NonNullable<events.Event["regarding"]>, type: string, input: EventInput): void {
    const now = new Date().toISOString();
    const namespace = ref.namespace || "default";
    const note = noteOf(input);
    const body: core.Event = {
      metadata: { name: eventName(ref.name ?? "", uniqueSuffix()), namespace },
      involvedObject: ref,
      type,
      reason: input.reason,
      message: note,
      action: input.action ?? input.reason,
      source: { component: this.options.controller },
      reportingComponent: this.options.controller,
      reportingInstance: this.options.instance,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
      ...(input.related ? { related: objectReference(input.related) } : {}),
    };
    const key = `core/${now}/${Math.random()}`;
    const series: Series = { namespace, name: body.metadata?.name ?? "", count: 1, lastSeen: this.clock.now(), writing: Promise.resolve() };
    this.series.set(key, series);
    series.writing = this.client
      .resource(CoreEvent)
      .create(body)
      .then(
        () => undefined,
        (error) => this.options.onError?.(error),
      )
      .finally(() => this.series.delete(key));
  }

  /** Waits until every write started so far has finished. */
  async flush(): Promise<void> {
    await Promise.all([...this.series.values()].map((s) => s.writing));
  }

  private async patchSeries(series: Series): Promise<void> {
    const count = series.count;
    if (count <= 1) return;
    try {
      await this.client
        .resource(Event)
        .namespace(series.namespace)
        .patch(series.name, { series: { count, lastObservedTime: microTime(new Date()) } }, { type: "merge" });
    } catch (error) {
      if (!(error instanceof NotFoundError)) this.options.onError?.(error);
    }
  }

  private prune(now: number): void {
    if (this.series.size < 4096) return;
    for (const [key, s] of this.series) if (now - s.lastSeen >= this.windowMs) this.series.delete(key);
  }
}

/** An Event's note, at most 1 kB. */
function noteOf(input: EventInput): string {
  return input.note.length > 1024 ? input.note.slice(0, 1021) + "..." : input.note;
}

/** A suffix that makes an Event's name unique: the time and some randomness, hex. */
function uniqueSuffix(): string {
  return `${Date.now().toString(16)}${Math.floor(Math.random() * 0xffff).toString(16)}`;
}

/**
 * `<object name>.<suffix>`, as client-go names Events, but never past the 253 characters of a
 * name: the object's part is shortened (client-go's Events about objects with the longest names
 * are refused).
 */
export function eventName(objectName: string, suffix: string): string {
  const room = 253 - suffix.length - 1;
  const base = objectName.length <= room ? objectName : objectName.slice(0, room).replace(/[.-]+$/, "");
  return `${base}.${suffix}`;
}

function objectReference(o: KubeObject): NonNullable<events.Event["regarding"]> {
  const m = o.metadata ?? {};
  if (!o.apiVersion || !o.kind || !m.name) throw new TypeError("an event needs an object with apiVersion, kind and metadata.name");
  return {
    apiVersion: o.apiVersion,
    kind: o.kind,
    name: m.name,
    ...(m.namespace ? { namespace: m.namespace } : {}),
    ...(m.uid ? { uid: m.uid } : {}),
    ...(m.resourceVersion ? { resourceVersion: m.resourceVersion } : {}),
  };
}
