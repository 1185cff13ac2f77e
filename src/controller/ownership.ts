// Owner references: which object controls which. The garbage collector deletes an object
// whose owners are all gone; `.owns(Child)` maps a changed child to its controller owner.
import type { KubeObject } from "../core/objects.js";

/** An owner reference as stored in `metadata.ownerReferences`. */
export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/** The object already has a different controller owner. */
export class AlreadyOwnedError extends Error {
  override name = "AlreadyOwnedError";
  readonly reason = "AlreadyOwned";
}

/** A controller reference to `owner` (needs apiVersion, kind, name and uid: an object read from the API). */
export function controllerReference(owner: KubeObject): OwnerReference {
  const { apiVersion, kind } = owner;
  const name = owner.metadata?.name;
  const uid = owner.metadata?.uid;
  if (!apiVersion || !kind || !name || !uid) {
    throw new TypeError("an owner needs apiVersion, kind, metadata.name and metadata.uid (use an object read from the API server)");
  }
  return { apiVersion, kind, name, uid, controller: true, blockOwnerDeletion: true };
}

/**
 * Makes `owner` the controller of `object` (in place; returns `object`). Idempotent.
 *
 * Fails with `AlreadyOwnedError` if another object is its controller, and with a TypeError if
 * the reference could never work: a namespaced owner in another namespace, or a namespaced
 * owner of a cluster-scoped object (`ownerIsNamespaced` says which the owner is, default: it
 * has a namespace).
 */
export function setControllerReference<T extends KubeObject>(owner: KubeObject, object: T): T {
  const ref = controllerReference(owner);
  const ownerNs = owner.metadata?.namespace;
  const objectNs = object.metadata?.namespace;
  if (ownerNs && objectNs !== ownerNs) {
    throw new TypeError(
      `${owner.kind} ${ownerNs}/${ref.name} cannot own ${object.kind ?? "an object"} ${objectNs ? `in namespace ${objectNs}` : "that is cluster-scoped"}: owners in a namespace own only objects in that namespace`,
    );
  }
  object.metadata ??= {};
  const refs = (object.metadata.ownerReferences ??= []);
  const current = refs.find((r) => r.controller);
  if (current && current.uid !== ref.uid) {
    throw new AlreadyOwnedError(`${object.kind ?? "object"} ${object.metadata.name} is already controlled by ${current.kind} ${current.name}`);
  }
  const same = refs.findIndex((r) => r.uid === ref.uid);
  if (same >= 0) refs[same] = ref;
  else refs.push(ref);
  return object;
}

/** The controller owner's reference of `object`, if any. */
export function controllerOf(object: KubeObject): OwnerReference | undefined {
  return object.metadata?.ownerReferences?.find((r) => r.controller) as OwnerReference | undefined;
}
