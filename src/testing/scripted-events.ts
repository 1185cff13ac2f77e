// ScriptedEvents: an event source for informers that a test drives by hand, so controllers,
// the Manager and the handlers run without an API server. Each (kind, scope) the informers ask
// for gets its own stream; `list()` plays an initial list, `apply()` and `delete()` play watch
// events. Events are delivered in order, after the store has applied them, as from a watch.
import type { KubeObject, ResourceKind } from "../core/objects.js";
import type { EventSource, InformerScope } from "../runtime/informer.js";
import type { WatcherEvent } from "../runtime/watcher.js";

interface Stream {
  kind: ResourceKind;
  scope: InformerScope;
  buffered: WatcherEvent<KubeObject>[];
  wake: (() => void) | undefined;
}

/**
 * A scripted source of watch events: `new InformerFactory(client, { source: scripted.source })`.
 *
 * Guarantees: every event given before or after an informer starts reaches it once, in order;
 * an informer that stops ends its stream. Streams are matched by kind (apiVersion and kind)
 * and, when the event names one, by namespace.
 */
export class ScriptedEvents {
  private readonly streams = new Set<Stream>();
  private readonly backlog: { kind: ResourceKind; event: WatcherEvent<KubeObject> }[] = [];

  /** The {@link EventSource} to give an InformerFactory. */
  readonly source: EventSource = <T extends KubeObject>(kind: ResourceKind<T>, scope: InformerScope, signal: AbortSignal) => this.stream(kind, scope, signal) as AsyncIterable<WatcherEvent<T>>;

  /** Plays an initial list of `objects` (init, one initApply each, initDone). */
  list(kind: ResourceKind, objects: KubeObject[]): void {
    this.emit(kind, { type: "init" });
    for (const object of objects) this.emit(kind, { type: "initApply", object });
    this.emit(kind, { type: "initDone" });
  }

  /** Plays a watch event: an object created or changed. */
  apply(kind: ResourceKind, object: KubeObject): void {
    this.emit(kind, { type: "apply", object });
  }

  /** Plays a watch event: an object deleted. */
  delete(kind: ResourceKind, object: KubeObject, finalStateUnknown = false): void {
    this.emit(kind, { type: "delete", object, ...(finalStateUnknown ? { finalStateUnknown } : {}) });
  }

  /** Delivers `event` to every stream of `kind` (kept for streams that start later). */
  emit(kind: ResourceKind, event: WatcherEvent<KubeObject>): void {
    this.backlog.push({ kind, event });
    for (const stream of this.streams) this.deliver(stream, kind, event);
  }

  private deliver(stream: Stream, kind: ResourceKind, event: WatcherEvent<KubeObject>): void {
    if (stream.kind.apiVersion !== kind.apiVersion || stream.kind.kind !== kind.kind) return;
    const ns = "object" in event ? event.object.metadata?.namespace : undefined;
    if (stream.scope.namespace && ns && ns !== stream.scope.namespace) return;
    stream.buffered.push(event);
    stream.wake?.();
  }

  private async *stream(kind: ResourceKind, scope: InformerScope, signal: AbortSignal): AsyncGenerator<WatcherEvent<KubeObject>> {
    const stream: Stream = { kind, scope, buffered: [], wake: undefined };
    for (const { kind: k, event } of this.backlog) this.deliver(stream, k, event);
    this.streams.add(stream);
    const onAbort = () => stream.wake?.();
    signal.addEventListener("abort", onAbort, { once: true });
    try {
      while (!signal.aborted) {
        const next = stream.buffered.shift();
        if (next) {
          yield next;
          continue;
        }
        await new Promise<void>((resolve) => (stream.wake = resolve));
        stream.wake = undefined;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.streams.delete(stream);
    }
  }
}
