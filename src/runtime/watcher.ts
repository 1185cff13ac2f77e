// watch(): list + watch of one resource type as an AsyncIterable of events, that recovers from
// everything but the caller's AbortSignal.
//
// An explicit state machine (as kube-rs's watcher): a `State` (list, stream, watch) and, after
// each attempt, a pure `transition(state, outcome)` that says the next state, whether to back
// off first, and what to report. The loop below (runWatch) only performs attempts:
//   list   → a paged list (or, after an expired continue token, one unpaged request) → watch
//   stream → a watch with sendInitialEvents (a streaming list), which goes on as the watch
//   watch  → a watch from the last resourceVersion; a clean close resumes it
// On 410 Gone/Expired or a too-large resourceVersion: a consistent relist. On any other failure:
// back off and retry the same state.
//
// Events
//   init, initApply*, initDone   the first list: every object, then "the store is complete"
//   apply, delete                changes seen on the watch
//   relisted                     a relist (after a 410) ended: its differences came just before
//   error                        a failure the watcher recovers from (it retries after `retryInMs`)
// A relist after the first one (410, too-large resourceVersion) yields only differences:
// `apply` for objects new or changed since last seen, `delete` for objects that vanished
// meanwhile (with `finalStateUnknown`, as the last state was never seen), not a replay of all.
//
// Guarantees: the iterator ends only when `signal` aborts (or the consumer stops iterating).
// Recovery: watches resume from the last resourceVersion (bookmarks included); a stream silent
// for `inactivityTimeoutMs` (no event, no bookmark) is dropped and resumed; failures back off
// 0.8 s → 30 s with jitter, reset once an attempt makes progress. A watch the server closes
// within a second with no event counts as a failure (client-go's "very short watch"), so a
// server that closes every watch at once is not hammered. A continue token that expires during
// a paged list (410) makes the next list one unpaged request (client-go's FullListIfExpired),
// after a backoff.
// Memory: besides what the consumer keeps, one resourceVersion entry per object (namespace →
// name → version, on the object's own strings).
import { pullEach, type BatchSink } from "../core/async.js";
import { checkNumber } from "../core/check.js";
import { systemClock, type Clock } from "../core/clock.js";
import { ApiError, GoneError, errorFromResponse } from "../core/errors.js";
import type { KubeObject, Status } from "../core/objects.js";
import type { ResourceClient } from "../client/resource.js";
import { Backoff, type BackoffOptions } from "../core/retry.js";
import { currentOrigin, tagOrigin } from "../core/tracing.js";
import { Share, ShardFilter, type ShareOptions } from "./share.js";
import { NamespacedMap } from "./store.js";

/** One event of {@link watch}. */
export type WatcherEvent<T extends KubeObject> =
  | { type: "init" }
  | { type: "initApply"; object: T }
  | { type: "initDone" }
  /** A relist after the first list has ended (a recovery: not one that follows a change of share); its differences came before it. */
  | { type: "relisted" }
  | { type: "apply"; object: T; /** The stored state it replaced (set by reflect()). */ old?: T }
  /**
   * `finalStateUnknown`: it vanished while the watch was down (a relist found it gone);
   * `unshared`: it left the watch's share (its `Share`, from kubeloop/runtime, changed), it is not known to be deleted.
   */
  | { type: "delete"; object: T; finalStateUnknown?: boolean; unshared?: boolean }
  | { type: "error"; error: Error; retryInMs: number };

/** The events that carry an object (`initApply`, `apply`, `delete`). */
export function hasObject<T extends KubeObject>(event: WatcherEvent<T>): event is Extract<WatcherEvent<T>, { object: T }> {
  return "object" in event;
}

/**
 * Options of {@link watch}. Numeric options out of range make the first `next()` throw a
 * RangeError naming the option; everything the server refuses (a namespace that does not exist
 * yet, a selector it cannot parse, a missing permission) is an `error` event and a retry.
 */
