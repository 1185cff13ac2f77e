// Which namespaces an operator serves: exact names, globs ("team-*") and negations
// ("!kube-*"), as `kubeloop run -n` passes them; no patterns means cluster-wide.

/**
 * Refuses patterns that can match no namespace (a TypeError naming the pattern): a namespace name
 * is a lower-case DNS label, so a pattern is lower-case letters, digits, '-' and the globs '*' and
 * '?', at most 63 characters, after an optional '!'.
 */
export function checkNamespacePatterns(patterns: readonly string[] | undefined): void {
  for (const p of patterns ?? []) {
    if (typeof p !== "string" || !/^!?[-a-z0-9*?]{1,63}$/.test(p)) {
      throw new TypeError(`namespace pattern ${JSON.stringify(p)} can match no namespace: use lower-case letters, digits, '-', and the globs '*' '?', after an optional '!' (at most 63 characters)`);
    }
  }
}

/** Returns a test for namespaces; `undefined` patterns (or none) accept every namespace. */
export function namespaceMatcher(patterns: readonly string[] | undefined): (namespace: string | undefined) => boolean {
  if (!patterns || patterns.length === 0) return () => true;
  const toRegExp = (glob: string) => new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`);
  const include = patterns.filter((p) => !p.startsWith("!")).map(toRegExp);
  const exclude = patterns.filter((p) => p.startsWith("!")).map((p) => toRegExp(p.slice(1)));
  return (namespace) => {
    if (namespace === undefined) return true; // cluster-scoped objects are not namespaced
    if (exclude.some((r) => r.test(namespace))) return false;
    return include.length === 0 || include.some((r) => r.test(namespace));
  };
}

/** The single namespace to watch, when the patterns name exactly one (no globs, no negation). */
export function singleNamespace(patterns: readonly string[] | undefined): string | undefined {
  return watchScope(patterns).forKind({}).namespace;
}

/** How an operator's namespaces are watched (`forKind`: the watch's scope) and matched. */
export interface WatchScope {
  forKind: (kind: { namespaced?: boolean }) => { namespace?: string; namespaces?: string[] };
  matches: (namespace: string | undefined) => boolean;
}

/**
 * How to watch what the patterns name: exact names become namespaced watches (`namespace` for
 * one, `namespaces` for several: namespaced RBAC suffices); globs and negations watch
 * cluster-wide and filter. Cluster-scoped kinds are never narrowed.
 */
export function watchScope(patterns: readonly string[] | undefined): WatchScope {
  const matches = namespaceMatcher(patterns);
  const exact = patterns && patterns.length > 0 && patterns.every((p) => !/[*?!]/.test(p)) ? [...new Set(patterns)] : undefined;
  const scope = !exact ? {} : exact.length === 1 ? { namespace: exact[0] as string } : { namespaces: exact };
  return { forKind: (kind) => (kind.namespaced === false ? {} : scope), matches };
}
