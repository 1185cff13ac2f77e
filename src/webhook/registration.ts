// Managed mode: the operator writes its own ValidatingWebhookConfiguration and
// MutatingWebhookConfiguration (named after the operator), pointing at the URL it serves, with
// the CA bundle of its serving certificate. Each replica writes the same content, so the
// writes are idempotent; `unregisterWebhooks` removes them (on cleanup, when asked).
import { createHash } from "node:crypto";
import type * as admissionregistration from "../core/kube/admissionregistration/v1.js";
import type { Client } from "../client/client.js";
import { ConfigMap, MutatingWebhookConfiguration, ValidatingWebhookConfiguration } from "../core/builtins.js";
import { waitFor } from "../core/async.js";
import { ForbiddenError, NotFoundError } from "../core/errors.js";
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
 * A marker webhook (for `runOperator`, kubeloop/testing): the API server takes a new or changed
 * webhook configuration into effect when its own informer delivers it, some time after the write
 * succeeded (milliseconds, seconds on a busy server), and admits what it has not seen yet unchecked.
 * A run whose webhook options carry this symbol adds to each configuration, first, a webhook that
 * denies dry-run ConfigMaps labelled for it, and keeps the operator's own webhooks off those
 * objects; a dry-run create refused naming its URL proves the configuration in effect. The same
 * wait as the Kubernetes e2e tests' marker webhooks. Not part of production configurations.
 */
export const WEBHOOK_MARKER: unique symbol = Symbol.for("kubeloop.webhookMarker");

/** The marker label for one configuration type of `operator`: the key, and the value the probe objects carry (a label value holds 63 characters). */
export function markerLabel(operator: string, type: "validating" | "mutating"): { key: string; value: string } {
  return { key: `kubeloop.dev/${type}-webhook-marker`, value: operator.length <= 63 ? operator : createHash("sha256").update(operator).digest("hex").slice(0, 40) };
}

/** The marker webhook's name in `operator`'s configurations. */
export function markerName(operator: string): string {
  return `marker.${operator}.test.kubeloop.dev`;
}

/**
 * The marker's path for a configuration served at `baseUrl` with `caBundle`: its last segment
 * names the content, so that a configuration left by an earlier run (another port or CA) refusing
 * a probe is not taken for this one; replicas serving the same URL and CA write the same one.
 */
