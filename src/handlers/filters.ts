// Filters that decide whether a handler applies to an object: labels and annotations (a
// value, present, absent, or a predicate on the value) and a `when` predicate.
import type { KubeObject } from "../core/objects.js";

/** Matches any value of a present key. */
export const PRESENT = Symbol("present");
/** Matches an absent key. */
export const ABSENT = Symbol("absent");

/** What a label or annotation must be. */
export type MetaFilter = string | typeof PRESENT | typeof ABSENT | ((value: string | undefined) => boolean);

/** Filters of a handler. */
export interface Filters<T extends KubeObject> {
  labels?: Record<string, MetaFilter>;
  annotations?: Record<string, MetaFilter>;
  /** Runs last; the handler applies only when it returns true. */
  when?: (object: T) => boolean;
}

function matchMeta(values: Record<string, string> | undefined, filters: Record<string, MetaFilter> | undefined): boolean {
  for (const [key, want] of Object.entries(filters ?? {})) {
    const value = values?.[key];
    if (want === PRESENT ? value === undefined : want === ABSENT ? value !== undefined : typeof want === "function" ? !want(value) : value !== want) return false;
  }
  return true;
}

/** Whether `object` passes the filters. */
export function matches<T extends KubeObject>(object: T, filters: Filters<T>): boolean {
  return matchMeta(object.metadata?.labels, filters.labels) && matchMeta(object.metadata?.annotations, filters.annotations) && (filters.when?.(object) ?? true);
}
