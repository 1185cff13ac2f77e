// defineResource: one declaration of a custom resource gives both its static TypeScript type
// (from TypeBox schemas for spec and status) and the CustomResourceDefinition that serves it,
// so `object.spec.max` is a number without a cast and the API server validates the same shape.
//
// TypeBox emits JSON Schema; the API server wants a *structural* OpenAPI v3 schema. The
// conversion (`structural`) keeps the validation keywords the server supports, turns unions of
// literals into `enum`, records into `additionalProperties`, `Unknown`/`Any` into
// `x-kubernetes-preserve-unknown-fields`, and refuses what a structural schema cannot express
// (unions of different shapes), naming the path.
import { Type, type SchemaOptions, type Static, type TSchema } from "@sinclair/typebox";
import type { CustomResourceDefinition } from "../core/kube/apiextensions/v1.js";
import type { KubeObject, ResourceKind } from "../core/objects.js";
import { kindOf } from "../core/objects.js";

/** A printer column of `kubectl get`. */
export interface PrinterColumn {
  name: string;
  jsonPath: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  description?: string;
  priority?: number;
}

/** One status condition (metav1.Condition), as `setCondition` writes it. */
export const ConditionSchema = Type.Object({
  type: Type.String(),
  status: Type.Union([Type.Literal("True"), Type.Literal("False"), Type.Literal("Unknown")]),
  reason: Type.String(),
  message: Type.Optional(Type.String()),
  observedGeneration: Type.Optional(Type.Integer()),
  lastTransitionTime: Type.String({ format: "date-time" }),
});

/** `status.conditions`: a list keyed by `type`, so server-side apply merges conditions by type. */
export const ConditionsSchema = Type.Array(ConditionSchema, { "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"] });

/** What a custom resource is. */
export interface ResourceDefinition<S extends TSchema, St extends TSchema | undefined> {
  group: string;
  version: string;
  kind: string;
  /** Default: the kind in lower case, pluralized ("Policy" → "policies"). */
  plural?: string;
  scope?: "Namespaced" | "Cluster";
  shortNames?: string[];
  categories?: string[];
  spec: S;
  /** When given, the CRD gets a status subresource. */
  status?: St;
  printerColumns?: PrinterColumn[];
  /** The scale subresource (`kubectl scale`, HorizontalPodAutoscalers): JSON paths of the replica counts and the label selector. */
  scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath?: string };
  /** Fields usable in field selectors (`kubectl get -l`'s sibling `--field-selector`), as JSON paths, e.g. ".spec.color". */
  selectableFields?: string[];
  /**
   * Further versions the CRD serves besides `version` (which is the storage version), with their
   * own schemas. Objects are converted between versions by the operator's conversion webhook
   * (`op.convert`). `served: false` keeps a version only for stored objects; `deprecated` makes
   * the API server warn (a string is the warning).
   */
  versions?: Record<string, OtherVersion>;
}

/** A version of a defined resource other than its storage version. */
export interface OtherVersion {
  spec: TSchema;
  status?: TSchema;
  /** Default true. */
  served?: boolean;
  deprecated?: boolean | string;
}

/** The object type of a defined resource. */
export type CustomObject<Spec, Status> = KubeObject & { spec: Spec; status?: Status };

/** A kind descriptor plus the CRD that serves it. */
export type DefinedResource<S extends TSchema, St extends TSchema | undefined> = ResourceKind<
  CustomObject<Static<S>, St extends TSchema ? Static<St> : Record<string, unknown>>
> & {
  readonly crd: CustomResourceDefinition;
  readonly group: string;
  readonly version: string;
  readonly scope: "Namespaced" | "Cluster";
  /** Every version the CRD has, the storage version (`version`) first. */
  readonly versions: readonly string[];
  /** The kind descriptor of another version (objects typed loosely: their schema is only known at run time). */
  at(version: string): ResourceKind<CustomObject<Record<string, unknown>, Record<string, unknown>>>;
};

/** The schema cannot be served by the API server (not structural); names the path. */
export class SchemaError extends Error {
  override name = "SchemaError";
  readonly reason = "NotStructural";
}

/**
 * Declares a custom resource.
 *
 * ```ts
 * export const Widget = defineResource({
 *   group: "example.com", version: "v1", kind: "Widget",
 *   spec: Type.Object({ size: Type.Integer({ minimum: 1 }) }),
 *   status: Type.Object({ ready: Type.Optional(Type.Boolean()) }),
 * });
 * await client.resource(CustomResourceDefinition).create(Widget.crd);
 * ```
 * Fails with SchemaError for schemas the API server cannot serve.
 */
