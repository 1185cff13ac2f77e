// Installing a CustomResourceDefinition as the code declares it: created, or brought to the
// declaration with server-side apply when it differs (`kubeloop run --install-crds`, the dev loop,
// tests), then waited on until the API server serves it.
import type { CustomResourceDefinition as Crd } from "../core/kube/apiextensions/v1.js";
import type { Client } from "../client/client.js";
import { waitFor } from "../core/async.js";
import { CustomResourceDefinition } from "../core/builtins.js";
import { AlreadyExistsError, NotFoundError } from "../core/errors.js";

/** What {@link installCrd} did. */
export interface CrdInstalled {
  /** "created", "updated" (the definition differed: applied), or "unchanged". */
  outcome: "created" | "updated" | "unchanged";
  /** For "updated": what changed, e.g. "v1: schema", "v2: added", "shortNames". */
  changes: string[];
}

/**
 * Creates a CRD, or brings an existing one to `crd` with server-side apply (field manager
 * `options.fieldManager`, default "kubeloop"; forced, as the definition in code is the truth), and
 * waits until it is Established and the API server's discovery lists its kind in every served
 * version (discovery is updated apart from the Established condition and may lag it: a client
 * that asked at once could be told the kind is not served). Returns what changed. Refuses, naming the version, to remove a
 * version the API server still stores objects in (`status.storedVersions`): the API server would
 * refuse it too; keep it with `served: false` until its objects are migrated.
 */
export async function installCrd(client: Client, crd: Crd, timeoutMs = 30_000, options: { fieldManager?: string } = {}): Promise<CrdInstalled> {
  const crds = client.resource(CustomResourceDefinition);
  const name = crd.metadata?.name ?? "";
  let result: CrdInstalled = { outcome: "created", changes: [] };
  const exists = await crds.create(crd).then(
    () => false,
    (error: unknown) => (error instanceof AlreadyExistsError ? true : Promise.reject(error)),
  );
  if (exists) {
    const current = await crds.get(name);
    const changes = crdChanges(current, crd);
    const wanted = new Set(crd.spec.versions.map((v) => v.name));
    const dropped = (current.status?.storedVersions ?? []).filter((v) => !wanted.has(v));
    if (dropped.length) {
      throw new Error(
        `CRD ${name}: the new definition removes version ${dropped.join(", ")}, which the API server still stores objects in (status.storedVersions): it would refuse the change. Keep ${dropped.join(", ")} in versions (served: false) until its objects are migrated to the storage version and storedVersions no longer lists it`,
      );
    }
    if (changes.length) {
      await crds.apply({ apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", metadata: { name, ...(crd.metadata?.labels ? { labels: crd.metadata.labels } : {}), ...(crd.metadata?.annotations ? { annotations: crd.metadata.annotations } : {}) }, spec: crd.spec }, { fieldManager: options.fieldManager ?? "kubeloop", force: true });
      result = { outcome: "updated", changes };
    } else {
      result = { outcome: "unchanged", changes: [] };
    }
  }
  const until = Date.now() + timeoutMs;
  await waitFor(`CRD ${name} to be established`, async () => (await crds.get(name)).status?.conditions?.some((c) => c.type === "Established" && c.status === "True"), { timeoutMs });
  for (const version of crd.spec.versions.filter((v) => v.served)) {
    const apiVersion = `${crd.spec.group}/${version.name}`;
    await waitFor(
      `${crd.spec.names.kind} in ${apiVersion} to be listed by discovery`,
      async () => {
        client.mapper.invalidate(apiVersion);
        return client.mapper.mapping({ apiVersion, kind: crd.spec.names.kind }).then(
          () => true,
          (error: unknown) => (error instanceof NotFoundError ? false : Promise.reject(error)),
        );
      },
      { timeoutMs: Math.max(1, until - Date.now()) },
    );
  }
  return result;
}

/** What differs between the CRD in the cluster and the one in code, per version and per top-level spec field (the server's defaults aside). */
function crdChanges(current: Crd, wanted: Crd): string[] {
  const changes: string[] = [];
  const have = new Map(current.spec.versions.map((v) => [v.name, v]));
  for (const v of wanted.spec.versions) {
    const h = have.get(v.name);
    if (!h) {
      changes.push(`${v.name}: added`);
      continue;
    }
    for (const field of ["schema", "served", "storage", "subresources", "additionalPrinterColumns", "deprecated", "deprecationWarning", "selectableFields"] as const) {
      if (v[field] !== undefined && !covers(h[field], v[field])) changes.push(`${v.name}: ${field}`);
    }
    if (v.schema && h.schema && !covers(v.schema, h.schema)) {
      if (!changes.includes(`${v.name}: schema`)) changes.push(`${v.name}: schema`);
    }
  }
  for (const v of current.spec.versions) if (!wanted.spec.versions.some((w) => w.name === v.name)) changes.push(`${v.name}: removed`);
  for (const [field, value] of Object.entries(wanted.spec)) {
    if (field === "versions") continue;
    if (field === "names") {
      const names = current.spec.names as unknown as Record<string, unknown>;
      for (const [k, n] of Object.entries(value as object)) if (!covers(names[k], n)) changes.push(k);
    } else if (!covers((current.spec as unknown as Record<string, unknown>)[field], value)) changes.push(field);
  }
  return changes;
}

/** Whether `have` holds everything `want` says (fields the server added by default aside). */
function covers(have: unknown, want: unknown): boolean {
  if (want === undefined) return true;
  if (Array.isArray(want)) return Array.isArray(have) && have.length === want.length && want.every((w, i) => covers(have[i], w));
  if (want !== null && typeof want === "object") {
    if (have === null || typeof have !== "object" || Array.isArray(have)) return false;
    return Object.entries(want).every(([k, w]) => covers((have as Record<string, unknown>)[k], w));
  }
  return have === want;
}
