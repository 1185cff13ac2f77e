// The context a reconcile gets: the cached object and reads, the client, a logger naming the
// object, its signal, and the writes a controller commonly makes (Events, server-side apply of
// children and status, a finalizer). Made fresh for every reconcile.
import type { KubeObject, ResourceKind } from "../core/objects.js";
import type { EventRecorder } from "./events.js";
import { addFinalizer, hasFinalizer, removeFinalizer } from "./finalizer.js";
import { setControllerReference } from "./ownership.js";
import type { ReconcileContext } from "./reconcile.js";

/** What {@link reconcileContext} needs: the context's plain parts, and what its writes use. */
export type ContextParts<T extends KubeObject> = Pick<ReconcileContext<T>, "object" | "kind" | "store" | "cache" | "client" | "logger" | "signal" | "retries"> & {
  key: string;
  recorder: EventRecorder;
  /** Field manager of the server-side applies. */
  fieldManager: string;
};

/** A reconcile's context; its writes keep `ctx.object` at the latest state they returned. */
export function reconcileContext<T extends KubeObject>(p: ContextParts<T>): ReconcileContext<T> {
  const { key, kind, client, logger, signal, fieldManager } = p;
  const ctx: ReconcileContext<T> = {
    object: p.object,
    kind,
    store: p.store,
    cache: p.cache,
    client,
    logger,
    signal,
    retries: p.retries,
    event: (input) => {
      if (ctx.object) p.recorder.event(ctx.object, input);
    },
    apply: async <C extends KubeObject>(childKind: ResourceKind<C>, child: C) => {
      const owner = ctx.object;
      if (!owner) throw new TypeError(`ctx.apply: ${key} does not exist, so it cannot own children`);
      const body = setControllerReference(owner, { apiVersion: childKind.apiVersion, kind: childKind.kind, ...structuredClone(child) });
      return client.resource(childKind).apply(body, { fieldManager, force: true, signal });
    },
    applyStatus: async (status) => {
      const current = ctx.object;
      if (!current?.metadata?.name) throw new TypeError(`ctx.applyStatus: ${key} does not exist`);
      const { name, namespace } = current.metadata;
      // A partial object: apply needs only the identity and the fields this manager owns.
      const body = { metadata: { name, ...(namespace ? { namespace } : {}) }, status } as KubeObject as T;
      const written = await client.resource(kind).applyStatus(body, { fieldManager, force: true, signal });
      ctx.object = written;
      return written;
    },
    finalizer: async (name, cleanup) => {
      const current = ctx.object;
      if (!current) return true;
      if (current.metadata?.deletionTimestamp) {
        if (!hasFinalizer(current, name)) return true;
        await cleanup(current);
        logger.info({ finalizer: name }, "cleanup done: removing the finalizer");
        await removeFinalizer(client, kind, current, name);
        return true;
      }
      if (!hasFinalizer(current, name)) ctx.object = await addFinalizer(client, kind, current, name);
      return false;
    },
  };
  return ctx;
}
