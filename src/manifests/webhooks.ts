// Webhook registration as manifests, for operators that do not register their own (unmanaged
// mode, `kubeloop generate --webhooks cert-manager`): cert-manager issues the serving certificate
// into a Secret the operator's Pod mounts, and its CA injector fills the `caBundle` of the
// webhook configurations and of the CRD conversion stanzas this writes (annotation
// `cert-manager.io/inject-ca-from`). The API server calls the operator's Service. The layout is
// kubebuilder's (a self-signed Issuer and a Certificate for the Service's DNS names).
import type { CustomResourceDefinition } from "../core/kube/apiextensions/v1.js";
import type { ResourceKind } from "../core/objects.js";
import { buildWebhookConfigurations, type AdmissionHook } from "../webhook/registration.js";

/** Where the generated Deployment mounts the certificate Secret (tls.crt, tls.key, ca.crt). */
export const WEBHOOK_CERT_DIR = "/etc/kubeloop/webhook";

/** Where the operator runs and what it serves, for the cert-manager manifests. */
export interface CertManagerOptions {
  /** The operator's name: names the Service, Certificate, Issuer, Secret and configurations. */
  name: string;
  /** Where the operator (its Service, Certificate and Secret) runs. */
  namespace: string;
  /** Exact namespaces the operator serves (a namespaceSelector); undefined: all. */
  namespaces?: readonly string[];
}

/** The names the generated objects share. */
export function webhookNames(o: { name: string; namespace: string }): { certificate: string; issuer: string; secret: string; injectFrom: string; dnsNames: string[] } {
  const certificate = `${o.name}-webhook`;
  return {
    certificate,
    issuer: `${o.name}-selfsigned`,
    secret: `${o.name}-webhook-tls`,
    injectFrom: `${o.namespace}/${certificate}`,
    dnsNames: [`${o.name}.${o.namespace}.svc`, `${o.name}.${o.namespace}.svc.cluster.local`],
  };
}

/**
 * The Issuer, the Certificate and the Validating/MutatingWebhookConfigurations for `hooks`, each
 * webhook calling the Service `<name>` on port 443 at `/<validate|mutate>/<id>`. Fails naming a
 * kind whose plural is unknown.
 */
export function certManagerWebhookManifests(hooks: readonly AdmissionHook[], o: CertManagerOptions): object[] {
  const n = webhookNames(o);
  const labels = { "app.kubernetes.io/name": o.name, "app.kubernetes.io/managed-by": "kubeloop" };
  const issuer = { apiVersion: "cert-manager.io/v1", kind: "Issuer", metadata: { name: n.issuer, namespace: o.namespace, labels }, spec: { selfSigned: {} } };
  const certificate = {
    apiVersion: "cert-manager.io/v1",
    kind: "Certificate",
    metadata: { name: n.certificate, namespace: o.namespace, labels },
    spec: {
      secretName: n.secret,
      dnsNames: n.dnsNames,
      issuerRef: { kind: "Issuer", name: n.issuer },
      privateKey: { algorithm: "ECDSA", size: 256, rotationPolicy: "Always" },
    },
  };
  const configs = buildWebhookConfigurations(o.name, hooks, {
    clientConfig: (hook) => ({ service: { namespace: o.namespace, name: o.name, path: `/${hook.type}/${hook.id}`, port: 443 } }),
    mapping: (kind) => kindMapping(kind, "its webhook configuration"),
    namespaces: o.namespaces,
    annotations: { "cert-manager.io/inject-ca-from": n.injectFrom },
  });
  return [issuer, certificate, ...(configs.validating ? [configs.validating] : []), ...(configs.mutating ? [configs.mutating] : [])];
}

/** `crd` with its conversion served by the operator's Service at `/convert/<crd name>`, the CA injected by cert-manager. */
export function withConversionWebhook(crd: CustomResourceDefinition, o: { name: string; namespace: string }): CustomResourceDefinition {
  const n = webhookNames(o);
  return {
    ...crd,
    metadata: { ...crd.metadata, annotations: { ...crd.metadata?.annotations, "cert-manager.io/inject-ca-from": n.injectFrom } },
    spec: {
      ...crd.spec,
      conversion: {
        strategy: "Webhook",
        webhook: { conversionReviewVersions: ["v1"], clientConfig: { service: { namespace: o.namespace, name: o.name, path: `/convert/${crd.metadata?.name ?? ""}`, port: 443 } } },
      },
    },
  };
}

/**
 * A kind's plural and scope from its descriptor, for manifests that name it (RBAC rules, webhook
 * rules). Fails naming a kind whose plural is unknown and what needed it.
 */
export function kindMapping(kind: ResourceKind, neededFor: string): { plural: string; namespaced: boolean } {
  if (!kind.plural) throw new Error(`the plural of ${kind.apiVersion} ${kind.kind} is unknown: declare it (kindOf(apiVersion, kind, { plural, namespaced })) so ${neededFor} can name it`);
  return { plural: kind.plural, namespaced: kind.namespaced ?? true };
}
