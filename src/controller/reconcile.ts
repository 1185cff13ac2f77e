// What a reconcile is: the reference it gets, the context it reads, the Action it returns, the
// error policy that decides what a failure means, and the hooks that observe it (metrics).
// Level-based: the reference never says what happened; the reconciler reads the current state.
import type { Client } from "../client/client.js";
import type { KubeObject, ResourceKind } from "../core/objects.js";
import type { StoreReader } from "../runtime/store.js";
import type { WorkQueueHooks } from "../runtime/queue.js";
import type { Logger } from "pino";
import type { CacheReader } from "./cache.js";
import type { EventInput } from "./events.js";

/** Which object to reconcile. */
export interface ObjectRef {
  namespace?: string;
  name: string;
}

/** What a reconciler asks for next. */
export interface Action {
  /** Reconcile again after this long, even without a change. */
  requeueAfterMs?: number;
  /** Retry with per-key backoff (an error policy's answer). */
  backoff?: boolean;
}

export const Action = {
  /** Reconcile again after `ms` (and sooner on a change). */
  requeueAfter(ms: number): Action {
    return { requeueAfterMs: ms };
  },
  /** Nothing to do until something changes. */
  awaitChange(): Action {
    return {};
  },
  /** From an error policy: retry with the queue's per-key exponential backoff (the default for errors). */
  backoff(): Action {
    return { backoff: true };
  },
};

/** The reason `ctx.signal` aborts when a reconcile exceeds `reconcileTimeoutMs`. */
export class ReconcileTimeoutError extends Error {
  override name = "ReconcileTimeoutError";
  readonly reason = "ReconcileTimeout";
}

/** What a reconciler gets besides the reference. */
export interface ReconcileContext<T extends KubeObject> {
  /** The cached object, or undefined if it does not exist (any more). Frozen (shared with every reader): copy before changing it. */
  object: T | undefined;
  /** The controller's kind. */
  kind: ResourceKind<T>;
  /** The cache of the controller's kind. */
  store: StoreReader<T>;
  /** Reads of any kind from shared caches (started on first use). */
  cache: CacheReader;
  client: Client;
  /** A logger whose every line carries the controller and the object reference. */
  logger: Logger;
  /** Aborted when the reconcile times out or the controller stops. */
  signal: AbortSignal;
  /** How many times this reference has been retried after failures. */
  retries: number;
  /** Records an Event about the reconciled object (best effort; repeats become a series). */
  event(input: EventInput): void;
  /**
   * Server-side applies `child` with the operator's field manager (forcing ownership of the
   * fields it sets), as a child controlled by the reconciled object.
   */
  apply<C extends KubeObject>(kind: ResourceKind<C>, child: C): Promise<C>;
  /** Server-side applies the reconciled object's status (`{ status: ... }`), with the operator's field manager. */
  applyStatus(status: Record<string, unknown>): Promise<T>;
  /**
   * Keeps finalizer `name` on the object and runs `cleanup` when it is being deleted. Returns
   * true when the object is being deleted (cleanup done, finalizer removed): stop reconciling.
   * A throwing cleanup keeps the finalizer and is retried like any failed reconcile.
   */
  finalizer(name: string, cleanup: (object: T) => Promise<void>): Promise<boolean>;
}

/** A recorded span's ids, as exemplars and log lines carry them. */
export interface TraceRef {
  traceId: string;
  spanId: string;
}

/** How a reconcile ended, for metrics (controller-runtime's `result` label values). */
export type ReconcileResult = "success" | "requeue_after" | "error";

/** Observes controllers (metrics). Every method is optional. */
export interface ControllerObserver {
  /** Hooks for a controller's work queue; `depth` reads its current length. */
  queue?(controller: string, depth: () => number): WorkQueueHooks;
  /**
   * A reconcile ended after `seconds`; `terminal` for a TerminalError; `trace`: its span's ids,
   * when a tracer recorded it (an exemplar for the latency histogram).
   */
  reconciled?(controller: string, result: ReconcileResult, seconds: number, terminal: boolean, trace?: TraceRef): void;
  /** Workers busy reconciling changed by `delta`. */
  active?(controller: string, delta: number): void;
  /** Reconciles still running long after their signal aborted (they ignore it) changed by `delta`. */
  stuck?(controller: string, delta: number): void;
}

/**
 * A reconcile function: gets a reference and a context, reads the current state, acts, and
 * returns what to do next. A throw goes to the error policy (default: backoff; a TerminalError
 * waits for a change).
 */
export type Reconciler<T extends KubeObject> = (ref: ObjectRef, ctx: ReconcileContext<T>) => Promise<Action | void>;


/** What an error policy knows about the failed reconcile. */
export interface ErrorContext {
  ref: ObjectRef;
  /** How many times this key was retried with backoff before this failure. */
  retries: number;
  logger: Logger;
}

/**
 * Decides what a failed reconcile means (kube-rs's `error_policy`): `Action.backoff()` retries
 * with the queue's per-key backoff, `Action.requeueAfter(ms)` retries after `ms`,
 * `Action.awaitChange()` waits for the next change. The default: a {@link TerminalError} waits
 * for a change, anything else backs off.
 */
export type ErrorPolicy = (error: unknown, ctx: ErrorContext) => Action;
