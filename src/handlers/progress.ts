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
// ignores every kopf operator's storage annotations).
import type { KubeObject } from "../core/objects.js";

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
 * operator's (the key's prefix is `kubeloop.dev` or ends in `.kubeloop.dev`), or kubectl's
 * last-applied copy.
 */
export function isBookkeeping(key: string, keys: ProgressKeys): boolean {
  if (key === LAST_APPLIED || key.startsWith(`${keys.prefix}/`)) return true;
  const slash = key.indexOf("/");
  if (slash < 0) return false;
  const domain = key.slice(0, slash);
  return domain === "kubeloop.dev" || domain.endsWith(".kubeloop.dev");
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