export interface WatcherOptions<T extends KubeObject> {
  /** Watch one namespace; default: the handle's namespace, or all. */
  namespace?: string;
  /** Only objects whose labels match. A selector the server cannot parse is an `error` event (400) and retried with backoff. */
  labelSelector?: string;
  /** Only objects whose fields match (the fields the resource supports). A refused selector: as `labelSelector`. */
  fieldSelector?: string;
  /** Page size of paged lists, an integer ≥ 1. Default 500. */
  pageSize?: number;
  /** Server-side lifetime of one watch request, an integer ≥ 1. Default: random in 300–600 s (as client-go). */
  watchTimeoutSeconds?: number;
  /** Drop and resume a stream silent (no event, no bookmark) this long; > 0. Default 180 000 ms. */
  inactivityTimeoutMs?: number;
  /** Retry delays after failures. */
  backoff?: BackoffOptions;
  /**
   * How to get the initial state: `stream` (watch with sendInitialEvents), `list` (paged list),
   * `auto` (stream when the server supports it, else list). Default `auto`.
   */
  initialList?: "auto" | "list" | "stream";
  /** Only metadata (PartialObjectMetadata). */
  metadataOnly?: boolean;
  /**
   * Applied to every object before it is yielded. Default: drop `metadata.managedFields`. It
   * must not throw: a throw is an `error` event, and the watch resumes at the event that failed,
   * so a transform that always throws on one object holds the watch there (retried with backoff).
   */
  transform?: (object: T) => T;
  /**
   * Only the objects whose shard hash falls in `buckets` (of `count`, by `key`): the list and the
   * watch send the API server's `shardSelector` (KEP-5866), and where the server does not apply it
   * (the ShardedListAndWatch gate off, an older server: its lists carry no `shardInfo`) the watcher
   * drops the other objects itself, with the same hash. Either way the events are the share's.
   * `onMode` hears once which it is ("server" or "client"). Given a {@link Share}, the watch
   * follows its changes: it relists with the new selector, and objects that left the share come
   * as `delete` events marked `unshared`.
   */
  shard?: Share | ShareOptions;
  /** Ends the iteration. */
  signal?: AbortSignal;
  clock?: Clock;
  /** Where the watcher records when the server last answered and since when it fails (health probes read it). */
  health?: WatchHealth;
}

/**
 * What a watch's health probes read: when the server last said something (a list page, an
 * event, a bookmark), and since when its attempts have been failing (every failure the watcher
 * reports as an `error` event, including a stream silent past `inactivityTimeoutMs`). Hearing
 * from the server again ends a run of failures; a watch the server accepts and then leaves
 * silent does not (a proxy that eats streams looks like that), so such a watch keeps failing
 * once per inactivity timeout. Times are the watcher's clock's (ms).
 */
export class WatchHealth {
  /** When the server last said something; undefined before it ever did. */
  lastHeardAt: number | undefined;
  /** When the current run of failures began; undefined while the watch works. */
  failingSince: number | undefined;
  /** The last failure, kept after recovery for the record. */
  lastError: Error | undefined;
  /** Failures reported in all. */
  failures = 0;

  /** The server said something at `at`: a run of failures, if any, is over. */
  heard(at: number): void {
    this.lastHeardAt = at;
    this.failingSince = undefined;
  }

  /** An attempt failed at `at`. */
  failed(error: Error, at: number): void {
    this.failures++;
    this.lastError = error;
    this.failingSince ??= at;
  }
}

const INITIAL_EVENTS_END = "k8s.io/initial-events-end";

/** Drops managedFields, which are often most of an object's size and rarely read by controllers. */
export function stripManagedFields<T extends KubeObject>(object: T): T {
  if (object.metadata?.managedFields) delete object.metadata.managedFields;
  return object;
}

