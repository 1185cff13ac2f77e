// kubeloop: what operator authors use. Re-exports only; see docs/architecture.md for the layers
// and the budget of this surface. The parts for composing one's own loops (the watcher, stores,
// the Manager, config loading, manifest parts) are in `kubeloop/runtime`; test helpers in
// `kubeloop/testing`. api/kubeloop.api.md is this surface as reviewed (`npm run api`).
/**
 * What operator authors use: the `Operator` and its handlers, controllers, the client, kinds and resources, webhooks and errors. The parts for composing one's own loops are in `kubeloop/runtime`; test helpers in `kubeloop/testing`.
 * @module kubeloop
 */
export { VERSION } from "../core/version.js";

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
} from "../core/objects.js";
export * from "../core/builtins.js";
export {
  ApiError,
  NotFoundError,
  ObjectReplacedError,
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
} from "../core/errors.js";
export type { Clock } from "../core/clock.js";

// client
export { Client, type ClientOptions } from "../client/client.js";
export { ConfigError, type ClusterConfig, type AuthConfig, type ExecConfig, type LoadConfigOptions } from "../client/config.js";
export { CredentialError } from "../client/credentials.js";
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
} from "../client/resource.js";
export type { ResourceMapping } from "../client/discovery.js";
export type { TransportOptions } from "../client/transport.js";
export type { RequestInfo } from "../core/errors.js";
export type { RateLimit } from "../client/rate-limit.js";

// controllers (controller-runtime's level)
export { Action, ReconcileTimeoutError, type ObjectRef, type ReconcileContext, type Reconciler, type ErrorPolicy, type ErrorContext } from "../controller/reconcile.js";
export { TerminalError } from "../core/errors.js";
export { predicates, and, or, not, type Predicate } from "../controller/predicates.js";
export type { ControllerBuilder } from "../controller/builder.js";
export type { ControllerOptions } from "../controller/spec.js";
export { CacheSyncTimeoutError, type ManagerLeaderElection, type ManagerStatus, type FailingWatch } from "../controller/manager.js";
export { LeaderElectionLostError } from "../controller/leader-election.js";
export type { EventInput } from "../controller/events.js";
export { addFinalizer, removeFinalizer, hasFinalizer } from "../controller/finalizer.js";
export { setControllerReference, controllerReference, controllerOf, AlreadyOwnedError, type OwnerReference } from "../controller/ownership.js";
export { setCondition, getCondition, isConditionTrue, type Condition, type WithConditions } from "../controller/conditions.js";
export type { CacheReader, CacheListOptions } from "../controller/cache.js";
export type { StoreReader } from "../runtime/store.js";
export type { WatcherEvent } from "../runtime/watcher.js";

// the operator
export { Operator, type OperatorOptions, type RunOptions, type RunningOperator, type ProbeOptions, type Sharding } from "../operator/operator.js";
export type { OperatorOn } from "../operator/on.js";
export type { Logger } from "../observe/logging.js";

// manifests from code (what `kubeloop generate` writes, as objects)
// (the parts each is made of: `kubeloop/runtime`)
export { operatorManifests, type ManifestPart, type ManifestSettings } from "../operator/manifests.js";
export type { AccessNeed } from "../manifests/rbac.js";
export type { AdmissionHook } from "../webhook/registration.js";

// admission webhooks
export { AdmissionError, type AdmissionRequest, type ValidateContext, type MutateContext, type ValidateFn, type MutateFn, type Operation, type PeerCertificate } from "../webhook/admission.js";
export type { AdmissionOptions, MutateOptions, WebhookOptions } from "../operator/webhooks.js";
export type { ConvertFn } from "../webhook/conversion.js";

// custom resources from TypeBox schemas
export { Type, type Static, type TSchema } from "@sinclair/typebox";
export { defineResource, SchemaError, ConditionSchema, ConditionsSchema, IntOrString, cel, type ResourceDefinition, type DefinedResource, type OtherVersion, type CustomObject, type PrinterColumn } from "../manifests/resource.js";

// handlers (kopf's level)
export { TemporaryError, PermanentError, HandlerTimeoutError, HandlerRetriesError } from "../handlers/errors.js";
export { adopt, type AdoptOptions } from "../handlers/adopt.js";
export { PRESENT, ABSENT, type Filters, type MetaFilter } from "../handlers/filters.js";
export type { DiffOp } from "../handlers/diff.js";
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
  LogMethod,
  SubhandlerOptions,
  HandlerEventInput,
  ActivityContext,
  ProbeContext,
  StartupOptions,
} from "../handlers/registry.js";
export type { EventLevel } from "../handlers/processing.js";
