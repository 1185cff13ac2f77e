// Status conditions, the Kubernetes API conventions' way to report state: one entry per
// `type` in `status.conditions`, with `lastTransitionTime` moving only when `status` changes
// and `observedGeneration` saying which spec the condition describes.
import type { KubeObject } from "../core/objects.js";

/** One condition (metav1.Condition). */
export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  /** CamelCase reason; required by metav1.Condition. */
  reason: string;
  message?: string;
  observedGeneration?: number;
  lastTransitionTime?: string;
}

/** An object whose status may hold conditions. */
export type WithConditions = KubeObject & { status?: { conditions?: Condition[] } & Record<string, unknown> };

/**
 * Sets condition `condition.type` on `object.status.conditions`, stamping `observedGeneration`
 * with the object's generation and `lastTransitionTime` when the status changed (or the
 * condition is new). Returns whether anything changed, so a caller writes the status only when
 * needed.
 *
 * In place where it can be: a mutable `status` and `conditions` are changed in place (so a
 * caller holding `object.status` sees the change); a frozen one is replaced by a copy (copy on
 * write), so a shallow copy of a cached (frozen) object works: `const next = { ...ctx.object };
 * setCondition(next, …)`. Only `object` itself must be mutable: a frozen one (`ctx.object`, a
 * cache read) throws a TypeError saying so.
 */
export function setCondition(object: WithConditions, condition: Omit<Condition, "lastTransitionTime" | "observedGeneration">, now: Date = new Date()): boolean {
  if (Object.isFrozen(object)) {
    throw new TypeError(`setCondition: ${object.metadata?.name ?? "the object"} is frozen (cached objects are read-only): pass a copy, e.g. setCondition({ ...ctx.object }, …), then write its status`);
  }
  if (!object.status || Object.isFrozen(object.status)) object.status = { ...object.status };
  const status = object.status;
  if (!status.conditions || Object.isFrozen(status.conditions)) status.conditions = [...(status.conditions ?? [])];
  const conditions = status.conditions;
  const generation = object.metadata?.generation;
  const i = conditions.findIndex((c) => c.type === condition.type);
  const before = i >= 0 ? conditions[i] : undefined;
  const next: Condition = {
    type: condition.type,
    status: condition.status,
    reason: condition.reason,
    message: condition.message ?? "",
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    lastTransitionTime: before && before.status === condition.status && before.lastTransitionTime ? before.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, "Z"),
  };
  const same = (k: keyof Condition) => (before?.[k] ?? "") === (next[k] ?? "");
  if (before && same("status") && same("reason") && same("message") && same("observedGeneration") && same("lastTransitionTime")) return false;
  if (i >= 0) conditions[i] = next;
  else conditions.push(next);
  return true;
}

/** The condition of `type`, if set. */
export function getCondition(object: WithConditions | undefined, type: string): Condition | undefined {
  return object?.status?.conditions?.find((c) => c.type === type);
}

/** Whether condition `type` is "True" and describes the current generation. */
export function isConditionTrue(object: WithConditions | undefined, type: string): boolean {
  const c = getCondition(object, type);
  return c?.status === "True" && (c.observedGeneration === undefined || c.observedGeneration === object?.metadata?.generation);
}
