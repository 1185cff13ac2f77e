// Processing of one object at kopf's level, run as the reconcile function of a controller per
// kind (so it inherits the queue's guarantees: one worker per object, backoff, leader gating).
//
// Each reconcile works out the cause from the object alone (level-based, restart-safe):
//   deletionTimestamp + our finalizer   → delete handlers, then the finalizer is removed
//   no diff base annotation             → create (and field handlers for fields that are set)
//   essence differs from the diff base  → update (and field handlers for fields that changed)
//   first sight in this process         → resume handlers (before the above)
// Handlers of a cause run in registration order. After each one its progress (success,
// retries, delayedUntil, failure) is written to the object together with the handler's
// `patch` (and its return value under status.<id>), so a killed operator resumes with the next
// handler. When every handler of the change is done, the diff base becomes the current essence
// and the progress is cleared.
import { inSpan } from "../core/tracing.js";
import type { Logger } from "pino";
import type { Client } from "../client/client.js";
import { systemClock, type Clock } from "../core/clock.js";
import type { KubeObject } from "../core/objects.js";
import { objectKey, objectId } from "../core/objects.js";
import { Action, type ObjectRef, type ReconcileContext } from "../controller/reconcile.js";
import type { EventRecorder } from "../controller/events.js";
import { addFinalizer, hasFinalizer, removeFinalizer } from "../controller/finalizer.js";
import { mergePatch } from "./diff.js";
import { detectCause, planSteps, type Detected, type Step } from "./causes.js";
import { annotationsProgress, statusProgress, type ProgressStorage } from "./storage.js";
import { HandlerRetriesError, HandlerTimeoutError, PermanentError, retryDelay } from "./errors.js";
import { InvalidError, ObjectReplacedError, TerminalError } from "../core/errors.js";
import { matches } from "./filters.js";
import { DIFF_BASE_LIMIT, encodeDiffBase, essence, type HandlerProgress, type ProgressKeys } from "./progress.js";
import type { Cause, HandlerFn, HandlerLogger, Indexes, KindEntry, ObjectHandler, SubhandlerOptions } from "./registry.js";
import type { Tasks } from "./tasks.js";
import { PatchWriter, handlerContext, objectLogger } from "./context.js";

import type { EventLevel } from "./registry.js";
export type { EventLevel };

/** Everything the processor needs from the operator. */
/** Whether `error` is the server refusing a handler's own patch or result (not our bookkeeping, not a transient failure). */
function refusedHandlerWrite(error: unknown, outcome: Outcome): boolean {
  return error instanceof InvalidError && (Object.keys(outcome.patch).length > 0 || outcome.result !== undefined);
}

/** The object a handler ran for, and the essence its change is about. */
interface Seen {
  object: KubeObject;
  base: Record<string, unknown> | undefined;
}

/** What a write adds for our bookkeeping: annotations, and status when progress lives there. */
interface Bookkeeping {
  annotations: Record<string, string | null>;
  status: Record<string, unknown> | undefined;
}

/** What one run of a handler produced: its progress, return value, patch, and whether it is finished. */
interface Outcome {
  next: HandlerProgress;
  result: unknown;
  patch: Record<string, unknown>;
  done: boolean;
  /** The object as last written while running (sub-handlers record their progress as they go). */
  object?: KubeObject;
}

export interface ProcessorOptions {
  client: Client;
  entry: KindEntry;
  keys: ProgressKeys;
  finalizer: string;
  recorder: EventRecorder;
  logger: Logger;
  indexes: Indexes;
  tasks: Tasks;
  /** Where handler progress is kept: annotations (default) or `status.kubeloop.progress`. */
  progressIn?: "annotations" | "status";
  /** Handler log lines at or above this level become Events. Default "info". */
  eventLevel?: EventLevel;
  /**
   * Time for handler deadlines (`timeoutMs`). Progress timestamps (`started`, `delayedUntil`)
   * are wall-clock epoch times by design: they are kept in the object and read by other replicas.
   */
  clock?: Clock;
}


/** Vanished objects waiting for their delete handlers, at most (each holds its last state). */
const MAX_VANISHED = 10_000;

