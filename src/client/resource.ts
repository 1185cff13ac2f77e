// The resource handle: `client.resource(Kind)` → get / list / create / replace / patch / apply /
// delete / deleteCollection / watch, and the status and scale subresources. Objects stay plain
// JSON from the wire to the caller: no per-object class conversion on the hot path.
import type { Scale } from "../core/kube/autoscaling/v1.js";
import type { Status } from "../core/kube/meta/v1.js";
import type { Readable } from "node:stream";
import { pullEach } from "../core/async.js";
import { fromOrigin, originOf } from "../core/tracing.js";
import { ApiError } from "../core/errors.js";
import { describeKind, type KubeList, type KubeObject, type ResourceKind } from "../core/objects.js";
import type { RestMapper, ResourceMapping } from "./discovery.js";
import type { HttpMethod, HttpRequest, Transport } from "./transport.js";

/** Options every call takes. */
export interface CallOptions {
  signal?: AbortSignal;
  /** Deadline for this call, overriding the client's. */
  timeoutMs?: number;
}

/** Options of calls that write. */
export interface WriteOptions extends CallOptions {
  /** Validate and default on the server, persist nothing. */
  dryRun?: boolean;
  /** Recorded in managedFields; for `apply` it is required. */
  fieldManager?: string;
  /** Server-side field validation of unknown/duplicate fields. */
  fieldValidation?: "Ignore" | "Warn" | "Strict";
}

/** Selectors and paging of list, watch and deleteCollection. */
export interface ListOptions extends CallOptions {
  labelSelector?: string;
  fieldSelector?: string;
  /** Page size; with `continue`, pages through a large list. */
  limit?: number;
  continue?: string;
  resourceVersion?: string;
  resourceVersionMatch?: "NotOlderThan" | "Exact";
  /** Ask only for metadata (PartialObjectMetadata): far less to transfer and keep. */
  metadataOnly?: boolean;
  /**
   * The API server's shard selector (KEP-5866; alpha, feature gate ShardedListAndWatch), e.g.
   * `shardRange(object.metadata.uid, '0x0000000000000000', '0x8000000000000000')` (see
   * `shardSelector()` in core/shards.ts). A server that applied it says so in the list's
   * `metadata.shardInfo`; one without the gate ignores it and sends everything.
   */
  shardSelector?: string;
}

/** Options of a raw watch. */
export interface WatchOptions extends ListOptions {
  allowWatchBookmarks?: boolean;
  /** Server-side duration of the watch; the stream ends cleanly after it. */
  timeoutSeconds?: number;
  /** Streaming list: the current objects first as ADDED, then a bookmark with the initial-events-end annotation. */
  sendInitialEvents?: boolean;
}

/** How to patch. */
export type PatchType = "merge" | "json" | "strategic" | "apply";

/** Options of a patch: its type (merge, strategic, JSON, apply) besides the write options. */
export interface PatchOptions extends WriteOptions {
  /** JSON merge patch (RFC 7386), JSON patch (RFC 6902), strategic merge patch (built-in kinds only) or server-side apply. */
  type: PatchType;
  /** Server-side apply only: take ownership of conflicting fields. */
  force?: boolean;
}

/** Options of a server-side apply: the field manager (required) and whether to force ownership. */
export interface ApplyOptions extends WriteOptions {
  /** Required: who owns the applied fields. */
  fieldManager: string;
  /** Take ownership of fields another manager owns, instead of failing with a Conflict. */
  force?: boolean;
}

/** Options of a delete: propagation, grace period, preconditions, besides the write options. */
export interface DeleteOptions extends WriteOptions {
  propagationPolicy?: "Foreground" | "Background" | "Orphan";
  gracePeriodSeconds?: number;
  /** Delete only if the object still has this uid / resourceVersion (else Conflict). */
  preconditions?: { uid?: string; resourceVersion?: string };
}

/** One event of a raw watch stream. */
export interface WatchEvent<T extends KubeObject = KubeObject> {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  /** The object; for ERROR, a Status (for instance 410 Expired). */
  object: T;
}

