// `npm run kube-types`: the TypeScript types of Kubernetes' built-in kinds (src/core/kube/),
// generated from the OpenAPI v3 documents of the kube-apiserver the project ships (the local
// control plane, started for the purpose). `test/kube-types.test.ts` checks, in `npm test`, that
// the committed files are what the server's documents give.
//
// The output has kubernetes-types' shape, which kubeloop used before (it stopped at 1.30): one
// module per API group and version (`core/v1`, `apps/v1`, `meta/v1`, …), one named interface per
// schema with the schema's description as TSDoc, and `apiVersion` / `kind` typed as the literal
// values of the kind. Why a generator of our own: the kept OpenAPI generators (openapi-typescript,
// @hey-api/openapi-ts) emit one namespace of types named by schema key
// (`components["schemas"]["io.k8s.api.core.v1.Pod"]`), without modules per group or literal
// kinds; and Kubernetes' documents use a small part of OpenAPI (objects, arrays, maps, `$ref`,
// `allOf` around one `$ref`, one `oneOf`), which the ~150 lines below cover, failing on anything
// else. The few schemas whose types Go code writes by hand (`OpenAPISchemaType`) and whose
// documents carry only a description are typed in OVERRIDES, as kubernetes-types typed them.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, posix } from "node:path";
import type { Client } from "../src/entries/index.js";

/** The part of a schema object the generator reads. */
export interface Schema {
  description?: string;
  type?: string;
  format?: string;
  $ref?: string;
  allOf?: Schema[];
  oneOf?: Schema[];
  items?: Schema;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  required?: string[];
  "x-kubernetes-group-version-kind"?: { group: string; version: string; kind: string }[];
}

const PREFIX = "#/components/schemas/";
const JSON_SCHEMA = "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps";

/** Types of the schemas whose documents say only what they are, not their type. */
const OVERRIDES: Record<string, (ref: (key: string) => string) => string> = {
  "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.JSON": () => "unknown",
  [`${JSON_SCHEMA}OrArray`]: (ref) => `${ref(JSON_SCHEMA)} | ${ref(JSON_SCHEMA)}[]`,
  [`${JSON_SCHEMA}OrBool`]: (ref) => `${ref(JSON_SCHEMA)} | boolean`,
  [`${JSON_SCHEMA}OrStringArray`]: (ref) => `${ref(JSON_SCHEMA)} | string[]`,
  "io.k8s.apimachinery.pkg.runtime.RawExtension": () => "Record<string, unknown>",
  "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1": () => "Record<string, unknown>",
};

/** The schemas of every built-in group and version the server serves (custom resources' left out). */
export async function fetchSchemas(client: Client): Promise<Record<string, Schema>> {
  const index = await client.request<{ paths: Record<string, { serverRelativeURL: string }> }>({ method: "GET", path: "/openapi/v3" });
  const schemas: Record<string, Schema> = {};
  for (const [path, { serverRelativeURL }] of Object.entries(index.paths).sort(([a], [b]) => a.localeCompare(b))) {
    if (!/^(api|apis\/[^/]+)\/v[^/]+$/.test(path)) continue;
    const [url, query] = serverRelativeURL.split("?");
    const document = await client.request<{ components?: { schemas?: Record<string, Schema> } }>({
      method: "GET",
      path: url as string,
      query: Object.fromEntries(new URLSearchParams(query ?? "")),
    });
    for (const [key, schema] of Object.entries(document.components?.schemas ?? {})) if (key.startsWith("io.k8s.")) schemas[key] = schema;
  }
  return schemas;
}

/** A schema key's module (`io.k8s.api.apps.v1.Deployment` → `apps/v1`) and type name. */
export function place(key: string): { module: string; name: string } {
  const name = key.slice(key.lastIndexOf(".") + 1);
  const api = /^io\.k8s\.api\.([\w-]+)\.(v\w+)\.\w+$/.exec(key) ?? /\.pkg\.apis\.([\w-]+)\.(v\w+)\.\w+$/.exec(key);
  if (api) return { module: `${api[1]}/${api[2]}`, name };
  const other = /^io\.k8s\.apimachinery\.pkg\.([\w.]+)\.\w+$/.exec(key);
  if (other) return { module: (other[1] as string).replaceAll(".", "/"), name };
  throw new Error(`kube-types: no module for schema ${key}`);
}