/** Reconciles objects of one kind by running its handlers. */
export class Processor {
  private readonly seen = new Set<string>();
  /** Objects that vanished carrying our finalizer, by key, until their delete handlers ran (leader only). */
  private readonly vanished = new Map<string, KubeObject>();
  private leading = false;
  private readonly resumeProgress = new Map<string, HandlerProgress>();
  /**
   * Outcomes of handlers that ran but whose record failed to be written (a refused or cut
   * PATCH), by "uid/handler", with the cause and the object they ran for. The next attempt for
   * the same cause writes the record instead of running the handler again, even if the object
   * changed meanwhile: the change is marked handled as of the object its cause was found on, so a later change
   * goes to the update handlers. A success is repeated only when the process dies between the
   * handler's end and its record.
   */
  private readonly unrecorded = new Map<string, { cause: Cause; seen: Seen; outcome: Outcome }>();
  private readonly writer: PatchWriter;
  private readonly storage: ProgressStorage;

  constructor(private readonly o: ProcessorOptions) {
    this.writer = new PatchWriter(o.client, o.entry.kind);
    this.storage = o.progressIn === "status" ? statusProgress(o.keys) : annotationsProgress(o.keys);
  }

  /**
   * After a relist (a 410: events may have been missed), every object counts as first seen
   * again: its resume handlers run once more, as after a restart (kopf resumes on restart only).
   */
  relisted(): void {
    this.seen.clear();
    this.resumeProgress.clear();
  }

  /**
   * While this replica leads (the handlers' controller runs), objects that vanished carrying our
   * finalizer are finalized here (see {@link vanish}); on followers nothing is kept.
   */
  setLeading(leading: boolean): void {
    this.leading = leading;
    if (!leading) this.vanished.clear();
  }

  /**
   * An object left the cluster while it carried our finalizer and no deletionTimestamp: it was
   * never seen being deleted, so its delete handlers never ran. The API server lets this happen
   * when a DELETE races the PATCH that adds a finalizer (kubernetes/kubernetes#77988): both
   * succeed, the object is gone. Its delete handlers run anyway, once, with its last state
   * (their progress in memory: nothing can be written to a gone object), when the controller
   * takes its key (the delete event queued it). Returns whether it was taken (leading, and with
   * delete handlers that match it).
   */
  vanish(object: KubeObject): boolean {
    if (!this.leading || object.metadata?.deletionTimestamp || !hasFinalizer(object, this.o.finalizer)) return false;
    if (!this.o.entry.handlers.some((h) => h.cause === "delete" && matches(object, h.options))) return false;
    const key = objectKey(object.metadata);
    if (this.vanished.size >= MAX_VANISHED && !this.vanished.has(key)) {
      this.o.logger.error({ object: key }, `more than ${MAX_VANISHED} vanished objects wait for their delete handlers: this one is dropped`);
      return false;
    }
    this.vanished.set(key, object);
    const note = "the object vanished while it carried our finalizer, never seen being deleted (a DELETE can race the PATCH that adds a finalizer: kubernetes/kubernetes#77988): its delete handlers run with its last state";
    this.o.logger.warn({ object: key, uid: objectId(object) }, note);
    this.o.recorder.event(object, { type: "Warning", reason: "VanishedWithFinalizer", note });
    return true;
  }

  /** Drops what this processor keeps about an object (called when it leaves the cache), so its memory is bounded by the cache. */
  forget(uid: string): void {
    this.seen.delete(uid);
    for (const key of this.resumeProgress.keys()) if (key.startsWith(`${uid}/`)) this.resumeProgress.delete(key);
    for (const key of this.unrecorded.keys()) if (key.startsWith(`${uid}/`)) this.unrecorded.delete(key);
  }

  /** Objects with per-object state (tests: bounded by the cache). */
  get size(): number {
    return this.seen.size + this.resumeProgress.size + this.unrecorded.size + this.vanished.size;
  }

