// CRD version conversion through the operator's conversion webhook, called by the real API
// server: a Widget with v1 and v2 (storage v2); objects written in one version read back in the
// other, and a list of objects stored in both versions read in one.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { Client, CustomResourceDefinition, Namespace, Operator, Type, defineResource } from "../src/entries/index.js";
import { installCrd, runOperator, type OperatorUnderTest } from "../src/entries/testing.js";
import { call, eventually, identityFromKubeconfig, releaseSharedCluster, sharedCluster, uniqueName, type Identity } from "./helpers.js";

const group = `${uniqueName("conv")}.kubeloop.dev`;
const Widget = defineResource({
  group,
  version: "v2",
  kind: "Widget",
  spec: Type.Object({ replicas: Type.Integer(), mode: Type.String() }),
  versions: { v1: { spec: Type.Object({ size: Type.Integer() }), deprecated: "v1 is deprecated: use v2" } },
});
let client: Client;
let id: Identity;
let running: OperatorUnderTest | undefined;
before(async () => {
  const kubeconfig = (await sharedCluster()).kubeconfigPath;
  client = await Client.load({ path: kubeconfig, rateLimit: false });
  id = identityFromKubeconfig(kubeconfig);
  await installCrd(client, Widget.crd);
});
after(async () => {
  await running?.stop();
  await client?.resource(CustomResourceDefinition).delete(Widget.crd.metadata!.name!).catch(() => {});
  await client?.close();
  await releaseSharedCluster();
});

describe("conversion webhook", () => {
  it("objects written as v1 read back as v2 and vice versa; a mixed list reads in one version", { timeout: 90_000 }, async () => {
    const ns = uniqueName("conv");
    await client.resource(Namespace).create({ metadata: { name: ns } });
    const op = new Operator({ name: uniqueName("conv-op"), namespaces: [ns], leaderElection: false });
    op.convert(Widget, { from: "v1", to: "v2", fn: (o) => ({ ...o, spec: { replicas: (o as { spec: { size: number } }).spec.size, mode: "converted" } }) });
    op.convert(Widget, { from: "v2", to: "v1", fn: (o) => ({ ...o, spec: { size: (o as { spec: { replicas: number } }).spec.replicas } }) });
    running = await runOperator(op, { client, logger: pino({ level: "silent" }) });
    const at = (v: string, name = "") => `/apis/${group}/${v}/namespaces/${ns}/widgets${name ? `/${name}` : ""}`;
    // The API server picks up the CRD's new conversion stanza shortly after the operator wrote it.
    await eventually("conversion served", async () => {
      const r = await call(id, "POST", at("v1"), { apiVersion: `${group}/v1`, kind: "Widget", metadata: { name: "old" }, spec: { size: 3 } });
      return r.status === 201 || r.status === 409; // 409: an earlier attempt got through
    });
    const asV2 = await call(id, "GET", at("v2", "old"));
    assert.equal(asV2.status, 200, JSON.stringify(asV2.body));
    assert.deepEqual(asV2.body.spec, { replicas: 3, mode: "converted" }, "written as v1, read as v2");
    const created = await call(id, "POST", at("v2"), { apiVersion: `${group}/v2`, kind: "Widget", metadata: { name: "new" }, spec: { replicas: 5, mode: "fast" } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const asV1 = await call(id, "GET", at("v1", "new"));
    assert.deepEqual(asV1.body.spec, { size: 5 }, "written as v2, read as v1");
    assert.match(String(asV1.headers.warning ?? ""), /v1 is deprecated: use v2/, "the deprecated version warns");
    const list = await call(id, "GET", at("v1"));
    assert.deepEqual(
      (list.body.items as { apiVersion: string; metadata: { name: string }; spec: unknown }[]).map((i) => [i.apiVersion, i.metadata.name, i.spec]).sort(),
      [[`${group}/v1`, "new", { size: 5 }], [`${group}/v1`, "old", { size: 3 }]],
    );
    const crd = await client.resource(CustomResourceDefinition).get(Widget.crd.metadata!.name!);
    assert.equal(crd.spec.conversion?.strategy, "Webhook");
  });
});
