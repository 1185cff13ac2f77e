// CRD version conversion (apiextensions.k8s.io/v1 ConversionReview): the API server sends
// objects in some version and asks for them in another; the operator's `op.convert` functions
// do it. Pure: no server, no I/O.
import type { KubeObject } from "../core/objects.js";

/** Converts one object from one version to another (its apiVersion and metadata are kept by kubeloop). */
export type ConvertFn = (object: KubeObject) => KubeObject | Promise<KubeObject>;

/** One registered conversion, between version names (e.g. "v1" → "v2"). */
export interface Converter {
  from: string;
  to: string;
  fn: ConvertFn;
}

export interface ConversionRequest {
  uid: string;
  /** e.g. "example.com/v2". */
  desiredAPIVersion: string;
  objects: KubeObject[];
}

export interface ConversionResponse {
  uid: string;
  convertedObjects: KubeObject[];
  result: { status: "Success" } | { status: "Failure"; message: string };
}

/** Checks that `body` is an apiextensions.k8s.io/v1 ConversionReview with a request; returns it, or what is wrong. */
export function parseConversionReview(body: unknown): ConversionRequest | string {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return "the body is not a JSON object";
  const b = body as { apiVersion?: unknown; kind?: unknown; request?: Partial<ConversionRequest> };
  if (b.kind !== "ConversionReview") return `kind is ${JSON.stringify(b.kind)}, not "ConversionReview"`;
  if (b.apiVersion !== "apiextensions.k8s.io/v1") return `apiVersion is ${JSON.stringify(b.apiVersion)}: only apiextensions.k8s.io/v1 is served (conversionReviewVersions: ["v1"])`;
  const r = b.request;
  if (typeof r !== "object" || r === null) return "the ConversionReview has no request";
  if (typeof r.uid !== "string" || !r.uid) return "request.uid is missing";
  if (typeof r.desiredAPIVersion !== "string" || !r.desiredAPIVersion.includes("/")) return "request.desiredAPIVersion is missing or not group/version";
  if (!Array.isArray(r.objects) || !r.objects.every((o) => typeof o === "object" && o !== null && typeof (o as KubeObject).apiVersion === "string")) return "request.objects must be a list of objects with an apiVersion";
  return r as ConversionRequest;
}

/** The whole ConversionReview answer. */
export function conversionReview(response: ConversionResponse): { apiVersion: "apiextensions.k8s.io/v1"; kind: "ConversionReview"; response: ConversionResponse } {
  return { apiVersion: "apiextensions.k8s.io/v1", kind: "ConversionReview", response };
}

/**
 * Converts every object to the desired version: directly when a converter `from → to` exists,
 * else through the storage version (`from → storage → to`); an object already in the desired
 * version is returned as it is. The converted object keeps the original metadata (the API
 * server refuses other changes), except labels and annotations the function set, and gets the
 * desired apiVersion. Any failure (no path, a throwing function) fails the whole review, naming
 * the object and the versions.
 */
export async function convert(request: ConversionRequest, converters: readonly Converter[], storage: string): Promise<ConversionResponse> {
  const to = versionOf(request.desiredAPIVersion);
  const find = (from: string, target: string) => converters.find((c) => c.from === from && c.to === target);
  const convertedObjects: KubeObject[] = [];
  try {
    for (const object of request.objects) {
      const from = versionOf(object.apiVersion ?? "");
      let result = structuredClone(object);
      if (from !== to) {
        const direct = find(from, to);
        const path = direct ? [direct] : [find(from, storage), find(storage, to)];
        if (path.some((c) => !c)) throw new Error(`no conversion from ${from} to ${to} (register op.convert from ${from} to ${to}, or through the storage version ${storage})`);
        for (const step of path as Converter[]) {
          try {
            result = structuredClone(await step.fn(result));
          } catch (error) {
            throw new Error(`converting ${object.metadata?.namespace ? `${object.metadata.namespace}/` : ""}${object.metadata?.name} from ${step.from} to ${step.to} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
          }
        }
      }
      const labels = result.metadata?.labels ?? object.metadata?.labels;
      const annotations = result.metadata?.annotations ?? object.metadata?.annotations;
      convertedObjects.push({ ...result, apiVersion: request.desiredAPIVersion, metadata: { ...object.metadata, ...(labels ? { labels } : {}), ...(annotations ? { annotations } : {}) } });
    }
  } catch (error) {
    return { uid: request.uid, convertedObjects: [], result: { status: "Failure", message: error instanceof Error ? error.message : String(error) } };
  }
  return { uid: request.uid, convertedObjects, result: { status: "Success" } };
}

function versionOf(apiVersion: string): string {
  return apiVersion.slice(apiVersion.lastIndexOf("/") + 1);
}
