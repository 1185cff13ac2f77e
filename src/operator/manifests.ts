// What a cluster needs to run an operator, as objects: the API behind `kubeloop generate`.
import type { CustomResourceDefinition } from "../core/kube/apiextensions/v1.js";
import { deployManifests } from "../manifests/deploy.js";
import { rbacManifests } from "../manifests/rbac.js";
import { certManagerWebhookManifests, webhookNames, withConversionWebhook } from "../manifests/webhooks.js";
import type { Operator } from "./operator.js";
import type { ResourceKind } from "../core/objects.js";

/** The parts `operatorManifests` makes. */
export type ManifestPart = "rbac" | "crds" | "deploy" | "webhooks";

export interface ManifestSettings {
  /** Where the operator runs. */
  namespace: string;
  image: string;
  /** Default 2 with leader election, else 1. */
  replicas?: number;
  /**
   * "managed" (default): the operator makes its serving certificate and registers its webhooks
   * itself (RBAC allows it). "cert-manager": the "webhooks" part registers them (Service
   * clientConfig, CA injected by cert-manager), the CRDs carry their conversion stanza, the
   * Deployment mounts the certificate Secret, and the RBAC has no registration rules.
   */
  webhooks?: "managed" | "cert-manager";
  /** Kinds the operator's code reads through `ctx.cache` (RBAC: get, list, watch). */
  cacheReads?: readonly ResourceKind[];
  /** Whether the operator's code calls `ctx.finalizer` (undefined: assumed; false: no patch on controllers' own kinds). */
  finalizers?: boolean;
}

/**
 * One part's objects for `operator`: "rbac" (ServiceAccount, Roles or ClusterRole, bindings),
 * "crds" (the given CRDs, those the operator declares), "deploy" (Deployment, Service, PDB),
 * "webhooks" (cert-manager mode only: Issuer, Certificate, webhook configurations; empty without
 * admission webhooks). Fails naming a kind whose plural is unknown (RBAC, webhook rules), and for
 * "webhooks" in managed mode (the operator registers them itself).
 */
export function operatorManifests(part: ManifestPart, operator: Operator, crds: readonly CustomResourceDefinition[], s: ManifestSettings): object[] {
  const unmanaged = s.webhooks === "cert-manager" && operator.hasWebhooks;
  const names = { name: operator.name, namespace: s.namespace };
  switch (part) {
    case "rbac":
      return rbacManifests(operator.access(s.namespace, { ...(unmanaged ? { manageWebhooks: false } : {}), ...(s.cacheReads ? { reads: s.cacheReads } : {}), ...(s.finalizers !== undefined ? { finalizers: s.finalizers } : {}) }), { ...names, ...(operator.servedNamespaces ? { namespaces: operator.servedNamespaces } : {}) });
    case "crds": {
      const converted = new Set(unmanaged ? operator.webhooks.conversions : []);
      return crds.map((crd) => (converted.has(crd.metadata?.name ?? "") ? withConversionWebhook(crd, names) : crd));
    }
    case "deploy":
      return deployManifests({
        ...names,
        image: s.image,
        leaderElection: operator.usesLeaderElection,
        sharding: operator.usesSharding,
        webhooks: operator.hasWebhooks,
        ...(unmanaged ? { webhookCertSecret: webhookNames(names).secret } : {}),
        ...(s.replicas ? { replicas: s.replicas } : {}),
      });
    case "webhooks":
      if (s.webhooks !== "cert-manager") throw new Error(`${operator.name} registers its webhooks itself (managed mode): webhook manifests are for webhooks: "cert-manager" (kubeloop generate --webhooks cert-manager)`);
      if (!operator.hasWebhooks) return [];
      return certManagerWebhookManifests(operator.webhooks.admission, { ...names, ...(operator.servedNamespaces ? { namespaces: operator.servedNamespaces } : {}) });
  }
}
