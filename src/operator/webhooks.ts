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
import { markerName, markerPath, registerWebhooks, unregisterWebhooks, WEBHOOK_MARKER, webhookConfigurations, type AdmissionHook, type WebhookConfigurations } from "../webhook/registration.js";
import { sharedCertificate } from "../webhook/certificates.js";
import { CustomResourceDefinition, MutatingWebhookConfiguration, ValidatingWebhookConfiguration } from "../core/builtins.js";
import { NotFoundError } from "../core/errors.js";
import { systemClock } from "../core/clock.js";
import type { Runnable } from "../controller/manager.js";
import type * as admissionregistration from "../core/kube/admissionregistration/v1.js";
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
  /**
   * After a graceful stop, put back the configurations this run replaced, as they were (delete
   * them when there were none). For development runs, whose loopback URL dies with them:
   * `kubeloop run --dev` and `kubeloop dev` set it. Wins over `removeOnStop`. Default false.
   */
  restoreOnStop?: boolean;
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
  /**
   * Managed mode: keeps the registration this operator wants while it acts (a leader-gated
   * runnable for the Manager): writes it when it starts (so an operator resuming after a dev
   * pause takes its webhooks back at once), then re-asserts it within `keepPeriodMs` whenever
   * someone else changed a URL, a caBundle or the set of webhooks. Undefined when unmanaged.
   */
  keeper?: Runnable;
  stop(): Promise<void>;
}

/** What serving the webhooks needs: what was registered, the user's options, and the operator's settings. */
export interface WebhookServing {
  /** The operator's name (the configurations' and the shared certificate Secret's names). */
  operator: string;
  admission: readonly AdmissionSpec[];
  conversions: readonly ConversionSpec[];
  /** What admission handlers get besides the request (indexes, a cache reader). */
  extras: AdmissionExtras;
  options: WebhookOptions;
  logger: Logger;
  /** The operator's namespaces (a namespaceSelector on the webhooks). */
  namespaces: readonly string[] | undefined;
  observer?: WebhookObserver;
  /** Where the shared self-signed certificate's Secret lives (the operator's namespace). */
  home: string;
  /** How often the keeper checks the registration, and every replica the certificate's Secret. Default 5 000 / 60 000 ms. */
  keepPeriodMs?: number;
  certificatePeriodMs?: number;
}

/** Starts the server, routes every spec, and (managed mode) registers the configurations. */
export async function serveWebhooks(client: Client, serving: WebhookServing): Promise<RunningWebhooks> {
  const { logger, options, operator, admission, conversions } = serving;
  const manage = options.manage ?? true;
  const shared = !options.certificate && manage ? { namespace: serving.home, name: `${operator}-webhook-selfsigned` } : undefined;
  const names = { dnsNames: ["localhost", ...(options.dnsNames ?? [])], ipAddresses: ["127.0.0.1"] };
  const first = shared ? await sharedCertificate(client, shared, names).then((c) => ({ tls: { certificate: c.certificate, key: c.key }, caBundle: c.caBundle, version: c.version })) : { ...(await certificates(options, manage)), version: "" };
  let caBundle = first.caBundle;
  const server = await WebhookServer.start({ port: options.port ?? 9443, ...(options.host ? { host: options.host } : {}), tls: first.tls, logger, ...(serving.observer ? { observer: serving.observer } : {}) });
  const stopping = new AbortController();
  let following: Promise<void> = Promise.resolve();
  let saved: WebhookConfigurations | undefined;
  const baseUrl = options.url ?? server.url;
  const wanted = async () => wantedConfigurations(client, serving, server, baseUrl, caBundle);
  const register = async () => {
    if (admission.length) await registerWebhooks(client, await wanted());
    for (const conversion of conversions) await setConversion(client, conversion.crd, { url: `${baseUrl}/convert/${conversion.crd}`, caBundle });
  };
  try {
    route(server, serving);
    logger.info({ url: baseUrl, webhooks: [...admission.map((s) => `/${s.hook.type}/${s.hook.id}`), ...conversions.map((c) => `/convert/${c.crd}`)] }, "serving webhooks");
    if (manage) {
      if (options.restoreOnStop) saved = await currentConfigurations(client, operator);
      await register();
      logger.info("webhook configurations registered");
    }
    if (shared) {
      // Every replica serves what the Secret holds now (another replica may have renewed it).
      following = follow(serving.certificatePeriodMs ?? 60_000, stopping.signal, async () => {
        const now = await sharedCertificate(client, shared, names);
        if (now.version === first.version && now.caBundle === caBundle) return;
        server.setCertificate(now.certificate, now.key);
        const caChanged = now.caBundle !== caBundle;
        caBundle = now.caBundle;
        logger.info({ secret: `${shared.namespace}/${shared.name}`, caChanged }, "webhook certificate changed in its Secret: serving the new one");
      }, (error) => logger.warn({ err: error }, "cannot read the webhook certificate's Secret: serving the current one"));
    }
  } catch (error) {
    stopping.abort();
    await server.close();
    throw error;
  }
  const keeper: Runnable | undefined = manage
    ? keepRegistration(operator, { register, wanted, client, logger, conversions, baseUrl, caBundle: () => caBundle, periodMs: serving.keepPeriodMs ?? 5_000 })
    : undefined;
  return {
    server,
    get caBundle() {
      return caBundle;
    },
    ...(keeper ? { keeper } : {}),
    stop: async () => {
      stopping.abort();
      await following;
      if (manage) await unregister(client, serving, saved);
      await server.close();
    },
  };
}