/** Where a watcher is; see {@link transition}. */
export type WatchState =
  /** Needs a (re)list by pages; `consistent`: from etcd (after a 410), `full`: in one request. */
  | { phase: "list"; consistent: boolean; full: boolean }
  /** Needs a (re)list as a streaming watch (sendInitialEvents), continuing as the watch. */
  | { phase: "stream"; consistent: boolean }
  /** Watching from `rv`. */
  | { phase: "watch"; rv: string | undefined };

/** How one attempt ended. */
export type AttemptOutcome =
  /** A paged list completed at `rv`. */
  | { kind: "listed"; rv: string | undefined }
  /** The watch ended without an error: after `received` events in `ms`; `inactive` if we dropped it for silence. `listed`: a streaming list completed on it. */
  | { kind: "closed"; rv: string | undefined; received: number; ms: number; inactive: boolean; listed: boolean }
  /** The attempt failed; `pagesRead` pages of a list had arrived before. */
  | { kind: "failed"; error: Error; pagesRead: number; listed: boolean; rv: string | undefined };

/** What to do after an attempt. */
export interface Transition {
  state: WatchState;
  /** Wait the backoff's next delay before the next attempt (else go on at once, and reset it on progress). */
  backoff: boolean;
  /** Progress was made: reset the backoff. */
  progress: boolean;
  /** A failure recovered from, to yield as an `error` event. */
  report?: Error;
  /** Streaming lists turned out unsupported: use paged lists from now on. */
  noStreaming?: boolean;
}

const SHORT_WATCH_MS = 1_000;

/**
 * The watcher's decisions, pure: from a state and how its attempt ended, the next state.
 * `streaming` says whether relists use streaming lists ("auto": until the server refuses one).
 */
export function transition(
  state: WatchState,
  outcome: AttemptOutcome,
  streaming: boolean | "auto",
  context: { describe?: string; inactivityMs?: number } = {},
): Transition {
  const describe = context.describe ?? "the watch";
  const relist = (consistent: boolean, full = false): WatchState => (streaming !== false && !full ? { phase: "stream", consistent } : { phase: "list", consistent, full });
  switch (outcome.kind) {
    case "listed":
      return { state: { phase: "watch", rv: outcome.rv }, backoff: false, progress: true };
    case "closed": {
      // A streaming list that did not finish starts over; otherwise the watch resumes.
      const next: WatchState = state.phase === "stream" && !outcome.listed ? state : { phase: "watch", rv: outcome.rv };
      if (outcome.inactive) return { state: next, backoff: false, progress: false, report: new ApiError("Timeout", `${describe}: no event or bookmark for ${context.inactivityMs ?? "a while"} ms: reconnecting`) };
      if (outcome.received === 0 && outcome.ms < SHORT_WATCH_MS) {
        // Closed at once with nothing said: a proxy or server in trouble. Back off, as client-go does.
        return { state: next, backoff: true, progress: false, report: new ApiError("InternalError", `very short watch of ${describe}: closed within a second with no event`) };
      }
      return { state: next, backoff: false, progress: outcome.received > 0 };
    }
    case "failed": {
      const error = outcome.error;
      const reason = (error as ApiError).reason;
      if (error instanceof GoneError && state.phase === "list" && outcome.pagesRead > 0 && !outcome.listed) {
        // The continue token expired mid-list: list in one request next time, after a pause (FullListIfExpired).
        return { state: { phase: "list", consistent: true, full: true }, backoff: true, progress: false, report: error };
      }
      if (error instanceof GoneError) return { state: relist(true), backoff: false, progress: false, report: error };
      if (state.phase === "stream" && streaming === "auto" && !outcome.listed && (reason === "BadRequest" || reason === "Invalid" || reason === "UnsupportedMediaType")) {
        return { state: { phase: "list", consistent: state.consistent, full: false }, backoff: false, progress: false, report: error, noStreaming: true };
      }
      if ((error as ApiError).causes?.some((c) => c.reason === "ResourceVersionTooLarge")) return { state: relist(true), backoff: true, progress: false, report: error };
      // A watch resumes from the last resourceVersion it saw (events or bookmarks), as does a
      // failure after a streaming list completed. Resuming from where the attempt started would
      // replay what arrived since: the cache would go back in time, deleted objects return.
      const resumes = state.phase === "watch" || (state.phase === "stream" && outcome.listed);
      const same: WatchState = resumes ? { phase: "watch", rv: outcome.rv ?? (state.phase === "watch" ? state.rv : undefined) } : state;
      return { state: same, backoff: true, progress: false, report: error };
    }
  }
}

