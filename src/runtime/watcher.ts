// watch(): list + watch of one resource type as an AsyncIterable of events, that recovers from
// everything but the caller's AbortSignal.
//
// States: NeedList → (paged list, or a streaming list on the watch connection) → Watching(rv)
// → on a clean close, Watching(rv) again; on 410 Gone/Expired, NeedList; on any other failure,
// back off and retry the same state.
//
// Events
//   init, initApply*, initDone   the first list: every object, then "the store is complete"
//   apply, delete                changes seen on the watch
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
// Memory: besides what the consumer keeps, one key → resourceVersion entry per object.
import { systemClock, type Clock } from "../core/clock.js";
import { ApiError, GoneError, errorFromResponse } from "../core/errors.js";
import { objectKey, type KubeObject, type Status } from "../core/objects.js";
import type { ResourceClient, WatchEvent } from "../client/resource.js";
import { Backoff, type BackoffOptions } from "./backoff.js";

/** One event of {@link watch}. */
export type WatcherEvent<T extends KubeObject> =
  | { type: "init" }
  | { type: "initApply"; object: T }
  | { type: "initDone" }
  | { type: "apply"; object: T; /** The stored state it replaced (set by reflect()). */ old?: T }
  | { type: "delete"; object: T; finalStateUnknown?: boolean }
  | { type: "error"; error: Error; retryInMs: number };

/** Options of {@link watch}. */
export interface WatcherOptions<T extends KubeObject> {
  /** Watch one namespace; default: the handle's namespace, or all. */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** Page size of paged lists. Default 500. */
  pageSize?: number;
  /** Server-side lifetime of one watch request. Default: random in 300–600 s (as client-go). */
  watchTimeoutSeconds?: number;
  /** Drop and resume a stream silent (no event, no bookmark) this long. Default 180 000 ms. */
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
  /** Applied to every object before it is yielded. Default: drop `metadata.managedFields`. */
  transform?: (object: T) => T;
  /** Ends the iteration. */
  signal?: AbortSignal;
  clock?: Clock;
}

const INITIAL_EVENTS_END = "k8s.io/initial-events-end";

/** Drops managedFields, which are often most of an object's size and rarely read by controllers. */
export function stripManagedFields<T extends KubeObject>(object: T): T {
  if (object.metadata?.managedFields) delete object.metadata.managedFields;
  return object;
}

