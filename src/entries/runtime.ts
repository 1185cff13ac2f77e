// kubeloop/runtime: the parts for composing one's own loops (as kube-runtime and
// controller-runtime's packages offer them): the watcher, the reflector and stores, shared
// informers, the work queue, standalone controllers, the Manager, leader election, Events,
// metrics, probes and logging; loading a cluster's config, the client's transport and mapper;
// the parts of the manifests `kubeloop generate` writes. Re-exports only; operator authors need
// `kubeloop` alone. api/kubeloop-runtime.api.md is this surface as reviewed (`npm run api`).
/**
 * The parts for composing one's own loops: the watcher, the reflector and stores, shared informers, the work queue, standalone controllers, the Manager, leader election, Events, metrics, probes and logging; loading a cluster's config, the client's transport and mapper; the parts of the manifests `kubeloop generate` writes.
 * @module kubeloop/runtime
 */
export { watch, watchBatches, stripManagedFields, hasObject, transition, WatchHealth, type Watch, type WatcherEvent, type WatcherOptions, type WatchState, type AttemptOutcome, type Transition } from "../runtime/watcher.js";
export { reflect, applyToStore } from "../runtime/reflector.js";
export { Share, type ShareOptions } from "../runtime/share.js";
export { Store, createStore, byLabel, BY_NAMESPACE, BY_OWNER, type StoreReader, type StoreWriter, type IndexFunction } from "../runtime/store.js";
export {
  Informer,
  InformerFactory,
  mergeInitialLists,
  type InformerScope,
  type InformerOptions,
  type InformerFactoryOptions,
  type EventSource,
  type CacheView,
  type InformerHandle,
} from "../runtime/informer.js";
export { WorkQueue, LOW_PRIORITY, type WorkQueueOptions, type WorkQueueHooks, type QueueRateLimit } from "../runtime/queue.js";
export { Backoff, type BackoffOptions } from "../core/retry.js";
export { controller, ControllerBuilder } from "../controller/builder.js";
export { Controller, defaultErrorPolicy } from "../controller/controller.js";
export type { ControllerOptions, StopResult, Source } from "../controller/spec.js";
export { Manager, CacheSyncTimeoutError, type ManagerOptions, type ManagerLeaderElection, type ManagerStatus, type Runnable, type FailingWatch, type CacheHealth } from "../controller/manager.js";
export { LeaderElector, LeaderElectionLostError, type LeaderElectionOptions, type LeadershipEnd } from "../controller/leader-election.js";
export { EventRecorder, type EventInput, type EventRecorderOptions } from "../controller/events.js";
export { CacheReader, type CacheListOptions } from "../controller/cache.js";
export { Metrics, type MetricsOptions, type ShardObserver } from "../observe/metrics.js";
export { serveProbes, type ProbeServer, type ProbeServerOptions } from "../observe/server.js";
export { createLogger, type LoggingOptions, type Logger } from "../observe/logging.js";
export { TokenBucket, type RateLimit } from "../client/rate-limit.js";
export { systemClock, MAX_TIMER_MS, type Clock } from "../core/clock.js";
export type { ControllerObserver, ReconcileResult, TraceRef } from "../controller/reconcile.js";
export type { ControllerSpec } from "../controller/spec.js";
export type { ManagerObserver } from "../controller/manager.js";
export type { WrittenVersions } from "../controller/read-your-writes.js";
export type { InformerListener, InformerHealth } from "../runtime/informer.js";
export type { WebhookObserver } from "../webhook/server.js";

// the client's parts
export { loadConfig, loadKubeconfig, inClusterConfig } from "../client/config.js";
export type { Transport, HttpRequest, HttpMethod } from "../client/transport.js";
export type { RestMapper, ResourceMapping } from "../client/discovery.js";
export type { ResourceContext, WriteListener } from "../client/resource.js";

// the parts of the manifests (kubeloop's `operatorManifests()` puts them together)
export { certManagerWebhookManifests, withConversionWebhook, webhookNames, WEBHOOK_CERT_DIR, type CertManagerOptions } from "../manifests/webhooks.js";
export { rbacManifests, type RbacOptions, type RbacObject } from "../manifests/rbac.js";
export { deployManifests, helmChart, kustomization, type DeployOptions } from "../manifests/deploy.js";
export { typesFromCrd } from "../manifests/types.js";
export { structural } from "../manifests/resource.js";
export { diff, getPath } from "../handlers/diff.js";
export { shardSelector, type ShardKey } from "../core/shards.js";
