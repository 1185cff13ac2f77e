// Where handler progress is kept between attempts (and across restarts): in an annotation
// (default) or in `status.kubeloop.progress`. One small interface instead of flags, so the
// processor reads and writes progress the same way wherever it lives. The diff base is always
// an annotation (see progress.ts).
import type { KubeObject } from "../core/objects.js";
import { readProgress, type HandlerProgress, type ProgressKeys } from "./progress.js";

/** The parts of a patch that record handler progress. */
export interface ProgressPatch {
  annotations: Record<string, string | null>;
  /** Merged into the status write, when progress lives in status. */
  status?: Record<string, unknown>;
}

/** Reads handler progress from an object and says how to write it. */
export interface ProgressStorage {
  /** Progress of every handler of the current change (an unreadable record counts as none). */
  read(object: KubeObject): Record<string, HandlerProgress>;
  /** What to write to record `progress`, or to clear it (`null`: the change is handled). */
  patch(progress: Record<string, HandlerProgress> | null): ProgressPatch;
}

/** Progress in the annotation `<prefix>/progress`. */
export function annotationsProgress(keys: ProgressKeys): ProgressStorage {
  return {
    read: (object) => readProgress(object, keys),
    patch: (progress) => ({ annotations: { [keys.progress]: progress === null ? null : JSON.stringify(progress) } }),
  };
}

/** Progress in `status.kubeloop.progress` (the status schema must keep unknown fields). */
export function statusProgress(keys: ProgressKeys): ProgressStorage {
  return {
    read: (object) => {
      const p = (object as { status?: { kubeloop?: { progress?: unknown } } }).status?.kubeloop?.progress;
      return p && typeof p === "object" && !Array.isArray(p) ? (p as Record<string, HandlerProgress>) : {};
    },
    // Clearing also drops an annotation an earlier annotations-mode run may have left.
    patch: (progress) => ({ annotations: progress === null ? { [keys.progress]: null } : {}, status: { kubeloop: progress === null ? null : { progress } } }),
  };
}