/**
 * What {@link watch} returns: its events, and the same watch read pushed, for `reflect()`.
 */
export interface Watch<T extends KubeObject> extends AsyncGenerator<WatcherEvent<T>, void, undefined> {
  /**
   * This watch, run pushed, with `map` applied to each event just before it is yielded: no async
   * step per event between the connection and `map` (reflect() writes its store so, in the
   * consumer's turn). Only before anyone iterated the watch, and once; else undefined. Once it
   * is taken, iterating the watch itself throws, naming why.
   */
  pushed<R>(map: (event: WatcherEvent<T>) => R): AsyncGenerator<R, void, undefined> | undefined;
}

/** Watches a resource: see the module documentation for the events and guarantees. */
export function watch<T extends KubeObject>(resource: ResourceClient<T>, options: WatcherOptions<T> = {}): Watch<T> {
  let taken = false;
  const events = pullEach<WatcherEvent<T>>((push, signal) => {
    if (taken) return Promise.reject(new Error("this watch() is already read through reflect(): read reflect()'s events instead"));
    taken = true;
    return runWatch(resource, { ...options, signal }, push);
  }, options.signal);
  const pushed = <R>(map: (event: WatcherEvent<T>) => R): AsyncGenerator<R, void, undefined> | undefined => {
    if (taken) return undefined;
    taken = true;
    return pullEach<WatcherEvent<T>, R>((push, signal) => runWatch(resource, { ...options, signal }, push), options.signal, map);
  };
  return Object.assign(events, { pushed });
}

/**
 * {@link watch}, its events grouped as they arrived (one array per read from the connection, or
 * per page of a list; never empty), in order: for consumers that handle them in one turn without
 * a promise per event. Same events, guarantees and recovery.
 */
export function watchBatches<T extends KubeObject>(resource: ResourceClient<T>, options: WatcherOptions<T> = {}): AsyncGenerator<WatcherEvent<T>[], void, undefined> {
  return pullEach<WatcherEvent<T>[]>((push, signal) => runWatch(resource, { ...options, signal }, (batch) => push([batch])), options.signal);
}

/** What a sink threw: passed through the attempt as it is, not taken for the watch's failure. */
class SinkFailure {
  constructor(readonly error: unknown) {}
}

/**
 * {@link watchBatches}, pushed: each batch goes to `sink` in the turn its bytes arrived (split,
 * parsed and booked synchronously); while a promise `sink` returned is pending, the connection
 * is not read and the stream's silence does not count as inactivity. Resolves when `signal`
 * aborts; rejects with what `sink` throws (the watch then stops). Numeric options out of range
 * reject with a RangeError. The Informer reads its watch so, with no promise per read.
 * @internal
 */
