// What an operator needs the API server to allow, computed from what it registered: the input
// of RBAC generation (`manifests/rbac.ts`, `kubeloop generate rbac`). Each need says why.
import type { KubeObject, ResourceKind } from "../core/objects.js";
import type { ControllerSpec } from "../controller/spec.js";
import type { KindEntry } from "../handlers/registry.js";
import type { AccessNeed } from "../manifests/rbac.js";
import { kindMapping } from "../manifests/webhooks.js";
import type { AdmissionSpec, ConversionSpec } from "./webhooks.js";

export interface AccessInputs {
  name: string;
  specs: readonly ControllerSpec<KubeObject>[];
  entries: readonly KindEntry[];
  admission: readonly AdmissionSpec[];
  conversions: readonly ConversionSpec[];
  /** The Lease's namespace, or undefined without leader election (nor sharding). */
  leaseNamespace: string | undefined;
  /** Whether the operator shards its objects (member Leases: listed, and deleted on leaving). */
  sharding?: boolean;
  manageWebhooks: boolean;
  /** The operator's own namespace (where the shared webhook certificate's Secret lives). */
  home: string;
  /** Kinds its code reads through `ctx.cache` (found in its source by `kubeloop generate`). */
  reads?: readonly ResourceKind[];
  /** Whether its controllers use `ctx.finalizer` (a patch of their own kind); unknown (undefined): assumed. */
  finalizers?: boolean;
  extra: readonly AccessNeed[];
}

const READ = ["get", "list", "watch"] as const;
// Built-in kinds without a status subresource: handlers writing results need none.
const NO_STATUS = new Set(["configmaps", "secrets", "serviceaccounts", "events", "leases", "roles", "rolebindings", "clusterroles", "clusterrolebindings", "endpoints", "endpointslices"]);

/** The needs; fails naming a kind whose plural is unknown (give `kindOf` its mapping). */
export function accessNeeds(inputs: AccessInputs): AccessNeed[] {
  const needs: AccessNeed[] = [];
  const on = (kind: ResourceKind, verbs: readonly string[], why: string, subresource?: string) => needs.push({ ...resourceOf(kind, subresource), verbs, why });
  for (const entry of inputs.entries) {
    const k = entry.kind;
    const acts = entry.handlers.length + entry.timers.length + entry.daemons.length > 0;
    if (acts) {
      on(k, [...READ, "patch"], "handlers: watch it; write progress, diff base, finalizer and handler patches");
      if (hasStatus(k)) on(k, ["patch"], "handlers: write results and status patches", "status");
    } else {
      on(k, READ, entry.events.length ? "raw event handlers" : "indexes");
    }
  }
  for (const spec of inputs.specs) {
    // Finalizers are JSON patches, status a server-side apply (a PATCH): no update; and no
    // patch at all when the source shows no ctx.finalizer.
    on(spec.kind, inputs.finalizers === false ? READ : [...READ, "patch"], inputs.finalizers === false ? "controller: watch its kind" : "controller: watch its kind; ctx.finalizer");
    if (hasStatus(spec.kind)) on(spec.kind, ["patch"], "controller: ctx.applyStatus", "status");
    const owns = spec.sources.filter((s) => s.needsScope);
    for (const source of spec.sources) {
      // ctx.apply is a server-side apply: a PATCH, which needs create too when it makes the
      // child. Deleting children is the garbage collector's work; a reconcile that deletes by
      // hand declares it with op.permissions().
      if (source.needsScope) on(source.kind, [...READ, "create", "patch"], "controller: children it owns (ctx.apply)");
      else on(source.kind, READ, "controller: kinds it watches");
    }
    // Its children's owner references block the owner's deletion (blockOwnerDeletion), which the
    // OwnerReferencesPermissionEnforcement admission plugin allows only with update on the owner's
    // finalizers (as kubebuilder's markers grant).
    if (owns.length) on(spec.kind, ["update"], "controller: owner references with blockOwnerDeletion on its children", "finalizers");
  }
  for (const kind of inputs.reads ?? []) on(kind, READ, "ctx.cache reads in the operator's code (an informer starts on the first read)");
  // Events come from handlers and controllers; admission and conversion webhooks write none.
  if (needs.length) needs.push({ group: "events.k8s.io", resource: "events", namespaced: true, verbs: ["create", "patch"], why: "Events (handler logs, failures, ctx.event)" });
  if (inputs.leaseNamespace !== undefined) {
    needs.push({ group: "coordination.k8s.io", resource: "leases", namespaced: true, namespace: inputs.leaseNamespace, verbs: ["create", "get", "update"], why: "leader election, and the dev override's Lease" });
    if (inputs.sharding) needs.push({ group: "coordination.k8s.io", resource: "leases", namespaced: true, namespace: inputs.leaseNamespace, verbs: ["delete", "list"], why: "sharding: read the members' Leases; delete its own on leaving" });
  }
  if (inputs.manageWebhooks) {
    for (const [type, resource] of [["validate", "validatingwebhookconfigurations"], ["mutate", "mutatingwebhookconfigurations"]] as const) {
      if (!inputs.admission.some((a) => a.hook.type === type)) continue;
      needs.push({ group: "admissionregistration.k8s.io", resource, namespaced: false, verbs: ["create"], why: "managed webhooks: create the configuration" });
      needs.push({ group: "admissionregistration.k8s.io", resource, namespaced: false, verbs: ["delete", "get", "update"], resourceNames: [inputs.name], why: "managed webhooks: keep its own configuration current" });
    }
    if (inputs.admission.length || inputs.conversions.length) {
      // The self-signed certificate every replica shares (webhook/certificates.ts).
      needs.push({ group: "", resource: "secrets", namespaced: true, namespace: inputs.home, verbs: ["create"], why: "managed webhooks: the first replica stores the shared self-signed certificate" });
      needs.push({ group: "", resource: "secrets", namespaced: true, namespace: inputs.home, verbs: ["get", "update"], resourceNames: [`${inputs.name}-webhook-selfsigned`], why: "managed webhooks: read the shared certificate; renew it" });
    }
    if (inputs.conversions.length) {
      needs.push({ group: "apiextensions.k8s.io", resource: "customresourcedefinitions", namespaced: false, verbs: ["patch"], resourceNames: inputs.conversions.map((c) => c.crd), why: "conversion webhooks: set the CRD's conversion" });
    }
  }
  return [...needs, ...inputs.extra];
}

function resourceOf(kind: ResourceKind, subresource?: string): Pick<AccessNeed, "group" | "resource" | "namespaced"> {
  const { plural, namespaced } = kindMapping(kind, "RBAC");
  const slash = kind.apiVersion.indexOf("/");
  return { group: slash < 0 ? "" : kind.apiVersion.slice(0, slash), resource: subresource ? `${plural}/${subresource}` : plural, namespaced };
}

/** A defineResource kind with a status subresource, or a built-in kind that has one. */
function hasStatus(kind: ResourceKind): boolean {
  const crd = (kind as { crd?: { spec?: { versions?: { subresources?: { status?: unknown } }[] } } }).crd;
  if (crd) return crd.spec?.versions?.some((v) => v.subresources?.status !== undefined) ?? false;
  return !NO_STATUS.has(kind.plural ?? "");
}
