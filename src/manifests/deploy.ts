// The workload that runs an operator in a cluster: a Deployment (its generated ServiceAccount,
// probes on /healthz and /readyz, metrics, a locked-down security context), a Service for
// metrics and webhooks, a PodDisruptionBudget when it runs more than one replica; and the same
// as a kustomization and a Helm chart.
import type * as apps from "../core/kube/apps/v1.js";
import type * as core from "../core/kube/core/v1.js";
import type * as policy from "../core/kube/policy/v1.js";
import type * as Yaml from "yaml";
import { onFirstUse } from "../core/lazy.js";
import { WEBHOOK_CERT_DIR } from "./webhooks.js";

/** The yaml library, loaded on first use (an operator in-cluster never reads YAML). */
const yaml = onFirstUse<typeof Yaml>("yaml");

export interface DeployOptions {
  /** The operator's name (Deployment, Service, ServiceAccount). */
  name: string;
  namespace: string;
  /** The operator image (see docs/deploy.md for the Dockerfile). */
  image: string;
  /** The operator module inside the image. Default "/app/dist/operator.js". */
  module?: string;
  /** Default 3 with sharding (the work split three ways), 2 with leader election (a warm follower), else 1. */
  replicas?: number;
  leaderElection: boolean;
  /** The operator shards its objects among its replicas (its `sharding` option). */
  sharding?: boolean;
  /** Serve webhooks: port 9443 in the Pod, 443 on the Service; the API server calls the Service. */
  webhooks: boolean;
  /**
   * Unmanaged webhooks: mount this Secret (cert-manager's, with tls.crt, tls.key and ca.crt) at
   * WEBHOOK_CERT_DIR, serve with it and leave registration to the manifests. Default: the
   * operator makes a self-signed certificate and registers its webhooks itself (managed mode).
   */
  webhookCertSecret?: string;
  resources?: core.ResourceRequirements;
}

const METRICS_PORT = 8080;
const HEALTH_PORT = 8081;
const WEBHOOK_PORT = 9443;

/** Deployment, Service, and (replicas > 1) PodDisruptionBudget. */
export function deployManifests(o: DeployOptions): (apps.Deployment | core.Service | policy.PodDisruptionBudget)[] {
  const replicas = o.replicas ?? defaultReplicas(o);
  const labels = { "app.kubernetes.io/name": o.name, "app.kubernetes.io/managed-by": "kubeloop" };
  const selector = { "app.kubernetes.io/name": o.name };
  const args = operatorArgs(o);
  const certs = o.webhooks && o.webhookCertSecret !== undefined;
  const deployment: apps.Deployment = {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name: o.name, namespace: o.namespace, labels },
    spec: {
      replicas,
      selector: { matchLabels: selector },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: o.name,
          securityContext: { runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532, seccompProfile: { type: "RuntimeDefault" } },
          containers: [
            operatorContainer(o, args, certs),
          ],
          volumes: [{ name: "tmp", emptyDir: {} }, ...(certs ? [{ name: "webhook-certificate", secret: { secretName: o.webhookCertSecret as string } }] : [])],
        },
      },
    },
  };
  const service: core.Service = {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: o.name, namespace: o.namespace, labels },
    spec: {
      selector,
      ports: [
        { name: "metrics", port: METRICS_PORT, targetPort: "metrics" },
        ...(o.webhooks ? [{ name: "webhooks", port: 443, targetPort: "webhooks" }] : []),
      ],
    },
  };
  const pdb: policy.PodDisruptionBudget = { apiVersion: "policy/v1", kind: "PodDisruptionBudget", metadata: { name: o.name, namespace: o.namespace, labels }, spec: { minAvailable: 1, selector: { matchLabels: selector } } };
  return replicas > 1 ? [deployment, service, pdb] : [deployment, service];
}

/** The operator container's arguments: `kubeloop run` with the probe ports, JSON logs, and the webhook flags of its certificate mode. */
/** The replicas a generated Deployment runs unless told: 3 sharded, 2 with leader election, else 1. */
export function defaultReplicas(o: { leaderElection: boolean; sharding?: boolean }): number {
  return o.sharding ? 3 : o.leaderElection ? 2 : 1;
}