export async function runWatch<T extends KubeObject>(resource: ResourceClient<T>, options: WatcherOptions<T>, sink: BatchSink<WatcherEvent<T>>): Promise<void> {
  checkWatcherOptions(options);
  const clock = options.clock ?? systemClock;
  const signal = options.signal;
  const inactivityMs = options.inactivityTimeoutMs ?? 180_000;
  const backoff = new Backoff(options.backoff);
  const describe = `${resource.kind.apiVersion} ${resource.kind.kind}${options.namespace ? ` in ${options.namespace}` : ""}`;
  let streaming: boolean | "auto" = options.initialList === "list" ? false : options.initialList === "stream" ? true : "auto";
  const shard = options.shard ? new ShardFilter(options.shard instanceof Share ? options.shard : new Share(options.shard)) : undefined;
  const base = {
    resource,
    handle: options.namespace ? resource.namespace(options.namespace) : resource,
    options,
    transform: options.transform ?? stripManagedFields,
    selectors: {
      ...(options.labelSelector ? { labelSelector: options.labelSelector } : {}),
      ...(options.fieldSelector ? { fieldSelector: options.fieldSelector } : {}),
      ...(options.metadataOnly ? { metadataOnly: true } : {}),
      ...(shard?.selector ? { shardSelector: shard.selector } : {}),
    },
    shard,
    lists: new Lister<T>(resource.kind),
    backoff,
    describe,
  };
  let state: WatchState = streaming !== false ? { phase: "stream", consistent: false } : { phase: "list", consistent: false, full: false };
  const deliver = sinkCaller(sink);
  const reshared = shard?.follow(base);
  // A new share: relist with its selector (the Lister marks what vanishes as unshared).
  const relistForShare = (): WatchState => (streaming !== false ? { phase: "stream", consistent: false } : { phase: "list", consistent: false, full: false });
  try {
    while (!signal?.aborted) {
      // A share changed between attempts (while one backed off) is taken now: the attempt's
      // interrupt only hears changes made while it runs.
      if (reshared?.changed()) state = relistForShare();
      const outcome = await attemptOnce(base, state, { clock, signal, inactivityMs, deliver, interrupt: reshared?.signal() });
      if (signal?.aborted) break;
      if (reshared?.changed()) {
        state = relistForShare();
        continue;
      }
      if (!outcome) break;
      const next = transition(state, outcome, streaming, { describe, inactivityMs });
      if (next.noStreaming) streaming = false;
      if (next.progress) backoff.reset();
      const delay = next.backoff ? backoff.next() : 0;
      // Between attempts a sink's throw needs no wrapping: it leaves runWatch as it is.
      if (next.report) {
        options.health?.failed(next.report, clock.now());
        await sink([{ type: "error", error: next.report, retryInMs: delay }]);
      }
      if (delay > 0) await clock.sleep(delay, signal).catch(() => {});
      state = next.state;
    }
  } finally {
    reshared?.stop();
  }
}

/** The sink, with what it throws or rejects with marked as its own (a SinkFailure). */
function sinkCaller<T extends KubeObject>(sink: BatchSink<WatcherEvent<T>>): (batch: WatcherEvent<T>[]) => void | Promise<void> {
  return (batch) => {
    let pending: void | Promise<void>;
    try {
      pending = sink(batch);
    } catch (error) {
      throw new SinkFailure(error);
    }
    return pending?.then(undefined, (error: unknown) => {
      throw new SinkFailure(error);
    });
  };
}

/**
 * One attempt of the state machine (a list, or a watch), under an inactivity watchdog: what came
 * of it, or undefined when the caller's signal stopped it. A sink's failure is rethrown as it is.
 */
