// The cached reader a reconcile gets: reads of any kind served from shared informer stores,
// as controller-runtime's cache-backed client. An informer for a kind starts on its first read
// (and stays), so `get`/`list` of a kind no controller watches costs one list+watch, once.
import type { KubeObject, ResourceKind } from "../core/objects.js";
import { objectKey } from "../core/objects.js";
import type { Informer, InformerFactory, InformerScope } from "../runtime/informer.js";
import { BY_NAMESPACE, BY_OWNER } from "../runtime/store.js";
import { ForbiddenError, UnauthorizedError, type ApiError } from "../core/errors.js";
import type { WrittenVersions } from "./read-your-writes.js";

/** Options of {@link CacheReader.list}. */
export interface CacheListOptions {
  namespace?: string;
  /** Only objects with all of these labels (equality). */
  labels?: Record<string, string>;
  /** Only objects with an owner reference to this uid (served from an index). */
  ownerUid?: string;
}

/**
 * Reads from informer caches. Guarantees: the first read of a kind waits until its cache has
 * synced (or `signal` aborts); a read of an object this process wrote waits (up to
 * `settleMs`) until the cache has that version. Objects returned are the cache's own: do not
 * mutate them, copy with `structuredClone` first. A kind is read through the informer of
 * `scopeOf(kind)` (the controller's own scope for the kinds it watches, the operator's namespaces
 * for others), so an operator of some namespaces never starts a cluster-wide informer; a read in a
 * namespace outside that scope fails naming it (as controller-runtime's namespaced cache).
 */
export class CacheReader {
  constructor(
    private readonly informers: InformerFactory,
    private readonly writes?: WrittenVersions,
    private readonly settleMs = 5_000,
    private readonly scopeOf: (kind: ResourceKind) => InformerScope = () => ({}),
    /** Errors the watch of an informer this reader started recovers from (to be logged). */
    private readonly onWatchError?: (informer: { kind: ResourceKind; scope: InformerScope }, error: Error) => void,
    /** The signal of reads that pass none (a reconcile's own). */
    private readonly defaultSignal?: () => AbortSignal,
    private readonly reported: WeakSet<object> = new WeakSet(),
  ) {}

  /** The same reader whose reads, when they pass no signal, use `signal()` (a reconcile's `ctx.signal`). */
  withSignal(signal: () => AbortSignal): CacheReader {
    return new CacheReader(this.informers, this.writes, this.settleMs, this.scopeOf, this.onWatchError, signal, this.reported);
  }

  /**
   * The cached object, or undefined. Fails with a {@link ForbiddenError} when the API server
   * refuses to list or watch the kind (RBAC): a read never waits on a cache that cannot fill.
   */
  async get<K extends KubeObject>(kind: ResourceKind<K>, name: string, namespace?: string, signal?: AbortSignal): Promise<K | undefined> {
    signal ??= this.defaultSignal?.();
    const informer = await this.ready(kind, namespace, signal);
    const key = objectKey({ name, ...(namespace ? { namespace } : {}) });
    if (this.writes) await this.writes.settle(informer, key, this.settleMs, signal);
    return informer.store.get(key);
  }

  /** Cached objects of a kind, optionally in one namespace and with given labels. */
  async list<K extends KubeObject>(kind: ResourceKind<K>, options: CacheListOptions = {}, signal?: AbortSignal): Promise<K[]> {
    signal ??= this.defaultSignal?.();
    const informer = await this.ready(kind, options.namespace, signal);
    // Read-your-own-writes for lists: wait for every object of this kind this process wrote.
    if (this.writes) {
      const pending = this.writes.pendingKeys(kind).filter((k) => options.namespace === undefined || k.startsWith(`${options.namespace}/`));
      await Promise.all(pending.map((k) => this.writes?.settle(informer, k, this.settleMs, signal)));
    }
    let candidates =
      options.ownerUid !== undefined
        ? informer.store.byIndex(BY_OWNER, options.ownerUid)
        : options.namespace !== undefined
          ? informer.store.byIndex(BY_NAMESPACE, options.namespace)
          : informer.store.list();
    if (options.ownerUid !== undefined && options.namespace !== undefined) candidates = candidates.filter((o) => o.metadata?.namespace === options.namespace);
    const wanted = Object.entries(options.labels ?? {});
    return wanted.length ? candidates.filter((o) => wanted.every(([k, v]) => o.metadata?.labels?.[k] === v)) : candidates;
  }

  /** The shared informer of `kind` in its scope, started on first use, once its cache has synced. */
  private async ready<K extends KubeObject>(kind: ResourceKind<K>, namespace: string | undefined, signal?: AbortSignal): Promise<Informer<K>> {
    const scope = this.scopeOf(kind);
    const held = scope.namespace !== undefined ? [scope.namespace] : scope.namespaces;
    if (namespace !== undefined && held && !held.includes(namespace)) {
      throw new Error(`cannot read ${kind.apiVersion} ${kind.kind} from the cache: namespace ${namespace} is outside the cache's namespaces ${held.join(", ")}`);
    }
    const informer = this.informers.informer(kind, scope);
    this.writes?.observe(informer);
    if (informer.store.isReady) return informer;
    // Not synced yet: started by reads (the Manager logs the failures of those it starts).
    if (this.onWatchError && !this.reported.has(informer)) {
      this.reported.add(informer);
      const report = this.onWatchError;
      informer.subscribe((e) => e.type === "error" && report(informer, e.error));
    }
    informer.start();
    const refusal = refused(informer.lastError);
    if (refusal) throw refusedRead(kind, scope, refusal);
    // Waits until the cache synced, or the watch is refused (it goes on retrying meanwhile, so
    // a read after the permission is granted succeeds), or the signal aborts.
    await new Promise<void>((resolve, reject) => {
      const unsubscribe = informer.subscribe((e) => {
        const error = e.type === "error" ? refused(e.error) : undefined;
        if (error) reject(refusedRead(kind, scope, error));
      });
      informer.waitUntilReady(signal).then(resolve, reject).finally(unsubscribe);
    });
    return informer;
  }
}

/** The error, when it is the API server refusing the request (403, or 401). */
function refused(error: Error | undefined): ApiError | undefined {
  return error instanceof ForbiddenError || error instanceof UnauthorizedError ? error : undefined;
}

function refusedRead(kind: ResourceKind, scope: InformerScope, error: ApiError): ForbiddenError {
  const where = scope.namespace !== undefined ? ` in namespace ${scope.namespace}` : scope.namespaces ? ` in namespaces ${scope.namespaces.join(", ")}` : " in all namespaces";
  return new ForbiddenError(
    "Forbidden",
    `cannot read ${kind.apiVersion} ${kind.kind} through the cache${where}: the API server refused to list or watch it (${error.message}). Grant get, list and watch on it (kubeloop generate rbac covers the kinds named in ctx.cache reads; op.permissions() adds others)`,
    { code: error.code || 403, cause: error },
  );
}