function operatorArgs(o: DeployOptions): string[] {
  const serviceHost = `${o.name}.${o.namespace}.svc`;
  return [
    "run",
    o.module ?? "/app/dist/operator.js",
    "--metrics-bind",
    `0.0.0.0:${METRICS_PORT}`,
    "--health-bind",
    `0.0.0.0:${HEALTH_PORT}`,
    "--log-format",
    "json",
    ...(o.leaderElection ? [] : ["--standalone"]),
    ...(!o.webhooks ? [] : o.webhookCertSecret
      ? ["--webhook-bind", `0.0.0.0:${WEBHOOK_PORT}`, "--webhook-cert-dir", WEBHOOK_CERT_DIR, "--webhook-unmanaged"]
      : ["--webhook-bind", `0.0.0.0:${WEBHOOK_PORT}`, "--webhook-url", `https://${serviceHost}:443`, "--webhook-dns-name", serviceHost]),
  ];
}

/** The operator's container: hardened (non-root, read-only root, no capabilities), with its probes. */
function operatorContainer(o: DeployOptions, args: string[], certs: boolean | undefined): core.Container {
  return {
    name: "operator",
    image: o.image,
    args,
    env: [{ name: "NODE_ENV", value: "production" }],
    ports: [
      { name: "metrics", containerPort: METRICS_PORT },
      { name: "health", containerPort: HEALTH_PORT },
      ...(o.webhooks ? [{ name: "webhooks", containerPort: WEBHOOK_PORT }] : []),
    ],
    livenessProbe: { httpGet: { path: "/healthz", port: "health" }, periodSeconds: 10, failureThreshold: 3 },
    readinessProbe: { httpGet: { path: "/readyz", port: "health" }, periodSeconds: 5 },
    resources: o.resources ?? { requests: { cpu: "100m", memory: "128Mi" }, limits: { memory: "512Mi" } },
    securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ["ALL"] } },
    volumeMounts: [{ name: "tmp", mountPath: "/tmp" }, ...(certs ? [{ name: "webhook-certificate", mountPath: WEBHOOK_CERT_DIR, readOnly: true }] : [])],
  };
}

/** A kustomization listing the generated files. */
export function kustomization(files: readonly string[], namespace: string): string {
  return yaml().stringify({ apiVersion: "kustomize.config.k8s.io/v1beta1", kind: "Kustomization", namespace, resources: [...files] });
}

/**
 * A Helm chart from the generated manifests: `image`, `replicas` and the namespace become
 * values (`.Values.image`, `.Values.replicas`, `.Release.Namespace`); the CRDs go to `crds/`
 * unless they name the namespace. Render the manifests with a
 * sentinel namespace that occurs nowhere else: every occurrence becomes the release's (fields,
 * Service DNS names, cert-manager's `inject-ca-from`). Returns file name → text.
 */
export function helmChart(name: string, version: string, manifests: Record<string, string>, defaults: { image: string; replicas: number; namespace: string }): Record<string, string> {
  const files: Record<string, string> = {
    "Chart.yaml": yaml().stringify({ apiVersion: "v2", name, description: `The ${name} operator (generated by kubeloop)`, type: "application", version, appVersion: version }),
    "values.yaml": yaml().stringify({ image: defaults.image, replicas: defaults.replicas }),
  };
  for (const [file, text] of Object.entries(manifests)) {
    // Helm installs what is in crds/ before the templates, as it is (never rendered, never
    // upgraded or deleted by a release), where users and tools expect CRDs. CRDs that name the
    // release's namespace (a conversion webhook's Service, with --webhooks cert-manager) must be
    // rendered, so those stay templates.
    if (file === "crds.yaml" && !text.includes(defaults.namespace)) {
      files["crds/crds.yaml"] = text;
      continue;
    }
    files[`templates/${file}`] = text
      .split(`image: ${defaults.image}`).join("image: {{ .Values.image | quote }}")
      .split(`replicas: ${defaults.replicas}`).join("replicas: {{ .Values.replicas }}")
      .split(defaults.namespace).join("{{ .Release.Namespace }}");
  }
  return files;
}
