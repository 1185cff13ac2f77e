// Diffs between two versions of an object's essence, as a list of operations on paths, and
// path lookups ("spec.max" or ["spec", "max"]) for field handlers.

/** One difference: a field added, changed or removed. */
export interface DiffOp {
  op: "add" | "change" | "remove";
  path: string[];
  old: unknown;
  new: unknown;
}

/** Parses "spec.items.0.name" (dots; no escaping) into a path. */
export function parsePath(path: string | readonly string[]): string[] {
  return typeof path === "string" ? path.split(".").filter((p) => p !== "") : [...path];
}

/** The value at `path`, or undefined. */
export function getPath(value: unknown, path: string | readonly string[]): unknown {
  let current = value;
  for (const key of parsePath(path)) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

/** Deep equality of JSON values. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a).filter((k) => a[k] !== undefined);
    const kb = Object.keys(b).filter((k) => b[k] !== undefined);
    return ka.length === kb.length && ka.every((k) => jsonEqual(a[k], b[k]));
  }
  return false;
}

/** The differences from `a` to `b`: objects are compared key by key, arrays and scalars as wholes. */
export function diff(a: unknown, b: unknown, path: string[] = []): DiffOp[] {
  if (jsonEqual(a, b)) return [];
  if (a === undefined) return [{ op: "add", path, old: undefined, new: b }];
  if (b === undefined) return [{ op: "remove", path, old: a, new: undefined }];
  if (isObject(a) && isObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => diff(a[k], b[k], [...path, k]));
  }
  return [{ op: "change", path, old: a, new: b }];
}

/**
 * Applies a JSON merge patch (RFC 7386) to a value and returns the result (the value itself is
 * not changed): objects merge key by key, `null` removes, anything else replaces.
 */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return patch;
  const result: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}
