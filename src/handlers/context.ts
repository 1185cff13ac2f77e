// What a handler (or timer, or daemon) gets, and how the `patch` it fills is written back:
// labels, annotations and other fields in one merge patch on the object, `status` through the
// status subresource (or with the main patch, for kinds that have none: discovery says which).
import type { Client } from "../client/client.js";
import { objectKey, type KubeObject, type ResourceKind } from "../core/objects.js";
import { boundToUid } from "../controller/finalizer.js";
import type { Logger } from "pino";
import type { EventRecorder } from "../controller/events.js";
import type { HandlerContext, HandlerEventInput, HandlerLogger } from "./registry.js";

type Patch = HandlerContext<KubeObject>["patch"];

/** The parts of a context that vary per call; the rest comes from the object. */
export type ContextParts = Omit<HandlerContext<KubeObject>, "object" | "spec" | "status" | "meta" | "patch" | "event" | "subhandler"> & {
  /** Where `ctx.event()` posts. */
  recorder: EventRecorder;
};

/** A fresh context for `object`, with an empty patch. */
export function handlerContext(object: KubeObject, parts: ContextParts): HandlerContext<KubeObject> {
  const { recorder, ...rest } = parts;
  const ctx = {
    object,
    spec: (object as { spec?: unknown }).spec,
    status: (object as { status?: unknown }).status,
    meta: object.metadata ?? {},
    patch: { metadata: { labels: {}, annotations: {} }, status: {} },
    ...rest,
    event: ({ regarding, ...input }: HandlerEventInput) => recorder.event(regarding ?? ctx.object, input),
    subhandler: () => {
      throw new TypeError("sub-handlers can be declared only in handlers (op.on.create/update/delete/resume/field), not in timers or daemons");
    },
  } as HandlerContext<KubeObject>;
  return ctx;
}

/**
 * A context whose `object` (and `spec`, `status`, `meta`) are read from `latest()` on every
 * access: for timers and daemons, which run while the object changes (kopf's daemons see the
 * current body too).
 */
export function liveContext(latest: () => KubeObject, parts: ContextParts): HandlerContext<KubeObject> {
  const ctx = handlerContext(latest(), parts);
  Object.defineProperties(ctx, {
    object: { get: latest, enumerable: true },
    spec: { get: () => (latest() as { spec?: unknown }).spec, enumerable: true },
    status: { get: () => (latest() as { status?: unknown }).status, enumerable: true },
    meta: { get: () => latest().metadata ?? {}, enumerable: true },
  });
  return ctx;
}

/** Splits a handler's patch into the main object part and the status part; drops empty parts. */
function splitPatch(patch: Partial<Patch>): { main: Record<string, unknown>; status: Record<string, unknown> } {
  const { status = {}, metadata, ...rest } = patch as Patch;
  const main: Record<string, unknown> = { ...rest };
  const meta: Record<string, unknown> = {};
  if (metadata?.labels && Object.keys(metadata.labels).length) meta.labels = metadata.labels;
  if (metadata?.annotations && Object.keys(metadata.annotations).length) meta.annotations = metadata.annotations;
  if (Object.keys(meta).length) main.metadata = meta;
  return { main, status };
}

/**
 * Writes handler patches for objects of one kind. Whether the kind has a status subresource is
 * asked of discovery (once; again after a failure), never guessed from an error: a 404 on a
 * status write usually means the object was just deleted, and is thrown as such.
 */
export class PatchWriter {
  private statusSubresource: Promise<boolean> | undefined;

  constructor(
    private readonly client: Client,
    private readonly kind: ResourceKind,
  ) {}

  /**
   * Writes `patch` (plus `statusExtra` into status) to `object`; returns the object as last
   * written. The status part goes first, so a failure leaves the progress unrecorded.
   */
  async write(object: KubeObject, patch: Partial<Patch> | Record<string, unknown>, statusExtra?: Record<string, unknown>): Promise<KubeObject> {
    const { main, status } = splitPatch(patch as Partial<Patch>);
    const statusPatch = { ...status, ...statusExtra };
    const name = object.metadata?.name ?? "";
    const ns = object.metadata?.namespace;
    const handle = ns ? this.client.resource(this.kind).namespace(ns) : this.client.resource(this.kind);
    let latest = object;
    const hasStatus = Object.keys(statusPatch).length > 0;
    const viaSubresource = hasStatus && (await this.hasStatusSubresource());
    if (hasStatus && !viaSubresource) main.status = statusPatch;
    // Status first: the main patch carries the handler's progress ("success"), so it must land
    // only after the result did. If the status write fails, nothing is recorded and the handler
    // runs again (at least once, never lost).
    // Every write carries the uid it was computed for (the API server refuses a uid that differs:
    // the garbage collector's precondition idiom), so nothing lands on an object re-created
    // under the same name meanwhile.
    const uid = object.metadata?.uid;
    const guard = <P extends Record<string, unknown>>(p: P): P => (uid ? { ...p, metadata: { ...(p.metadata as object), uid } } : p);
    await boundToUid(handle, object, async () => {
      if (viaSubresource) latest = await handle.patchStatus(name, guard({ status: statusPatch }), { type: "merge" });
      if (Object.keys(main).length) latest = await handle.patch(name, guard(main as Record<string, unknown>), { type: "merge" });
    });
    return latest;
  }

  private hasStatusSubresource(): Promise<boolean> {
    // Ask discovery itself: a descriptor's static mapping says nothing about subresources.
    this.statusSubresource ??= this.client.mapper.mapping({ apiVersion: this.kind.apiVersion, kind: this.kind.kind }).then(
      (m) => m.subresources.includes("status"),
      (error: unknown) => {
        this.statusSubresource = undefined;
        throw error;
      },
    );
    return this.statusSubresource;
  }
}

/** Log levels, in order, for posting handler logs as Events. */
const LEVELS = ["debug", "info", "warn", "error"] as const;

/**
 * The logger a handler, timer or daemon gets: pino lines that carry the object, and, at or
 * above `eventLevel`, the same line posted as an Event on the object (reason `Logging`).
 */
export function objectLogger(
  logger: Logger,
  object: KubeObject,
  id: string,
  events?: { recorder: EventRecorder; level: (typeof LEVELS)[number] | "off" },
): HandlerLogger {
  const base = logger.child({ object: objectKey(object.metadata), handler: id });
  const min = !events || events.level === "off" ? Infinity : LEVELS.indexOf(events.level);
  const at = (level: (typeof LEVELS)[number]) => (first: string | Record<string, unknown>, second?: string) => {
    const [fields, message] = typeof first === "string" ? [{}, first] : [first, second ?? ""];
    base[level](fields, message);
    if (events && LEVELS.indexOf(level) >= min) {
      events.recorder.event(object, { type: level === "warn" || level === "error" ? "Warning" : "Normal", reason: "Logging", action: id, note: message });
    }
  };
  return { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}