  /** The reconcile function. */
  readonly reconcile = async (ref: ObjectRef, ctx: ReconcileContext<KubeObject>): Promise<Action | void> => {
    const gone = this.vanished.get(objectKey(ref));
    if (gone) {
      const action = await this.finalizeVanished(gone, ctx);
      if (action) return action;
    }
    const object = ctx.object;
    if (!object) return;
    const uid = objectId(object);
    try {
      return await this.process(object, uid, ctx);
    } catch (error) {
      if (!(error instanceof ObjectReplacedError)) throw error;
      // Deleted (and perhaps created again under its name) while its handlers ran: what they
      // did is not recorded anywhere; the new object's own events queue it as a new object.
      this.o.logger.info({ object: objectKey(object.metadata), uid, now: error.actualUid }, "the object was deleted while its handlers ran: their outcome is dropped (a new object under the name is handled as new)");
      return;
    } finally {
      // The object may have left the cache while we worked (deleted without our finalizer):
      // its delete event already came, so drop what this reconcile may have added back.
      const cached = ctx.store.get(objectKey(object.metadata));
      if (!cached || objectId(cached) !== uid) {
        this.forget(uid);
        void this.o.tasks.stop(uid);
      }
    }
  };

  /** Runs the delete handlers of an object that vanished with our finalizer (see {@link vanish}); an action while they are not done. */
  private async finalizeVanished(object: KubeObject, ctx: ReconcileContext<KubeObject>): Promise<Action | undefined> {
    const key = objectKey(object.metadata);
    const uid = objectId(object);
    const detected: Detected = { cause: "delete", deleting: true, resume: false, base: undefined, current: {}, compact: false };
    const outcome = await this.runSteps(object, "delete", planSteps(object, this.o.entry.handlers, detected).steps, ctx, { inMemory: true, gone: true });
    if (outcome.pending) return outcome.action ?? Action.requeueAfter(1_000);
    this.vanished.delete(key);
    this.forget(uid);
    return undefined;
  }

  private async process(initial: KubeObject, uid: string, ctx: ReconcileContext<KubeObject>): Promise<Action | void> {
    let object = initial;
    const { entry, finalizer, keys } = this.o;
    const detected = detectCause(object, { keys, finalizer, firstSight: !this.seen.has(uid) });
    const { resume, steps } = planSteps(object, entry.handlers, detected);

    if (detected.deleting) {
      await this.o.tasks.stop(uid);
      this.forget(uid);
      if (detected.cause !== "delete") return; // not ours to finalize (any more)
      const outcome = await this.runSteps(object, "delete", steps, ctx, {});
      if (outcome.pending) return outcome.action;
      await removeFinalizer(this.o.client, ctx.kind, outcome.object, finalizer);
      return;
    }

    const needsFinalizer =
      entry.handlers.some((h) => h.cause === "delete" && matches(object, h.options)) ||
      entry.timers.some((t) => matches(object, t.options)) ||
      entry.daemons.some((d) => matches(object, d.options));
    if (needsFinalizer && !hasFinalizer(object, finalizer)) object = await addFinalizer(this.o.client, ctx.kind, object, finalizer);
    if (!needsFinalizer && hasFinalizer(object, finalizer)) object = (await removeFinalizer(this.o.client, ctx.kind, object, finalizer)) ?? object;
    this.o.tasks.ensure(object, entry);

    // Resume handlers: once per object per process, for objects that were handled before.
    if (resume.length) {
      const outcome = await this.runSteps(object, "resume", resume, ctx, { inMemory: true });
      if (outcome.pending) return outcome.action;
      object = outcome.object;
    }
    this.seen.add(uid);

    if (!detected.cause) return;
    this.o.tasks.touch(uid);
    // Nothing is written on an object that no handler, timer or daemon of ours matches (kopf): no
    // diff base, so when it starts matching, that is a creation for the handlers that now match.
    if (!needsFinalizer && !entry.handlers.some((h) => matches(object, h.options))) return;
    const outcome = await this.runSteps(object, detected.cause, steps, ctx, { base: detected.current, finish: (patch, seen) => this.handled(seen.object, seen.base ?? detected.current, patch) });
    if (outcome.pending) return outcome.action;
    if (!outcome.finalWritten) {
      const done = this.handled(object, detected.current);
      await this.record(outcome.object, { metadata: { annotations: done.annotations } }, done.status);
    }
    return;
  }

