// What a cluster needs to run an operator, as objects: the API behind `kubeloop generate`.
import type { CustomResourceDefinition } from "kubernetes-types/apiextensions/v1.js";
import { deployManifests } from "../manifests/deploy.js";
import { rbacManifests } from "../manifests/rbac.js";
import type { Operator } from "./operator.js";

/**
 * One part's objects for `operator`: "rbac" (ServiceAccount, Roles or ClusterRole, bindings),
 * "crds" (the given CRDs, those the operator declares), "deploy" (Deployment, Service, PDB).
 * Fails naming a kind whose plural is unknown (RBAC).
 */
export function operatorManifests(part: "rbac" | "crds" | "deploy", operator: Operator, crds: readonly CustomResourceDefinition[], s: { namespace: string; image: string; replicas?: number }): object[] {
  switch (part) {
    case "rbac":
      return rbacManifests(operator.access(s.namespace), { name: operator.name, namespace: s.namespace, ...(operator.servedNamespaces ? { namespaces: operator.servedNamespaces } : {}) });
    case "crds":
      return [...crds];
    case "deploy":
      return deployManifests({ name: operator.name, namespace: s.namespace, image: s.image, leaderElection: operator.usesLeaderElection, webhooks: operator.hasWebhooks, ...(s.replicas ? { replicas: s.replicas } : {}) });
  }
}
