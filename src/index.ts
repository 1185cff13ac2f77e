// kubeloop: the public facade. Re-exports only; see shared/DESIGN.md for the layers.
export const VERSION = "0.1.0";

// core
export {
  kindOf,
  gvkOf,
  parseApiVersion,
  objectKey,
  type KubeObject,
  type KubeList,
  type ResourceKind,
  type ObjectOf,
  type GroupVersionKind,
  type ObjectMeta,
  type ListMeta,
  type Status,
} from "./core/objects.js";
export * from "./core/builtins.js";
export {
  ApiError,
  NotFoundError,
  AlreadyExistsError,
  ConflictError,
  GoneError,
  InvalidError,
  ForbiddenError,
  UnauthorizedError,
  TooManyRequestsError,
  ServerTimeoutError,
  NetworkError,
  RequestTimeoutError,
  type ApiErrorReason,
  type StatusCause,
} from "./core/errors.js";
export { systemClock, ManualClock, type Clock } from "./core/clock.js";

// client
export { Client, type ClientOptions } from "./client/client.js";
export {
  loadConfig,
  loadKubeconfig,
  inClusterConfig,
  ConfigError,
  type ClusterConfig,
  type AuthConfig,
  type ExecConfig,
  type LoadConfigOptions,
} from "./client/config.js";
export { CredentialError } from "./client/credentials.js";
export {
  ResourceClient,
  type CallOptions,
  type WriteOptions,
  type ListOptions,
  type WatchOptions,
  type PatchType,
  type PatchOptions,
  type ApplyOptions,
  type DeleteOptions,
  type WatchEvent,
  type JsonPatchOperation,
} from "./client/resource.js";
export type { ResourceMapping } from "./client/discovery.js";
export type { TransportOptions, HttpRequest, HttpMethod } from "./client/transport.js";
export { TokenBucket, type RateLimit } from "./client/rate-limit.js";
