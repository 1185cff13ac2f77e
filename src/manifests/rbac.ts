// Least-privilege RBAC from what an operator declares: the Operator lists its access needs
// (`op.access()`: each kind it watches, patches or owns, its Events, its Lease, its webhook
// configurations), and this turns them into a ServiceAccount, Roles and ClusterRoles with their
// bindings. Namespaced needs become one Role per namespace when the operator serves exact
// namespaces; cluster-scoped kinds, and every kind of a cluster-wide operator, go into one
// ClusterRole. Rules for the same resource are merged; nothing else is granted.
import type * as rbac from "../core/kube/rbac/v1.js";
import type * as core from "../core/kube/core/v1.js";

/** One thing the operator does to one resource. */
export interface AccessNeed {
  /** API group ("" for the core group). */
  group: string;
  /** The plural, with "/subresource" when it is one (e.g. "widgets/status"). */
  resource: string;
  namespaced: boolean;
  verbs: readonly string[];
  /** Only these objects (e.g. the operator's own webhook configuration). */
  resourceNames?: readonly string[];
  /** Needed in this namespace only (the Lease's), whatever namespaces the operator serves. */
  namespace?: string;
  /** Why, for the comment in the generated manifests and for tests. */
  why: string;
}

export interface RbacOptions {
  /** The operator's name: names the ServiceAccount, Roles and bindings. */
  name: string;
  /** Where the ServiceAccount (the operator's Pod) lives. */
  namespace: string;
  /** Exact namespaces the operator serves; undefined or empty: cluster-wide. */
  namespaces?: readonly string[];
}

/** What `rbacManifests` returns: the RBAC objects and the ServiceAccount. */
export type RbacObject = rbac.ClusterRole | rbac.Role | rbac.ClusterRoleBinding | rbac.RoleBinding | core.ServiceAccount;

/** The ServiceAccount, Roles, ClusterRole and bindings granting exactly `needs`. */
export function rbacManifests(needs: readonly AccessNeed[], options: RbacOptions): RbacObject[] {
  const { name, namespace } = options;
  const exact = options.namespaces?.length ? [...options.namespaces] : undefined;
  const labels = { "app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "kubeloop" };
  const clusterNeeds: AccessNeed[] = [];
  const byNamespace = new Map<string, AccessNeed[]>();
  const add = (ns: string, need: AccessNeed) => byNamespace.set(ns, [...(byNamespace.get(ns) ?? []), need]);
  for (const need of needs) {
    if (need.namespace) add(need.namespace, need);
    else if (need.namespaced && exact) for (const ns of exact) add(ns, need);
    else clusterNeeds.push(need);
  }
  const subject = { kind: "ServiceAccount", name, namespace };
  const objects: RbacObject[] = [{ apiVersion: "v1", kind: "ServiceAccount", metadata: { name, namespace, labels } }];
  if (clusterNeeds.length) {
    objects.push({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRole", metadata: { name, labels }, rules: rules(clusterNeeds) });
    objects.push({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "ClusterRoleBinding", metadata: { name, labels }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name }, subjects: [subject] });
  }
  for (const [ns, list] of [...byNamespace].sort(([a], [b]) => a.localeCompare(b))) {
    objects.push({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "Role", metadata: { name, namespace: ns, labels }, rules: rules(list) });
    objects.push({ apiVersion: "rbac.authorization.k8s.io/v1", kind: "RoleBinding", metadata: { name, namespace: ns, labels }, roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name }, subjects: [subject] });
  }
  return objects;
}

/** Merges needs into rules: one per (group, resource, resourceNames), verbs unioned and sorted. */
export function rules(needs: readonly AccessNeed[]): rbac.PolicyRule[] {
  const merged = new Map<string, { group: string; resource: string; names?: readonly string[]; verbs: Set<string> }>();
  for (const n of needs) {
    const key = JSON.stringify([n.group, n.resource, n.resourceNames ?? []]);
    const entry = merged.get(key) ?? { group: n.group, resource: n.resource, ...(n.resourceNames ? { names: n.resourceNames } : {}), verbs: new Set<string>() };
    for (const v of n.verbs) entry.verbs.add(v);
    merged.set(key, entry);
  }
  return [...merged.values()]
    .sort((a, b) => a.group.localeCompare(b.group) || a.resource.localeCompare(b.resource))
    .map((e) => ({ apiGroups: [e.group], resources: [e.resource], verbs: [...e.verbs].sort(), ...(e.names ? { resourceNames: [...e.names] } : {}) }));
}
