// The operator's admission webhooks: what `op.on.validate` / `op.on.mutate` register, and how a
// running operator serves them (an HTTPS server with a self-signed certificate, or files the
// user gives) and registers them with the API server (managed mode).
import type { Logger } from "pino";
import type { Client } from "../client/client.js";
import type { KubeObject, ResourceKind } from "../core/objects.js";
import { checkHost, checkPort, isDnsSubdomain } from "../core/check.js";
import { matches, type Filters } from "../handlers/filters.js";
import { mutate, validate, type AdmissionExtras, type MutateFn, type Operation, type ValidateFn } from "../webhook/admission.js";
import { convert, type Converter } from "../webhook/conversion.js";
import { CustomResourceDefinition } from "../core/builtins.js";
import { registerWebhooks, unregisterWebhooks, webhookConfigurations, type AdmissionHook } from "../webhook/registration.js";
import { WebhookServer, type ServingCertificate, type WebhookObserver } from "../webhook/server.js";
import { readFileSync } from "node:fs";

/** Options of `op.on.validate` and `op.on.mutate`. */
export interface AdmissionOptions<T extends KubeObject> extends Filters<T> {
  /** Route and webhook name part. Default: `<validate|mutate>-<kind, lower case>`, numbered when repeated. */
  id?: string;
  /** Default CREATE and UPDATE. */
  operations?: Operation[];
  /** e.g. "status": the webhook sees that subresource. */
  subresource?: string;
  /** What the API server does when the webhook cannot be reached or is too slow: "Fail" (deny, default) or "Ignore" (admit). */
  failurePolicy?: "Fail" | "Ignore";
  /** How long the API server waits (1–30). Default 10. The handler is answered for, by the failure policy, half a second before. */
  timeoutSeconds?: number;
  /** "None" (default) or "NoneOnDryRun" (the handler has side effects, skipped when `ctx.dryRun`). */
  sideEffects?: "None" | "NoneOnDryRun";
}

/** Options of `op.on.mutate`. */
export interface MutateOptions<T extends KubeObject> extends AdmissionOptions<T> {
  /** "IfNeeded": called again when a later webhook changed the object. Default "Never". */
  reinvocationPolicy?: "Never" | "IfNeeded";
}

/** Where and how the operator serves its webhooks. */
export interface WebhookOptions {
  /** Port to listen on (0–65535). Default 9443 (controller-runtime's); 0 for a free one. */
  port?: number;
  /** Default "0.0.0.0". */
  host?: string;
  /**
   * The base URL the API server calls, e.g. `https://my-operator.ns.svc:443`: https, no user
   * information, query or fragment. Default: this server's loopback URL (right for `kubeloop dev`
   * and the local control plane).
   */
  url?: string;
  /**
   * Certificate files (re-read when they change, as cert-manager rotates them) and the CA that
   * signed them (for the caBundle; needed in managed mode only). Default: a self-signed CA and a serving certificate made at
   * start for 127.0.0.1, localhost and `dnsNames`.
   */
  certificate?: { certFile: string; keyFile: string; caFile?: string };
  /** Extra DNS names for the self-signed serving certificate (e.g. the Service's). */
  dnsNames?: string[];
  /**
   * Write the Validating/MutatingWebhookConfiguration and the CRDs' conversion stanzas (default
   * true); false: the operator only serves, manifests register (`kubeloop generate --webhooks
   * cert-manager`).
   */
  manage?: boolean;
  /** Delete the configurations after a graceful stop. Default false (a restarting operator keeps them). */
  removeOnStop?: boolean;
}

/**
 * Refuses webhook options that cannot work, naming the field (a RangeError or TypeError): a port
 * outside 0–65535, a `url` the API server would not call (not https://, with user information, a
 * query or a fragment: admissionregistration's rules for `clientConfig.url`), a DNS name a
 * certificate cannot carry, a certificate without both files.
 */
export function checkWebhookOptions(o: WebhookOptions): void {
  checkPort("webhooks.port", o.port);
  checkHost("webhooks.host", o.host);
  if (o.url !== undefined) {
    let url: URL | undefined;
    try {
      url = new URL(o.url);
    } catch {
      url = undefined;
    }
    if (!url || url.protocol !== "https:") throw new TypeError(`webhooks.url ${JSON.stringify(o.url)} must be an https:// URL (the API server calls webhooks over TLS only)`);
    if (url.username || url.password) throw new TypeError(`webhooks.url ${JSON.stringify(o.url)} must have no user information`);
    if (o.url.includes("?") || o.url.includes("#")) throw new TypeError(`webhooks.url ${JSON.stringify(o.url)} must have no query or fragment (the API server refuses them)`);
  }
  for (const name of o.dnsNames ?? []) {
    // A certificate's DNS names are case-insensitive and may start with one wildcard label.
    if (typeof name !== "string" || name.length > 253 || !isDnsSubdomain(name.replace(/^\*\./, "").toLowerCase())) throw new TypeError(`webhooks.dnsNames: ${JSON.stringify(name)} is not a DNS name (letters, digits, '-', dots; an optional leading '*.')`);
  }
  const cert = o.certificate;
  if (cert !== undefined && !(typeof cert.certFile === "string" && cert.certFile && typeof cert.keyFile === "string" && cert.keyFile)) {
    throw new TypeError("webhooks.certificate needs certFile and keyFile (paths of the PEM files)");
  }
}