export function defineResource<S extends TSchema, St extends TSchema | undefined = undefined>(
  definition: ResourceDefinition<S, St>,
): DefinedResource<S, St> {
  const { group, version, kind } = definition;
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$/.test(group)) {
    throw new TypeError(`defineResource: group "${group}" must be a DNS subdomain with a dot, e.g. "example.com"`);
  }
  if (!/^[A-Z][A-Za-z0-9]*$/.test(kind)) throw new TypeError(`defineResource: kind "${kind}" must be CamelCase, starting with a capital letter`);
  const scope = definition.scope ?? "Namespaced";
  const singular = kind.toLowerCase();
  const plural = definition.plural ?? pluralize(singular);
  const properties: Record<string, unknown> = { spec: structural(definition.spec, "spec") };
  if (definition.status) properties.status = structural(definition.status, "status");
  const crd: CustomResourceDefinition = {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      scope,
      names: {
        kind,
        listKind: `${kind}List`,
        plural,
        singular,
        ...(definition.shortNames ? { shortNames: definition.shortNames } : {}),
        ...(definition.categories ? { categories: definition.categories } : {}),
      },
      versions: [
        {
          name: version,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: "object", properties, required: ["spec"] } as never },
          ...(definition.status || definition.scale ? { subresources: { ...(definition.status ? { status: {} } : {}), ...(definition.scale ? { scale: definition.scale } : {}) } } : {}),
          ...(definition.printerColumns ? { additionalPrinterColumns: definition.printerColumns } : {}),
          ...(definition.selectableFields ? { selectableFields: definition.selectableFields.map((jsonPath) => ({ jsonPath })) } : {}),
        },
        ...Object.entries(definition.versions ?? {}).map(([name, v]) => otherVersion(name, v, version)),
      ],
    },
  };
  const descriptor = kindOf(`${group}/${version}`, kind, { plural, namespaced: scope === "Namespaced" });
  // The descriptor's object type is carried only at the type level (ResourceKind's __object marker).
  const versions = [version, ...Object.keys(definition.versions ?? {})];
  const at = (name: string) => {
    if (!versions.includes(name)) throw new TypeError(`${kind} has no version "${name}" (it has ${versions.join(", ")})`);
    return kindOf(`${group}/${name}`, kind, { plural, namespaced: scope === "Namespaced" });
  };
  return Object.freeze({ ...descriptor, crd, group, version, scope, versions, at }) as unknown as DefinedResource<S, St>;
}

/** A served version besides the storage one (`defineResource({ versions })`), checked. */
function otherVersion(name: string, v: NonNullable<ResourceDefinition<TSchema, TSchema | undefined>["versions"]>[string], storage: string) {
  if (name === storage) throw new TypeError(`defineResource: version "${name}" is the storage version; list only the others in versions`);
  if (!/^v[0-9]+((alpha|beta)[0-9]+)?$/.test(name)) throw new TypeError(`defineResource: version "${name}" must look like v1, v2beta1 or v1alpha2`);
  const props: Record<string, unknown> = { spec: structural(v.spec, `${name}.spec`) };
  if (v.status) props.status = structural(v.status, `${name}.status`);
  return {
    name,
    served: v.served ?? true,
    storage: false,
    ...(v.deprecated ? { deprecated: true, ...(typeof v.deprecated === "string" ? { deprecationWarning: v.deprecated } : {}) } : {}),
    schema: { openAPIV3Schema: { type: "object", properties: props, required: ["spec"] } as never },
    ...(v.status ? { subresources: { status: {} } } : {}),
  };
}

function pluralize(word: string): string {
  if (/[^aeiou]y$/.test(word)) return word.slice(0, -1) + "ies";
  if (/(s|x|z|ch|sh)$/.test(word)) return word + "es";
  return word + "s";
}

// Keywords a structural schema may carry as they are.
const KEEP = [
  "description",
  "format",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "exclusiveMaximum",
  "multipleOf",
  "minLength",
  "maxLength",
  "pattern",
  "minItems",
  "maxItems",
  "uniqueItems",
  "minProperties",
  "maxProperties",
  "default",
  "enum",
  "nullable",
] as const;