/** Watches a resource: see the module documentation for the events and guarantees. */
export async function* watch<T extends KubeObject>(
  resource: ResourceClient<T>,
  options: WatcherOptions<T> = {},
): AsyncGenerator<WatcherEvent<T>, void, undefined> {
  const handle = options.namespace ? resource.namespace(options.namespace) : resource;
  const clock = options.clock ?? systemClock;
  const signal = options.signal;
  const transform = options.transform ?? stripManagedFields;
  const inactivityMs = options.inactivityTimeoutMs ?? 180_000;
  const backoff = new Backoff(options.backoff);
  const selectors = {
    ...(options.labelSelector ? { labelSelector: options.labelSelector } : {}),
    ...(options.fieldSelector ? { fieldSelector: options.fieldSelector } : {}),
    ...(options.metadataOnly ? { metadataOnly: true } : {}),
  };

  const known = new Map<string, string>(); // key → resourceVersion last yielded
  let synced = false;
  let needList = true;
  let consistentList = false; // after a 410 or too-large RV: read from etcd, not the watch cache
  let streaming: boolean | "auto" = options.initialList === "list" ? false : options.initialList === "stream" ? true : "auto";
  let rv: string | undefined;
  let fullList = false; // a continue token expired: list in one request next time

  /** Listing state shared by the paged and the streaming initial list. */
  let listed: Set<string> | undefined;
  function* startListing(): Generator<WatcherEvent<T>> {
    listed = new Set();
    if (!synced) yield { type: "init" };
  }
  function* listItem(object: T): Generator<WatcherEvent<T>> {
    const key = objectKey(object.metadata);
    const version = object.metadata?.resourceVersion ?? "";
    listed?.add(key);
    if (!synced) yield { type: "initApply", object };
    else if (known.get(key) !== version) yield { type: "apply", object };
    known.set(key, version);
  }
  function* finishListing(): Generator<WatcherEvent<T>> {
    if (synced) {
      for (const [key, version] of [...known]) {
        if (listed?.has(key)) continue;
        known.delete(key);
        const [namespace, name] = key.includes("/") ? key.split("/", 2) : [undefined, key];
        const object = { apiVersion: resource.kind.apiVersion, kind: resource.kind.kind, metadata: { name, namespace, resourceVersion: version } } as T;
        yield { type: "delete", object, finalStateUnknown: true };
      }
    } else {
      yield { type: "initDone" };
      synced = true;
    }
    listed = undefined;
    needList = false;
    consistentList = false;
    fullList = false;
  }

  while (!signal?.aborted) {
    const attempt = new AbortController();
    const onAbort = () => attempt.abort(signal?.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
    let last = clock.now();
    let suspended = false;
    let inactive = false;
    const watchdog = (async () => {
      while (!attempt.signal.aborted) {
        const idle = clock.now() - last;
        if (!suspended && idle >= inactivityMs) {
          inactive = true;
          attempt.abort(new Error("inactive"));
          return;
        }
        await clock.sleep(suspended ? inactivityMs : inactivityMs - idle, attempt.signal).catch(() => {});
      }
    })();
    // While the consumer holds an event, the stream's silence is not the server's fault.
    const hand = async function* (events: Iterable<WatcherEvent<T>>) {
      for (const event of events) {
        suspended = true;
        yield event;
        suspended = false;
        last = clock.now();
      }
    };

    let pagesRead = 0;
    try {
      const useStream = needList && streaming !== false;
      if (needList && !useStream) {
        yield* hand(startListing());
        let page: Awaited<ReturnType<typeof handle.list>> | undefined;
        const listOptions = { ...selectors, ...(consistentList || synced ? {} : { resourceVersion: "0" }), signal: attempt.signal };
        const pages = fullList ? once(handle.list(listOptions)) : handle.pages({ ...listOptions, limit: options.pageSize ?? 500 });
        for await (page of pages) {
          pagesRead++;
          last = clock.now();
          for (const item of page.items) {
            // List items come without apiVersion/kind for built-in types; objects in our stores always have them.
            if (!item.kind && !options.metadataOnly) Object.assign(item, { apiVersion: resource.kind.apiVersion, kind: resource.kind.kind });
            for (const event of listItem(transform(item))) {
              suspended = true;
              yield event;
              suspended = false;
            }
          }
          last = clock.now();
        }
        rv = page?.metadata.resourceVersion;
        yield* hand(finishListing());
        backoff.reset();
      }

      const events = handle.watch({
        ...selectors,
        allowWatchBookmarks: true,
        timeoutSeconds: options.watchTimeoutSeconds ?? 300 + Math.floor(Math.random() * 300),
        signal: attempt.signal,
        ...(useStream
          ? { sendInitialEvents: true, resourceVersionMatch: "NotOlderThan" as const, ...(rv && !consistentList ? { resourceVersion: rv } : {}) }
          : { resourceVersion: rv ?? "" }),
      });
      if (useStream) yield* hand(startListing());
      const opened = clock.now();
      let received = 0;
      for await (const raw of events as AsyncIterable<WatchEvent<T>>) {
        received++;
        last = clock.now();
        // The hot path: no wrapper generator per event.
        for (const event of handleEvent(raw)) {
          suspended = true;
          yield event;
          suspended = false;
        }
        last = clock.now();
      }
      if (inactive) {
        yield* hand([{ type: "error", error: new ApiError("Timeout", `no event or bookmark for ${inactivityMs} ms: reconnecting`), retryInMs: 0 }]);
      } else if (received === 0 && clock.now() - opened < 1_000 && !signal?.aborted) {
        // Closed at once with nothing said: a proxy or server in trouble. Back off, as client-go does.
        const delay = backoff.next();
        yield* hand([{ type: "error", error: new ApiError("InternalError", `very short watch of ${describe()}: closed within a second with no event; retrying in ${Math.round(delay)} ms`), retryInMs: delay }]);
        await clock.sleep(delay, signal).catch(() => {});
      }
      // A clean close (the server's timeout): resume from rv at once.
    } catch (error) {
      if (signal?.aborted) break;
      const failure = error instanceof Error ? error : new Error(String(error));
      const reason = (failure as ApiError).reason;
      if (failure instanceof GoneError && pagesRead > 0 && listed) {
        // The continue token expired mid-list: list in one request next time, after a pause.
        needList = true;
        consistentList = true;
        fullList = true;
        const delay = backoff.next();
        yield* hand([{ type: "error", error: failure, retryInMs: delay }]);
        await clock.sleep(delay, signal).catch(() => {});
        continue;
      }
      if (failure instanceof GoneError) {
        needList = true;
        consistentList = true;
        yield* hand([{ type: "error", error: failure, retryInMs: 0 }]);
        continue;
      }
      if (needList && streaming === "auto" && (reason === "BadRequest" || reason === "Invalid" || reason === "UnsupportedMediaType")) {
        streaming = false; // the server does not offer streaming lists: use paged lists from now on
        yield* hand([{ type: "error", error: failure, retryInMs: 0 }]);
        continue;
      }
      if ((failure as ApiError).causes?.some((c) => c.reason === "ResourceVersionTooLarge")) {
        needList = true;
        consistentList = true;
      }
      const delay = backoff.next();
      yield* hand([{ type: "error", error: failure, retryInMs: delay }]);
      await clock.sleep(delay, signal).catch(() => {});
    } finally {
      attempt.abort(new Error("attempt over"));
      signal?.removeEventListener("abort", onAbort);
      await watchdog;
    }
  }

  function* handleEvent(raw: WatchEvent<T>): Generator<WatcherEvent<T>> {
    if (raw.type === "ERROR") {
      // An ERROR event carries a Status, not an object of the watched kind.
      const status = raw.object as unknown as Status;
      throw errorFromResponse(status.code ?? 500, status, { method: "WATCH", path: describe() });
    }
    if (raw.type === "BOOKMARK") {
      rv = raw.object.metadata?.resourceVersion ?? rv;
      if (listed && raw.object.metadata?.annotations?.[INITIAL_EVENTS_END] === "true") {
        yield* finishListing();
        backoff.reset();
      }
      return;
    }
    const object = transform(raw.object);
    rv = object.metadata?.resourceVersion ?? rv;
    backoff.reset();
    if (listed && raw.type === "ADDED") {
      yield* listItem(object);
      return;
    }
    const key = objectKey(object.metadata);
    if (raw.type === "DELETED") {
      known.delete(key);
      yield { type: "delete", object };
    } else {
      known.set(key, object.metadata?.resourceVersion ?? "");
      yield { type: "apply", object };
    }
  }

  function describe(): string {
    return `${resource.kind.apiVersion} ${resource.kind.kind}${options.namespace ? ` in ${options.namespace}` : ""}`;
  }
}

/** One page as a paged iteration. */
async function* once<P>(page: Promise<P>): AsyncGenerator<P> {
  yield await page;
}