export interface AdmissionSpec {
  hook: AdmissionHook;
  kind: ResourceKind;
  filters: Filters<KubeObject>;
  validate?: ValidateFn<KubeObject>;
  mutate?: MutateFn<KubeObject>;
}

/** The conversions registered for one CRD (by `op.convert`). */
export interface ConversionSpec {
  /** The CRD's name, e.g. "widgets.example.com". */
  crd: string;
  storage: string;
  converters: Converter[];
}

/** A running set of webhooks: the server, and how to stop it. */
export interface RunningWebhooks {
  server: WebhookServer;
  caBundle: string;
  stop(): Promise<void>;
}

/** Starts the server, routes every spec, and (managed mode) registers the configurations. */
export async function serveWebhooks(
  client: Client,
  operator: string,
  specs: readonly AdmissionSpec[],
  conversions: readonly ConversionSpec[],
  extras: AdmissionExtras,
  options: WebhookOptions,
  logger: Logger,
  namespaces: readonly string[] | undefined,
  observer?: WebhookObserver,
): Promise<RunningWebhooks> {
  const { tls, caBundle } = await certificates(options, options.manage ?? true);
  const server = await WebhookServer.start({ port: options.port ?? 9443, ...(options.host ? { host: options.host } : {}), tls, logger, ...(observer ? { observer } : {}) });
  try {
    for (const spec of specs) {
      const { hook } = spec;
      server.route(`/${hook.type}/${hook.id}`, {
        name: hook.id,
        budgetMs: Math.max(500, hook.timeoutSeconds * 1000 - 500),
        failurePolicy: hook.failurePolicy,
        run: async (request) => {
          // Objects the handler's filters do not match are admitted unchanged.
          const subject = (request.object ?? request.oldObject ?? undefined) as KubeObject | undefined;
          if (subject && !matches(subject, spec.filters)) return { uid: request.uid, allowed: true };
          return spec.validate ? validate(request, spec.validate, extras) : mutate(request, spec.mutate as MutateFn<KubeObject>, extras);
        },
      });
    }
    for (const conversion of conversions) {
      server.conversionRoute(`/convert/${conversion.crd}`, { name: `convert-${conversion.crd}`, run: (request) => convert(request, conversion.converters, conversion.storage) });
    }
    const baseUrl = options.url ?? server.url;
    logger.info({ url: baseUrl, webhooks: [...specs.map((s) => `/${s.hook.type}/${s.hook.id}`), ...conversions.map((c) => `/convert/${c.crd}`)] }, "serving webhooks");
    if (options.manage ?? true) {
      if (specs.length) await registerWebhooks(client, await webhookConfigurations(client, operator, baseUrl, caBundle, specs.map((s) => s.hook), namespaces));
      for (const conversion of conversions) await setConversion(client, conversion.crd, { url: `${baseUrl}/convert/${conversion.crd}`, caBundle });
      logger.info("webhook configurations registered");
    }
  } catch (error) {
    await server.close();
    throw error;
  }
  return {
    server,
    caBundle,
    stop: async () => {
      if ((options.manage ?? true) && options.removeOnStop) {
        await unregisterWebhooks(client, operator).catch((error: unknown) => logger.warn({ err: error }, "could not remove the webhook configurations"));
        for (const conversion of conversions) await setConversion(client, conversion.crd, undefined).catch((error: unknown) => logger.warn({ err: error, crd: conversion.crd }, "could not remove the CRD's conversion webhook"));
      }
      await server.close();
    },
  };
}

async function certificates(options: WebhookOptions, manage: boolean): Promise<{ tls: ServingCertificate; caBundle: string }> {
  if (options.certificate) {
    const { certFile, keyFile, caFile } = options.certificate;
    if (manage && !caFile) throw new Error("webhooks.certificate.caFile is needed to register the webhooks (managed mode): give the CA that signed the serving certificate, or manage: false");
    return { tls: { certFile, keyFile }, caBundle: caFile ? readFileSync(caFile, "utf8") : "" };
  }
  // Loaded on use: @peculiar/x509 costs ~130 ms and ~19 MiB at import, which operators without
  // webhooks (or with certificate files) should not pay.
  const { createCertificateAuthority } = await import("../core/pki.js");
  const ca = await createCertificateAuthority("kubeloop-webhook-ca");
  const serving = await ca.sign({ commonName: "kubeloop-webhook", usage: "server", ipAddresses: ["127.0.0.1"], dnsNames: ["localhost", ...(options.dnsNames ?? [])] });
  return { tls: serving, caBundle: ca.certificate };
}

/**
 * Points the CRD's conversion at the operator (`strategy: Webhook`), or back to `None`. The CRD
 * must exist (install it first: `kubeloop run --install-crds`, or your manifests).
 */
async function setConversion(client: Client, crd: string, webhook: { url: string; caBundle: string } | undefined): Promise<void> {
  const conversion = webhook
    ? { strategy: "Webhook", webhook: { conversionReviewVersions: ["v1"], clientConfig: { url: webhook.url, caBundle: Buffer.from(webhook.caBundle).toString("base64") } } }
    : { strategy: "None", webhook: null };
  await client.resource(CustomResourceDefinition).patch(crd, { spec: { conversion } }, { type: "merge" });
}
