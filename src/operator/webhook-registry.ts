// What an operator registered for the API server to call: admission hooks (`op.on.validate`,
// `op.on.mutate`) and conversions (`op.convert`), each checked as it is registered, so what the
// API server would refuse at registration is named at the line that asked for it.
import type { TSchema } from "@sinclair/typebox";
import { checkOneOf } from "../core/check.js";
import type { KubeObject, ResourceKind } from "../core/objects.js";
import type { Filters } from "../handlers/filters.js";
import type { DefinedResource } from "../manifests/resource.js";
import type { ConvertFn } from "../webhook/conversion.js";
import type { AdmissionHook } from "../webhook/registration.js";
import type { AdmissionSpec, ConversionSpec, MutateOptions } from "./webhooks.js";

const OPERATIONS = ["CREATE", "UPDATE", "DELETE", "CONNECT"];

/** The admission hooks and conversions of one operator. */
export class WebhookRegistry {
  readonly admission: AdmissionSpec[] = [];
  readonly conversions = new Map<string, ConversionSpec>();

  /** Whether anything is registered (the operator serves webhooks). */
  get any(): boolean {
    return this.admission.length > 0 || this.conversions.size > 0;
  }

  /** The hooks as the API server must call them, and the CRDs (names) converted. */
  get declared(): { admission: AdmissionHook[]; conversions: string[] } {
    return { admission: this.admission.map((a) => a.hook), conversions: [...this.conversions.keys()] };
  }

  /** An admission hook; its id is `<type>-<kind>` (numbered when taken) unless `options.id` names one. */
  admissionHook(type: "validate" | "mutate", kind: ResourceKind, fn: Pick<AdmissionSpec, "validate" | "mutate">, options: MutateOptions<KubeObject>): void {
    const id = this.hookId(`${type}-${kind.kind.toLowerCase()}`, options.id);
    const timeoutSeconds = options.timeoutSeconds ?? 10;
    if (!(Number.isInteger(timeoutSeconds) && timeoutSeconds >= 1 && timeoutSeconds <= 30)) throw new RangeError(`timeoutSeconds must be an integer 1–30 (the API server's bounds), not ${timeoutSeconds}`);
    checkOneOf("failurePolicy", options.failurePolicy, ["Fail", "Ignore"]);
    checkOneOf("sideEffects", options.sideEffects, ["None", "NoneOnDryRun"]);
    checkOneOf("reinvocationPolicy", options.reinvocationPolicy, ["Never", "IfNeeded"]);
    if (options.operations) {
      if (options.operations.length === 0) throw new TypeError("operations must name at least one operation (default: CREATE and UPDATE)");
      for (const operation of options.operations) checkOneOf("operations:", operation, OPERATIONS);
    }
    const { labels, annotations, when } = options;
    this.admission.push({
      kind,
      filters: { ...(labels ? { labels } : {}), ...(annotations ? { annotations } : {}), ...(when ? { when } : {}) } as Filters<KubeObject>,
      ...fn,
      hook: {
        type,
        id,
        kind,
        operations: options.operations ?? ["CREATE", "UPDATE"],
        ...(options.subresource ? { subresource: options.subresource } : {}),
        failurePolicy: options.failurePolicy ?? "Fail",
        timeoutSeconds,
        sideEffects: options.sideEffects ?? "None",
        ...(options.reinvocationPolicy ? { reinvocationPolicy: options.reinvocationPolicy } : {}),
      },
    });
  }

  /** A conversion of one direction between two versions of `kind`; a direction registered twice throws. */
  convert(kind: DefinedResource<TSchema, TSchema | undefined>, conversion: { from: string; to: string; fn: ConvertFn }): void {
    for (const v of [conversion.from, conversion.to]) if (!kind.versions.includes(v)) throw new TypeError(`${kind.kind} has no version "${v}" (it has ${kind.versions.join(", ")})`);
    const crd = kind.crd.metadata?.name ?? "";
    const spec = this.conversions.get(crd) ?? { crd, storage: kind.version, converters: [] };
    if (spec.converters.some((c) => c.from === conversion.from && c.to === conversion.to)) throw new Error(`a conversion from ${conversion.from} to ${conversion.to} of ${kind.kind} is already registered`);
    spec.converters.push(conversion);
    this.conversions.set(crd, spec);
  }

  /** A unique webhook id: `explicit` (which must be free), else `base`, `base-2`, … (a lower-case DNS label either way). */
  private hookId(base: string, explicit: string | undefined): string {
    let id = explicit ?? base;
    for (let n = 2; this.admission.some((a) => a.hook.id === id); n++) {
      if (explicit) throw new Error(`a webhook with id "${id}" is already registered`);
      id = `${base}-${n}`;
    }
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(id)) throw new TypeError(`webhook id "${id}" must be a lower-case DNS label (it is part of the webhook's name and URL)`);
    return id;
  }
}
