// `op.on`: the kopf-style registration facade of an Operator, as a named, documented type.
// Each method checks and records what it is given (in the handler registry, the webhook
// registry or the operator's activity lists); nothing runs before `op.run()`.
import type { Logger } from "pino";
import type { Client } from "../client/client.js";
import type { KubeObject, ResourceKind } from "../core/objects.js";
import type { Filters } from "../handlers/filters.js";
import type { ActivityContext, FieldHandlerOptions, HandlerFn, HandlerOptions, ProbeContext, RawEvent, StartupOptions } from "../handlers/registry.js";
import type { MutateFn, ValidateFn } from "../webhook/admission.js";
import type { AdmissionOptions, MutateOptions } from "./webhooks.js";

/**
 * kopf-style handlers. Each runs once to success per change, even across restarts (progress
 * is kept in the object's annotations); errors are retried (TemporaryError after its delay,
 * others with backoff), PermanentError is recorded and not retried. Registering after
 * `op.run()` throws; an option that cannot work throws a TypeError or RangeError naming it.
 */
export interface OperatorOn {
  /** When an object is created (or first seen without a record of being handled). */
  create<T extends KubeObject>(kind: ResourceKind<T>, fn: HandlerFn<T>, options?: HandlerOptions<T>): void;
  /** When an object's essence (spec, data, labels, annotations) changed since it was last handled. */
  update<T extends KubeObject>(kind: ResourceKind<T>, fn: HandlerFn<T>, options?: HandlerOptions<T>): void;
  /** When an object is being deleted; a finalizer keeps it until every delete handler is done. */
  delete<T extends KubeObject>(kind: ResourceKind<T>, fn: HandlerFn<T>, options?: HandlerOptions<T>): void;
  /** For every object that exists when the operator starts (and was handled before). */
  resume<T extends KubeObject>(kind: ResourceKind<T>, fn: HandlerFn<T>, options?: HandlerOptions<T>): void;
  /** When the value at `path` (e.g. "spec.replicas") is set on create or changes on update; `old`/`new` are the values. */
  field<T extends KubeObject>(kind: ResourceKind<T>, path: string, fn: HandlerFn<T>, options?: FieldHandlerOptions<T>): void;
  /**
   * Raw events, never retried (errors are logged): `exists` for every object present when this
   * replica starts leading (as kopf's initial listing), then every watched `apply` and `delete`.
   */
  event<T extends KubeObject>(kind: ResourceKind<T>, fn: (event: RawEvent<T>) => Promise<void> | void, options?: Filters<T>): void;
  /**
   * Before controllers and handlers act, in order. Retried as handlers are: a `TemporaryError`
   * after its delay, other errors with backoff, until `attempts` are used up; a `TerminalError`
   * (`PermanentError`) or the last attempt's error stops the operator from starting. A stop
   * signal ends the retries.
   */
  startup(fn: (ctx: ActivityContext) => Promise<void> | void, options?: StartupOptions): void;
  /** After a graceful stop; a failure is logged. */
  cleanup(fn: (ctx: ActivityContext) => Promise<void> | void): void;
  /**
   * Supplies the client (custom credentials) instead of `Client.load()`. `kubeloop run` and
   * `runOperator` use it instead of their own client when one is registered.
   */
  login(fn: (ctx: { logger: Logger }) => Promise<Client> | Client): void;
  /** A liveness probe whose result /healthz reports under `id` (a throw makes it 500); it gets the client, a logger and the indexes. */
  probe(id: string, fn: (ctx: ProbeContext) => Promise<unknown> | unknown): void;
  /**
   * A validating admission webhook (kopf's `on.validate`), called by the API server for objects of
   * `kind` (CREATE and UPDATE by default): throw `AdmissionError(message, { code })` to deny,
   * return (or `ctx.warn`) warnings kubectl shows. An unexpected error denies with its message.
   * Served over HTTPS and registered by the operator (see `webhooks`). Runs on every replica.
   */
  validate<T extends KubeObject>(kind: ResourceKind<T>, fn: ValidateFn<T>, options?: AdmissionOptions<T>): void;
  /**
   * A mutating admission webhook (kopf's `on.mutate`): change `ctx.object` in place; the answer
   * is the JSON patch from the object as sent (none when unchanged). Denies and warns as
   * `validate` does.
   */
  mutate<T extends KubeObject>(kind: ResourceKind<T>, fn: MutateFn<T>, options?: MutateOptions<T>): void;
}
