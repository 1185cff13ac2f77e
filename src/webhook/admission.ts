// Admission webhooks (admission.k8s.io/v1): what a validating or mutating handler gets and
// returns, and how one AdmissionReview is answered. Pure: no server, no I/O, so every rule of
// the protocol is tested without one.
import type { PeerCertificate as TlsPeerCertificate } from "node:tls";
import jsonPatch from "fast-json-patch";
import { deepFreeze, type KubeObject } from "../core/objects.js";
import type { CacheReader } from "../controller/cache.js";
import type { Indexes } from "../handlers/registry.js";

/** Thrown by a validating or mutating handler to deny the request; `code` becomes the HTTP-like status in the answer (default 403). */
export class AdmissionError extends Error {
  override name = "AdmissionError";
  readonly code: number;
  /** Machine-readable reason, e.g. "Invalid" (default "Forbidden"). */
  readonly reason: string;
  constructor(message: string, options: { code?: number; reason?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? {} : { cause: options.cause });
    this.code = options.code ?? 403;
    this.reason = options.reason ?? "Forbidden";
  }
}

export type Operation = "CREATE" | "UPDATE" | "DELETE" | "CONNECT";

/** The request as the API server sent it (admission.k8s.io/v1 AdmissionRequest), trimmed to what handlers use. */
export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  resource: { group: string; version: string; resource: string };
  subResource?: string;
  name?: string;
  namespace?: string;
  operation: Operation;
  userInfo: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
  object?: KubeObject | null;
  oldObject?: KubeObject | null;
  dryRun?: boolean;
  options?: unknown;
}

/** What a validating handler gets. */
export interface ValidateContext<T extends KubeObject> {
  /** The object being admitted (for DELETE: undefined; see `old`). Frozen. */
  object: T | undefined;
  /** The object before (UPDATE, DELETE). Frozen. */
  old: T | undefined;
  operation: Operation;
  /** The request will not be persisted (kubectl --dry-run=server): have no side effects. */
  dryRun: boolean;
  userInfo: AdmissionRequest["userInfo"];
  /** The whole request. */
  request: AdmissionRequest;
  /** Adds a warning shown by kubectl (also: return a list of strings). */
  warn(message: string): void;
  /** The operator's indexes (`op.index`), as handlers see them. */
  indexes: Indexes;
  /** The operator's cached reader (`cache.get(Kind, name, namespace)`, `cache.list(Kind)`): no API call per admission. */
  cache: CacheReader;
  /**
   * The HTTP request headers of the call (kopf's `headers`), names in lower case, read-only: e.g.
   * an `Authorization` header when the API server is configured to send credentials to webhooks.
   */
  headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  /**
   * The client certificate the caller presented over TLS (kopf's `sslpeer`), read-only; undefined
   * when it presented none (the API server sends one only when its admission control
   * configuration names a client certificate for this webhook). Not verified against a CA here:
   * check `issuer` / `fingerprint256` yourself before trusting it.
   */
  peer: Readonly<PeerCertificate> | undefined;
}

/** The TLS client certificate a caller presented: subject, issuer, validity and fingerprints (Node's `PeerCertificate`). */
export type PeerCertificate = Pick<TlsPeerCertificate, "subject" | "issuer" | "subjectaltname" | "valid_from" | "valid_to" | "fingerprint256" | "serialNumber" | "raw">;

/** What the transport says about one call: its headers and the caller's certificate. */
export type CallTransport = Pick<ValidateContext<KubeObject>, "headers" | "peer">;

/** What the operator gives every admission handler besides the request. */
export type AdmissionExtras = Pick<ValidateContext<KubeObject>, "indexes" | "cache"> & Partial<CallTransport>;

/** What a mutating handler gets: `object` is a mutable copy; change it in place. */
export interface MutateContext<T extends KubeObject> extends Omit<ValidateContext<T>, "object"> {
  object: T;
}

export type ValidateFn<T extends KubeObject> = (ctx: ValidateContext<T>) => void | string[] | Promise<void | string[]>;
export type MutateFn<T extends KubeObject> = (ctx: MutateContext<T>) => void | string[] | Promise<void | string[]>;

/** The answer (admission.k8s.io/v1 AdmissionResponse). */
export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code: number; message: string; reason?: string };
  warnings?: string[];
  patchType?: "JSONPatch";
  /** Base64 of the JSON patch. */
  patch?: string;
}

