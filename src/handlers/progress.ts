// Handler progress and the diff base, kept in the object's own annotations so that a restarted
// operator (or another replica taking over) continues exactly where the last one stopped:
//
//   <prefix>/progress      {"create/fn": {"started":…, "retries":1, "delayedUntil":…}, …}
//   <prefix>/last-handled  the essence of the object as of the last fully handled change
//
// The essence is what handlers react to: everything but status and the server-managed parts of
// metadata; labels and annotations stay, minus kubectl's last-applied copy and minus every
// kubeloop-marked annotation: ours, and those of any other kubeloop operator on the same kind
// (keys under `kubeloop.dev/` or `*.kubeloop.dev/`). Without that rule two operators would see
// each other's bookkeeping as a change, handle it, and write again, forever (kopf likewise
// ignores every kopf operator's storage annotations). kopf's own storage is left out too.
import { createHash } from "node:crypto";
import type { KubeObject } from "../core/objects.js";
import { getPath, jsonEqual } from "./diff.js";

/** The state of one handler for the current change. */
export interface HandlerProgress {
  /** ISO time the first attempt started. */
  started?: string;
  retries?: number;
  success?: boolean;
  failure?: boolean;
  /** Epoch ms before which the handler must not run again. */
  delayedUntil?: number;
  message?: string;
}

/** Annotation names for one operator. */
export interface ProgressKeys {
  progress: string;
  lastHandled: string;
  prefix: string;
}

/** Annotation keys under `prefix` (a DNS subdomain, e.g. "myop.kubeloop.dev"). */
export function progressKeys(prefix: string): ProgressKeys {
  return { prefix, progress: `${prefix}/progress`, lastHandled: `${prefix}/last-handled` };
}

const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

/**
 * Whether an annotation is bookkeeping rather than content: this operator's own, any kubeloop
 * operator's (the key's prefix is `kubeloop.dev` or ends in `.kubeloop.dev`), a kopf operator's
 * (`kopf.zalando.org/…`, or a `…/last-handled-configuration` diff base under another prefix),
 * or kubectl's last-applied copy.
 */
export function isBookkeeping(key: string, keys: ProgressKeys): boolean {
  if (key === LAST_APPLIED || key.startsWith(`${keys.prefix}/`)) return true;
  const slash = key.indexOf("/");
  if (slash < 0) return false;
  const domain = key.slice(0, slash);
  if (domain === "kubeloop.dev" || domain.endsWith(".kubeloop.dev")) return true;
  // kopf operators' storage: their default prefix, and their diff base under any prefix.
  return domain === "kopf.zalando.org" || domain.endsWith(".kopf.zalando.org") || key.endsWith("/last-handled-configuration");
}

/** What handlers react to: the object without status, server-managed metadata and bookkeeping annotations. */
export function essence(object: KubeObject, keys: ProgressKeys): Record<string, unknown> {
  const rest: Record<string, unknown> = { ...(object as Record<string, unknown>) };
  for (const key of ["metadata", "status", "apiVersion", "kind"]) delete rest[key];
  const metadata = object.metadata;
  const annotations = Object.fromEntries(Object.entries(metadata?.annotations ?? {}).filter(([k]) => !isBookkeeping(k, keys)));
  const meta: Record<string, unknown> = {};
  if (metadata?.labels && Object.keys(metadata.labels).length) meta.labels = metadata.labels;
  if (Object.keys(annotations).length) meta.annotations = annotations;
  return { ...(Object.keys(meta).length ? { metadata: meta } : {}), ...rest };
}

/** Reads the progress map (an unreadable annotation counts as none, and is overwritten). */
export function readProgress(object: KubeObject, keys: ProgressKeys): Record<string, HandlerProgress> {
  const raw = object.metadata?.annotations?.[keys.progress];
  if (!raw) return {};
  try {
    const parsed = JSON.parse(raw) as unknown;
    return parsed && typeof parsed === "object" && !Array.isArray(parsed) ? (parsed as Record<string, HandlerProgress>) : {};
  } catch {
    return {};
  }
}

/** Reads the diff base; undefined if the object was never fully handled (a create). */
export function readDiffBase(object: KubeObject, keys: ProgressKeys): Record<string, unknown> | undefined {
  const raw = object.metadata?.annotations?.[keys.lastHandled];
  if (!raw) return undefined;
  try {
    const parsed = JSON.parse(raw) as unknown;
    return parsed && typeof parsed === "object" ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The largest diff base kept whole, in characters. Annotations share 256 KiB per object; a
 * larger essence is kept as a digest plus the fields that field handlers watch.
 */
export const DIFF_BASE_LIMIT = 100_000;
const DIGEST = "kubeloop.dev/digest";

/** JSON with object keys sorted, so equal values always give equal text. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`;
  }
  return JSON.stringify(value) ?? "null";
}

function digestOf(essence: unknown): string {
  return createHash("sha256").update(canonical(essence)).digest("hex");
}

/**
 * The diff base to store for an essence: the essence itself, or, when its JSON is longer than
 * `limit`, a compact base (a digest of the whole plus the values at `fields`). A compact base
 * still tells whether anything changed and what the watched fields were; it has no full diff.
 */
export function encodeDiffBase(essence: Record<string, unknown>, fields: readonly (readonly string[])[], limit = DIFF_BASE_LIMIT): { text: string; compact: boolean } {
  const text = JSON.stringify(essence);
  if (text.length <= limit) return { text, compact: false };
  const watched: Record<string, unknown> = {};
  for (const path of fields) {
    const value = getPath(essence, path);
    if (value !== undefined) watched[path.join(".")] = value;
  }
  return { text: JSON.stringify({ [DIGEST]: digestOf(essence), fields: watched }), compact: true };
}

/** Whether a stored base is compact (a digest), not the whole essence. */
export function isCompact(base: Record<string, unknown> | undefined): boolean {
  return base !== undefined && typeof base[DIGEST] === "string";
}

/** Whether `essence` is what `base` recorded. */
export function sameEssence(base: Record<string, unknown>, essence: Record<string, unknown>): boolean {
  return isCompact(base) ? base[DIGEST] === digestOf(essence) : jsonEqual(base, essence);
}

/** The value at `path` as the base recorded it (for a compact base: only the watched fields). */
export function baseValue(base: Record<string, unknown> | undefined, path: readonly string[]): unknown {
  if (!base) return undefined;
  return isCompact(base) ? (base.fields as Record<string, unknown> | undefined)?.[path.join(".")] : getPath(base, path);
}
