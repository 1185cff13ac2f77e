// adopt(child, owner): makes a child object belong to the object a handler is working on, as
// kopf's `adopt` does, so that deleting the owner deletes the child (garbage collector) and the
// child is found next to its owner.
import type { KubeObject } from "../core/objects.js";
import { setControllerReference } from "../controller/ownership.js";

/** Options of {@link adopt}. */
export interface AdoptOptions {
  /** Copy the owner's labels onto the child (existing child labels win). Default true. */
  labels?: boolean;
}

/**
 * Adopts `child` (in place; returns it): a controller owner reference to `owner`; the owner's
 * namespace when the child has none (and the owner has one); `metadata.generateName` of
 * `<owner>-` when the child has no name; the owner's labels. Fails like `setControllerReference`
 * (another controller, or a namespace the owner cannot reach).
 */
export function adopt<C extends KubeObject>(child: C, owner: KubeObject, options: AdoptOptions = {}): C {
  child.metadata ??= {};
  const meta = child.metadata;
  const ownerMeta = owner.metadata ?? {};
  if (!meta.namespace && ownerMeta.namespace) meta.namespace = ownerMeta.namespace;
  if (!meta.name && !meta.generateName && ownerMeta.name) meta.generateName = `${ownerMeta.name}-`;
  if (options.labels ?? true) meta.labels = { ...ownerMeta.labels, ...meta.labels };
  return setControllerReference(owner, child);
}
