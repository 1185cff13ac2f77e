// What an operator registered: handlers per kind and cause, timers, daemons, indexes, and the
// operator-level hooks, each checked as it is registered. Data; processing.ts and tasks.ts act on
// it, wiring.ts puts it on the Manager.
import type { Client } from "../client/client.js";
import { checkNumber } from "../core/check.js";
import { parsePath } from "./diff.js";
import type { KubeObject, ResourceKind } from "../core/objects.js";
import type { DiffOp } from "./diff.js";
import type { Filters } from "./filters.js";
import type { Logger } from "pino";

/** The causes a handler can react to. */
export type Cause = "create" | "update" | "delete" | "resume" | "field";

/** A logger for handlers; lines at or above the operator's event level are also posted as Events on the object. */
export interface HandlerLogger {
  debug: LogMethod;
  info: LogMethod;
  warn: LogMethod;
  error: LogMethod;
}

/** pino's call shape, at both levels: `log.info("message")` or `log.info({ key: value }, "message")`. */
export interface LogMethod {
  (message: string): void;
  (fields: Record<string, unknown>, message?: string): void;
}

/** Indexes by id: key → values (see `op.index`). */
export type Indexes = ReadonlyMap<string, ReadonlyMap<string, readonly unknown[]>>;

/** What every handler gets. */
export interface HandlerContext<T extends KubeObject> {
  object: T;
  spec: T extends { spec?: infer S } ? S : undefined;
  status: T extends { status?: infer S } ? S | undefined : undefined;
  meta: NonNullable<T["metadata"]>;
  /** The cause being handled. */
  cause: Cause;
  /** For update and field handlers: the previous essence (or field value); undefined on create. */
  old: unknown;
  /** For update and field handlers: the current essence (or field value). */
  new: unknown;
  /** The changes from `old` to `new`. */
  diff: DiffOp[];
  /**
   * Changes to write after the handler, merged into one patch with its progress:
   * `patch.metadata.labels.x = "y"`, `patch.status.phase = "Ready"`, `patch.spec…`.
   */
  patch: { metadata: { labels: Record<string, string | null>; annotations: Record<string, string | null> }; status: Record<string, unknown>; [key: string]: unknown };
  logger: HandlerLogger;
  /** Failed attempts before this one (as a reconcile's `ctx.retries`). */
  retries: number;
  /** When the first attempt started. */
  started: Date;
  /** Aborted on timeout, on deletion (daemons) or when the operator stops. */
  signal: AbortSignal;
  client: Client;
  indexes: Indexes;
  /**
   * Posts an Event about the object (or `regarding`), as kopf's `kopf.event`/`info`/`warn`/
   * `exception`: type "Normal" (default), "Warning", or any other (kopf's "Error" for
   * exceptions), which goes out as a core/v1 Event. Never throws; failures are logged.
   */
  event(input: HandlerEventInput): void;
  /**
   * Declares a sub-handler (kopf's `@kopf.subhandler`): called while the handler runs, one per
   * part of the object (an item of a spec list, say). After the handler returns, its sub-handlers
   * run in order, each with its own id `<handler>/<id>`, progress, retries and result
   * (`status["<handler>/<id>"]`), each recorded as it finishes. The handler succeeds when all of
   * them have; a pending one makes the handler run again later (re-declaring them), and finished
   * ones are skipped, across restarts too. One that fails for good fails the handler. Only in
   * handlers (not timers or daemons); ids must be unique within the handler.
   */
  subhandler(id: string, fn: HandlerFn<T>, options?: SubhandlerOptions): void;
}

/** Options of a sub-handler: retried as handlers are. */
export interface SubhandlerOptions {
  attempts?: number;
  timeoutMs?: number;
  backoffMs?: number;
}

/** The lowest log level of handler log lines that are also posted as Events ("off": none). */
export type EventLevel = "debug" | "info" | "warn" | "error" | "off";

/** What `ctx.event()` posts. */
export interface HandlerEventInput {
  type?: "Normal" | "Warning" | (string & {});
  /** Short CamelCase cause, e.g. "Provisioned". */
  reason: string;
  /** Human-readable text (at most 1 kB). */
  note: string;
  /** Another object to post it about (default: the handled object). */
  regarding?: KubeObject;
}

/** A handler's function; its return value (if not undefined) goes to `status.<id>`. */
export type HandlerFn<T extends KubeObject> = (ctx: HandlerContext<T>) => Promise<unknown> | unknown;