/** A whole AdmissionReview answer for `response`. */
export function review(response: AdmissionResponse): { apiVersion: "admission.k8s.io/v1"; kind: "AdmissionReview"; response: AdmissionResponse } {
  return { apiVersion: "admission.k8s.io/v1", kind: "AdmissionReview", response };
}

/**
 * Checks that `body` is an admission.k8s.io/v1 AdmissionReview with a request; returns it, or
 * a message saying what is wrong (for a 400).
 */
export function parseReview(body: unknown): AdmissionRequest | string {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return "the body is not a JSON object";
  const b = body as { apiVersion?: unknown; kind?: unknown; request?: unknown };
  if (b.kind !== "AdmissionReview") return `kind is ${JSON.stringify(b.kind)}, not "AdmissionReview"`;
  if (b.apiVersion !== "admission.k8s.io/v1") return `apiVersion is ${JSON.stringify(b.apiVersion)}: only admission.k8s.io/v1 is served (admissionReviewVersions: ["v1"])`;
  const r = b.request as Partial<AdmissionRequest> | undefined;
  if (typeof r !== "object" || r === null) return "the AdmissionReview has no request";
  if (typeof r.uid !== "string" || !r.uid) return "request.uid is missing";
  if (!["CREATE", "UPDATE", "DELETE", "CONNECT"].includes(r.operation as string)) return `request.operation ${JSON.stringify(r.operation)} is not CREATE, UPDATE, DELETE or CONNECT`;
  if (typeof r.kind !== "object" || r.kind === null) return "request.kind is missing";
  return { ...r, userInfo: r.userInfo ?? {} } as AdmissionRequest;
}

/** Runs a validating handler: allowed with its warnings, or denied with the AdmissionError's (or an unexpected error's) message. */
export async function validate<T extends KubeObject>(request: AdmissionRequest, fn: ValidateFn<T>, extras: AdmissionExtras): Promise<AdmissionResponse> {
  const warnings: string[] = [];
  const ctx: ValidateContext<T> = { ...common<T>(request, warnings, extras), object: frozen(request.object) as T | undefined };
  try {
    const returned = await fn(ctx);
    return allowed(request.uid, [...warnings, ...(returned ?? [])]);
  } catch (error) {
    return denied(request.uid, error, warnings);
  }
}

/** What validating and mutating handlers both get; `warnings` collects `ctx.warn`. */
function common<T extends KubeObject>(request: AdmissionRequest, warnings: string[], extras: AdmissionExtras): Omit<ValidateContext<T>, "object"> {
  return {
    old: frozen(request.oldObject) as T | undefined,
    operation: request.operation,
    dryRun: request.dryRun === true,
    userInfo: request.userInfo,
    request,
    warn: (message) => void warnings.push(message),
    headers: {},
    peer: undefined,
    ...extras,
  };
}

/** Runs a mutating handler on a copy of the object; the answer carries the JSON patch from the original to the copy (none when unchanged). */
export async function mutate<T extends KubeObject>(request: AdmissionRequest, fn: MutateFn<T>, extras: AdmissionExtras): Promise<AdmissionResponse> {
  const warnings: string[] = [];
  const original = (request.object ?? {}) as T;
  const object = structuredClone(original);
  const ctx: MutateContext<T> = { ...common<T>(request, warnings, extras), object };
  try {
    const returned = await fn(ctx);
    const ops = jsonPatch.compare(original as object, ctx.object as object);
    const response = allowed(request.uid, [...warnings, ...(returned ?? [])]);
    if (ops.length) Object.assign(response, { patchType: "JSONPatch" as const, patch: Buffer.from(JSON.stringify(ops)).toString("base64") });
    return response;
  } catch (error) {
    return denied(request.uid, error, warnings);
  }
}

function allowed(uid: string, warnings: string[]): AdmissionResponse {
  return { uid, allowed: true, ...(warnings.length ? { warnings } : {}) };
}

/** A denial: an AdmissionError's own message and code; anything else says it was unexpected. */
export function denied(uid: string, error: unknown, warnings: string[] = []): AdmissionResponse {
  const status =
    error instanceof AdmissionError
      ? { code: error.code, message: error.message, reason: error.reason }
      : { code: 500, message: `the admission handler failed: ${error instanceof Error ? error.message : String(error)}`, reason: "InternalError" };
  return { uid, allowed: false, status, ...(warnings.length ? { warnings } : {}) };
}

function frozen(o: KubeObject | null | undefined): KubeObject | undefined {
  return o ? deepFreeze(o) : undefined;
}
