// kubeloop/runtime: the parts for composing one's own loops (as kube-runtime and
// controller-runtime's packages offer them): the watcher, the reflector and stores, shared
// informers, the work queue, standalone controllers, the Manager, leader election, Events,
// metrics, probes and logging. Re-exports only. Operator authors need `kubeloop` alone.
export { watch, watchBatches, stripManagedFields, hasObject, transition, type Watch, type WatcherEvent, type WatcherOptions, type WatchState, type AttemptOutcome, type Transition } from "../runtime/watcher.js";
export { reflect, applyToStore } from "../runtime/reflector.js";
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
export { WorkQueue, type WorkQueueOptions, type WorkQueueHooks, type QueueRateLimit } from "../runtime/queue.js";
export { Backoff, type BackoffOptions } from "../core/retry.js";
export { controller, ControllerBuilder } from "../controller/builder.js";
export { Controller, defaultErrorPolicy } from "../controller/controller.js";
export type { ControllerOptions, StopResult } from "../controller/spec.js";
export { Manager, CacheSyncTimeoutError, type ManagerOptions, type ManagerLeaderElection, type ManagerStatus, type Runnable } from "../controller/manager.js";
export { LeaderElector, LeaderElectionLostError, type LeaderElectionOptions, type LeadershipEnd } from "../controller/leader-election.js";
export { EventRecorder, type EventInput, type EventRecorderOptions } from "../controller/events.js";
export { CacheReader, type CacheListOptions } from "../controller/cache.js";
export { Metrics, type MetricsOptions } from "../observe/metrics.js";
export { serveProbes, type ProbeServer, type ProbeServerOptions } from "../observe/server.js";
export { createLogger, type LoggingOptions, type Logger } from "../observe/logging.js";
export { TokenBucket, type RateLimit } from "../client/rate-limit.js";
export { systemClock, MAX_TIMER_MS, type Clock } from "../core/clock.js";