/** A JSON patch operation (RFC 6902). */
export interface JsonPatchOperation {
  op: "add" | "remove" | "replace" | "move" | "copy" | "test";
  path: string;
  value?: unknown;
  from?: string;
}

const METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
const METADATA_OBJECT = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";

const PATCH_CONTENT_TYPES: Record<PatchType, string> = {
  merge: "application/merge-patch+json",
  json: "application/json-patch+json",
  strategic: "application/strategic-merge-patch+json",
  apply: "application/apply-patch+yaml",
};

/** Shared by every handle of one client. */
export interface ResourceContext {
  transport: Transport;
  mapper: RestMapper;
  /** Told about every object a write returned (for read-your-own-writes). */
  writes?: Set<WriteListener>;
  /**
   * Its calls are not held by the client's rate limit (Lease traffic: see `leaseResource`).
   * @internal
   */
  unlimited?: boolean;
}

/** Called with the kind and the object a successful write (create/replace/patch/apply/delete) returned. */
export type WriteListener = (kind: ResourceKind, object: KubeObject) => void;

/**
 * Calls on one kind of resource, in one namespace or across all of them.
 *
 * Namespaces: a handle from `.namespace(ns)` works in `ns`. Without one, calls on a single
 * object of a namespaced kind take the namespace from the object (`metadata.namespace`), and
 * list / watch span all namespaces. A call that cannot know its namespace fails before sending.
 *
 * Failures are {@link ApiError}s: `NotFoundError`, `ConflictError`, `InvalidError`, … .
 */
export class ResourceClient<T extends KubeObject = KubeObject> {
  constructor(
    private readonly ctx: ResourceContext,
    readonly kind: ResourceKind<T>,
    readonly namespaceName?: string,
  ) {}

  /** The same calls, in namespace `ns`. */
  namespace(ns: string): ResourceClient<T> {
    return new ResourceClient(this.ctx, this.kind, ns);
  }

  /** Reads one object. */
  get(name: string, options: CallOptions = {}): Promise<T> {
    return this.call("GET", { name, options });
  }

  /** One page of objects (all of them unless `limit` is set); `metadata.continue` leads to the next page. */
  list(options: ListOptions = {}): Promise<KubeList<T>> {
    return this.call("GET", {
      collection: true,
      options,
      query: listQuery(options),
      ...(options.metadataOnly ? { accept: METADATA_LIST } : {}),
    }) as unknown as Promise<KubeList<T>>; // the call returns the server's JSON: a list of Ts for this path
  }

  /** Every page, in order; the list's snapshot stays consistent across pages. */
  async *pages(options: ListOptions & { limit: number }): AsyncGenerator<KubeList<T>> {
    let token = options.continue;
    do {
      const page = await this.list({ ...options, ...(token ? { continue: token } : {}) });
      yield page;
      token = page.metadata.continue;
    } while (token);
  }

  /** All objects, fetched `pageSize` at a time (default 500). */
  async listAll(options: ListOptions & { pageSize?: number } = {}): Promise<KubeList<T>> {
    const { pageSize = 500, ...rest } = options;
    let last: KubeList<T> | undefined;
    const items: T[] = [];
    for await (const page of this.pages({ ...rest, limit: pageSize })) {
      for (const item of page.items) items.push(item);
      last = page;
    }
    return { ...(last as KubeList<T>), metadata: { ...last?.metadata, continue: undefined }, items } as KubeList<T>;
  }

  /** Creates an object (never retried after it may have reached the server). */
  create(object: T, options: WriteOptions = {}): Promise<T> {
    return this.call("POST", { collection: true, object, options, query: writeQuery(options), body: this.withTypeMeta(object), idempotent: false });
  }

  /** Replaces an object. With `metadata.resourceVersion` set, fails with Conflict if it changed since. */
  replace(object: T, options: WriteOptions = {}): Promise<T> {
    return this.call("PUT", { name: nameOf(object, this.kind), object, options, query: writeQuery(options), body: this.withTypeMeta(object) });
  }