export function markerPath(type: "validating" | "mutating", baseUrl: string, caBundle: string): string {
  return `/marker/${type}/${createHash("sha256").update(`${baseUrl}\n${caBundle}`).digest("hex").slice(0, 16)}`;
}

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
    /** Where the marker webhooks are called ({@link WEBHOOK_MARKER}); none when undefined. */
    marker?: (type: "validating" | "mutating") => WebhookClientConfig;
  },
): WebhookConfigurations {
  const markerKeys = (["validating", "mutating"] as const).map((type) => markerLabel(operator, type).key);
  const marker = (type: "validating" | "mutating") => ({
    name: markerName(operator),
    admissionReviewVersions: ["v1"],
    clientConfig: options.marker?.(type) as WebhookClientConfig,
    rules: [{ apiGroups: [""], apiVersions: ["v1"], resources: ["configmaps"], operations: ["CREATE"], scope: "Namespaced" }],
    // Called or not (a URL that forwards nowhere yet), the API server names it: in effect either way.
    failurePolicy: "Fail",
    sideEffects: "None",
    timeoutSeconds: 5,
    matchPolicy: "Equivalent",
    objectSelector: { matchLabels: { [markerLabel(operator, type).key]: markerLabel(operator, type).value } },
  });
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
      // With markers: the probes reach the markers only (validating webhooks are called in parallel).
      ...(options.marker ? { objectSelector: { matchExpressions: markerKeys.map((key) => ({ key, operator: "DoesNotExist" })) } } : {}),
    };
  };
  const withMarker = <T>(type: "validating" | "mutating", webhooks: T[]): (T | ReturnType<typeof marker>)[] => (options.marker && webhooks.length ? [marker(type), ...webhooks] : webhooks);
  const validating = withMarker("validating", hooks.filter((h) => h.type === "validate").map(one));
  const mutating = withMarker("mutating", hooks.filter((h) => h.type === "mutate").map((h) => ({ ...one(h), reinvocationPolicy: h.reinvocationPolicy ?? "Never" })));
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
  marked = false,
): Promise<WebhookConfigurations> {
  const caBundle = Buffer.from(caBundlePem).toString("base64");
  const mappings = new Map<AdmissionHook["kind"], { plural: string; namespaced: boolean }>();
  for (const hook of hooks) mappings.set(hook.kind, await client.mapper.mapping({ apiVersion: hook.kind.apiVersion, kind: hook.kind.kind }));
  return buildWebhookConfigurations(operator, hooks, {
    clientConfig: (hook) => ({ url: `${baseUrl}/${hook.type}/${hook.id}`, caBundle }),
    mapping: (kind) => mappings.get(kind) as { plural: string; namespaced: boolean },
    namespaces,
    ...(marked ? { marker: (type: "validating" | "mutating") => ({ url: `${baseUrl}${markerPath(type, baseUrl, caBundlePem)}`, caBundle }) } : {}),
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

/**
 * Waits until the API server calls `operator`'s webhook configurations as written with markers
 * ({@link WEBHOOK_MARKER}): per configuration, dry-run creates of a ConfigMap labelled for its
 * marker in `namespace` until one is refused naming the marker (denied by it, or failing to
 * reach it: the configuration is in effect either way; reachability is the caller's business).
 * Configurations without a marker are not waited for.
 * @returns false when `client` may not create ConfigMaps in `namespace` (nothing proven) or
 * `signal` aborted the wait, else true.
 * @throws Error naming the configuration when it is not in effect within `timeoutMs`.
 */
export async function webhooksInEffect(client: Client, operator: string, options: { namespace?: string; timeoutMs: number; signal?: AbortSignal }): Promise<boolean> {
  const namespace = options.namespace ?? "default";
  for (const [type, kind] of [["mutating", MutatingWebhookConfiguration], ["validating", ValidatingWebhookConfiguration]] as const) {
    const resource = client.resource(kind as typeof ValidatingWebhookConfiguration);
    // Read again before each probe: another replica may have written its own since.
    const markerUrl = async () => {
      const config = await resource.get(operator).catch((error: unknown) => (error instanceof NotFoundError ? undefined : Promise.reject(error)));
      return config?.webhooks?.find((w) => w.name === markerName(operator))?.clientConfig.url;
    };
    if (!(await markerUrl())) continue;
    const label = markerLabel(operator, type);
    const probe = { metadata: { generateName: "kubeloop-webhook-marker-", labels: { [label.key]: label.value } } };
    let forbidden = false;
    await waitFor(
      `the API server to call the ${type} webhook configuration ${operator}`,
      async () => {
        if (options.signal?.aborted) return true;
        const url = await markerUrl();
        if (!url) throw new Error(`its marker webhook is gone from the ${type} configuration`);
        try {
          await client.resource(ConfigMap).namespace(namespace).create(probe, { dryRun: true });
          return false; // admitted: the API server has not seen the configuration yet
        } catch (error) {
          // Denied by this marker (its message names its path), or not reached at this URL (the API server names it).
          if (error instanceof Error && error.message.includes(new URL(url).pathname)) return true;
          if (error instanceof ForbiddenError && !error.message.includes(markerName(operator))) return (forbidden = true);
          return false; // an earlier configuration's marker, or a request that failed: try again
        }
      },
      { timeoutMs: options.timeoutMs, intervalMs: 50 },
    );
    if (forbidden || options.signal?.aborted) return false;
  }
  return true;
}