/** The TypeScript modules (module path → source) of `schemas`. */
export function render(schemas: Record<string, Schema>, origin: string): Map<string, string> {
  type Module = { imports: Map<string, Set<string>>; body: string[] };
  const modules = new Map<string, Module>();
  const namesOf = new Map<string, Set<string>>(); // module → the names defined in it
  for (const key of Object.keys(schemas)) {
    const { module, name } = place(key);
    namesOf.set(module, (namesOf.get(module) ?? new Set()).add(name));
  }
  for (const key of Object.keys(schemas).sort()) {
    const { module, name } = place(key);
    const into: Module = modules.get(module) ?? { imports: new Map(), body: [] };
    modules.set(module, into);
    // A reference from this module: a local name, or an import (aliased if the name is taken here).
    const ref = (target: string): string => {
      if (!schemas[target]) throw new Error(`kube-types: ${key} refers to ${target}, which no document defines`);
      const there = place(target);
      if (there.module === module) return there.name;
      const local = namesOf.get(module)?.has(there.name) ? `${there.module.replaceAll("/", "_")}_${there.name}` : there.name;
      const names = into.imports.get(there.module) ?? new Set<string>();
      into.imports.set(there.module, names.add(local === there.name ? local : `${there.name} as ${local}`));
      return local;
    };
    const schema = schemas[key] as Schema;
    const override = OVERRIDES[key];
    into.body.push(doc(schema.description, ""));
    if (override) into.body.push(`export type ${name} = ${override(ref)};`);
    else if (schema.properties) into.body.push(`export interface ${name} ${objectType(key, schema, ref, "")}`);
    else into.body.push(`export type ${name} = ${typeOf(key, schema, ref, "")};`);
  }
  const out = new Map<string, string>();
  for (const [module, { imports, body }] of [...modules].sort(([a], [b]) => a.localeCompare(b))) {
    const lines = [
      `// Generated by scripts/kube-types.ts (npm run kube-types) from the OpenAPI v3 of ${origin}. Do not edit.`,
      `/**`,
      ` * The types of Kubernetes' ${module} schemas, as ${origin} serves them.`,
      ` * @module kubeloop/k8s/${module}`,
      ` */`,
    ];
    for (const [from, names] of [...imports].sort(([a], [b]) => a.localeCompare(b))) {
      let path = posix.relative(posix.dirname(module), from);
      if (!path.startsWith(".")) path = `./${path}`;
      lines.push(`import type { ${[...names].sort().join(", ")} } from "${path}.js";`);
    }
    out.set(module, [...lines, "", ...body.filter((l) => l !== "")].join("\n") + "\n");
  }
  return out;
}

function doc(description: string | undefined, indent: string): string {
  if (!description) return "";
  // A fence followed by text on its line (Quantity's grammar) opens a block of that text, not of a language named so.
  const text = description.trim().replaceAll("*/", "*\\/").replace(/^``` +(?=\S)/gm, "```\n").split("\n");
  if (text.length === 1) return `${indent}/** ${text[0]} */`;
  return [`${indent}/**`, ...text.map((l) => `${indent} *${l ? ` ${l}` : ""}`), `${indent} */`].join("\n");
}

function objectType(key: string, schema: Schema, ref: (key: string) => string, indent: string): string {
  const gvk = schema["x-kubernetes-group-version-kind"];
  const literal = gvk?.length === 1 ? gvk[0] : undefined;
  const lines = ["{"];
  for (const [property, value] of Object.entries(schema.properties ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    const optional = schema.required?.includes(property) ? "" : "?";
    let type = typeOf(`${key}.${property}`, value, ref, `${indent}  `);
    if (literal && property === "apiVersion") type = JSON.stringify(literal.group ? `${literal.group}/${literal.version}` : literal.version);
    if (literal && property === "kind") type = JSON.stringify(literal.kind);
    const comment = doc(value.description, `${indent}  `);
    if (comment) lines.push(comment);
    lines.push(`${indent}  ${/^[A-Za-z_$][\w$]*$/.test(property) ? property : JSON.stringify(property)}${optional}: ${type};`);
  }
  lines.push(`${indent}}`);
  return lines.join("\n");
}

function typeOf(at: string, schema: Schema, ref: (key: string) => string, indent: string): string {
  if (schema.$ref) return ref(schema.$ref.slice(PREFIX.length));
  if (schema.allOf) {
    if (schema.allOf.length !== 1) throw new Error(`kube-types: ${at}: allOf of ${schema.allOf.length} schemas`);
    return typeOf(at, schema.allOf[0] as Schema, ref, indent);
  }
  if (schema.oneOf) return schema.oneOf.map((s) => typeOf(at, s, ref, indent)).join(" | ");
  switch (schema.type) {
    case "string":
      return "string";
    case "integer":
    case "number":
      return "number";
    case "boolean":
      return "boolean";
    case "array": {
      const item = typeOf(`${at}[]`, schema.items ?? {}, ref, indent);
      return /[ |]/.test(item) && !item.startsWith("{") ? `(${item})[]` : `${item}[]`;
    }
    case "object":
      if (schema.properties) return objectType(at, schema, ref, indent);
      if (typeof schema.additionalProperties === "object") return `{ [key: string]: ${typeOf(`${at}{}`, schema.additionalProperties, ref, indent)} }`;
      return "Record<string, unknown>";
    case undefined:
      if (schema.properties) return objectType(at, schema, ref, indent);
      throw new Error(`kube-types: ${at} has no type (add it to OVERRIDES with the type its Go code gives it)`);
    default:
      throw new Error(`kube-types: ${at} has type ${schema.type}, which the generator does not know`);
  }
}

/** Writes the modules into `dir`, replacing what was there. */
export function write(dir: string, modules: Map<string, string>): void {
  rmSync(dir, { recursive: true, force: true });
  for (const [module, source] of modules) {
    const file = join(dir, `${module}.ts`);
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, source);
  }
}

if (process.argv[1] === import.meta.filename) {
  const { startControlPlane } = await import("../src/entries/testing.js");
  const { Client: ClientClass } = await import("../src/entries/index.js");
  const cp = await startControlPlane({ kubeconfig: false, controllers: [] });
  const client = await ClientClass.load({ path: cp.kubeconfigPath, rateLimit: false });
  try {
    const version = await client.request<{ gitVersion: string }>({ method: "GET", path: "/version" });
    const modules = render(await fetchSchemas(client), `kube-apiserver ${version.gitVersion}`);
    write(join(import.meta.dirname, "..", "src", "core", "kube"), modules);
    console.log(`kube-types: ${modules.size} modules from kube-apiserver ${version.gitVersion} in src/core/kube/`);
  } finally {
    await client.close();
    await cp.stop();
  }
}