  /**
   * Patches an object. Merge, strategic and apply patches are retried on transient failures
   * (applying them twice gives the same result); JSON patches are not.
   */
  patch(name: string, patch: unknown, options: PatchOptions): Promise<T> {
    return this.call("PATCH", this.patchCall(name, patch, options));
  }

  /**
   * Server-side apply: the fields in `object` become owned by `fieldManager`. A field owned by
   * another manager fails with a `ConflictError` (its `causes` name the fields), unless `force`.
   */
  apply(object: Partial<T> & KubeObject, options: ApplyOptions): Promise<T> {
    return this.call("PATCH", { ...this.patchCall(nameOf(object, this.kind), this.withTypeMeta(object), { ...options, type: "apply" }), object });
  }

  /** Deletes an object. Returns the object (when deletion is deferred by finalizers) or a Status. */
  delete(name: string, options: DeleteOptions = {}): Promise<T | Status> {
    return this.call("DELETE", { name, options, query: writeQuery(options), body: deleteBody(options) });
  }

  /** Deletes every object matching the selectors, in this handle's namespace (required for namespaced kinds). */
  async deleteCollection(options: ListOptions & DeleteOptions = {}): Promise<KubeList<T> | Status> {
    const mapping = await this.mapping(options.signal);
    if (mapping.namespaced && !this.namespaceName) {
      throw new ApiError("BadRequest", `deleteCollection of ${describeKind(this.kind)} needs a namespace: use .namespace(ns)`);
    }
    return this.call("DELETE", {
      collection: true,
      options,
      query: { ...listQuery(options), ...writeQuery(options) },
      body: deleteBody(options),
    }) as unknown as Promise<KubeList<T> | Status>; // a collection delete answers with the list deleted, or a Status
  }

  /** Reads the status subresource. */
  getStatus(name: string, options: CallOptions = {}): Promise<T> {
    return this.call("GET", { name, subresource: "status", options });
  }

  /** Replaces the status (spec changes in `object` are ignored by the server). */
  replaceStatus(object: T, options: WriteOptions = {}): Promise<T> {
    return this.call("PUT", { name: nameOf(object, this.kind), object, subresource: "status", options, query: writeQuery(options), body: this.withTypeMeta(object) });
  }

  /** Patches the status subresource. */
  patchStatus(name: string, patch: unknown, options: PatchOptions): Promise<T> {
    return this.call("PATCH", { ...this.patchCall(name, patch, options), subresource: "status" });
  }

  /** Server-side apply of the status subresource. */
  applyStatus(object: Partial<T> & KubeObject, options: ApplyOptions): Promise<T> {
    return this.call("PATCH", {
      ...this.patchCall(nameOf(object, this.kind), this.withTypeMeta(object), { ...options, type: "apply" }),
      object,
      subresource: "status",
    });
  }

  /** Reads the scale subresource (autoscaling/v1 Scale). */
  getScale(name: string, options: CallOptions = {}): Promise<Scale> {
    return this.call("GET", { name, subresource: "scale", options }) as Promise<Scale>;
  }

  /** Replaces the scale subresource: sets `spec.replicas`. */
  replaceScale(name: string, scale: Scale, options: WriteOptions = {}): Promise<Scale> {
    return this.call("PUT", { name, subresource: "scale", options, query: writeQuery(options), body: scale }) as Promise<Scale>;
  }

  /** Patches the scale subresource, e.g. `{ spec: { replicas: 3 } }` with `type: "merge"`. */
  patchScale(name: string, patch: unknown, options: PatchOptions): Promise<Scale> {
    return this.call("PATCH", { ...this.patchCall(name, patch, options), subresource: "scale" }) as Promise<Scale>;
  }

  /**
   * A raw watch: the server's events as they arrive, parsed. The iteration ends when the server
   * closes the stream (after `timeoutSeconds`) or when `signal` aborts; it throws an ApiError if
   * the watch cannot be started. An ERROR event (e.g. 410 Expired) is yielded, not thrown.
   * Reconnecting and relisting are the runtime watcher's job, not this method's.
   */
  watch(options: WatchOptions = {}): AsyncGenerator<WatchEvent<T>> {
    return pullEach<WatchEvent<T>>((push, signal) => this.watchInto({ ...options, signal }, push), options.signal);
  }

