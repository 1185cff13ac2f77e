import assert from "node:assert/strict";
import { after, before, it } from "node:test";
import { Client, Namespace } from "kubeloop";
import { installCrd, runOperator, waitFor, type OperatorUnderTest } from "kubeloop/testing";
import { call, identityFromKubeconfig, releaseSharedCluster, sharedCluster, uniqueName, type Identity } from "../../test/helpers.js";
import { Budget, op } from "./operator.js";

let client: Client;
let id: Identity;
let running: OperatorUnderTest | undefined;
before(async () => {
  const kubeconfig = (await sharedCluster()).kubeconfigPath;
  client = await Client.load({ path: kubeconfig, rateLimit: false });
  id = identityFromKubeconfig(kubeconfig);
  await installCrd(client, Budget.crd);
});
after(async () => {
  await running?.stop(); // removeOnStop: the webhook configurations and the CRD's conversion go too
  await client?.close();
  await releaseSharedCluster();
});

it("16-admission: validation with a message and warnings, mutation, conversion between v1 and v2", { timeout: 90_000 }, async () => {
  const ns = uniqueName("ex16");
  await client.resource(Namespace).create({ metadata: { name: ns } });
  running = await runOperator(op, { client, webhooks: { removeOnStop: true } });
  const at = (v: string, name = "") => `/apis/examples.kubeloop.dev/${v}/namespaces/${ns}/budgets${name ? `/${name}` : ""}`;
  const budget = (name: string, spec: object, v = "v2") => ({ apiVersion: `examples.kubeloop.dev/${v}`, kind: "Budget", metadata: { name }, spec });

  const negative = await waitFor("the webhooks called", async () => {
    const r = await call(id, "POST", at("v2"), budget("broke", { amount: -5, currency: "eur" }));
    // The API server loads new webhook configurations through its own watch, a moment after they are written.
    return r.status === 422 ? r : undefined;
  });
  assert.match(negative.body.message, /amount -5 must not be negative/);

  const big = await call(id, "POST", at("v2"), budget("big", { amount: 2_000_000, currency: "usd" }));
  assert.equal(big.status, 201, JSON.stringify(big.body));
  assert.match(String(big.headers.warning ?? ""), /needs approval/);
  assert.deepEqual(big.body.spec, { amount: 2_000_000, currency: "USD" }, "mutated: currency upper-cased");
  assert.equal(big.body.metadata.labels.currency, "USD");

  const old = await call(id, "POST", at("v1"), budget("old", { cents: 12_345 }, "v1"));
  assert.equal(old.status, 201, JSON.stringify(old.body));
  const asV2 = await call(id, "GET", at("v2", "old"));
  assert.deepEqual(asV2.body.spec, { amount: 123, currency: "EUR" }, "written as v1, read as v2");
  const asV1 = await call(id, "GET", at("v1", "big"));
  assert.deepEqual(asV1.body.spec, { cents: 200_000_000 }, "written as v2, read as v1");
});