  /**
   * What marks a change handled: the new diff base and cleared progress. The base is the essence
   * with the last handler's own main patch applied (labels, annotations, spec it sets), so a
   * handler's own write is never taken for a change. An essence too large for an annotation is
   * kept compact, with a warning.
   */
  private handled(object: KubeObject, current: Record<string, unknown>, lastPatch?: Record<string, unknown>): Bookkeeping {
    const { keys, entry } = this.o;
    // Status is not part of the essence: applying the whole patch changes nothing there.
    const after = lastPatch ? essence(mergePatch(object, lastPatch) as KubeObject, keys) : current;
    const fields = entry.handlers.flatMap((h) => (h.cause === "field" && h.field ? [h.field] : []));
    const encoded = encodeDiffBase(after, fields);
    if (encoded.compact) {
      const note = `the essence is too large (over ${DIFF_BASE_LIMIT} characters) for a diff-base annotation: kept a digest and the fields that field handlers watch; update handlers get no old value or diff`;
      this.o.logger.warn({ object: objectKey(object.metadata) }, note);
      this.o.recorder.event(object, { type: "Warning", reason: "DiffBaseTooLarge", note });
    }
    const cleared = this.storage.patch(null);
    return { annotations: { [keys.lastHandled]: encoded.text, ...cleared.annotations }, status: cleared.status };
  }

  /** Runs steps in order; stops at the first that is not finished. */
  private async runSteps(
    object: KubeObject,
    cause: Cause,
    steps: Step[],
    ctx: ReconcileContext<KubeObject>,
    how: {
      /** Resume handlers: progress kept in memory only. */
      inMemory?: boolean;
      /** The object is gone (vanished with our finalizer): nothing is written. */
      gone?: boolean;
      /** The essence the steps handle (what `finish` marks handled). */
      base?: Record<string, unknown>;
      /** The last step's record also marks the change handled: as of the object its handler saw. */
      finish?: (lastPatch: Record<string, unknown>, seen: Seen) => Bookkeeping;
    },
  ): Promise<{ pending: boolean; action?: Action; object: KubeObject; finalWritten?: boolean }> {
    const { inMemory = false, gone = false, base, finish } = how;
    let current = object;
    const uid = object.metadata?.uid ?? "";
    for (const [index, step] of steps.entries()) {
      const id = step.handler.id;
      const key = `${uid}/${id}`;
      const progress: HandlerProgress = inMemory ? (this.resumeProgress.get(key) ?? {}) : (this.storage.read(current)[id] ?? {});
      if (progress.success || progress.failure) {
        this.unrecorded.delete(key); // its record landed after all (the answer was lost)
        continue;
      }
      const now = Date.now();
      if (progress.delayedUntil && progress.delayedUntil > now) return { pending: true, action: Action.requeueAfter(progress.delayedUntil - now), object: current };
      const kept = inMemory ? undefined : this.unrecorded.get(key);
      const reuse = kept?.cause === cause ? kept : undefined;
      // The object the cause was found on (not `current`, which may carry writes of others since).
      const seen: Seen = reuse?.seen ?? { object, base };
      let outcome = reuse ? reuse.outcome : await this.runOne(current, cause, step, progress, ctx);
      this.unrecorded.delete(key);
      if (outcome.object) current = outcome.object; // its sub-handlers wrote their progress
      if (inMemory) {
        this.resumeProgress.set(key, outcome.next);
        if (!gone) current = await this.writer.write(current, structuredClone(outcome.patch), outcome.result === undefined ? undefined : { [id]: outcome.result });
      } else {
        const isLast = (o: Outcome) => o.done && index === steps.length - 1 && finish !== undefined;
        const finishing = (o: Outcome) => (isLast(o) && finish ? (patch: Record<string, unknown>) => finish(patch, seen) : undefined);
        try {
          current = await this.commit(current, id, outcome, finishing(outcome));
        } catch (error) {
          if (!refusedHandlerWrite(error, outcome)) {
            if (!(error instanceof TerminalError)) this.unrecorded.set(key, { cause, seen, outcome });
            throw error;
          }
          // The server refused what the handler wrote (its patch or result breaks the schema):
          // that attempt failed, as if the handler had thrown; nothing of it is written.
          outcome = this.refused(current, step.handler, progress, outcome, error);
          current = await this.commit(current, id, outcome, finishing(outcome));
        }
        if (isLast(outcome)) return { pending: false, object: current, finalWritten: true };
      }
      const { next, done } = outcome;
      if (!done) {
        const wait = next.delayedUntil ? Math.max(0, next.delayedUntil - Date.now()) : undefined;
        return { pending: true, ...(wait !== undefined ? { action: Action.requeueAfter(wait) } : {}), object: current };
      }
    }
    if (inMemory) for (const step of steps) this.resumeProgress.delete(`${uid}/${step.handler.id}`);
    return { pending: false, object: current };
  }

