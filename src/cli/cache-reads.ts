// What an operator's code does that nothing it registers says: the kinds it reads through `ctx.cache` (`cache.get(Kind, …)`, `cache.list(Kind,
// …)`), found in its source for `kubeloop generate rbac`: such a read starts an informer of the
// kind on first use, which needs get, list and watch, and nothing registered says so. The source
// is scanned as text (the operator's file and the local files it imports, transitively), and each
// kind's name is resolved to a kind descriptor among the built-in kinds and the values those
// modules export. A kind named otherwise (a variable, a call) cannot be known: it is reported, to
// be declared with op.permissions(). Also whether it calls `ctx.finalizer(…)`: a controller's
// own kind needs patch only for that.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import * as builtins from "../core/builtins.js";
import type { ResourceKind } from "../core/objects.js";
import { packageRoot } from "../testing/package-root.js";

/** What the scan found. */
export interface CacheReads {
  /** Kinds read through the cache, each with where (file:line) it was first seen. */
  kinds: { kind: ResourceKind; where: string }[];
  /** Reads whose kind could not be resolved: `name` as written, and where. */
  unknown: { name: string; where: string }[];
  /** Whether the code calls a reconcile context's `finalizer(…)` (its controllers then patch their own kind). */
  finalizers: boolean;
}

const READ = /\bcache\s*\.\s*(?:get|list)\s*(?:<[^>()]*>)?\s*\(\s*([A-Za-z_$][\w$]*)/g;
const FINALIZER = /\bfinalizer\s*\(\s*["'`A-Za-z_$]/;
const LOCAL_IMPORT = /\bfrom\s+["'](\.{1,2}\/[^"']+)["']|\bimport\s*\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g;
const MAX_FILES = 200;

function isKind(value: unknown): value is ResourceKind {
  return typeof value === "object" && value !== null && typeof (value as ResourceKind).apiVersion === "string" && typeof (value as ResourceKind).kind === "string";
}

/** Scans `entry` and the local files it imports; `root` makes the reported paths relative. */
export async function findCacheReads(entry: string, root = dirname(entry)): Promise<CacheReads> {
  const seen = new Set<string>();
  const queue = [resolve(entry)];
  const kinds = new Map<string, { kind: ResourceKind; where: string }>();
  const unknown: CacheReads["unknown"] = [];
  let finalizers = false;
  const library = `${join(packageRoot(), "src")}/`;
  while (queue.length && seen.size < MAX_FILES) {
    const file = queue.shift() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(file, "utf8");
    finalizers ||= FINALIZER.test(text);
    for (const m of text.matchAll(LOCAL_IMPORT)) {
      const next = resolveLocal(dirname(file), (m[1] ?? m[2]) as string);
      // The operator's own files: not kubeloop's sources (a checkout's examples import them relatively), not dependencies.
      if (next && !seen.has(next) && !next.startsWith(library) && !next.includes("/node_modules/")) queue.push(next);
    }
    const reads = [...text.matchAll(READ)];
    if (!reads.length) continue;
    // The module's own exports name kinds too (defineResource, kindOf); it is loaded already.
    const exported = (await import(pathToFileURL(file).href).catch(() => ({}))) as Record<string, unknown>;
    for (const m of reads) {
      const name = m[1] as string;
      const where = `${relative(root, file) || file}:${text.slice(0, m.index).split("\n").length}`;
      const value = exported[name] ?? (builtins as Record<string, unknown>)[name] ?? (await importedFrom(file, text, name));
      if (!isKind(value)) {
        unknown.push({ name, where });
        continue;
      }
      const id = `${value.apiVersion}/${value.kind}`;
      if (!kinds.has(id)) kinds.set(id, { kind: value, where });
    }
  }
  return { kinds: [...kinds.values()], unknown, finalizers };
}

/** The value `name` is imported as from a local module of `file` (`import { name } from "./kinds.js"`). */
async function importedFrom(file: string, text: string, name: string): Promise<unknown> {
  const pattern = new RegExp(`import\\s*(?:type\\s*)?\\{([^}]*)\\}\\s*from\\s*["'](\\.{1,2}/[^"']+)["']`, "g");
  for (const m of text.matchAll(pattern)) {
    for (const part of (m[1] as string).split(",")) {
      const [original, alias] = part.trim().split(/\s+as\s+/);
      if ((alias ?? original) !== name || !original) continue;
      const target = resolveLocal(dirname(file), m[2] as string);
      if (!target) continue;
      const mod = (await import(pathToFileURL(target).href).catch(() => ({}))) as Record<string, unknown>;
      return mod[original];
    }
  }
  return undefined;
}

/** A relative import's file: as written, or its TypeScript source for a ".js" specifier. */
function resolveLocal(dir: string, specifier: string): string | undefined {
  const base = resolve(dir, specifier);
  for (const candidate of [base, base.replace(/\.([mc]?)js$/, ".$1ts"), `${base}.ts`, `${base}/index.ts`]) {
    if (existsSync(candidate) && /\.[mc]?[jt]sx?$/.test(candidate)) return candidate;
  }
  return undefined;
}
