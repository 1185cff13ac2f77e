// Finalizers: the only reliable way to run cleanup before an object goes away. Delete events
// can be missed (the operator was down); a finalizer makes the API server keep the object,
// with `deletionTimestamp` set, until the operator removes it.
//
// Writes are JSON patches guarded by `test` operations, so a concurrent writer of
// `metadata.finalizers` (another controller adding its own) is never overwritten: if the list
// changed since it was read, the patch fails, the object is read again and the patch retried.
import type { Client } from "../client/client.js";
import type { JsonPatchOperation } from "../client/resource.js";
import { ConflictError, InvalidError, NotFoundError, ObjectReplacedError } from "../core/errors.js";
import type { KubeObject, ResourceKind } from "../core/objects.js";

const ATTEMPTS = 5;

/** Whether `object` carries finalizer `name`. */
export function hasFinalizer(object: KubeObject, name: string): boolean {
  return object.metadata?.finalizers?.includes(name) ?? false;
}

/** Adds finalizer `name` to the object (no-op if present). Returns the object as written (or as read). */
export async function addFinalizer<T extends KubeObject>(client: Client, kind: ResourceKind<T>, object: T, name: string): Promise<T> {
  return patchFinalizers(client, kind, object, (current) => {
    const list = current.metadata?.finalizers;
    if (list?.includes(name)) return undefined;
    if (!list) {
      // There is no `test` for "absent": guard with the resourceVersion instead.
      return [
        { op: "test", path: "/metadata/resourceVersion", value: current.metadata?.resourceVersion },
        { op: "add", path: "/metadata/finalizers", value: [name] },
      ];
    }
    return [
      { op: "test", path: "/metadata/finalizers", value: list },
      { op: "add", path: "/metadata/finalizers/-", value: name },
    ];
  });
}

/** Removes finalizer `name` (no-op if absent or the object is gone). Returns the object as written, or undefined if it is gone. */
export async function removeFinalizer<T extends KubeObject>(client: Client, kind: ResourceKind<T>, object: T, name: string): Promise<T | undefined> {
  try {
    return await patchFinalizers(client, kind, object, (current) => {
      const i = current.metadata?.finalizers?.indexOf(name) ?? -1;
      if (i < 0) return undefined;
      return [
        { op: "test", path: `/metadata/finalizers/${i}`, value: name },
        { op: "remove", path: `/metadata/finalizers/${i}` },
      ];
    });
  } catch (error) {
    if (error instanceof NotFoundError) return undefined; // removing the last finalizer deleted it meanwhile
    throw error;
  }
}

/**
 * Runs `write`, a write to `object` bound to its uid; when it fails, and the name now holds
 * another object (or none), throws an {@link ObjectReplacedError} instead of the write's error.
 */
export async function boundToUid<R>(handle: { get(name: string): Promise<KubeObject> }, object: KubeObject, write: () => Promise<R>): Promise<R> {
  try {
    return await write();
  } catch (error) {
    const uid = object.metadata?.uid;
    if (!uid || !(error instanceof InvalidError || error instanceof ConflictError || error instanceof NotFoundError) || error instanceof ObjectReplacedError) throw error;
    const now = await handle.get(object.metadata?.name ?? "").catch((e: unknown) => (e instanceof NotFoundError ? undefined : Promise.reject(e)));
    const actual = now?.metadata?.uid;
    if (actual === uid) throw error;
    throw new ObjectReplacedError(uid, actual, `${object.metadata?.namespace ? `${object.metadata.namespace}/` : ""}${object.metadata?.name} (uid ${uid}) is gone${actual ? `: the name now holds another object (uid ${actual})` : ""}; nothing was written to it`, { cause: error });
  }
}

async function patchFinalizers<T extends KubeObject>(
  client: Client,
  kind: ResourceKind<T>,
  object: T,
  ops: (current: T) => JsonPatchOperation[] | undefined,
): Promise<T> {
  const handle = client.resource(kind);
  const name = object.metadata?.name ?? "";
  const ns = object.metadata?.namespace;
  const scoped = ns ? handle.namespace(ns) : handle;
  let current = object;
  const uid = object.metadata?.uid;
  for (let attempt = 1; ; attempt++) {
    if (uid && current.metadata?.uid !== uid) throw new ObjectReplacedError(uid, current.metadata?.uid, `${name} (uid ${uid}) was deleted and created again: its finalizers are not ours to change`);
    const patch = ops(current);
    if (!patch) return current;
    try {
      // Bound to the uid the patch was computed for (a re-created object has another).
      return await scoped.patch(name, uid ? [{ op: "test", path: "/metadata/uid", value: uid }, ...patch] : patch, { type: "json" });
    } catch (error) {
      // A failed `test` is 422 Invalid; a stale resourceVersion may be a 409 Conflict.
      if (!(error instanceof InvalidError || error instanceof ConflictError) || attempt >= ATTEMPTS) throw error;
      current = await scoped.get(name);
    }
  }
}
