// Client: one cluster, one identity. Holds the transport (one connection pool) and the REST
// mapper, and hands out resource handles. Create one per cluster and share it.
import type { KubeObject, ResourceKind } from "../core/objects.js";
import { loadConfigAsync, type ClusterConfig, type LoadConfigOptions } from "./config.js";
import { RestMapper } from "./discovery.js";
import { ResourceClient, type WriteListener } from "./resource.js";
import { Transport, type HttpRequest, type TransportOptions } from "./transport.js";

/** Options of {@link Client.load}: where the config comes from, and how to talk. */
export interface ClientOptions extends LoadConfigOptions, TransportOptions {}

/**
 * A Kubernetes API client.
 *
 * ```ts
 * const client = await Client.load();                     // KUBECONFIG, in-cluster, or ~/.kube/config
 * const cm = await client.resource(ConfigMap).namespace("default").get("settings");
 * ```
 *
 * Guarantees: one keep-alive connection pool per client; a client-side rate limit (default
 * 5 qps, burst 10, like client-go); idempotent calls retried on throttling and transient
 * failures, creates never repeated. Failures are typed `ApiError`s; bad configuration is a
 * `ConfigError` naming the file and field.
 */
export class Client {
  readonly config: ClusterConfig;
  readonly transport: Transport;
  readonly mapper: RestMapper;
  private readonly writes = new Set<WriteListener>();

  constructor(config: ClusterConfig, options: TransportOptions = {}) {
    this.config = config;
    this.transport = new Transport(config, options);
    this.mapper = new RestMapper(this.transport);
  }

  /** Loads config (explicit path, KUBECONFIG, in-cluster, ~/.kube/config) and makes a client. */
  static async load(options: ClientOptions = {}): Promise<Client> {
    return new Client(await loadConfigAsync(options), options);
  }

  /** The namespace of the kubeconfig context (or the Pod's), "default" if none. */
  get defaultNamespace(): string {
    return this.config.namespace;
  }

  /** Calls on one kind of resource; `.namespace(ns)` narrows it. */
  resource<T extends KubeObject>(kind: ResourceKind<T>): ResourceClient<T> {
    return new ResourceClient<T>({ transport: this.transport, mapper: this.mapper, writes: this.writes }, kind);
  }

  /**
   * Calls `listener` with every object a write through this client returned (creates, replaces,
   * patches, applies, deletes deferred by finalizers; not dry runs). Returns a function that
   * removes it. The Manager uses it so reconciles read their own writes.
   */
  onWrite(listener: WriteListener): () => void {
    this.writes.add(listener);
    return () => this.writes.delete(listener);
  }

  /** A raw call, for APIs without a resource handle (e.g. `/version`, `/healthz`). */
  request<T>(request: HttpRequest): Promise<T> {
    return this.transport.request<T>(request);
  }

  /**
   * Closes the connections. Calls in flight finish first, and that includes open watches: abort
   * their signals before closing, or close() waits until the server ends them (minutes).
   */
  close(): Promise<void> {
    return this.transport.close();
  }
}

/**
 * Lease calls of `client` (leader election, shard membership, dev pauses) outside its rate limit:
 * a renewal must not wait behind a backlog of the writes it guards (controller-runtime gives
 * leader election a client of its own for the same reason). Same connections and identity; the
 * Lease code's own periods bound how often it calls.
 */
export function leaseResource<T extends KubeObject>(client: Client, kind: ResourceKind<T>): ResourceClient<T> {
  return new ResourceClient<T>({ transport: client.transport, mapper: client.mapper, unlimited: true }, kind);
}