/** Options of every handler. */
export interface HandlerOptions<T extends KubeObject> extends Filters<T> {
  /** Stable id (progress is stored under it). Default: `<cause>/<function name>`. */
  id?: string;
  /**
   * Attempts in all, the first included, before the handler fails permanently
   * (`HandlerRetriesError`): kopf's `retries=3` is `attempts: 3`. Default: unlimited.
   */
  attempts?: number;
  /**
   * Time from the first attempt, across retries, after which the handler fails permanently
   * (kopf's `timeout`). The running attempt's signal aborts then; it is awaited, not abandoned, so
   * a delete handler keeps its finalizer until it returns. Default: none; > 0 (else a RangeError
   * when the handler is registered).
   */
  timeoutMs?: number;
  /** Delay between retries of ordinary errors. Default: 1 s, 2 s, 4 s … capped at 60 s; ≥ 0. */
  backoffMs?: number;
}

/** Options of field handlers: the field's new (and old) value may be filtered too. */
export interface FieldHandlerOptions<T extends KubeObject> extends HandlerOptions<T> {
  value?: (value: unknown) => boolean;
  oldValue?: (value: unknown) => boolean;
}

/** Options of `op.timer`. */
export interface TimerOptions<T extends KubeObject> extends Filters<T> {
  id?: string;
  /** Time between runs; a finite number > 0 (else a RangeError when the timer is registered). */
  intervalMs: number;
  /** Before the first run. Default 0; ≥ 0. */
  initialDelayMs?: number;
  /** Run only once the object has not changed for this long; ≥ 0. */
  idleMs?: number;
}

/** Options of `op.daemon`. */
export interface DaemonOptions<T extends KubeObject> extends Filters<T> {
  id?: string;
  /** Delay before restarting a daemon that threw. Default 10 s; ≥ 0 (else a RangeError when registered). */
  backoffMs?: number;
  /** How long to wait for a daemon to end after its signal aborts. Default 30 s; ≥ 0. */
  cancellationTimeoutMs?: number;
}

export interface ObjectHandler {
  id: string;
  cause: Cause;
  field?: string[];
  fn: HandlerFn<KubeObject>;
  options: FieldHandlerOptions<KubeObject>;
}

export interface TimerSpec {
  id: string;
  fn: HandlerFn<KubeObject>;
  options: TimerOptions<KubeObject>;
}

export interface DaemonSpec {
  id: string;
  fn: HandlerFn<KubeObject>;
  options: DaemonOptions<KubeObject>;
}

/** A raw event handler (never retried). */
/**
 * What `op.on.event` handlers get: `exists` for each object present when this replica starts
 * leading (kopf's initial listing, type None), then `apply` and `delete` as they are watched.
 */
export interface RawEvent<T extends KubeObject> {
  type: "exists" | "apply" | "delete";
  object: T;
  /** The previous state, on `apply` of a known object. */
  old?: T;
  /** Log lines naming the object (and posted as Events at or above the operator's `eventLevel`), as other handlers'. */
  logger: HandlerLogger;
  /** Posts an Event about the object, or about `regarding` (kopf's `kopf.event`), as `ctx.event()` of other handlers. */
  event(input: HandlerEventInput): void;
  client: Client;
  indexes: Indexes;
}

/** What `op.on.probe` functions get (kopf passes indexes to probes too). */
export interface ProbeContext {
  client: Client;
  logger: Logger;
  indexes: Indexes;
}

/** What `op.on.startup` and `op.on.cleanup` functions get. */
export interface ActivityContext {
  client: Client;
  logger: Logger;
  /** Failed attempts before this one (startup handlers are retried). */
  retries: number;
}

/** Options of startup handlers: retried as other handlers are (TemporaryError after its delay, others with backoff). */
export interface StartupOptions {
  /** Attempts in all before the operator gives up starting (kopf's `retries`). Default: unlimited. */
  attempts?: number;
  /** Delay before retrying an ordinary error: `backoffMs × 2^retries`, capped at 60 s. Default 1 s. */
  backoffMs?: number;
  /**
   * Runs on the leader alone (work that must be done once in the cluster, such as seeding a shared
   * object): on the replica that holds the leader Lease, after the caches synced, before the
   * work that runs on the leader alone (controllers without sharding, all of them when the operator
   * is not sharded) starts; once per process, so not again after a dev run's pause. A new
   * leader runs it again, so it must be idempotent. Work on every replica (a sharded operator's
   * shares) does not wait for it. Without leader election it runs as the others do, in order
   * after them. Its final failure stops the operator as the others' does. Default false: every
   * replica runs it before anything acts.
   */
  leaderOnly?: boolean;
}