  /** Writes one outcome: the handler's patch and result with its progress (or, for the last, the change marked handled). */
  private commit(object: KubeObject, id: string, outcome: Outcome, finish: ((lastPatch: Record<string, unknown>) => Bookkeeping) | undefined): Promise<KubeObject> {
    const patch = structuredClone(outcome.patch);
    // The last handler's write also marks the change handled (one write per change).
    const record = finish ? finish(patch) : this.storage.patch({ ...this.storage.read(object), [id]: outcome.next });
    patch.metadata = { ...(patch.metadata as object), annotations: { ...((patch.metadata as { annotations?: object })?.annotations ?? {}), ...record.annotations } };
    const statusExtra: Record<string, unknown> = { ...(outcome.result === undefined ? {} : { [id]: outcome.result }), ...record.status };
    return this.record(object, patch, Object.keys(statusExtra).length ? statusExtra : undefined);
  }

  /** The outcome of an attempt whose patch or result the server refused: a Warning Event, then retried or failed by the handler's policy. */
  private refused(object: KubeObject, handler: ObjectHandler, progress: HandlerProgress, outcome: Outcome, error: unknown): Outcome {
    const message = `the server refused what the handler wrote: ${error instanceof Error ? error.message : String(error)}`;
    this.o.recorder.event(object, { type: "Warning", reason: "HandlerWriteRefused", note: `${handler.id}: ${message}`.slice(0, 1000) });
    const startedIso = outcome.next.started ?? new Date().toISOString();
    const timeoutMs = handler.options.timeoutMs;
    return this.retryOrFail(object, handler, startedIso, progress.retries ?? 0, new Error(message, { cause: error }), timeoutMs ? Date.parse(startedIso) + timeoutMs : undefined);
  }

  /**
   * Writes a handler's patch with its bookkeeping. An object whose annotations leave no room for
   * ours (256 KiB for all of them) cannot be handled this way: retrying would run the handler
   * again and again, so it becomes a TerminalError (no retry until the object changes) with a
   * Warning Event naming the way out.
   */
  private async record(object: KubeObject, patch: Record<string, unknown>, statusExtra?: Record<string, unknown>): Promise<KubeObject> {
    try {
      return await this.writer.write(object, patch, statusExtra);
    } catch (error) {
      if (!(error instanceof InvalidError && /metadata\.annotations: Too long/i.test(error.message))) throw error;
      const note = `no room for the operator's annotations (all of an object's annotations may take 256 KiB): handlers of this object cannot record their progress; not retried until it changes. Make room: the diff base needs a few hundred bytes (progressIn: "status" saves the progress annotation)`;
      this.o.recorder.event(object, { type: "Warning", reason: "NoRoomForBookkeeping", note });
      throw new TerminalError(note, { cause: error });
    }
  }

