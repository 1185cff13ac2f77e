// What a builder collects and a Controller runs: options, sources, predicates, the reconciler
// and its error policy. Kept apart so the builder and the loop depend on it, not on each other.
import { checkNumber } from "../core/check.js";
import type { KubeObject, ResourceKind } from "../core/objects.js";
import type { Clock } from "../core/clock.js";
import type { InformerFactory, InformerScope } from "../runtime/informer.js";
import type { WorkQueueOptions } from "../runtime/queue.js";
import type { StoreReader } from "../runtime/store.js";
import type { Logger } from "pino";
import type { EventRecorder } from "./events.js";
import type { WrittenVersions } from "./read-your-writes.js";
import type { Predicate } from "./predicates.js";
import type { ControllerObserver, ErrorPolicy, ObjectRef, Reconciler } from "./reconcile.js";

/** Options of a controller. Out-of-range numbers throw a RangeError naming the option (`checkControllerOptions`). */
export interface ControllerOptions {
  /** Name in logs and metrics. Default: the kind in lower case. */
  name?: string;
  /** Parallel reconciles (of different objects). Default 1; an integer ≥ 1. */
  concurrency?: number;
  /**
   * Abort the signal of a reconcile that takes longer; a reconcile that then fails is retried
   * with backoff. The key stays with the running call until it returns. Default: none.
   */
  reconcileTimeoutMs?: number;
  /**
   * Queue every object of the controller's own kind again at least this often, jittered by up to
   * +10 % (controller-runtime's SyncPeriod): a safety net for drift the watch cannot see, such as
   * state outside the cluster. Default: none.
   */
  resyncMs?: number;
  /**
   * Queue every object of the own kind again after the watch relisted (a 410, a restart of the
   * watch): a relist yields only differences, and state may have been missed meanwhile. The
   * handler level sets it to run resume handlers then. Default false.
   */
  requeueAfterRelist?: boolean;
  /** Report a reconcile still running this long after its signal aborted. Default 10 000 ms. */
  stuckAfterMs?: number;
  /** On stop, how long reconciles get to return once their signal aborted before they are abandoned. Default 2 000 ms. */
  unwindMs?: number;
  /** Time for timeouts and shutdown deadlines. Default: the system clock. */
  clock?: Clock;
  /** Where the informers come from; share one factory between controllers to share watches. */
  informers?: InformerFactory;
  /** Scope of the controller's own kind. */
  scope?: InformerScope;
  queue?: WorkQueueOptions;
  /** Reports failed reconciles (both retried and terminal). */
  onError?: (ref: ObjectRef, error: unknown, willRetry: boolean) => void;
  /** Default: a pino logger at level "info" on stdout. */
  logger?: Logger;
  /** Field manager of server-side applies (`ctx.apply`). Default "kubeloop". */
  fieldManager?: string;
  /** Default: a recorder reporting as `kubeloop/<name>`. */
  recorder?: EventRecorder;
  observer?: ControllerObserver;
  /** Versions this process wrote, for read-your-own-writes (the Manager shares one). */
  writes?: WrittenVersions;
  /** How long a reconcile waits for the cache to show the operator's own last write. Default 5 000 ms. */
  settleMs?: number;
  /**
   * In an operator with `sharding`: `false` keeps this controller whole, on the leader alone
   * (it sees every object of its kind: aggregates, singletons). Default: sharded like the rest.
   */
  sharded?: false;
}

/**
 * Refuses options that cannot work (a RangeError naming the option): `concurrency` an integer
 * ≥ 1 (0 would start no worker: nothing reconciled), durations finite and > 0 (`unwindMs` ≥ 0).
 */
export function checkControllerOptions(o: ControllerOptions): void {
  checkNumber("concurrency", o.concurrency, "integer ≥ 1");
  for (const name of ["reconcileTimeoutMs", "resyncMs", "stuckAfterMs", "settleMs"] as const) checkNumber(name, o[name], "> 0");
  checkNumber("unwindMs", o.unwindMs, "≥ 0");
}

export interface Source {
  kind: ResourceKind;
  /** `ownNamespaced`: whether the controller's own kind is namespaced (from the REST mapper). */
  map: (o: KubeObject, own: StoreReader<KubeObject>, ownNamespaced: boolean) => ObjectRef[];
  scope: InformerScope;
  /** Maps through the controller's own scope (owns()): the controller needs its kind's mapping first. */
  needsScope?: boolean;
}

/** What {@link Controller.stop} reports. */
export interface StopResult {
  /** Reconciles that ignored their aborted signal past the deadline and still run in the background. */
  abandoned: number;
}

/** Everything a builder collected: enough to make a Controller once a client exists. */
export interface ControllerSpec<T extends KubeObject> {
  kind: ResourceKind<T>;
  sources: Source[];
  predicates: Predicate[];
  reconciler: Reconciler<T>;
  options: ControllerOptions;
  /** What a failure means; default: a TerminalError waits for a change, anything else backs off. */
  errorPolicy?: ErrorPolicy;
  /** Predicates applied to the events of every watch (own kind, owned and watched kinds). */
  eventFilters?: Predicate[];
}