export interface EventSpec {
  fn: (event: RawEvent<KubeObject>) => Promise<void> | void;
  options: Filters<KubeObject>;
}

/** Everything registered for one kind. */
export interface KindEntry {
  kind: ResourceKind;
  handlers: ObjectHandler[];
  timers: TimerSpec[];
  daemons: DaemonSpec[];
  events: EventSpec[];
  indexes: { id: string; fn: (object: KubeObject) => Record<string, unknown> | undefined }[];
}

/**
 * The registry of an operator: what `op.on.*`, `op.timer`, `op.daemon` and `op.index` add, with
 * their options checked (a TypeError or RangeError naming the option) and their ids made unique
 * per kind (an explicit id used twice throws).
 */
export class Registry {
  readonly kinds = new Map<string, KindEntry>();
  private readonly ids = new Set<string>();

  entry(kind: ResourceKind): KindEntry {
    const key = `${kind.apiVersion}/${kind.kind}`;
    let e = this.kinds.get(key);
    if (!e) {
      e = { kind, handlers: [], timers: [], daemons: [], events: [], indexes: [] };
      this.kinds.set(key, e);
    }
    return e;
  }

  /** Makes a handler id unique per kind, failing on an explicit duplicate. */
  claim(kind: ResourceKind, id: string, explicit: boolean): string {
    let candidate = id;
    for (let n = 2; this.ids.has(`${kind.apiVersion}/${kind.kind}/${candidate}`); n++) {
      if (explicit) throw new Error(`handler id "${id}" is used twice for ${kind.kind}: give one another id`);
      candidate = `${id}-${n}`;
    }
    this.ids.add(`${kind.apiVersion}/${kind.kind}/${candidate}`);
    return candidate;
  }

  /** A create/update/delete/resume/field handler. */
  handler(kind: ResourceKind, cause: Cause, fn: HandlerFn<KubeObject>, options: FieldHandlerOptions<KubeObject>, field?: string): void {
    // A kopf user's `retries: 3` (from JavaScript, where the type does not stop it) would count differently.
    if ((options as { retries?: unknown }).retries !== undefined) throw new TypeError("handler option 'retries' is now 'attempts' (attempts in all; kopf's retries=3 is attempts: 3)");
    checkNumber("handler option 'attempts'", options.attempts, "integer ≥ 1");
    checkNumber("handler option timeoutMs", options.timeoutMs, "> 0");
    checkNumber("handler option backoffMs", options.backoffMs, "≥ 0");
    const fallback = fn.name && fn.name !== "fn" ? fn.name : field ? `${cause}-${field}` : cause;
    const id = this.claim(kind, options.id ?? fallback, options.id !== undefined);
    this.entry(kind).handlers.push({ id, cause, ...(field ? { field: parsePath(field) } : {}), fn, options });
  }

  /** A timer: `intervalMs` is required (a timer every 0 ms, or NaN ms, would spin). */
  timer(kind: ResourceKind, options: TimerOptions<KubeObject>, fn: HandlerFn<KubeObject>): void {
    checkNumber("timer option intervalMs", options.intervalMs, "> 0", { required: true });
    checkNumber("timer option initialDelayMs", options.initialDelayMs, "≥ 0");
    checkNumber("timer option idleMs", options.idleMs, "≥ 0");
    const id = this.claim(kind, options.id ?? (fn.name ? `timer-${fn.name}` : "timer"), options.id !== undefined);
    this.entry(kind).timers.push({ id, fn, options });
  }

  /** A daemon. */
  daemon(kind: ResourceKind, fn: HandlerFn<KubeObject>, options: DaemonOptions<KubeObject>): void {
    checkNumber("daemon option backoffMs", options.backoffMs, "≥ 0");
    checkNumber("daemon option cancellationTimeoutMs", options.cancellationTimeoutMs, "≥ 0");
    const id = this.claim(kind, options.id ?? (fn.name ? `daemon-${fn.name}` : "daemon"), options.id !== undefined);
    this.entry(kind).daemons.push({ id, fn, options });
  }
}
