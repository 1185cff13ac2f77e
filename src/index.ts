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

// controllers (controller-runtime's level)
export { Action, ReconcileTimeoutError, type ObjectRef, type ReconcileContext, type Reconciler, type ReconcileResult, type ControllerObserver, type ErrorPolicy, type ErrorContext } from "./controller/reconcile.js";
export { TerminalError } from "./core/errors.js";
export { predicates, and, or, not, type Predicate } from "./controller/predicates.js";
export { controller, ControllerBuilder } from "./controller/builder.js";
export { Controller, defaultErrorPolicy } from "./controller/controller.js";
export type { ControllerOptions, ControllerSpec, StopResult } from "./controller/spec.js";
export {
  Manager,
  CacheSyncTimeoutError,
  type ManagerOptions,
  type ManagerLeaderElection,
  type ManagerObserver,
  type ManagerStatus,
  type Runnable,
} from "./controller/manager.js";
export { LeaderElector, LeaderElectionLostError, type LeaderElectionOptions, type LeadershipEnd } from "./controller/leader-election.js";
export { EventRecorder, type EventInput, type EventRecorderOptions } from "./controller/events.js";
export { addFinalizer, removeFinalizer, hasFinalizer } from "./controller/finalizer.js";
export { setControllerReference, controllerReference, controllerOf, AlreadyOwnedError, type OwnerReference } from "./controller/ownership.js";
export { setCondition, getCondition, isConditionTrue, type Condition, type WithConditions } from "./controller/conditions.js";
export { CacheReader, type CacheListOptions } from "./controller/cache.js";

// runtime (watchers, caches, queues) for those who compose their own loops
export { watch, type WatcherEvent, type WatcherOptions } from "./runtime/watcher.js";
export { reflect } from "./runtime/reflector.js";
export { Store } from "./runtime/store.js";
export { Informer, InformerFactory, type InformerScope, type InformerOptions, type EventSource } from "./runtime/informer.js";
export { WorkQueue, type WorkQueueOptions, type WorkQueueHooks } from "./runtime/queue.js";

// operator and observability
export { Operator, type OperatorOptions, type RunOptions, type RunningOperator } from "./operator/operator.js";
export { Metrics, type MetricsOptions } from "./observe/metrics.js";
export { serveProbes, type ProbeServer, type ProbeServerOptions } from "./observe/server.js";
export { createLogger, type LoggingOptions, type Logger } from "./observe/logging.js";

// custom resources from TypeBox schemas
export { Type, type Static, type TSchema } from "@sinclair/typebox";
export { defineResource, structural, SchemaError, ConditionSchema, ConditionsSchema, type ResourceDefinition, type DefinedResource, type CustomObject, type PrinterColumn } from "./manifests/resource.js";

// handlers (kopf's level)
export { TemporaryError, PermanentError, HandlerTimeoutError, HandlerRetriesError } from "./handlers/errors.js";
export { adopt, type AdoptOptions } from "./handlers/adopt.js";
export { PRESENT, ABSENT, type Filters, type MetaFilter } from "./handlers/filters.js";
export { diff, getPath, type DiffOp } from "./handlers/diff.js";
export type {
  Cause,
  HandlerContext,
  HandlerFn,
  HandlerLogger,
  HandlerOptions,
  FieldHandlerOptions,
  TimerOptions,
  DaemonOptions,
  Indexes,
  RawEvent,
} from "./handlers/registry.js";
export type { EventLevel } from "./handlers/processing.js";