  /**
   * {@link watch}, its events grouped as they arrived: one array per read from the connection
   * (never empty), in order. For consumers that handle a read's events in one turn, without a
   * promise per event. A malformed line fails the iteration after the events before it.
   */
  watchBatches(options: WatchOptions = {}): AsyncGenerator<WatchEvent<T>[]> {
    return pullEach<WatchEvent<T>[]>((push, signal) => this.watchInto({ ...options, signal }, (batch) => push([batch])), options.signal);
  }

  /**
   * {@link watchBatches}, pushed: each read's events (never empty) go to `onBatch` as soon as
   * they are split and parsed, in the turn the bytes arrived; while a promise `onBatch` returned
   * is pending, the connection is not read (backpressure), and the watch does not end before it
   * settles. Resolves when the server ends the stream or `signal` aborts. Rejects with an
   * ApiError when the watch cannot be started, the connection breaks, or a line is malformed
   * (after the events before it went out), and with what `onBatch` throws or rejects with, as it
   * is (the connection is then closed).
   * @internal the watcher's push path; users read {@link watch} or the runtime's watch().
   */
  async watchInto(options: WatchOptions, onBatch: (batch: WatchEvent<T>[]) => void | Promise<void>): Promise<void> {
    const signal = options.signal;
    const request = await this.request("GET", {
      collection: true,
      options,
      query: {
        ...listQuery(options),
        watch: true,
        allowWatchBookmarks: options.allowWatchBookmarks,
        timeoutSeconds: options.timeoutSeconds,
        sendInitialEvents: options.sendInitialEvents,
      },
      ...(options.metadataOnly ? { accept: METADATA_OBJECT } : {}),
    });
    let body: Readable;
    try {
      body = await this.ctx.transport.stream(request);
    } catch (error) {
      if (signal?.aborted) return;
      throw error;
    }
    return new Promise<void>((resolve, reject) => new WatchStream<T>(body, describeKind(this.kind), signal, onBatch, resolve, reject).start());
  }

  /** The REST mapping of this handle's kind (from the descriptor or discovery). */
  mapping(signal?: AbortSignal): Promise<ResourceMapping> {
    return this.ctx.mapper.mapping(this.kind, signal);
  }

  private patchCall(name: string, patch: unknown, options: PatchOptions): CallSpec {
    if (options.type === "apply" && !options.fieldManager) {
      throw new ApiError("BadRequest", "server-side apply needs a fieldManager (who owns the applied fields)");
    }
    return {
      name,
      options,
      query: { ...writeQuery(options), ...(options.type === "apply" && options.force ? { force: true } : {}) },
      body: patch,
      contentType: PATCH_CONTENT_TYPES[options.type],
    };
  }

  private withTypeMeta(object: KubeObject): KubeObject {
    return { apiVersion: this.kind.apiVersion, kind: this.kind.kind, ...object };
  }

  private async call(method: HttpMethod, spec: CallSpec): Promise<T> {
    const result = await this.ctx.transport.request<T>(await this.request(method, spec));
    // Every write that returns one object (not a list from deleteCollection, not a Status) is reported.
    if (method !== "GET" && this.ctx.writes?.size && !(spec.options as WriteOptions).dryRun && result?.metadata?.resourceVersion && !("items" in result)) {
      for (const listener of this.ctx.writes) listener(this.kind, result);
    }
    return result;
  }