/** The server's routes: one per admission hook (objects its filters do not match are admitted unchanged), one per converted CRD. */
function route(server: WebhookServer, serving: WebhookServing): void {
  for (const spec of serving.admission) {
    const { hook } = spec;
    server.route(`/${hook.type}/${hook.id}`, {
      name: hook.id,
      budgetMs: Math.max(500, hook.timeoutSeconds * 1000 - 500),
      failurePolicy: hook.failurePolicy,
      run: async (request, transport) => {
        const subject = (request.object ?? request.oldObject ?? undefined) as KubeObject | undefined;
        if (subject && !matches(subject, spec.filters)) return { uid: request.uid, allowed: true };
        const withTransport = { ...serving.extras, ...transport };
        return spec.validate ? validate(request, spec.validate, withTransport) : mutate(request, spec.mutate as MutateFn<KubeObject>, withTransport);
      },
    });
  }
  for (const conversion of serving.conversions) {
    server.conversionRoute(`/convert/${conversion.crd}`, { name: `convert-${conversion.crd}`, run: (request) => convert(request, conversion.converters, conversion.storage) });
  }
}

/** The configurations this operator wants (managed mode), with marker webhooks when its options ask (their routes added to `server`). */
async function wantedConfigurations(client: Client, serving: WebhookServing, server: WebhookServer, baseUrl: string, caBundle: string): Promise<WebhookConfigurations> {
  const { admission, operator } = serving;
  const marked = (serving.options as { [WEBHOOK_MARKER]?: boolean })[WEBHOOK_MARKER] === true;
  if (marked) routeMarkers(server, operator, baseUrl, caBundle);
  return admission.length ? webhookConfigurations(client, operator, baseUrl, caBundle, admission.map((s) => s.hook), serving.namespaces, marked) : {};
}

/** The marker webhooks' routes for the configuration served with `caBundle` ({@link WEBHOOK_MARKER}): each denies, naming its path. */
function routeMarkers(server: WebhookServer, operator: string, baseUrl: string, caBundle: string): void {
  for (const type of ["validating", "mutating"] as const) {
    const path = markerPath(type, baseUrl, caBundle);
    server.route(path, {
      name: `marker-${type}`,
      budgetMs: 4_000,
      failurePolicy: "Fail",
      run: async (request) => ({ uid: request.uid, allowed: false, status: { code: 400, message: `${markerName(operator)} at ${path}: in effect`, reason: "BadRequest" } }),
    });
  }
}

/** At stop (managed mode): the registration as it was before the run (`restoreOnStop`), or none (`removeOnStop`), or left. */
async function unregister(client: Client, serving: WebhookServing, saved: WebhookConfigurations | undefined): Promise<void> {
  const { logger, options, operator } = serving;
  if (options.restoreOnStop) {
    await restoreConfigurations(client, operator, saved).then(
      () => logger.info(saved?.validating || saved?.mutating ? "webhook configurations restored as they were before this run" : "webhook configurations removed (there were none before this run)"),
      (error: unknown) => logger.warn({ err: error }, "could not restore the webhook configurations"),
    );
  } else if (options.removeOnStop) {
    await unregisterWebhooks(client, operator).catch((error: unknown) => logger.warn({ err: error }, "could not remove the webhook configurations"));
    for (const conversion of serving.conversions) await setConversion(client, conversion.crd, undefined).catch((error: unknown) => logger.warn({ err: error, crd: conversion.crd }, "could not remove the CRD's conversion webhook"));
  }
}

/** Runs `check` every `periodMs` until `signal` aborts; a failure goes to `onError` and the next period. */
async function follow(periodMs: number, signal: AbortSignal, check: () => Promise<void>, onError: (error: unknown) => void): Promise<void> {
  while (!signal.aborted) {
    try {
      await systemClock.sleep(periodMs, signal);
    } catch {
      return;
    }
    await check().catch(onError);
  }
}

