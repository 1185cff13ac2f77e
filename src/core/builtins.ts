// Descriptors of the built-in kinds operators use most, typed from the API server's OpenAPI, with their
// REST mapping so the client needs no discovery for them. Any other kind: `kindOf(...)`.
import type * as apps from "./kube/apps/v1.js";
import type * as batch from "./kube/batch/v1.js";
import type * as coordination from "./kube/coordination/v1.js";
import type * as core from "./kube/core/v1.js";
import type * as events from "./kube/events/v1.js";
import type * as apiextensions from "./kube/apiextensions/v1.js";
import type * as rbac from "./kube/rbac/v1.js";
import type * as autoscaling from "./kube/autoscaling/v1.js";
import type * as admissionregistration from "./kube/admissionregistration/v1.js";
import { kindOf } from "./objects.js";

const namespaced = (plural: string) => ({ plural, namespaced: true });
const cluster = (plural: string) => ({ plural, namespaced: false });

/** v1 Namespace (cluster-scoped), typed from the API server's OpenAPI. */
export const Namespace = kindOf<core.Namespace>("v1", "Namespace", cluster("namespaces"));
/** v1 Node (cluster-scoped), typed from the API server's OpenAPI. */
export const Node = kindOf<core.Node>("v1", "Node", cluster("nodes"));
/** v1 ConfigMap (namespaced), typed from the API server's OpenAPI. */
export const ConfigMap = kindOf<core.ConfigMap>("v1", "ConfigMap", namespaced("configmaps"));
/** v1 Secret (namespaced), typed from the API server's OpenAPI. */
export const Secret = kindOf<core.Secret>("v1", "Secret", namespaced("secrets"));
/** v1 Pod (namespaced), typed from the API server's OpenAPI. */
export const Pod = kindOf<core.Pod>("v1", "Pod", namespaced("pods"));
/** v1 Service (namespaced), typed from the API server's OpenAPI. */
export const Service = kindOf<core.Service>("v1", "Service", namespaced("services"));
/** v1 ServiceAccount (namespaced), typed from the API server's OpenAPI. */
export const ServiceAccount = kindOf<core.ServiceAccount>("v1", "ServiceAccount", namespaced("serviceaccounts"));
/** v1 Event (namespaced), typed from the API server's OpenAPI. */
export const CoreEvent = kindOf<core.Event>("v1", "Event", namespaced("events"));
/** apps/v1 Deployment (namespaced), typed from the API server's OpenAPI. */
export const Deployment = kindOf<apps.Deployment>("apps/v1", "Deployment", namespaced("deployments"));
/** apps/v1 StatefulSet (namespaced), typed from the API server's OpenAPI. */
export const StatefulSet = kindOf<apps.StatefulSet>("apps/v1", "StatefulSet", namespaced("statefulsets"));
/** apps/v1 DaemonSet (namespaced), typed from the API server's OpenAPI. */
export const DaemonSet = kindOf<apps.DaemonSet>("apps/v1", "DaemonSet", namespaced("daemonsets"));
/** apps/v1 ReplicaSet (namespaced), typed from the API server's OpenAPI. */
export const ReplicaSet = kindOf<apps.ReplicaSet>("apps/v1", "ReplicaSet", namespaced("replicasets"));
/** batch/v1 Job (namespaced), typed from the API server's OpenAPI. */
export const Job = kindOf<batch.Job>("batch/v1", "Job", namespaced("jobs"));
/** batch/v1 CronJob (namespaced), typed from the API server's OpenAPI. */
export const CronJob = kindOf<batch.CronJob>("batch/v1", "CronJob", namespaced("cronjobs"));
/** coordination.k8s.io/v1 Lease (namespaced), typed from the API server's OpenAPI. */
export const Lease = kindOf<coordination.Lease>("coordination.k8s.io/v1", "Lease", namespaced("leases"));
/** events.k8s.io/v1 Event (namespaced), typed from the API server's OpenAPI. */
export const Event = kindOf<events.Event>("events.k8s.io/v1", "Event", namespaced("events"));
/** rbac.authorization.k8s.io/v1 Role (namespaced), typed from the API server's OpenAPI. */
export const Role = kindOf<rbac.Role>("rbac.authorization.k8s.io/v1", "Role", namespaced("roles"));
/** rbac.authorization.k8s.io/v1 RoleBinding (namespaced), typed from the API server's OpenAPI. */
export const RoleBinding = kindOf<rbac.RoleBinding>("rbac.authorization.k8s.io/v1", "RoleBinding", namespaced("rolebindings"));
/** rbac.authorization.k8s.io/v1 ClusterRole (cluster-scoped), typed from the API server's OpenAPI. */
export const ClusterRole = kindOf<rbac.ClusterRole>("rbac.authorization.k8s.io/v1", "ClusterRole", cluster("clusterroles"));
/** rbac.authorization.k8s.io/v1 ClusterRoleBinding (cluster-scoped), typed from the API server's OpenAPI. */
export const ClusterRoleBinding = kindOf<rbac.ClusterRoleBinding>(
  "rbac.authorization.k8s.io/v1",
  "ClusterRoleBinding",
  cluster("clusterrolebindings"),
);
/** apiextensions.k8s.io/v1 CustomResourceDefinition (cluster-scoped), typed from the API server's OpenAPI. */
export const CustomResourceDefinition = kindOf<apiextensions.CustomResourceDefinition>(
  "apiextensions.k8s.io/v1",
  "CustomResourceDefinition",
  cluster("customresourcedefinitions"),
);
/** autoscaling/v1 Scale: the body of a `scale` subresource (`getScale` / `patchScale`), not a resource of its own. */
export const Scale = kindOf<autoscaling.Scale>("autoscaling/v1", "Scale");

/** admissionregistration.k8s.io/v1 ValidatingWebhookConfiguration (cluster-scoped), typed from the API server's OpenAPI. */
export const ValidatingWebhookConfiguration = kindOf<admissionregistration.ValidatingWebhookConfiguration>("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", cluster("validatingwebhookconfigurations"));

/** admissionregistration.k8s.io/v1 MutatingWebhookConfiguration (cluster-scoped), typed from the API server's OpenAPI. */
export const MutatingWebhookConfiguration = kindOf<admissionregistration.MutatingWebhookConfiguration>("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", cluster("mutatingwebhookconfigurations"));