  /** Runs one handler once; says what to record. */
  private async runOne(
    object: KubeObject,
    cause: Cause,
    step: Step,
    progress: HandlerProgress,
    ctx: ReconcileContext<KubeObject>,
  ): Promise<Outcome> {
    const { handler } = step;
    const startedIso = progress.started ?? new Date().toISOString();
    const retries = progress.retries ?? 0;
    const logger = this.handlerLogger(object, handler.id);
    // timeoutMs counts from the first attempt, across retries (kopf's `timeout`); past it the
    // handler fails permanently. The running attempt's signal aborts at the deadline, but the
    // attempt is awaited, never raced: the object stays with it (and a delete handler keeps
    // the finalizer) until it really returns.
    const timeoutMs = handler.options.timeoutMs;
    const deadline = timeoutMs ? Date.parse(startedIso) + timeoutMs : undefined;
    const timeoutError = () => new HandlerTimeoutError(`timed out after ${timeoutMs} ms`);
    // Without a timeout the reconcile's signal is the handler's (AbortSignal.any costs more than the handler call itself).
    let signal = ctx.signal;
    let stopTimer: AbortController | undefined;
    let timedOut: AbortController | undefined;
    if (deadline !== undefined) {
      if (Date.now() >= deadline) return this.failed(object, handler, startedIso, retries, timeoutError());
      timedOut = new AbortController();
      stopTimer = new AbortController();
      (this.o.clock ?? systemClock).sleep(deadline - Date.now(), stopTimer.signal).then(() => timedOut?.abort(timeoutError()), () => {});
      signal = AbortSignal.any([ctx.signal, timedOut.signal]);
    }
    const hctx = handlerContext(object, {
      cause,
      old: step.old,
      new: step.new,
      diff: step.diff,
      logger,
      retries,
      started: new Date(startedIso),
      signal,
      client: this.o.client,
      indexes: this.o.indexes,
      recorder: this.o.recorder,
    });
    const patch = hctx.patch;
    const declared: { id: string; fn: HandlerFn<KubeObject>; options: SubhandlerOptions }[] = [];
    hctx.subhandler = (id, fn, options = {}) => {
      if (!id || declared.some((d) => d.id === id)) throw new TypeError(`sub-handler id '${id}' is empty or declared twice in handler ${handler.id}`);
      declared.push({ id, fn, options });
    };
    try {
      // A span per attempt (OpenTelemetry, when an SDK is registered): a failed one carries the error.
      const attributes = { "kubeloop.handler": handler.id, "kubeloop.handler.cause": cause, "kubeloop.handler.attempt": retries + 1, "k8s.namespace.name": object.metadata?.namespace, "kubeloop.object.name": object.metadata?.name };
      const result = await inSpan(`handler ${handler.id}`, { attributes }, () => Promise.resolve().then(() => handler.fn(hctx)));
      if (timedOut?.signal.aborted) throw timeoutError(); // it gave up (or finished) only after its deadline
      // The typed patch is written as plain JSON.
      const own: Outcome = { next: { started: startedIso, retries, success: true }, result, patch: patch as unknown as Record<string, unknown>, done: true };
      if (declared.length) return await this.runChildren(object, cause, step, own, declared, ctx);
      this.o.logger.info({ object: objectKey(object.metadata), handler: handler.id, cause }, "handler succeeded");
      return own;
    } catch (caught) {
      if (ctx.signal.aborted) throw caught; // the operator is stopping: record nothing, the next one retries
      const error = timedOut?.signal.aborted && !(caught instanceof HandlerTimeoutError) ? timeoutError() : caught;
      // What the attempt put in its patch is written all the same, as kopf applies the patch of
      // the whole cycle whatever the handlers' outcomes: "still waiting for X" in the status.
      return { ...this.retryOrFail(object, handler, startedIso, retries, error, deadline), patch: patch as unknown as Record<string, unknown> };
    } finally {
      stopTimer?.abort();
    }
  }