  private async request(method: HttpMethod, spec: CallSpec): Promise<HttpRequest> {
    const mapping = await this.mapping(spec.options.signal);
    const namespace = this.namespaceFor(mapping, spec);
    const prefix = mapping.group ? `/apis/${mapping.group}/${mapping.version}` : `/api/${mapping.version}`;
    let path = namespace ? `${prefix}/namespaces/${encodeURIComponent(namespace)}/${mapping.plural}` : `${prefix}/${mapping.plural}`;
    if (!spec.collection) {
      if (!spec.name) throw new ApiError("BadRequest", `a name is required to address one ${describeKind(this.kind)}`);
      path += `/${encodeURIComponent(spec.name)}`;
      if (spec.subresource) path += `/${spec.subresource}`;
    }
    return {
      method,
      path,
      ...(spec.query ? { query: spec.query } : {}),
      ...(spec.body !== undefined ? { body: spec.body } : {}),
      ...(spec.contentType ? { contentType: spec.contentType } : {}),
      ...(spec.accept ? { accept: spec.accept } : {}),
      ...(spec.options.signal ? { signal: spec.options.signal } : {}),
      ...(spec.options.timeoutMs !== undefined ? { timeoutMs: spec.options.timeoutMs } : {}),
      ...(spec.idempotent !== undefined ? { idempotent: spec.idempotent } : {}),
      ...(this.ctx.unlimited ? { unlimited: true } : {}),
    };
  }

  private namespaceFor(mapping: ResourceMapping, spec: CallSpec): string | undefined {
    const fromObject = spec.object?.metadata?.namespace;
    if (!mapping.namespaced) {
      if (this.namespaceName) {
        throw new ApiError("BadRequest", `${describeKind(this.kind)} is cluster-scoped: do not give it a namespace (got "${this.namespaceName}")`);
      }
      return undefined;
    }
    if (this.namespaceName && fromObject && fromObject !== this.namespaceName) {
      throw new ApiError("BadRequest", `the object's namespace "${fromObject}" differs from the handle's "${this.namespaceName}"`);
    }
    const namespace = this.namespaceName ?? fromObject;
    // Only list, watch and deleteCollection (a collection call without an object) may span all namespaces.
    if (!namespace && (!spec.collection || spec.object)) {
      throw new ApiError("BadRequest", `${describeKind(this.kind)} is namespaced: give a namespace (.namespace(ns) or metadata.namespace)`);
    }
    return namespace;
  }
}

interface CallSpec {
  name?: string;
  collection?: boolean;
  subresource?: "status" | "scale";
  object?: KubeObject;
  options: CallOptions;
  query?: HttpRequest["query"];
  body?: unknown;
  contentType?: string;
  accept?: string;
  idempotent?: boolean;
}

function nameOf(object: KubeObject, kind: ResourceKind): string {
  const name = object.metadata?.name;
  if (!name) throw new ApiError("BadRequest", `the ${describeKind(kind)} has no metadata.name`);
  return name;
}

function listQuery(o: ListOptions): HttpRequest["query"] {
  return {
    labelSelector: o.labelSelector,
    fieldSelector: o.fieldSelector,
    limit: o.limit,
    continue: o.continue,
    resourceVersion: o.resourceVersion,
    resourceVersionMatch: o.resourceVersionMatch,
    shardSelector: o.shardSelector,
  };
}

function writeQuery(o: WriteOptions): HttpRequest["query"] {
  return { dryRun: o.dryRun ? "All" : undefined, fieldManager: o.fieldManager, fieldValidation: o.fieldValidation };
}

function deleteBody(o: DeleteOptions): Record<string, unknown> | undefined {
  const body = {
    ...(o.propagationPolicy ? { propagationPolicy: o.propagationPolicy } : {}),
    ...(o.gracePeriodSeconds !== undefined ? { gracePeriodSeconds: o.gracePeriodSeconds } : {}),
    ...(o.preconditions ? { preconditions: o.preconditions } : {}),
  };
  return Object.keys(body).length ? { apiVersion: "v1", kind: "DeleteOptions", ...body } : undefined;
}

/**
 * Calls `onLine` with each complete line of `bytes` (without its newline), decoded as UTF-8;
 * `partial` carries the bytes of an unfinished line from one call to the next (the caller keeps
 * it, empty at first). Lines are split as bytes and each decoded once: a newline byte never
 * occurs inside a multi-byte UTF-8 character, and decoding each chunk into a string first, then
 * joining and slicing strings, copied every event twice more (~16% of split and parse for 2 KiB
 * events). If `onLine` throws, the lines after it in `bytes` are not delivered.
 */