/**
 * The leader-gated runnable that keeps the registration: writes it at start, then every period
 * compares what the API server holds with what this operator wants (per webhook: its name, URL
 * and caBundle; per CRD: its conversion URL and caBundle) and writes it again when they differ.
 */
function keepRegistration(
  operator: string,
  o: {
    register: () => Promise<void>;
    wanted: () => Promise<WebhookConfigurations>;
    client: Client;
    logger: Logger;
    conversions: readonly ConversionSpec[];
    baseUrl: string;
    caBundle: () => string;
    periodMs: number;
  },
): Runnable {
  let run: { stop: AbortController; done: Promise<void> } | undefined;
  const drifted = async (): Promise<string | undefined> => {
    const want = await o.wanted();
    const have = await currentConfigurations(o.client, operator);
    for (const type of ["validating", "mutating"] as const) {
      const a = fingerprint(want[type]);
      if (a !== fingerprint(have[type])) return `the ${type} webhook configuration ${operator}`;
    }
    for (const c of o.conversions) {
      const crd = await o.client.resource(CustomResourceDefinition).get(c.crd);
      const config = crd.spec.conversion?.webhook?.clientConfig;
      if (crd.spec.conversion?.strategy !== "Webhook" || config?.url !== `${o.baseUrl}/convert/${c.crd}` || config.caBundle !== Buffer.from(o.caBundle()).toString("base64")) return `the conversion of ${c.crd}`;
    }
    return undefined;
  };
  return {
    start: async () => {
      await o.register().catch((error: unknown) => o.logger.warn({ err: error }, "could not write the webhook configurations: trying again"));
      const stop = new AbortController();
      const done = follow(o.periodMs, stop.signal, async () => {
        const what = await drifted();
        if (!what) return;
        o.logger.warn({ changed: what }, "someone else changed this operator's webhook registration: writing it again");
        await o.register();
      }, (error) => o.logger.warn({ err: error }, "cannot check or write the webhook registration: trying again"));
      run = { stop, done };
    },
    stop: async () => {
      run?.stop.abort();
      await run?.done;
      run = undefined;
      return { abandoned: 0 };
    },
  };
}

/** What a configuration says where its webhooks are called: sorted names, URLs and caBundles. */
function fingerprint(config: { webhooks?: { name: string; clientConfig: { url?: string; caBundle?: string } }[] } | undefined): string {
  return JSON.stringify((config?.webhooks ?? []).map((w) => [w.name, w.clientConfig.url, w.clientConfig.caBundle]).sort());
}

/** The operator's configurations as the API server holds them now. */
async function currentConfigurations(client: Client, operator: string): Promise<WebhookConfigurations> {
  const get = async <K extends typeof ValidatingWebhookConfiguration | typeof MutatingWebhookConfiguration>(kind: K) =>
    client.resource(kind as typeof ValidatingWebhookConfiguration).get(operator).catch((error: unknown) => (error instanceof NotFoundError ? undefined : Promise.reject(error)));
  const [validating, mutating] = await Promise.all([get(ValidatingWebhookConfiguration), get(MutatingWebhookConfiguration)]);
  return { ...(validating ? { validating } : {}), ...(mutating ? { mutating: mutating as unknown as WebhookConfigurations["mutating"] } : {}) };
}

/** Puts back the configurations a run replaced (`saved`), or deletes those it made. */
async function restoreConfigurations(client: Client, operator: string, saved: WebhookConfigurations | undefined): Promise<void> {
  for (const [type, kind] of [["validating", ValidatingWebhookConfiguration], ["mutating", MutatingWebhookConfiguration]] as const) {
    const resource = client.resource(kind as typeof ValidatingWebhookConfiguration);
    const before = saved?.[type] as admissionregistration.ValidatingWebhookConfiguration | undefined;
    if (!before) {
      await resource.delete(operator).catch((error: unknown) => (error instanceof NotFoundError ? undefined : Promise.reject(error)));
      continue;
    }
    const now = await resource.get(operator).catch((error: unknown) => (error instanceof NotFoundError ? undefined : Promise.reject(error)));
    // Its content as it was; the server-set fields of metadata go (the current object's resourceVersion guards the write).
    const metadata = { ...before.metadata };
    for (const field of ["resourceVersion", "uid", "creationTimestamp", "managedFields", "generation"] as const) delete metadata[field];
    if (now) await resource.replace({ ...before, metadata: { ...metadata, name: operator, resourceVersion: now.metadata?.resourceVersion } });
    else await resource.create({ ...before, metadata: { ...metadata, name: operator } });
  }
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
