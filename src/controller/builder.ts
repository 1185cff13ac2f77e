// The controller builder: `controller(client, Kind).owns(Child).watches(Other, map)
// .withPredicates(...).errorPolicy(fn).concurrency(n).reconcile(fn)`. Each method says what it
// adds to the spec; `reconcile(fn)` hands the spec to whoever made the builder (a Manager, an
// Operator, or `controller()` below, which makes a standalone Controller).
import { checkNumber } from "../core/check.js";
import type { Client } from "../client/client.js";
import type { KubeObject, ResourceKind } from "../core/objects.js";
import { parseApiVersion } from "../core/objects.js";
import type { InformerScope } from "../runtime/informer.js";
import type { StoreReader } from "../runtime/store.js";
import { Controller } from "./controller.js";
import type { Predicate } from "./predicates.js";
import type { ErrorPolicy, ObjectRef, Reconciler } from "./reconcile.js";
import { checkControllerOptions, type ControllerOptions, type ControllerSpec, type Source } from "./spec.js";

/**
 * Builds a controller; each method says what it adds. `reconcile(fn)` finishes it and returns
 * what the builder's owner makes of it (a {@link Controller} for `controller(client, Kind)`).
 */
export class ControllerBuilder<T extends KubeObject, R = Controller<T>> {
  private readonly sources: Source[] = [];
  private readonly preds: Predicate[] = [];
  private options: ControllerOptions = {};
  private policy: ErrorPolicy | undefined;
  private readonly filters: Predicate[] = [];

  constructor(
    private readonly kind: ResourceKind<T>,
    private readonly finish: (spec: ControllerSpec<T>) => R,
    defaults: ControllerOptions = {},
  ) {
    this.options = { ...defaults };
  }

  /** Also reconcile the controller owner of every `child` that changes (ownerReferences with controller: true). */
  owns(child: ResourceKind, scope: InformerScope = {}): this {
    const group = parseApiVersion(this.kind.apiVersion).group;
    this.sources.push({
      kind: child,
      scope,
      needsScope: true,
      // A namespaced owner lives in its child's namespace; a cluster-scoped one has none.
      map: (o, _own, ownNamespaced) =>
        (o.metadata?.ownerReferences ?? [])
          .filter((r) => r.controller && r.kind === this.kind.kind && parseApiVersion(r.apiVersion).group === group)
          .map((r) => ({ name: r.name, ...(ownNamespaced && o.metadata?.namespace ? { namespace: o.metadata.namespace } : {}) })),
    });
    return this;
  }

  /**
   * Also reconcile whatever `map` returns for every object of `kind` that changes. `map` also
   * gets the cache of the controller's own kind, to find the objects that refer to this one.
   */
  watches<K extends KubeObject>(kind: ResourceKind<K>, map: (object: K, own: StoreReader<T>) => ObjectRef[], scope: InformerScope = {}): this {
    // The source's informer holds only Ks, so the mapper is only ever called with Ks.
    this.sources.push({ kind: kind as ResourceKind, map: map as unknown as Source["map"], scope });
    return this;
  }

  /** Only events every predicate accepts trigger a reconcile (of the controller's own kind). */
  withPredicates(...predicates: Predicate[]): this {
    this.preds.push(...predicates);
    return this;
  }

  /**
   * Only events every filter accepts trigger a reconcile, on every watch of this controller: its
   * own kind, `owns()` children and `watches()` kinds alike (controller-runtime's WithEventFilter).
   * `withPredicates` applies to the own kind only.
   */
  withEventFilter(...filters: Predicate[]): this {
    this.filters.push(...filters);
    return this;
  }

  /** What a failed reconcile means (kube-rs's `error_policy`); see {@link ErrorPolicy}. */
  errorPolicy(policy: ErrorPolicy): this {
    this.policy = policy;
    return this;
  }

  /** Reconciles up to `n` different objects at once. */
  concurrency(n: number): this {
    checkNumber("concurrency", n, "integer ≥ 1", { required: true });
    this.options = { ...this.options, concurrency: n };
    return this;
  }

  /** Further options (name, timeout, scope, informer factory, logging, error reporting). */
  withOptions(options: ControllerOptions): this {
    checkControllerOptions(options);
    this.options = { ...this.options, ...options };
    return this;
  }

  /** Finishes the controller with its reconciler. */
  reconcile(fn: Reconciler<T>): R {
    return this.finish({
      kind: this.kind,
      sources: [...this.sources],
      predicates: [...this.preds],
      reconciler: fn,
      options: { ...this.options },
      ...(this.policy ? { errorPolicy: this.policy } : {}),
      ...(this.filters.length ? { eventFilters: [...this.filters] } : {}),
    });
  }
}

/** `controller(client, Kind)`: the builder, for a controller run on its own (a Manager offers `manager.controller(Kind)`). */
export function controller<T extends KubeObject>(client: Client, kind: ResourceKind<T>): ControllerBuilder<T> {
  return new ControllerBuilder(kind, (spec) => new Controller(client, spec));
}
