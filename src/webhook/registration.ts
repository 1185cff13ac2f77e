// Managed mode: the operator writes its own ValidatingWebhookConfiguration and
// MutatingWebhookConfiguration (named after the operator), pointing at the URL it serves, with
// the CA bundle of its serving certificate. Each replica writes the same content, so the
// writes are idempotent; `unregisterWebhooks` removes them (on cleanup, when asked).
import type * as admissionregistration from "../core/kube/admissionregistration/v1.js";
import type { Client } from "../client/client.js";
import { MutatingWebhookConfiguration, ValidatingWebhookConfiguration } from "../core/builtins.js";
import { NotFoundError } from "../core/errors.js";
import type { ResourceKind } from "../core/objects.js";
import type { Operation } from "./admission.js";

/** One admission webhook as the API server should call it. */
export interface AdmissionHook {
  type: "validate" | "mutate";
  /** Unique within the operator; the route is `/<type>/<id>`. */
  id: string;
  kind: ResourceKind;
  operations: Operation[];
  /** e.g. "status" or "scale": the webhook sees that subresource instead of the object. */
  subresource?: string;
  failurePolicy: "Fail" | "Ignore";
  timeoutSeconds: number;
  sideEffects: "None" | "NoneOnDryRun";
  /** Mutating only: call again if a later webhook changed the object. */
  reinvocationPolicy?: "Never" | "IfNeeded";
}

/** Where the API server sends one webhook's reviews: a URL, or a Service (in-cluster). */
export type WebhookClientConfig = { url: string; caBundle?: string } | { service: { namespace: string; name: string; path: string; port: number }; caBundle?: string };

/** The configurations' object types, `undefined` when no webhook of that type is registered. */
export type WebhookConfigurations = { validating?: admissionregistration.ValidatingWebhookConfiguration; mutating?: admissionregistration.MutatingWebhookConfiguration };

/**
 * The configurations for `hooks` (pure): one webhook per hook named `<id>.<operator>.kubeloop.dev`,
 * each called at `clientConfig(hook)`; `mapping` gives a kind's plural and scope (discovery at run
 * time, the kind's descriptor for generated manifests). `annotations` go on both objects (e.g.
 * cert-manager's CA injection).
 */
export function buildWebhookConfigurations(
  operator: string,
  hooks: readonly AdmissionHook[],
  options: {
    clientConfig: (hook: AdmissionHook) => WebhookClientConfig;
    mapping: (kind: ResourceKind) => { plural: string; namespaced: boolean };
    namespaces?: readonly string[] | undefined;
    annotations?: Record<string, string>;
  },
): WebhookConfigurations {
  const one = (hook: AdmissionHook) => {
    const mapping = options.mapping(hook.kind);
    const [group, version] = hook.kind.apiVersion.includes("/") ? (hook.kind.apiVersion.split("/") as [string, string]) : ["", hook.kind.apiVersion];
    const namespaces = options.namespaces;
    return {
      // A webhook's name must be a fully qualified DNS name.
      name: `${hook.id}.${operator}.kubeloop.dev`,
      admissionReviewVersions: ["v1"],
      clientConfig: options.clientConfig(hook),
      rules: [
        {
          apiGroups: [group],
          apiVersions: [version],
          resources: [hook.subresource ? `${mapping.plural}/${hook.subresource}` : mapping.plural],
          operations: hook.operations,
          scope: mapping.namespaced ? "Namespaced" : "Cluster",
        },
      ],
      failurePolicy: hook.failurePolicy,
      sideEffects: hook.sideEffects,
      timeoutSeconds: hook.timeoutSeconds,
      matchPolicy: "Equivalent",
      // The operator's namespaces (exact names), so it is not called for objects it does not serve.
      ...(mapping.namespaced && namespaces?.length && namespaces.every((n) => /^[a-z0-9-]+$/.test(n))
        ? { namespaceSelector: { matchExpressions: [{ key: "kubernetes.io/metadata.name", operator: "In", values: [...namespaces] }] } }
        : {}),
    };
  };
  const validating = hooks.filter((h) => h.type === "validate").map(one);
  const mutating = hooks.filter((h) => h.type === "mutate").map((h) => ({ ...one(h), reinvocationPolicy: h.reinvocationPolicy ?? "Never" }));
  const metadata = { name: operator, labels: { "app.kubernetes.io/managed-by": "kubeloop", "kubeloop.dev/operator": operator }, ...(options.annotations ? { annotations: options.annotations } : {}) };
  return {
    ...(validating.length ? { validating: { apiVersion: "admissionregistration.k8s.io/v1", kind: "ValidatingWebhookConfiguration", metadata, webhooks: validating } } : {}),
    ...(mutating.length ? { mutating: { apiVersion: "admissionregistration.k8s.io/v1", kind: "MutatingWebhookConfiguration", metadata, webhooks: mutating } } : {}),
  };
}

/** Managed mode's configurations for `hooks`, served at `baseUrl` with a certificate signed by `caBundlePem` (kinds mapped by discovery). */
export async function webhookConfigurations(
  client: Client,
  operator: string,
  baseUrl: string,
  caBundlePem: string,
  hooks: readonly AdmissionHook[],
  namespaces?: readonly string[],
): Promise<WebhookConfigurations> {
  const caBundle = Buffer.from(caBundlePem).toString("base64");
  const mappings = new Map<AdmissionHook["kind"], { plural: string; namespaced: boolean }>();
  for (const hook of hooks) mappings.set(hook.kind, await client.mapper.mapping({ apiVersion: hook.kind.apiVersion, kind: hook.kind.kind }));
  return buildWebhookConfigurations(operator, hooks, {
    clientConfig: (hook) => ({ url: `${baseUrl}/${hook.type}/${hook.id}`, caBundle }),
    mapping: (kind) => mappings.get(kind) as { plural: string; namespaced: boolean },
    namespaces,
  });
}

/** Creates or replaces the configurations (idempotent). */
export async function registerWebhooks(client: Client, configs: WebhookConfigurations): Promise<void> {
  for (const [kind, config] of [
    [ValidatingWebhookConfiguration, configs.validating],
    [MutatingWebhookConfiguration, configs.mutating],
  ] as const) {
    if (!config) continue;
    const resource = client.resource(kind as typeof ValidatingWebhookConfiguration);
    const name = config.metadata?.name ?? "";
    for (let attempt = 0; ; attempt++) {
      try {
        const current = await resource.get(name);
        await resource.replace({ ...(config as admissionregistration.ValidatingWebhookConfiguration), metadata: { ...config.metadata, resourceVersion: current.metadata?.resourceVersion } });
        break;
      } catch (error) {
        if (error instanceof NotFoundError) {
          try {
            await resource.create(config as admissionregistration.ValidatingWebhookConfiguration);
            break;
          } catch (raced) {
            if (attempt >= 2) throw raced; // another replica created it: replace it next time round
            continue;
          }
        }
        if (attempt >= 2) throw error;
      }
    }
  }
}

/** Deletes the operator's configurations (absent ones are fine). */
export async function unregisterWebhooks(client: Client, operator: string): Promise<void> {
  for (const kind of [ValidatingWebhookConfiguration, MutatingWebhookConfiguration]) {
    try {
      await client.resource(kind as typeof ValidatingWebhookConfiguration).delete(operator);
    } catch (error) {
      if (!(error instanceof NotFoundError)) throw error;
    }
  }
}
