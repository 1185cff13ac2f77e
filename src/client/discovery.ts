// The REST mapper: kind → plural resource name and scope, from discovery. It asks only for the
// group-version it needs (`/api/v1`, `/apis/<group>/<version>`: one small request), caches the
// answer, and asks again when a kind is missing, so a CRD installed after start is found.
import { ApiError, NotFoundError } from "../core/errors.js";
import { describeKind, parseApiVersion, type ResourceKind } from "../core/objects.js";
import type { Transport } from "./transport.js";
import { raceSignal } from "../core/async.js";

/** Where a kind lives in the REST API. */
export interface ResourceMapping {
  group: string;
  version: string;
  kind: string;
  /** The plural resource name used in paths, e.g. `deployments`. */
  plural: string;
  namespaced: boolean;
  /** Subresources the server offers, e.g. `status`, `scale`. Empty when not discovered. */
  subresources: string[];
}

interface ApiResourceList {
  groupVersion: string;
  resources: { name: string; kind: string; namespaced: boolean; verbs?: string[] }[];
}

interface CacheEntry {
  fetchedAt: number;
  /** kind → mapping; undefined while the group-version does not exist on the server. */
  kinds: Map<string, ResourceMapping> | undefined;
}

/** Caches discovery per group-version. Share one per client. */
export class RestMapper {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly inFlight = new Map<string, Promise<CacheEntry>>();

  /** @param refreshAfterMs a miss re-asks the server when the cached answer is older than this. */
  constructor(
    private readonly transport: Transport,
    private readonly refreshAfterMs = 1_000,
  ) {}

  /**
   * The REST mapping of a kind. Descriptors that carry `plural` and `namespaced` are answered
   * without a request. Fails with {@link NotFoundError} when the server does not serve the kind
   * (for a custom resource: its CRD is not installed or not yet established).
   */
  async mapping(kind: ResourceKind, signal?: AbortSignal): Promise<ResourceMapping> {
    const { group, version } = parseApiVersion(kind.apiVersion);
    if (kind.plural !== undefined && kind.namespaced !== undefined) {
      return { group, version, kind: kind.kind, plural: kind.plural, namespaced: kind.namespaced, subresources: [] };
    }
    let entry = await this.entry(kind.apiVersion, false, signal);
    let found = entry.kinds?.get(kind.kind);
    if (!found && Date.now() - entry.fetchedAt > this.refreshAfterMs) {
      entry = await this.entry(kind.apiVersion, true, signal);
      found = entry.kinds?.get(kind.kind);
    }
    if (!found) {
      const served = entry.kinds ? `it serves ${[...entry.kinds.keys()].join(", ") || "no kinds"} there` : `${kind.apiVersion} is not served`;
      throw new NotFoundError("NotFound", `the server has no kind ${kind.kind} in ${kind.apiVersion} (${served}); is its CustomResourceDefinition installed?`);
    }
    return found;
  }

  /** Forgets what was discovered (all, or one apiVersion). */
  invalidate(apiVersion?: string): void {
    if (apiVersion) this.cache.delete(apiVersion);
    else this.cache.clear();
  }

  private async entry(apiVersion: string, refresh: boolean, signal?: AbortSignal): Promise<CacheEntry> {
    const cached = this.cache.get(apiVersion);
    if (cached && !refresh) return cached;
    // One request serves every caller; it carries no caller's signal (one caller giving up must
    // not fail the others): each caller stops waiting on its own signal instead.
    let pending = this.inFlight.get(apiVersion);
    if (!pending) {
      pending = this.fetch(apiVersion).finally(() => this.inFlight.delete(apiVersion));
      this.inFlight.set(apiVersion, pending);
    }
    const entry = await (signal ? raceSignal(pending, signal) : pending);
    this.cache.set(apiVersion, entry);
    return entry;
  }

  private async fetch(apiVersion: string): Promise<CacheEntry> {
    const { group, version } = parseApiVersion(apiVersion);
    const path = group ? `/apis/${group}/${version}` : `/api/${version}`;
    let list: ApiResourceList;
    try {
      list = await this.transport.request<ApiResourceList>({ method: "GET", path });
    } catch (error) {
      if ((error as ApiError).reason === "NotFound") return { fetchedAt: Date.now(), kinds: undefined };
      throw error;
    }
    const kinds = new Map<string, ResourceMapping>();
    const subresources = new Map<string, string[]>();
    for (const r of list.resources) {
      const slash = r.name.indexOf("/");
      if (slash >= 0) {
        const parent = r.name.slice(0, slash);
        subresources.set(parent, [...(subresources.get(parent) ?? []), r.name.slice(slash + 1)]);
      }
    }
    for (const r of list.resources) {
      if (r.name.includes("/") || kinds.has(r.kind)) continue;
      kinds.set(r.kind, { group, version, kind: r.kind, plural: r.name, namespaced: r.namespaced, subresources: subresources.get(r.name) ?? [] });
    }
    return { fetchedAt: Date.now(), kinds };
  }
}

/**
 * Fails at once, naming the kind, when the server does not serve one of `kinds` (typically: its
 * CRD is not installed), instead of waiting for a cache that cannot sync; `hint` says how to
 * install it. Discovery is asked, not the kind's descriptor. (`op.run()` itself waits for a
 * CRD that appears later, not ready meanwhile; `kubeloop run` and `runOperator` check first.)
 */
export async function checkServed(client: { mapper: RestMapper; config: { server: string } }, kinds: readonly ResourceKind[], hint = "install its CustomResourceDefinition first"): Promise<void> {
  const seen = new Set<string>();
  for (const kind of kinds) {
    const id = `${kind.apiVersion}/${kind.kind}`;
    if (seen.has(id)) continue;
    seen.add(id);
    try {
      await client.mapper.mapping({ apiVersion: kind.apiVersion, kind: kind.kind });
    } catch (error) {
      if (error instanceof NotFoundError || (error instanceof ApiError && /not served|no kind/.test(error.message))) throw new Error(`${describeKind(kind)} is not served by ${client.config.server}: ${hint}`, { cause: error });
      throw error;
    }
  }
}
