// A resource declared with defineResource is served by the real API server: the CRD is
// accepted (structural), objects round-trip, the schema is enforced, unknown fields kept where allowed.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Client, CustomResourceDefinition, InvalidError, Namespace, Type, defineResource } from "../src/entries/index.js";
import { eventually, releaseSharedCluster, sharedCluster, uniqueName } from "./helpers.js";

let client: Client;
before(async () => {
  client = await Client.load({ path: (await sharedCluster()).kubeconfigPath, rateLimit: false });
});
after(async () => {
  await client?.close();
  await releaseSharedCluster();
});

describe("defineResource against the API server", () => {
  it("installs, round-trips and validates", { timeout: 60_000 }, async () => {
    const group = `${uniqueName("def")}.kubeloop.dev`;
    const Policy = defineResource({
      group,
      version: "v1",
      kind: "Policy",
      spec: Type.Object({
        max: Type.Integer({ minimum: 1 }),
        mode: Type.Union([Type.Literal("strict"), Type.Literal("lax")]),
        extra: Type.Optional(Type.Unknown()),
      }),
      status: Type.Object({ seen: Type.Optional(Type.Integer()) }),
      printerColumns: [{ name: "Max", type: "integer", jsonPath: ".spec.max" }],
    });
    await client.resource(CustomResourceDefinition).create(Policy.crd);
    await eventually("CRD established", async () =>
      (await client.resource(CustomResourceDefinition).get(Policy.crd.metadata!.name!)).status?.conditions?.some((c) => c.type === "Established" && c.status === "True"),
    );
    const ns = uniqueName("def");
    await client.resource(Namespace).create({ metadata: { name: ns } });
    const policies = client.resource(Policy).namespace(ns);
    const created = await eventually("served", () =>
      policies.create({ metadata: { name: "p1" }, spec: { max: 3, mode: "strict", extra: { anything: ["goes", 1] } } }).catch(() => undefined),
    );
    assert.equal(created.spec.max, 3);
    assert.deepEqual(created.spec.extra, { anything: ["goes", 1] });
    const status = await policies.patchStatus("p1", { status: { seen: 7 } }, { type: "merge" });
    assert.equal(status.status?.seen, 7);

    await assert.rejects(
      policies.create({ metadata: { name: "bad" }, spec: { max: 0, mode: "other" as "lax" } }),
      (e: unknown) => e instanceof InvalidError && /spec\.max/.test(e.message) && /spec\.mode/.test(e.message),
    );
    await client.resource(CustomResourceDefinition).delete(Policy.crd.metadata!.name!);
  });
});