export function splitLines(bytes: Uint8Array, partial: Buffer[], onLine: (line: string) => void): void {
  const chunk = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let start = 0;
  let newline: number;
  while ((newline = chunk.indexOf(10, start)) >= 0) {
    if (partial.length) {
      partial.push(chunk.subarray(start, newline));
      onLine(Buffer.concat(partial.splice(0)).toString("utf8"));
    } else onLine(chunk.toString("utf8", start, newline));
    start = newline + 1;
  }
  if (start < chunk.length) partial.push(chunk.subarray(start));
}

/**
 * One watch response being read: bytes are split into lines and parsed as they arrive, each
 * read's events go to `onBatch` at once, and the connection is paused while a promise `onBatch`
 * returned is pending (backpressure). It ends once: cleanly (the stream ended, or the caller
 * aborted), with the consumer's error as it is, or with the stream's as an ApiError, and only
 * after the consumer is done with the batch it holds.
 */
class WatchStream<T extends KubeObject> {
  private readonly partial: Buffer[] = [];
  private batch: WatchEvent<T>[] = [];
  private settled = false;
  private ended = false;
  /** A batch the consumer still holds. */
  private inflight: Promise<void> | undefined;

  constructor(
    private readonly body: Readable,
    private readonly what: string,
    private readonly signal: AbortSignal | undefined,
    private readonly onBatch: (batch: WatchEvent<T>[]) => void | Promise<void>,
    private readonly resolve: () => void,
    private readonly reject: (error: unknown) => void,
  ) {}

  start(): void {
    const { body } = this;
    body.on("data", (bytes: Buffer) => {
      let failure: unknown;
      try {
        splitLines(bytes, this.partial, this.add);
      } catch (error) {
        failure = error;
      }
      this.deliver(failure, false);
    });
    body.on("end", () => {
      this.ended = true;
      let failure: unknown;
      try {
        if (this.partial.length) this.add(Buffer.concat(this.partial.splice(0)).toString("utf8"));
      } catch (error) {
        failure = error;
      }
      this.deliver(failure, true);
    });
    body.on("error", (error) => this.finish(error));
    body.on("close", () => {
      if (!this.ended) this.finish(new Error("the connection closed before the stream ended"));
    });
  }

  private readonly add = (line: string): void => {
    if (!line.trim()) return;
    try {
      this.batch.push(JSON.parse(line) as WatchEvent<T>);
    } catch (error) {
      throw new ApiError("Unknown", `malformed watch event from the server: ${(error as Error).message}`, { cause: error });
    }
  };

  /**
   * Hands the events parsed so far to the consumer, then ends with `failure` if any (the events
   * before a malformed line still go out first); pauses the connection meanwhile.
   */
  private deliver(failure: unknown, end: boolean): void {
    if (this.batch.length) {
      const out = this.batch;
      this.batch = [];
      let pending: void | Promise<void>;
      try {
        // The watch request's span, when one recorded: the origin of these events (core/tracing.ts).
        const from = originOf(this.body);
        pending = from ? fromOrigin(from, () => this.onBatch(out)) : this.onBatch(out);
      } catch (error) {
        return this.finish(error, true);
      }
      if (pending) {
        if (!end) this.body.pause();
        this.inflight = pending.then(
          () => {
            this.inflight = undefined;
            if (failure !== undefined || end) this.finish(failure);
            else if (!this.settled) this.body.resume();
          },
          (error: unknown) => {
            this.inflight = undefined;
            this.finish(error, true);
          },
        );
        return;
      }
    }
    if (failure !== undefined || end) this.finish(failure);
  }

  /** Ends the watch (once), after the batch the consumer holds. */
  private finish(error?: unknown, consumer = false): void {
    if (this.settled) return;
    this.settled = true;
    if (error !== undefined) this.body.destroy();
    const settle = () => {
      if (error === undefined || this.signal?.aborted) this.resolve();
      else if (consumer || error instanceof ApiError) this.reject(error);
      else this.reject(new ApiError("Network", `the watch of ${this.what} broke: ${(error as Error).message}`, { cause: error }));
    };
    if (this.inflight) void this.inflight.then(settle, settle);
    else settle();
  }
}