async function attemptOnce<T extends KubeObject>(
  base: Omit<AttemptContext<T>, "signal" | "activity" | "run" | "clock" | "deliver">,
  state: WatchState,
  o: { clock: Clock; signal: AbortSignal | undefined; inactivityMs: number; deliver: (batch: WatcherEvent<T>[]) => void | Promise<void>; interrupt?: AbortSignal | undefined },
): Promise<AttemptOutcome | undefined> {
  const { clock, signal } = o;
  const attempt = new AbortController();
  const onAbort = () => attempt.abort(signal?.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  const onInterrupt = () => attempt.abort(new Error("the share changed"));
  o.interrupt?.addEventListener("abort", onInterrupt, { once: true });
  const activity: Activity = { last: clock.now(), suspended: false, inactive: false };
  const watchdog = watchForInactivity(activity, attempt, o.inactivityMs, clock);
  const run: Attempt = { pagesRead: 0, received: 0, listed: false, rv: state.phase === "watch" ? state.rv : undefined };
  // While the consumer holds a batch, the stream's silence is not the server's fault.
  const handOver = (batch: WatcherEvent<T>[]): void | Promise<void> => {
    const pending = o.deliver(batch);
    if (!pending) {
      activity.last = clock.now();
      return;
    }
    activity.suspended = true;
    return pending.then(() => {
      activity.suspended = false;
      activity.last = clock.now();
    });
  };
  const ctx: AttemptContext<T> = { ...base, signal: attempt.signal, activity, run, clock, deliver: handOver };
  const opened = clock.now();
  try {
    await (state.phase === "list" ? listAttempt(ctx, state) : watchAttempt(ctx, state));
    return state.phase === "list" ? { kind: "listed", rv: run.rv } : { kind: "closed", rv: run.rv, received: run.received, ms: clock.now() - opened, inactive: activity.inactive, listed: run.listed };
  } catch (error) {
    if (error instanceof SinkFailure) throw error.error;
    if (signal?.aborted || o.interrupt?.aborted) return undefined;
    // A list dropped by the watchdog: said so (its request only says it was aborted). A silent
    // watch ends without an error, as "closed" with `inactive`.
    const failure = activity.inactive && state.phase === "list" ? new ApiError("Timeout", `${base.describe}: the list said nothing for ${o.inactivityMs} ms: listing again`, { cause: error }) : error;
    return { kind: "failed", error: failure instanceof Error ? failure : new Error(String(failure)), pagesRead: run.pagesRead, listed: run.listed, rv: run.rv };
  } finally {
    attempt.abort(new Error("attempt over"));
    signal?.removeEventListener("abort", onAbort);
    o.interrupt?.removeEventListener("abort", onInterrupt);
    await watchdog;
  }
}

function checkWatcherOptions(options: Pick<WatcherOptions<KubeObject>, "pageSize" | "watchTimeoutSeconds" | "inactivityTimeoutMs">): void {
  checkNumber("pageSize", options.pageSize, "integer ≥ 1");
  checkNumber("watchTimeoutSeconds", options.watchTimeoutSeconds, "integer ≥ 1");
  checkNumber("inactivityTimeoutMs", options.inactivityTimeoutMs, "> 0");
}

/** When the stream last said something, and whether the consumer holds an event now. */
interface Activity {
  last: number;
  suspended: boolean;
  inactive: boolean;
}

/** Drops an attempt whose stream stays silent for `inactivityMs` (time held by the consumer does not count). */
async function watchForInactivity(activity: Activity, attempt: AbortController, inactivityMs: number, clock: Clock): Promise<void> {
  while (!attempt.signal.aborted) {
    const idle = clock.now() - activity.last;
    if (!activity.suspended && idle >= inactivityMs) {
      activity.inactive = true;
      attempt.abort(new Error("inactive"));
      return;
    }
    await clock.sleep(activity.suspended ? inactivityMs : inactivityMs - idle, attempt.signal).catch(() => {});
  }
}

/** What one attempt works with. */
interface AttemptContext<T extends KubeObject> {
  resource: ResourceClient<T>;
  handle: ResourceClient<T>;
  options: WatcherOptions<T>;
  transform: (object: T) => T;
  selectors: { labelSelector?: string; fieldSelector?: string; metadataOnly?: boolean; shardSelector?: string };
  /** The share of a sharded watch (undefined: everything). */
  shard: ShardFilter | undefined;
  lists: Lister<T>;
  backoff: Backoff;
  describe: string;
  signal: AbortSignal;
  activity: Activity;
  run: Attempt;
  clock: Clock;
  /** Hands a batch to the consumer (see runWatch). */
  deliver: (batch: WatcherEvent<T>[]) => void | Promise<void>;
}

/** The `list` state: a paged list (one request when `full`), as init events or differences; a batch per page. */
async function listAttempt<T extends KubeObject>(c: AttemptContext<T>, s: Extract<WatchState, { phase: "list" }>): Promise<void> {
  const { lists, run, resource } = c;
  let out: WatcherEvent<T>[] = lists.start();
  const listOptions = { ...c.selectors, ...(s.consistent || lists.synced ? {} : { resourceVersion: "0" }), signal: c.signal };
  const pages = s.full ? once(c.handle.list(listOptions)) : c.handle.pages({ ...listOptions, limit: c.options.pageSize ?? 500 });
  for await (const page of pages) {
    run.pagesRead++;
    c.activity.last = c.clock.now();
    c.options.health?.heard(c.activity.last);
    c.shard?.learn(page.metadata);
    for (const item of page.items) {
      if (c.shard && !c.shard.keeps(item)) continue;
      // List items come without apiVersion/kind for built-in types; objects in our stores always have them.
      if (!item.kind && !c.options.metadataOnly) Object.assign(item, { apiVersion: resource.kind.apiVersion, kind: resource.kind.kind });
      const event = lists.item(c.transform(item));
      if (event) out.push(event);
    }
    run.rv = page.metadata.resourceVersion;
    lists.lastRv = run.rv;
    if (out.length) await c.deliver(out);
    out = [];
  }
  out.push(...lists.finish());
  run.listed = true;
  await c.deliver(out);
}

/** The `stream` and `watch` states: one watch request (a streaming list first, in `stream`); a batch per read, pushed. */
function watchAttempt<T extends KubeObject>(c: AttemptContext<T>, s: Exclude<WatchState, { phase: "list" }>): Promise<void> {
  const { lists, run } = c;
  const stream = s.phase === "stream";
  if (c.shard?.mode === undefined && c.shard?.selector) return probeShardMode(c).then(() => watchAttempt(c, s));
  let out: WatcherEvent<T>[] = stream ? lists.start() : [];
  const options = {
    ...c.selectors,
    allowWatchBookmarks: true,
    timeoutSeconds: c.options.watchTimeoutSeconds ?? 300 + Math.floor(Math.random() * 300),
    signal: c.signal,
    ...(stream
      ? { sendInitialEvents: true, resourceVersionMatch: "NotOlderThan" as const, ...(lists.lastRv && !s.consistent ? { resourceVersion: lists.lastRv } : {}) }
      : { resourceVersion: s.rv ?? "" }),
  };
  return c.handle.watchInto(options, (raws) => {
    const origin = currentOrigin(); // the watch request's span, when one recorded: each event is tagged with it
    run.received += raws.length;
    c.activity.last = c.clock.now();
    c.options.health?.heard(c.activity.last);
    let failure: unknown;
    try {
      for (const raw of raws) {
        if (raw.type === "ERROR") {
          const status = raw.object as unknown as Status; // an ERROR event carries a Status, not an object of the kind
          throw errorFromResponse(status.code ?? 500, status, { method: "WATCH", path: c.describe });
        }
        if (raw.type === "BOOKMARK") {
          run.rv = raw.object.metadata?.resourceVersion ?? run.rv;
          lists.lastRv = run.rv;
          if (stream && !run.listed && raw.object.metadata?.annotations?.[INITIAL_EVENTS_END] === "true") {
            out.push(...lists.finish());
            run.listed = true;
            c.backoff.reset();
          }
          continue;
        }
        if (c.shard && !c.shard.keeps(raw.object)) {
          // Another replica's (the server did not filter): passed over, its resourceVersion kept.
          run.rv = raw.object.metadata?.resourceVersion ?? run.rv;
          lists.lastRv = run.rv;
          continue;
        }
        const object = c.transform(raw.object);
        run.rv = object.metadata?.resourceVersion ?? run.rv;
        lists.lastRv = run.rv;
        c.backoff.reset();
        const event = stream && !run.listed && raw.type === "ADDED" ? lists.item(object) : lists.change(raw.type === "DELETED" ? "delete" : "apply", object);
        if (!event) continue;
        if (origin) tagOrigin(event, origin);
        out.push(event);
      }
    } catch (error) {
      failure = error;
    }
    // The events before a failure go out first, as they arrived: the watch resumes after them
    // (run.rv has passed them).
    const pending = out.length ? c.deliver(out) : undefined;
    out = [];
    if (failure === undefined) return pending;
    if (pending) return pending.then(() => Promise.reject(failure));
    throw failure;
  });
}

/**
 * Before a sharded stream (which carries no list metadata): one small list with the selector
 * says whether the server applies it.
 */
async function probeShardMode<T extends KubeObject>(c: AttemptContext<T>): Promise<void> {
  const page = await c.handle.list({ ...c.selectors, limit: 1, resourceVersion: "0", signal: c.signal });
  c.shard?.learn(page.metadata);
}

/** What an attempt learned on the way (read by the state machine after it ends). */
interface Attempt {
  pagesRead: number;
  received: number;
  /** A list (paged or streaming) completed during this attempt. */
  listed: boolean;
  rv: string | undefined;
}

/**
 * The listing bookkeeping shared by paged and streaming lists: the first list yields
 * `init` / `initApply` / `initDone`; a relist yields only differences (`apply` for new or
 * changed objects, `delete` with `finalStateUnknown` for vanished ones).
 */
class Lister<T extends KubeObject> {
  /** resourceVersion last yielded, by namespace ("" for cluster-scoped) and name. */
  private readonly known = new NamespacedMap<string>();
  /** What the (re)list in progress listed, the same way. */
  private listed: NamespacedMap<true> | undefined;
  synced = false;
  /** The relist in progress follows a change of share: what it does not list left the share. */
  unsharing = false;
  /** The last resourceVersion seen (a streaming relist resumes from it unless consistent). */
  lastRv: string | undefined;

  constructor(private readonly kind: { apiVersion: string; kind: string }) {}

  start(): WatcherEvent<T>[] {
    this.listed = new NamespacedMap();
    return this.synced ? [] : [{ type: "init" }];
  }

  // The attempts collect these events into batches: no promise per event.
  /** A listed object: its event, or none when a relist finds it unchanged. */
  item(object: T): WatcherEvent<T> | undefined {
    const namespace = object.metadata?.namespace ?? "";
    const name = object.metadata?.name ?? "";
    const version = object.metadata?.resourceVersion ?? "";
    this.listed?.set(namespace, name, true);
    const known = this.known.set(namespace, name, version);
    if (!this.synced) return { type: "initApply", object };
    return known !== version ? { type: "apply", object } : undefined;
  }

  finish(): WatcherEvent<T>[] {
    const out: WatcherEvent<T>[] = [];
    if (this.synced) {
      for (const [namespace, names] of [...this.known.entries()]) {
        const listed = this.listed?.in(namespace);
        for (const [name, version] of [...names]) {
          if (listed?.has(name)) continue;
          this.known.delete(namespace, name);
          const object = { apiVersion: this.kind.apiVersion, kind: this.kind.kind, metadata: { name, namespace: namespace || undefined, resourceVersion: version } } as T;
          out.push(this.unsharing ? { type: "delete", object, unshared: true } : { type: "delete", object, finalStateUnknown: true });
        }
      }
      // A relist for a change of share is no recovery: nothing was missed that its differences
      // do not carry, and readers of "relisted" (resume handlers run again) must not hear it.
      if (!this.unsharing) out.push({ type: "relisted" });
      this.unsharing = false;
    } else {
      out.push({ type: "initDone" });
      this.synced = true;
      this.unsharing = false; // a first list has nothing to unshare
    }
    this.listed = undefined;
    return out;
  }

  change(type: "apply" | "delete", object: T): WatcherEvent<T> {
    const namespace = object.metadata?.namespace ?? "";
    const name = object.metadata?.name ?? "";
    if (type === "delete") this.known.delete(namespace, name);
    else this.known.set(namespace, name, object.metadata?.resourceVersion ?? "");
    return { type, object };
  }
}

/** One page as a paged iteration. */
async function* once<P>(page: Promise<P>): AsyncGenerator<P> {
  yield await page;
}
