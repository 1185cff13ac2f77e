// `kubeloop generate types`: TypeBox types from CRDs. Round trip: from the CRDs defineResource
// generates, the types convert back to the same schemas. From three CRDs of well-known projects
// (test/fixtures/crds): the generated files type-check, and validate sample objects (and refuse
// broken ones).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { Value } from "@sinclair/typebox/value";
import * as YAML from "yaml";
import { IntOrString, Type, cel, defineResource, type TSchema } from "../src/entries/index.js";
import { structural } from "../src/entries/runtime.js";
import { typesFromCrd } from "../src/manifests/types.js";
import type { CustomResourceDefinition } from "../src/core/kube/apiextensions/v1.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const out = join(root, "test", "fixtures", `types-${process.pid}`);
mkdirSync(out, { recursive: true });
after(() => rmSync(out, { recursive: true, force: true }));
const from = join(root, "src", "entries", "index.js");

/** Writes the generated source for `crd` and imports it. */
async function generate(crd: CustomResourceDefinition, name: string): Promise<Record<string, TSchema>> {
  const file = join(out, `${name}.ts`);
  writeFileSync(file, typesFromCrd(crd, { from }));
  return (await import(pathToFileURL(file).href)) as Record<string, TSchema>;
}

const Rich = defineResource({
  group: "roundtrip.kubeloop.dev",
  version: "v1",
  kind: "Rich",
  spec: Type.Object(
    {
      name: Type.String({ minLength: 1, description: "A name." }),
      size: Type.Integer({ minimum: 0, maximum: 10, default: 3 }),
      mode: Type.Union([Type.Literal("fast"), Type.Literal("slow")], { default: "fast" }),
      surge: Type.Optional(IntOrString({ description: "Number or percentage." })),
      tags: Type.Optional(Type.Array(Type.String(), { maxItems: 5 })),
      labels: Type.Optional(Type.Record(Type.String(), Type.String())),
      extra: Type.Optional(Type.Unknown({ description: "Anything." })),
      when: Type.Optional(Type.String({ format: "date-time" })),
      nested: Type.Optional(Type.Object({ on: Type.Boolean(), ratio: Type.Number() })),
    },
    cel({ rule: "self.size <= 10", message: "too big" }),
  ),
  status: Type.Object({ phase: Type.Optional(Type.String()) }),
});

describe("kubeloop generate types", () => {
  it("round trip: types generated from a generated CRD convert back to the same schema", async () => {
    const mod = await generate(Rich.crd, "rich");
    const schema = Rich.crd.spec.versions[0]?.schema?.openAPIV3Schema as { properties: Record<string, unknown> };
    assert.deepEqual(structural(mod.RichSpec as TSchema, "spec"), schema.properties.spec);
    assert.deepEqual(structural(mod.RichStatus as TSchema, "status"), schema.properties.status);
    assert.equal((mod.RichKind as unknown as { apiVersion: string }).apiVersion, "roundtrip.kubeloop.dev/v1");
  });

  it("from three well-known CRDs: the files type-check and validate sample objects", { timeout: 120_000 }, async () => {
    const load = (f: string) => YAML.parse(readFileSync(join(root, "test", "fixtures", "crds", f), "utf8")) as CustomResourceDefinition;
    const snapshot = await generate(load("snapshot.storage.k8s.io_volumesnapshots.yaml"), "volumesnapshot");
    const gateway = await generate(load("gateway.networking.k8s.io_gateways.yaml"), "gateway");
    const populator = await generate(load("populator.storage.k8s.io_volumepopulators.yaml"), "volumepopulator");

    assert.ok(Value.Check(snapshot.VolumeSnapshotSpec as TSchema, { source: { persistentVolumeClaimName: "data" }, volumeSnapshotClassName: "csi" }));
    assert.ok(!Value.Check(snapshot.VolumeSnapshotSpec as TSchema, { source: { persistentVolumeClaimName: 7 } }), "a wrong type is refused");
    assert.ok(Value.Check(snapshot.VolumeSnapshotStatus as TSchema, { readyToUse: true, restoreSize: "10Gi" }));
    assert.ok(Value.Check(gateway.GatewaySpec as TSchema, { gatewayClassName: "example", listeners: [{ name: "http", port: 80, protocol: "HTTP" }] }));
    assert.ok(!Value.Check(gateway.GatewaySpec as TSchema, { listeners: [{ name: "http", port: 80, protocol: "HTTP" }] }), "gatewayClassName is required");
    assert.ok(Value.Check(populator.VolumePopulatorSourceKind as TSchema, { group: "hello.example.com", kind: "Hello" }));
    assert.ok(!Value.Check(populator.VolumePopulatorSourceKind as TSchema, { group: "hello.example.com" }), "kind is required");

    // The generated files type-check on their own, strictly.
    const files = ["rich", "volumesnapshot", "gateway", "volumepopulator"].map((n) => join(out, `${n}.ts`));
    await promisify(execFile)(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "--ignoreConfig", "--noEmit", "--strict", "--noUnusedLocals", "--target", "ES2022", "--lib", "ES2023", "--module", "NodeNext", "--moduleResolution", "NodeNext", "--skipLibCheck", "--types", "node", ...files], { cwd: root, maxBuffer: 1 << 24 }).catch((error: { stdout?: string }) => {
      throw new Error(`the generated types do not type-check:\n${error.stdout ?? String(error)}`);
    });
  });
});
