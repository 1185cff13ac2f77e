// Unmanaged webhook manifests (cert-manager mode), without a server: names that must agree across
// objects (Certificate → Secret → Deployment volume; inject-ca-from → Certificate; Service), and
// the Helm chart turning every namespace occurrence into the release's. Applied to the real API
// server in test/webhooks-unmanaged.serial.test.ts.
/* eslint-disable @typescript-eslint/no-explicit-any -- the test reads deep fields of generated plain objects */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { CustomResourceDefinition } from "../core/kube/apiextensions/v1.js";
import { kindOf } from "../core/objects.js";
import type { AdmissionHook } from "../webhook/registration.js";
import { deployManifests, helmChart } from "./deploy.js";
import { WEBHOOK_CERT_DIR, certManagerWebhookManifests, webhookNames, withConversionWebhook } from "./webhooks.js";

const Widget = kindOf("example.com/v1", "Widget", { plural: "widgets", namespaced: true });
const hook = (type: "validate" | "mutate", id: string): AdmissionHook => ({ type, id, kind: Widget, operations: ["CREATE"], failurePolicy: "Fail", timeoutSeconds: 5, sideEffects: "None" });

describe("cert-manager webhook manifests", () => {
  it("Issuer, Certificate for the Service's names, configurations calling the Service with the CA injected from that Certificate", () => {
    const [issuer, certificate, validating, mutating, ...rest] = certManagerWebhookManifests([hook("validate", "v"), hook("mutate", "m")], { name: "op", namespace: "ops", namespaces: ["a", "b"] }) as Record<string, any>[];
    assert.equal(rest.length, 0);
    assert.deepEqual([issuer?.kind, certificate?.kind, validating?.kind, mutating?.kind], ["Issuer", "Certificate", "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"]);
    assert.equal(certificate?.spec.issuerRef.name, issuer?.metadata.name);
    assert.deepEqual(certificate?.spec.dnsNames, ["op.ops.svc", "op.ops.svc.cluster.local"]);
    assert.equal(certificate?.spec.secretName, webhookNames({ name: "op", namespace: "ops" }).secret);
    for (const config of [validating, mutating]) {
      assert.equal(config?.metadata.annotations["cert-manager.io/inject-ca-from"], `ops/${certificate?.metadata.name}`);
      const webhook = config?.webhooks[0];
      assert.equal(webhook.clientConfig.caBundle, undefined, "cert-manager fills it");
      assert.equal(webhook.clientConfig.url, undefined);
      assert.deepEqual(webhook.namespaceSelector.matchExpressions[0].values, ["a", "b"]);
    }
    assert.deepEqual(validating?.webhooks[0].clientConfig.service, { namespace: "ops", name: "op", path: "/validate/v", port: 443 });
    assert.equal(mutating?.webhooks[0].reinvocationPolicy, "Never");
  });

  it("a kind without a known plural fails by name", () => {
    const Odd = kindOf("example.com/v1", "Odd");
    assert.throws(() => certManagerWebhookManifests([{ ...hook("validate", "v"), kind: Odd }], { name: "op", namespace: "ops" }), /plural of example.com\/v1 Odd is unknown/);
  });

  it("the CRD's conversion calls the Service at /convert/<crd>, CA injected", () => {
    const crd = { apiVersion: "apiextensions.k8s.io/v1", kind: "CustomResourceDefinition", metadata: { name: "widgets.example.com" }, spec: { group: "example.com", names: { kind: "Widget", plural: "widgets" }, scope: "Namespaced", versions: [] } } as CustomResourceDefinition;
    const converted = withConversionWebhook(crd, { name: "op", namespace: "ops" });
    assert.equal(converted.metadata?.annotations?.["cert-manager.io/inject-ca-from"], "ops/op-webhook");
    assert.deepEqual(converted.spec.conversion?.webhook?.clientConfig?.service, { namespace: "ops", name: "op", path: "/convert/widgets.example.com", port: 443 });
    assert.equal(crd.spec.conversion, undefined, "the input is not changed");
  });

  it("the Deployment mounts the Secret and serves unmanaged; managed mode has no volume and registers", () => {
    const container = (secret?: string) => {
      const d = deployManifests({ name: "op", namespace: "ops", image: "i", leaderElection: true, webhooks: true, ...(secret ? { webhookCertSecret: secret } : {}) })[0] as any;
      return { args: d.spec.template.spec.containers[0].args as string[], mounts: d.spec.template.spec.containers[0].volumeMounts, volumes: d.spec.template.spec.volumes };
    };
    const unmanaged = container("op-webhook-tls");
    assert.ok(unmanaged.args.includes("--webhook-unmanaged"));
    assert.equal(unmanaged.args[unmanaged.args.indexOf("--webhook-cert-dir") + 1], WEBHOOK_CERT_DIR);
    assert.deepEqual(unmanaged.volumes[1], { name: "webhook-certificate", secret: { secretName: "op-webhook-tls" } });
    assert.deepEqual(unmanaged.mounts[1], { name: "webhook-certificate", mountPath: WEBHOOK_CERT_DIR, readOnly: true });
    const managed = container();
    assert.ok(!managed.args.includes("--webhook-unmanaged") && managed.args.includes("--webhook-url"));
    assert.equal(managed.volumes.length, 1);
  });

  it("the Helm chart makes every occurrence of the sentinel namespace the release's", () => {
    const text = "namespace: SENTINEL\nannotations:\n  cert-manager.io/inject-ca-from: SENTINEL/op-webhook\ndnsNames: [op.SENTINEL.svc]\nimage: img\nreplicas: 2\n";
    const chart = helmChart("op", "1.0.0", { "webhooks.yaml": text }, { image: "img", replicas: 2, namespace: "SENTINEL" });
    assert.equal(chart["templates/webhooks.yaml"], 'namespace: {{ .Release.Namespace }}\nannotations:\n  cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/op-webhook\ndnsNames: [op.{{ .Release.Namespace }}.svc]\nimage: {{ .Values.image | quote }}\nreplicas: {{ .Values.replicas }}\n');
  });

  it("the chart's CRDs go to crds/ (Helm installs them first, unrendered), unless they name the namespace (a conversion webhook's Service)", () => {
    const plain = "kind: CustomResourceDefinition\nmetadata:\n  name: budgets.example.com\n";
    const converted = `${plain}spec:\n  conversion:\n    webhook:\n      clientConfig:\n        service: { namespace: SENTINEL, name: op-webhook }\n`;
    const defaults = { image: "img", replicas: 2, namespace: "SENTINEL" };
    const one = helmChart("op", "1.0.0", { "crds.yaml": plain }, defaults);
    assert.equal(one["crds/crds.yaml"], plain);
    assert.equal(one["templates/crds.yaml"], undefined);
    const other = helmChart("op", "1.0.0", { "crds.yaml": converted }, defaults);
    assert.equal(other["crds/crds.yaml"], undefined);
    assert.match(other["templates/crds.yaml"] ?? "", /namespace: \{\{ \.Release\.Namespace \}\}/);
  });
});