/** Converts a TypeBox (JSON Schema) schema into a structural OpenAPI v3 schema. */
export function structural(schema: TSchema | Record<string, unknown>, path: string): Record<string, unknown> {
  const s = schema as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const key of KEEP) if (s[key] !== undefined) out[key] = s[key];
  for (const [key, value] of Object.entries(s)) if (key.startsWith("x-kubernetes-")) out[key] = value;

  if (s.const !== undefined) return { ...out, type: typeof s.const === "number" ? (Number.isInteger(s.const) ? "integer" : "number") : typeof s.const, enum: [s.const] };
  const union = (s.anyOf ?? s.oneOf) as Record<string, unknown>[] | undefined;
  if (union) {
    const nonNull = union.filter((u) => u.type !== "null");
    const nullable = nonNull.length < union.length;
    if (nonNull.length > 0 && nonNull.every((u) => u.const !== undefined)) {
      const values = nonNull.map((u) => u.const);
      const types = new Set(values.map((v) => typeof v));
      if (types.size !== 1) throw new SchemaError(`${path}: a union of literals must have one type, got ${[...types].join(" and ")}`);
      const t = typeof values[0];
      return { ...out, type: t === "number" ? (values.every((v) => Number.isInteger(v)) ? "integer" : "number") : t, enum: values, ...(nullable ? { nullable: true } : {}) };
    }
    if (nonNull.length === 1) return { ...structural(nonNull[0] as Record<string, unknown>, path), ...(nullable ? { nullable: true } : {}) };
    // Integer or string (IntOrString(): "50%" or 5), as Kubernetes' own int-or-string fields.
    const types = nonNull.map((u) => u.type).sort();
    if (types.length === 2 && types[0] === "integer" && types[1] === "string") return { ...out, "x-kubernetes-int-or-string": true, ...(nullable ? { nullable: true } : {}) };
    throw new SchemaError(`${path}: unions of different shapes are not structural; use Type.Unknown() with x-kubernetes-preserve-unknown-fields, or one object with optional fields`);
  }
  switch (s.type) {
    case "object": {
      out.type = "object";
      const props = s.properties as Record<string, Record<string, unknown>> | undefined;
      if (props) {
        out.properties = Object.fromEntries(Object.entries(props).map(([k, v]) => [k, structural(v, `${path}.${k}`)]));
        const required = (s.required as string[] | undefined) ?? [];
        if (required.length) out.required = required;
      }
      const pattern = s.patternProperties as Record<string, Record<string, unknown>> | undefined;
      const additional = s.additionalProperties;
      if (pattern) {
        const values = Object.values(pattern);
        if (values.length !== 1) throw new SchemaError(`${path}: only one value schema is allowed for a map`);
        out.additionalProperties = structural(values[0] as Record<string, unknown>, `${path}[*]`);
      } else if (additional && typeof additional === "object") {
        out.additionalProperties = structural(additional as Record<string, unknown>, `${path}[*]`);
      } else if (!props) {
        out["x-kubernetes-preserve-unknown-fields"] = true;
      }
      return out;
    }
    case "array": {
      if (!s.items || Array.isArray(s.items)) throw new SchemaError(`${path}: arrays need one item schema (tuples are not structural)`);
      return { ...out, type: "array", items: structural(s.items as Record<string, unknown>, `${path}[]`) };
    }
    case "string":
    case "integer":
    case "number":
    case "boolean":
      return { ...out, type: s.type };
    case undefined:
      // Type.Unknown() / Type.Any(): anything goes, kept as given.
      return { ...out, "x-kubernetes-preserve-unknown-fields": true };
    default:
      throw new SchemaError(`${path}: type ${JSON.stringify(s.type)} cannot be served by the API server`);
  }
}

/** A field that holds an integer or a string, such as "50%" or 5 (Kubernetes' int-or-string). */
export function IntOrString(options: SchemaOptions = {}): TSchema {
  return Type.Union([Type.Integer(), Type.String()], options);
}

/**
 * CEL validation rules for a schema's options (`x-kubernetes-validations`), checked by the API
 * server on every write: `Type.Object({ min, max }, cel({ rule: "self.min <= self.max", message: "min must not exceed max" }))`.
 */
export function cel(...rules: { rule: string; message?: string; fieldPath?: string; reason?: "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate" }[]): { "x-kubernetes-validations": typeof rules } {
  return { "x-kubernetes-validations": rules };
}