  /**
   * Runs a handler's sub-handlers in order after it returned (`own` is its outcome): each not yet
   * finished runs (as a handler of id `<parent>/<child>`) and is recorded at once. The first one
   * pending makes the parent pending (retried when it is due, its own retry count unchanged); one
   * failed for good fails the parent; all done: the parent's own outcome.
   */
  private async runChildren(
    object: KubeObject,
    cause: Cause,
    step: Step,
    own: Outcome,
    declared: { id: string; fn: HandlerFn<KubeObject>; options: SubhandlerOptions }[],
    ctx: ReconcileContext<KubeObject>,
  ): Promise<Outcome> {
    const parent = step.handler;
    let current = object;
    const failedChildren: string[] = [];
    for (const child of declared) {
      const id = `${parent.id}/${child.id}`;
      const progress = this.storage.read(current)[id] ?? {};
      if (progress.success) continue;
      if (progress.failure) {
        failedChildren.push(`${child.id}: ${progress.message ?? "failed"}`);
        continue;
      }
      const wait = progress.delayedUntil ? progress.delayedUntil - Date.now() : 0;
      if (wait > 0) return { ...own, next: { ...own.next, success: undefined, delayedUntil: Date.now() + wait }, result: undefined, done: false, object: current };
      const handler: ObjectHandler = { id, cause: parent.cause, fn: child.fn, options: child.options };
      const outcome = await this.runOne(current, cause, { ...step, handler }, progress, ctx);
      current = await this.commit(outcome.object ?? current, id, outcome, undefined);
      if (!outcome.done) return { ...own, next: { ...own.next, success: undefined, delayedUntil: outcome.next.delayedUntil ?? Date.now() }, result: undefined, done: false, object: current };
      if (outcome.next.failure) failedChildren.push(`${child.id}: ${outcome.next.message ?? "failed"}`);
    }
    if (failedChildren.length) {
      const failed = this.failed(object, parent, own.next.started ?? new Date().toISOString(), own.next.retries ?? 0, new PermanentError(`sub-handlers failed: ${failedChildren.join("; ")}`));
      return { ...failed, patch: own.patch, object: current };
    }
    this.o.logger.info({ object: objectKey(object.metadata), handler: parent.id, cause, subhandlers: declared.length }, "handler and its sub-handlers succeeded");
    return { ...own, object: current };
  }

  /** After a failed attempt: a TerminalError or exhausted retries fail for good; others are retried after a delay (TemporaryError's, or backoff), never past the deadline. */
  private retryOrFail(object: KubeObject, handler: ObjectHandler, startedIso: string, retries: number, error: unknown, deadline: number | undefined): Outcome {
    const message = error instanceof Error ? error.message : String(error);
    // A TerminalError (PermanentError is one) means the same at both levels: no retry.
    if (error instanceof TerminalError) return this.failed(object, handler, startedIso, retries, error);
    if (handler.options.attempts !== undefined && retries + 1 >= handler.options.attempts) {
      return this.failed(object, handler, startedIso, retries, new HandlerRetriesError(`${message} (gave up after ${retries} retries)`, { cause: error }));
    }
    let delay = retryDelay(error, retries, { ms: handler.options.backoffMs ?? 1_000, doubling: true });
    if (deadline !== undefined) delay = Math.min(delay, Math.max(0, deadline - Date.now())); // the next attempt, or the timeout, comes no later than the deadline
    this.o.logger.warn({ object: objectKey(object.metadata), handler: handler.id, retries: retries + 1, delayMs: delay, err: error }, "handler failed: will retry");
    return { next: { started: startedIso, retries: retries + 1, delayedUntil: Date.now() + delay, message }, result: undefined, patch: {}, done: false };
  }

  /** Records a permanent failure: a Warning Event, and progress that says so. */
  private failed(object: KubeObject, handler: ObjectHandler, startedIso: string, retries: number, error: unknown): Outcome {
    const message = error instanceof Error ? error.message : String(error);
    this.o.logger.error({ object: objectKey(object.metadata), handler: handler.id, err: error }, "handler failed permanently");
    this.o.recorder.event(object, { type: "Warning", reason: "HandlerFailed", note: `${handler.id}: ${message}`.slice(0, 1000) });
    return { next: { started: startedIso, retries, failure: true, message }, result: undefined, patch: {}, done: true };
  }

  private handlerLogger(object: KubeObject, id: string): HandlerLogger {
    return objectLogger(this.o.logger, object, id, { recorder: this.o.recorder, level: this.o.eventLevel ?? "info" });
  }
}
