// Cause detection, pure: from an object (and whether this process has seen it before), what
// happened to it and which handlers that calls for, with their old and new values. No I/O and
// no clock, so tables of objects test it (as kopf's `_core/intents/causes.py` and its
// tests/causation). The processor acts on what this decides.
import type { KubeObject } from "../core/objects.js";
import { hasFinalizer } from "../controller/finalizer.js";
import { diff, getPath, jsonEqual, type DiffOp } from "./diff.js";
import { matches } from "./filters.js";
import { baseValue, essence, isCompact, readDiffBase, sameEssence, type ProgressKeys } from "./progress.js";
import type { ObjectHandler } from "./registry.js";

/** What happened to an object, as far as handlers are concerned. */
export interface Detected {
  /**
   * `delete`: being deleted and still holding our finalizer (delete handlers, then release);
   * `create`: never fully handled (no diff base); `update`: its essence changed since handled;
   * `undefined`: nothing to handle (including: being deleted without our finalizer).
   */
  cause: "create" | "update" | "delete" | undefined;
  /** Being deleted (deletionTimestamp set), ours to finalize or not. */
  deleting: boolean;
  /** First sight in this process of an object handled before: resume handlers run first. */
  resume: boolean;
  /** The stored diff base (undefined for a create). */
  base: Record<string, unknown> | undefined;
  /** The essence now. */
  current: Record<string, unknown>;
  /** The base is compact (a digest): no full diff, no old value for update handlers. */
  compact: boolean;
}

/** Where the diff base is and what the finalizer is called. */
export interface CauseContext {
  keys: ProgressKeys;
  finalizer: string;
  /** Whether this process has not processed the object yet. */
  firstSight: boolean;
}

/** What happened to `object`; see {@link Detected}. */
export function detectCause(object: KubeObject, c: CauseContext): Detected {
  const base = readDiffBase(object, c.keys);
  const current = essence(object, c.keys);
  const compact = isCompact(base);
  if (object.metadata?.deletionTimestamp) {
    return { cause: hasFinalizer(object, c.finalizer) ? "delete" : undefined, deleting: true, resume: false, base, current, compact };
  }
  const cause = base === undefined ? "create" : sameEssence(base, current) ? undefined : "update";
  return { cause, deleting: false, resume: c.firstSight && base !== undefined, base, current, compact };
}

/** One handler to run for a cause, with what it gets. */
export interface Step {
  handler: ObjectHandler;
  old: unknown;
  new: unknown;
  diff: DiffOp[];
}

/**
 * The handlers a detected cause calls for, in registration order: those of the cause itself
 * (delete, create, update), field handlers whose field changed (or is set, on create), and,
 * separately, resume handlers. Only handlers whose filters match the object.
 */
export function planSteps(object: KubeObject, handlers: readonly ObjectHandler[], d: Detected): { resume: Step[]; steps: Step[] } {
  const applicable = handlers.filter((h) => matches(object, h.options));
  const resume = d.resume ? applicable.filter((h) => h.cause === "resume").map((h) => ({ handler: h, old: undefined, new: undefined, diff: [] })) : [];
  if (d.cause === undefined) return { resume, steps: [] };
  if (d.cause === "delete") return { resume: [], steps: applicable.filter((h) => h.cause === "delete").map((h) => ({ handler: h, old: undefined, new: undefined, diff: [] })) };
  const steps: Step[] = [];
  const changes = d.compact ? [] : diff(d.base, d.current);
  for (const h of applicable) {
    if (h.cause === d.cause) steps.push({ handler: h, old: d.compact ? undefined : d.base, new: d.current, diff: changes });
    if (h.cause === "field" && h.field) {
      const before = baseValue(d.base, h.field);
      const after = getPath(d.current, h.field);
      if (jsonEqual(before, after)) continue;
      if (h.options.value && !h.options.value(after)) continue;
      if (h.options.oldValue && !h.options.oldValue(before)) continue;
      steps.push({ handler: h, old: before, new: after, diff: diff(before, after, h.field) });
    }
  }
  return { resume, steps };
}
